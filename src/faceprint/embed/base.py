"""The embedder interface: aligned 150x150 RGB chips in, raw descriptors out."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

CHIP_SIZE = 150
CHIP_PADDING = 0.25


@runtime_checkable
class Embedder(Protocol):
    #: backend name, e.g. "dlib" or "onnx"
    name: str
    #: the trained model the descriptors come from; backends that reproduce the same
    #: model share it, so their templates are comparable
    model_id: str
    dim: int

    def embed(self, chips: np.ndarray) -> np.ndarray:
        """(N, 150, 150, 3) uint8 RGB chips aligned like ``dlib.get_face_chip``
        -> (N, dim) float32 raw (not normalised) descriptors."""
        ...
