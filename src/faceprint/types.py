"""The data that flows through every stage: one ``Faces`` per image."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Face:
    """One detected face.

    ``box`` is ``(left, top, right, bottom)`` in pixels of the (EXIF-rotated) image.
    ``landmarks`` is a (5, 2) float array of (x, y) in dlib's 5-point order:
    right eye outer, right eye inner, left eye outer, left eye inner, nose base
    (subject's right/left). ``embedding`` is unit-length once the engine has run.
    """

    box: tuple[int, int, int, int]
    score: float
    landmarks: np.ndarray | None = None
    embedding: np.ndarray | None = None
    quality: float | None = None
    extra: dict[str, object] = field(default_factory=dict)

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
