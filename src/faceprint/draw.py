"""Boxes and name labels on images and video frames, and face crops (OpenCV drawing).

The functions work on any 3-channel uint8 image: colours are taken in the image's own
channel order (RGB for :func:`faceprint.image.load_image` pixels, BGR for OpenCV frames).
Labels are placed so that they stay inside the image and, where the image leaves room,
cover neither another face nor another label: above the box, else below it, else inside
it, in a smaller font when that is what it takes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

import cv2
import numpy as np

Box = tuple[int, int, int, int]  # (left, top, right, bottom) in pixels, as in faceprint.types.Face
Color = tuple[int, int, int]
T = TypeVar("T")

DEFAULT_COLOR: Color = (60, 200, 60)  # green: reads the same in RGB and BGR order
FONT = cv2.FONT_HERSHEY_SIMPLEX
#: below this font scale Hershey glyphs are no longer legible
MIN_SCALE = 0.3
#: a label may be this many times wider than its face before its font is shrunk
MAX_LABEL_WIDTH = 2.0
#: a label overlapping another face costs this many times one overlapping another label
FACE_WEIGHT = 4


def line_thickness(pixels: np.ndarray) -> int:
    """Box line width that stays visible at the image's size (1 px up to 540 lines)."""
    return max(1, round(pixels.shape[0] / 360))


def draw_faces(
    pixels: np.ndarray,
    boxes: Sequence[Box],
    labels: Sequence[str | None] | None = None,
    colors: Color | Sequence[Color] | None = None,
    thickness: int | Sequence[int] | None = None,
) -> np.ndarray:
    """A copy of ``pixels`` with a box around each face and its label (``None``: box only).

    ``colors`` is one colour for all boxes or one per box, in the image's channel order;
    ``thickness`` likewise (default: :func:`line_thickness`). Every label is drawn after
    every box, so no box line crosses a label.
    """
    image = np.ascontiguousarray(pixels).copy()
    n = len(boxes)
    texts: Sequence[str | None] = [None] * n if labels is None else _check_count(labels, n, "labels")
    color_list = _colors(colors, n)
    if thickness is None:
        thickness = line_thickness(image)
    widths = [thickness] * n if isinstance(thickness, int | np.integer) else _check_count(thickness, n, "thicknesses")
    rects = [_clip(box, image.shape) for box in boxes]
    for (left, top, right, bottom), color, width in zip(rects, color_list, widths):
        cv2.rectangle(image, (left, top), (right, bottom), color, int(width))
    for spot, color in zip(_place_labels(rects, texts, image.shape, _base_scale(image)), color_list):
        if spot is not None:
            _draw_label(image, spot, color)
    return image


def crop_face(pixels: np.ndarray, box: Box, margin: float = 0.3) -> np.ndarray:
    """The face with ``margin`` times its width (height) of context on each side, clipped
    to the image. A copy, so that it outlives a reused frame buffer."""
    h, w = pixels.shape[:2]
    left, top, right, bottom = box
    mx, my = (right - left) * margin, (bottom - top) * margin
    x0, y0 = max(0, int(left - mx)), max(0, int(top - my))
    x1, y1 = min(w, int(right + mx)), min(h, int(bottom + my))
    return pixels[y0:y1, x0:x1].copy()


# --------------------------------------------------------------------------- placement
@dataclass
class _Spot:
    """Where one label goes and in which font."""

    text: str
    rect: Box
    scale: float
    weight: int  # stroke width
    pad: int
    baseline: int


def _colors(colors: Color | Sequence[Color] | None, n: int) -> list[Color]:
    """One colour per box, as plain ints (OpenCV rejects numpy integers in a colour)."""
    if colors is None:
        colors = DEFAULT_COLOR
    if len(colors) == 3 and all(isinstance(c, int | np.integer) for c in colors):
        colors = [colors] * n  # type: ignore[list-item]
    return [(int(r), int(g), int(b)) for r, g, b in _check_count(colors, n, "colors")]  # type: ignore[misc]


def _check_count(values: Sequence[T], n: int, what: str) -> Sequence[T]:
    if len(values) != n:
        raise ValueError(f"{n} boxes but {len(values)} {what}")
    return values


def _clip(box: Box, shape: tuple[int, ...]) -> Box:
    h, w = shape[:2]
    left, top, right, bottom = (int(round(v)) for v in box)
    return max(0, min(left, w - 1)), max(0, min(top, h - 1)), max(0, min(right, w - 1)), max(0, min(bottom, h - 1))


def _base_scale(image: np.ndarray) -> float:
    """Font scale for the image's size (text about 2% of the image's height)."""
    return max(0.4, image.shape[0] / 900)


def _font(text: str, scale: float) -> tuple[int, int, int, int, int]:
    """(width, height, stroke weight, padding, baseline) of a label's background at this scale."""
    weight = max(1, round(scale * 1.6))
    (tw, th), baseline = cv2.getTextSize(text, FONT, scale, weight)
    pad = weight + 1
    return tw + 2 * pad, th + baseline + 2 * pad, weight, pad, baseline


def _scales(text: str, box: Box, base: float) -> list[float]:
    """Font scales to try for one label, largest first: the image's base scale, shrunk so that
    the label is at most MAX_LABEL_WIDTH face widths wide, then smaller steps to MIN_SCALE."""
    face_w = max(30, box[2] - box[0])
    first = max(MIN_SCALE, min(base, MAX_LABEL_WIDTH * face_w / _font(text, 1.0)[0]))
    scales = [first]
    while scales[-1] > MIN_SCALE:
        scales.append(max(MIN_SCALE, scales[-1] * 0.8))
    return scales


def _candidates(box: Box, w: int, h: int, shape: tuple[int, ...]) -> np.ndarray:
    """Label rectangles in order of preference: above the box, below it, inside its top;
    each aligned left, centred and right, shifted sideways to stay in the image."""
    img_h, img_w = shape[:2]
    left, top, right, bottom = box
    xs = dict.fromkeys(min(max(0, x), max(0, img_w - w)) for x in (left, (left + right - w) // 2, right - w))
    ys = [y for y, fits in ((top - h, top - h >= 0), (bottom, bottom + h <= img_h)) if fits]
    ys.append(min(max(0, top), max(0, img_h - h)))  # inside: always possible
    return np.array([(x, y, x + w, y + h) for y in ys for x in xs], np.int64).reshape(-1, 4)


def _covered(rects: np.ndarray, others: np.ndarray) -> np.ndarray:
    """For each rectangle, the area of it that ``others`` cover (overlaps counted per other)."""
    if len(others) == 0:
        return np.zeros(len(rects), np.int64)
    a, b = rects[:, None, :], others[None, :, :]
    w = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    h = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    return (w * h).sum(axis=1)


def _place_labels(
    boxes: list[Box], labels: Sequence[str | None], shape: tuple[int, ...], base: float
) -> list[_Spot | None]:
    """Greedy placement, top faces first: each label takes the first spot (largest font, then
    the order of :func:`_candidates`) that covers no other face and no label placed before it;
    where there is none, the spot that covers least (another face counts FACE_WEIGHT times)."""
    spots: list[_Spot | None] = [None] * len(boxes)
    faces = np.array(boxes, np.int64).reshape(-1, 4)
    taken = np.zeros((0, 4), np.int64)
    for i in sorted(range(len(boxes)), key=lambda k: (boxes[k][1], boxes[k][0])):
        text = labels[i]
        if not text:
            continue
        others = np.delete(faces, i, axis=0)
        best: tuple[int, _Spot] | None = None
        for scale in _scales(text, boxes[i], base):
            w, h, weight, pad, baseline = _font(text, scale)
            rects = _candidates(boxes[i], w, h, shape)
            costs = FACE_WEIGHT * _covered(rects, others) + _covered(rects, taken)
            k = int(np.argmin(costs))  # the first of the cheapest: order is preference
            if best is None or costs[k] < best[0]:
                x0, y0, x1, y1 = (int(v) for v in rects[k])
                best = (int(costs[k]), _Spot(text, (x0, y0, x1, y1), scale, weight, pad, baseline))
            if best[0] == 0:
                break
        assert best is not None
        spots[i] = best[1]
        taken = np.vstack([taken, np.array(best[1].rect)[None]])
    return spots


def _draw_label(image: np.ndarray, spot: _Spot, color: Color) -> None:
    left, top, right, bottom = spot.rect
    cv2.rectangle(image, (left, top), (right - 1, bottom - 1), color, cv2.FILLED)
    ink = (0, 0, 0) if sum(color) / 3 > 110 else (255, 255, 255)  # dark on light, light on dark
    origin = (left + spot.pad, bottom - spot.pad - spot.baseline)
    cv2.putText(image, spot.text, origin, FONT, spot.scale, ink, spot.weight, cv2.LINE_AA)
