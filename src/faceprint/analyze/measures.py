"""What the face looks like, measured from the face mesh: the raw numbers quality is made of.

Every measure is taken on the mesh's crop (the face turned upright at a fixed scale), inside the
convex hull of the mesh's points, so that it describes the face and not the background.
"""

from __future__ import annotations

import cv2
import numpy as np

from faceprint.analyze.landmarks import (
    LEFT_EYE_CORNERS,
    MESH_SIZE,
    RIGHT_EYE_CORNERS,
    DenseLandmarks,
    eye_openness,
    mouth_openness,
)

#: grey levels counted as clipped (blown-out or crushed)
CLIP_LOW, CLIP_HIGH = 8, 247


def face_mask(dense: DenseLandmarks) -> np.ndarray:
    """(192, 192) bool: the inside of the mesh's hull, in the mesh crop's pixels."""
    xy = back_points(dense)
    hull = cv2.convexHull(np.round(xy).astype(np.int32))
    mask = np.zeros((MESH_SIZE, MESH_SIZE), np.uint8)
    cv2.fillConvexPoly(mask, hull, 1)
    return mask.astype(bool)


def inter_eye_distance(points: np.ndarray) -> float:
    """Pixels between the eye centres (each the middle of its two corners)."""
    right = points[list(RIGHT_EYE_CORNERS), :2].mean(0)
    left = points[list(LEFT_EYE_CORNERS), :2].mean(0)
    return float(np.linalg.norm(left - right))


def appearance(dense: DenseLandmarks) -> dict[str, float]:
    """Sharpness, exposure and lighting of the face.

    - ``sharpness``: standard deviation of the Laplacian over the face, relative to the face's
      contrast (so a dim face is not called blurred); a small or upscaled face is soft here too.
    - ``brightness``: mean grey level (0-255); ``contrast``: its standard deviation;
      ``clipped``: share of the face's pixels crushed or blown out.
    - ``lighting_asymmetry``: |left - right| / (left + right) mean grey of the face's halves.
    """
    grey = cv2.cvtColor(dense.crop, cv2.COLOR_RGB2GRAY)
    mask = face_mask(dense)
    if mask.sum() < 100:  # a degenerate mesh: nothing to measure
        mask = np.ones_like(mask)
    values = grey[mask].astype(np.float64)
    contrast = float(values.std())
    lap = cv2.Laplacian(grey, cv2.CV_64F, ksize=3)
    inner = cv2.erode(mask.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)  # not the hull's edge
    sharp = float(lap[inner].std()) if inner.sum() > 50 else 0.0
    eyes = _eye_regions(dense, back_points(dense))
    eye_px = grey[eyes].astype(np.float64) if eyes.any() else values
    half = MESH_SIZE // 2
    left, right = grey[:, :half][mask[:, :half]], grey[:, half:][mask[:, half:]]
    ml = float(left.mean()) if left.size else 0.0
    mr = float(right.mean()) if right.size else 0.0
    return {
        "sharpness": sharp / max(contrast, 1.0),
        "laplacian": sharp,
        "brightness": float(values.mean()),
        "contrast": contrast,
        "clipped": float(np.mean((values <= CLIP_LOW) | (values >= CLIP_HIGH))),
        "lighting_asymmetry": abs(ml - mr) / max(ml + mr, 1.0),
        "eye_brightness": float(eye_px.mean()) / max(float(values.mean()), 1.0),
        "eye_detail": float(lap[eyes].std()) / max(sharp, 1e-6) if eyes.any() else 1.0,
    }


def _eye_regions(dense: DenseLandmarks, xy: np.ndarray) -> np.ndarray:
    """(192, 192) bool: a box around each eye (corner to corner, half as tall), in crop pixels:
    where sunglasses or a hand would be."""
    mask = np.zeros((MESH_SIZE, MESH_SIZE), bool)
    for a, b in (RIGHT_EYE_CORNERS, LEFT_EYE_CORNERS):
        (x0, y0), (x1, y1) = xy[a], xy[b]
        cx, cy, half_w = (x0 + x1) / 2, (y0 + y1) / 2, abs(x1 - x0) / 2
        top, bottom = int(max(0, cy - half_w / 2)), int(min(MESH_SIZE, cy + half_w / 2 + 1))
        left, right = int(max(0, cx - half_w)), int(min(MESH_SIZE, cx + half_w + 1))
        mask[top:bottom, left:right] = True
    return mask


def back_points(dense: DenseLandmarks) -> np.ndarray:
    """The mesh's (468, 2) points in the crop's pixels."""
    back = cv2.invertAffineTransform(dense.to_image)
    return dense.points[:, :2] @ back[:, :2].T + back[:, 2]


def geometry(dense: DenseLandmarks) -> dict[str, float]:
    """Eye and mouth openness (see :mod:`faceprint.analyze.landmarks`) and the inter-eye distance."""
    eyes = [eye_openness(e) for e in dense.eyes]
    return {
        "eye_right": eyes[0],
        "eye_left": eyes[1],
        "mouth": mouth_openness(dense.points),
        "inter_eye_px": inter_eye_distance(dense.points),
        "presence": dense.presence,
    }
