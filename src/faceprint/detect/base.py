"""The detector interface: an RGB image in, faces with boxes, scores and 5 landmarks out."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from faceprint.types import Face


@runtime_checkable
class Detector(Protocol):
    name: str

    def detect(self, image: np.ndarray) -> list[Face]:
        """(H, W, 3) uint8 RGB -> faces, each with ``box``, ``score`` and ``landmarks`` (5, 2)
        in dlib's 5-point order, so that ``faceprint.align`` can cut the model's chip."""
        ...
