"""What face analysis says about one face (shared by every analyser and front end)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

#: the 7 classes of the built-in expression model (fer's), in its output order
EXPRESSIONS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
#: what a backend answers when it cannot tell (a VLM's answer off the list, a timeout)
UNKNOWN = "unknown"


@dataclass(frozen=True)
class Expression:
    """``label`` is one of :data:`EXPRESSIONS` or :data:`UNKNOWN`; ``scores`` maps labels to
    probabilities (empty when the backend gives none)."""

    label: str
    scores: dict[str, float] = field(default_factory=dict)
    backend: str = ""


@dataclass(frozen=True)
class Pose:
    """Head pose in degrees: yaw (left/right, + = the subject's left), pitch (+ = up), roll."""

    yaw: float
    pitch: float
    roll: float


class ExpressionClassifier(Protocol):
    """What an expression backend offers: the built-in model (:mod:`faceprint.analyze.expression`)
    or a VLM (:mod:`faceprint.analyze.vlm`). ``face_rgb`` is the face box enlarged by 25% on a side
    (:func:`faceprint.analyze.face_crop`)."""

    backend: str

    def classify(self, face_rgb: np.ndarray) -> Expression: ...


@dataclass
class FaceAnalysis:
    """Everything :class:`faceprint.analyze.FaceAnalyzer` says about one face (``Face.analysis``).

    ``eyes_open`` and ``mouth_open`` run from 0 (shut) to 1 (wide open); ``gaze`` is where the irises
    sit in the eyes, (horizontal, vertical) from -1 to 1, + = the image's right and up; ``quality``
    is in [0, 1] (:mod:`faceprint.analyze.quality`), explained factor by factor in
    ``quality_factors`` (each 0 = unusable to 1 = fine; None where it could not be measured);
    ``face_like`` is the template's face-likeness, None when that model is not installed;
    ``measures`` holds the raw numbers the rest is computed from.
    """

    pose: Pose
    eyes_open: float
    mouth_open: float
    gaze: tuple[float, float]
    quality: float
    quality_factors: dict[str, float | None]
    expression: Expression | None = None
    face_like: float | None = None
    measures: dict[str, float] = field(default_factory=dict)
