"""Cut the embedder's 150x150 chip from 5 landmarks, exactly as dlib.get_face_chip does."""

from __future__ import annotations

import numpy as np

from faceprint.embed.base import CHIP_PADDING, CHIP_SIZE
from faceprint.types import Face


def face_chips(
    image: np.ndarray, faces: list[Face], size: int = CHIP_SIZE, padding: float = CHIP_PADDING
) -> np.ndarray:
    """(N, size, size, 3) uint8 chips for ``faces`` (each must carry 5 landmarks)."""
    import dlib

    if not faces:
        return np.zeros((0, size, size, 3), np.uint8)
    shapes = dlib.full_object_detections()
    for face in faces:
        if face.landmarks is None or len(face.landmarks) != 5:
            raise ValueError("alignment needs 5 landmarks per face")
        left, top, right, bottom = face.box
        rect = dlib.rectangle(int(left), int(top), int(right) - 1, int(bottom) - 1)
        points = dlib.points()
        for x, y in np.round(face.landmarks).astype(int):
            points.append(dlib.point(int(x), int(y)))
        shapes.append(dlib.full_object_detection(rect, points))
    chips = dlib.get_face_chips(np.ascontiguousarray(image), shapes, size=size, padding=padding)
    return np.stack([np.asarray(c) for c in chips])
