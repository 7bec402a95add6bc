"""The data that flows through every stage: one ``Faces`` per image."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from faceprint.analyze.types import FaceAnalysis


@dataclass
class Face:
    """One detected face.

    ``box`` is ``(left, top, right, bottom)`` in pixels of the (EXIF-rotated) image.
    ``landmarks`` is a (5, 2) float array of (x, y) in dlib's 5-point order: the outer and inner
    corner of the eye on the image's right (the subject's left eye), the outer and inner corner of
    the eye on the image's left, the base of the nose. ``embedding`` is unit-length once the engine
    has run. ``analysis`` is set by :class:`faceprint.analyze.FaceAnalyzer` (pose, eyes, quality,
    expression, ...).
    """

    box: tuple[int, int, int, int]
    score: float
    landmarks: np.ndarray | None = None
    embedding: np.ndarray | None = None
    quality: float | None = None
    extra: dict[str, object] = field(default_factory=dict)
    analysis: FaceAnalysis | None = None

    @property
    def width(self) -> int:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> int:
        return self.box[3] - self.box[1]


@dataclass(frozen=True)
class Candidate:
    identity: str
    score: float


@dataclass
class Match:
    """Result of 1:N identification for one face."""

    face: Face
    identity: str | None
    score: float
    candidates: list[Candidate]
