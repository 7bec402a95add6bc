"""Controlled changes to a photo, one attribute at a time, as pure functions of the image.

Each transform takes the whole RGB image (uint8), the face's 5 landmarks (dlib order: outer and
inner corner of the eye on the image's right, outer and inner corner of the other eye, base of the
nose) and a strength, and returns the changed image and the landmarks to align it with. The audit
changes the photo *before* alignment but aligns it with the landmarks found on the untouched photo:
a detector that misses a blurred face would otherwise be counted as a change of the template. So
what is measured is the embedding's response, not the detector's.

Consequences worth knowing:

- ``rotation`` turns the image about the face without turning the landmarks, so the aligned chip
  shows the face rolled by that angle: the residual roll an aligner leaves, not a tilted head the
  aligner would undo.
- ``flip`` mirrors the image *and* the landmarks (eyes swapped), so the chip is the mirrored chip;
  with flip-averaged templates (the default engine) the template barely moves by construction.
- ``resolution`` shrinks the image by the factor and enlarges it back (area down, bilinear up), so
  the landmarks still hold while the detail of a face that many times smaller is gone.
- ``occlusion_eyes`` / ``occlusion_mouth`` paint a black bar (sunglasses, a mask) along the eye line,
  as tall as ``strength`` x the distance between the eye centres. The mouth has no landmark of its
  own: its centre is put at nose + 0.6 x (nose - eye midpoint), the proportion of dlib's mean face
  shape (eyes at y 0.22, nose base 0.58, mouth centre 0.80 of the face's height).
- ``noise`` is seeded (``seed``), so that a run is reproducible.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

Transform = Callable[[np.ndarray, np.ndarray, float, int], tuple[np.ndarray, np.ndarray]]

#: the mouth centre below the nose base, in units of (nose base - eye midpoint): dlib's mean face
MOUTH_BELOW_NOSE = 0.6
#: bars' widths in units of the distance between the eye centres (both eyes with their outer
#: corners, at ~0.7 of that distance from the eyes' midpoint; a mouth is ~0.9 of it wide)
EYE_BAR_WIDTH = 2.0
MOUTH_BAR_WIDTH = 1.3


def eye_centres(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(centre of the eye on the image's left, centre of the one on its right)."""
    pts = np.asarray(landmarks, np.float64)
    return (pts[2] + pts[3]) / 2, (pts[0] + pts[1]) / 2


def _uint8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def brightness(image: np.ndarray, landmarks: np.ndarray, gain: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Exposure: every pixel times ``gain`` (clipped at white: over-exposure blows highlights out)."""
    return _uint8(image.astype(np.float32) * gain), landmarks


def contrast(image: np.ndarray, landmarks: np.ndarray, factor: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Distances from the image's mean grey level times ``factor`` (below 1: flat, washed out)."""
    x = image.astype(np.float32)
    mean = float(x.mean())
    return _uint8(mean + (x - mean) * factor), landmarks


def blur(image: np.ndarray, landmarks: np.ndarray, sigma: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian blur of ``sigma`` pixels (defocus, motion aside)."""
    if sigma <= 0:
        return image.copy(), landmarks
    return cv2.GaussianBlur(image, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT), landmarks


def jpeg(image: np.ndarray, landmarks: np.ndarray, quality: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Re-encoded as JPEG at ``quality`` (100 best, 5 blocky) and decoded again."""
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:  # pragma: no cover - OpenCV encodes any uint8 RGB image
        raise ValueError("JPEG encoding failed")
    return cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB), landmarks


def noise(image: np.ndarray, landmarks: np.ndarray, sigma: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Additive Gaussian noise of ``sigma`` grey levels per pixel and channel (sensor noise)."""
    rng = np.random.default_rng(seed)
    return _uint8(image.astype(np.float32) + rng.normal(0.0, sigma, image.shape)), landmarks


def resolution(image: np.ndarray, landmarks: np.ndarray, factor: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Shrunk ``factor`` times and enlarged back to its size: the face as if that many times farther."""
    if factor <= 1:
        return image.copy(), landmarks
    h, w = image.shape[:2]
    small = cv2.resize(image, (max(1, round(w / factor)), max(1, round(h / factor))), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR), landmarks


def rotation(image: np.ndarray, landmarks: np.ndarray, degrees: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Turned by ``degrees`` (counter-clockwise) about the landmarks' centre; landmarks kept (see
    the module's note: the chip shows the rolled face)."""
    h, w = image.shape[:2]
    cx, cy = np.asarray(landmarks, np.float64).mean(axis=0)
    m = cv2.getRotationMatrix2D((float(cx), float(cy)), degrees, 1.0)
    return cv2.warpAffine(image, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT), landmarks


def flip(
    image: np.ndarray, landmarks: np.ndarray, strength: float = 1.0, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Mirrored left to right, landmarks with it (the two eyes swap places in dlib's order)."""
    w = image.shape[1]
    pts = np.asarray(landmarks, np.float64).copy()
    pts[:, 0] = (w - 1) - pts[:, 0]
    return np.ascontiguousarray(image[:, ::-1]), pts[[2, 3, 0, 1, 4]]


def _bar(image: np.ndarray, centre: np.ndarray, axis: np.ndarray, length: float, height: float) -> np.ndarray:
    """``image`` with a black rectangle ``length`` x ``height`` centred on ``centre``, its long side along ``axis``."""
    u = axis / max(float(np.linalg.norm(axis)), 1e-9)
    v = np.array([-u[1], u[0]])
    corners = [centre + a * u * length / 2 + b * v * height / 2 for a, b in ((-1, -1), (1, -1), (1, 1), (-1, 1))]
    out = image.copy()
    cv2.fillConvexPoly(out, np.rint(np.array(corners)).astype(np.int32), (0, 0, 0), lineType=cv2.LINE_AA)
    return out


def occlusion_eyes(
    image: np.ndarray, landmarks: np.ndarray, height: float, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """A black bar over both eyes, ``height`` x the eye-centre distance tall."""
    left, right = eye_centres(landmarks)
    iod = float(np.linalg.norm(right - left))
    return _bar(image, (left + right) / 2, right - left, EYE_BAR_WIDTH * iod, height * iod), landmarks


def mouth_centre(landmarks: np.ndarray) -> np.ndarray:
    left, right = eye_centres(landmarks)
    nose = np.asarray(landmarks, np.float64)[4]
    return nose + MOUTH_BELOW_NOSE * (nose - (left + right) / 2)


def occlusion_mouth(
    image: np.ndarray, landmarks: np.ndarray, height: float, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """A black bar over the mouth, ``height`` x the eye-centre distance tall."""
    left, right = eye_centres(landmarks)
    iod = float(np.linalg.norm(right - left))
    return _bar(image, mouth_centre(landmarks), right - left, MOUTH_BAR_WIDTH * iod, height * iod), landmarks


@dataclass(frozen=True)
class Attribute:
    name: str
    transform: Transform
    strengths: tuple[float, ...]  # mildest first where the change has one direction (not brightness, contrast)
    unit: str  # what a strength is

    def conditions(self) -> list[Condition]:
        return [Condition(self, s) for s in self.strengths]


@dataclass(frozen=True)
class Condition:
    """One attribute at one strength."""

    attribute: Attribute
    strength: float

    @property
    def key(self) -> str:
        return f"{self.attribute.name}={self.strength:g}"

    def apply(self, image: np.ndarray, landmarks: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        return self.attribute.transform(image, landmarks, self.strength, seed)


#: the audit's attributes and strengths (for LFW's 250 px photos, faces ~100 px wide)
ATTRIBUTES: dict[str, Attribute] = {
    a.name: a
    for a in (
        Attribute("blur", blur, (1, 2, 4, 8), "Gaussian sigma, px"),
        Attribute("jpeg", jpeg, (90, 50, 20, 10, 5), "JPEG quality"),
        Attribute("noise", noise, (5, 10, 20, 40), "Gaussian sigma, grey levels"),
        Attribute("resolution", resolution, (2, 4, 8, 16), "downscale factor"),
        Attribute("brightness", brightness, (0.25, 0.5, 1.5, 2.5), "gain"),
        Attribute("contrast", contrast, (0.25, 0.5, 1.5, 2.0), "factor about the mean"),
        Attribute("occlusion_eyes", occlusion_eyes, (0.25, 0.5, 0.75), "bar height / eye distance"),
        Attribute("occlusion_mouth", occlusion_mouth, (0.25, 0.5, 0.75), "bar height / eye distance"),
        Attribute("rotation", rotation, (5, 10, 20, 30, 45), "degrees"),
        Attribute("flip", flip, (1,), "mirrored"),
    )
}


def conditions(names: list[str] | None = None) -> list[Condition]:
    """Every condition of these attributes (all, by default), in :data:`ATTRIBUTES` order."""
    wanted = names or list(ATTRIBUTES)
    unknown = [n for n in wanted if n not in ATTRIBUTES]
    if unknown:
        raise ValueError(f"unknown attribute {unknown[0]!r}; choose from {', '.join(ATTRIBUTES)}")
    return [c for name in ATTRIBUTES if name in wanted for c in ATTRIBUTES[name].conditions()]
