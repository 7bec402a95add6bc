"""How much a face sample should count towards its track's identity, in (0, 1].

Three cheap cues, multiplied: face size (small faces carry little identity), sharpness
(variance of the Laplacian of the aligned chip: motion blur and defocus flatten it), and
frontal pose (how far the nose sits off the line between the eyes, from the 5 landmarks).
A blurry or side-on frame then weighs a fraction of a good one, so it cannot flip a label.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

#: faces at least this many pixels wide carry the embedder's full detail (its chip is 150 px
#: for a face of about 100 px); below MIN the weight bottoms out
FULL_SIZE_PX = 80.0
MIN_SIZE_PX = 20.0
#: Laplacian variance of a 150x150 chip at which sharpness scores 0.5. Chips of the shared
#: clips have medians of 19 (simplefr, a soft-focus 720p TV show) and 101 (hamilton, 360p);
#: motion-blurred ones drop to 2-6. Only ratios within a track matter: those stay 3-10x.
SHARPNESS_HALF = 20.0
FLOOR = 0.05


@dataclass(frozen=True)
class Quality:
    size: float
    sharpness: float
    frontal: float

    @property
    def total(self) -> float:
        return self.size * self.sharpness * self.frontal


def size_score(box: tuple[float, float, float, float]) -> float:
    side = min(box[2] - box[0], box[3] - box[1])
    return float(np.clip((side - MIN_SIZE_PX) / (FULL_SIZE_PX - MIN_SIZE_PX), FLOOR, 1.0))


def frontal_score(landmarks: np.ndarray | None) -> float:
    """1 for a frontal face, falling towards FLOOR as the head turns (yaw).

    Landmarks are dlib's 5 points: right eye outer/inner, left eye outer/inner, nose base.
    The nose's offset from the eyes' midpoint along the eye line, relative to the eye
    distance, is ~0 when frontal and ~0.4 at 45 degrees of yaw.
    """
    if landmarks is None or len(landmarks) != 5:
        return 0.5
    pts = np.asarray(landmarks, np.float64)
    right_eye, left_eye, nose = pts[0:2].mean(axis=0), pts[2:4].mean(axis=0), pts[4]
    axis = left_eye - right_eye
    dist = float(np.linalg.norm(axis))
    if dist < 1e-6:
        return FLOOR
    offset = abs(float(np.dot(nose - (left_eye + right_eye) / 2, axis / dist))) / dist
    return float(np.clip(1.0 - 2.0 * offset, FLOOR, 1.0))


def sharpness_score(chip: np.ndarray) -> float:
    """From an aligned RGB chip (all chips share one scale, so scores are comparable)."""
    gray = cv2.cvtColor(np.ascontiguousarray(chip), cv2.COLOR_RGB2GRAY)
    variance = float(cv2.Laplacian(gray, cv2.CV_32F).var())
    return float(max(variance / (variance + SHARPNESS_HALF), FLOOR))


def face_quality(box: tuple[float, float, float, float], landmarks: np.ndarray | None, chip: np.ndarray) -> Quality:
    return Quality(size_score(box), sharpness_score(chip), frontal_score(landmarks))
