"""FaceEngine: detector + aligner + embedder, loaded once, used by every front end."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from faceprint.align import face_chips
from faceprint.detect import DEFAULT_DETECTOR, Detector, get_detector
from faceprint.embed import DEFAULT_EMBEDDER, Embedder, get_embedder
from faceprint.types import Face

#: detection runs on a copy whose long side is at most this; boxes are mapped back and
#: alignment uses the full-resolution image (phone photos are 7000+ px wide)
DEFAULT_MAX_DETECT_SIDE = 1600


def normalize(vectors: np.ndarray) -> np.ndarray:
    """Unit-length rows (cosine similarity becomes a dot product)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


@dataclass(frozen=True)
class ModelInfo:
    detector: str
    embedder: str
    model_id: str
    flip: bool

    @property
    def template_model(self) -> str:
        """Tag stored with every template: templates are comparable only within one tag."""
        return self.model_id + ("+flip" if self.flip else "")


class FaceEngine:
    """Finds faces and turns each into a unit-length template.

    ``flip`` averages the descriptors of the chip and its mirror image (test-time
    augmentation: fewer errors for one more forward pass).
    """

    def __init__(
        self,
        detector: str | Detector = DEFAULT_DETECTOR,
        embedder: str | Embedder = DEFAULT_EMBEDDER,
        flip: bool = True,
        max_detect_side: int = DEFAULT_MAX_DETECT_SIDE,
    ) -> None:
        self.detector = get_detector(detector) if isinstance(detector, str) else detector
        self.embedder = get_embedder(embedder) if isinstance(embedder, str) else embedder
        self.flip = flip
        self.max_detect_side = max_detect_side

    @property
    def info(self) -> ModelInfo:
        return ModelInfo(self.detector.name, self.embedder.name, self.embedder.model_id, self.flip)

    def detect(self, image: np.ndarray) -> list[Face]:
        """Faces in an RGB image, largest first, with boxes in the image's own pixels."""
        h, w = image.shape[:2]
        scale = min(1.0, self.max_detect_side / max(h, w))
        if scale < 1.0:
            small = cv2.resize(image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
            faces = self.detector.detect(small)
            for f in faces:
                f.box = tuple(int(round(v / scale)) for v in f.box)  # type: ignore[assignment]
                if f.landmarks is not None:
                    f.landmarks = f.landmarks / scale
        else:
            faces = self.detector.detect(image)
        faces.sort(key=lambda f: f.width * f.height, reverse=True)
        return faces

    def chips(self, image: np.ndarray, faces: list[Face]) -> np.ndarray:
        return face_chips(image, faces)

    def embed_chips(self, chips: np.ndarray) -> np.ndarray:
        """Unit-length templates for aligned chips (flip-averaged when enabled)."""
        if len(chips) == 0:
            return np.zeros((0, self.embedder.dim), np.float32)
        if not self.flip:
            return normalize(self.embedder.embed(chips))
        both = self.embedder.embed(np.concatenate([chips, chips[:, :, ::-1]]))
        n = len(chips)
        return normalize(normalize(both[:n]) + normalize(both[n:]))

    def embed(self, image: np.ndarray, faces: list[Face]) -> list[Face]:
        """Fill ``face.embedding`` for each face (in place) and return the faces."""
        templates = self.embed_chips(self.chips(image, faces))
        for face, t in zip(faces, templates):
            face.embedding = t
        return faces

    def analyze(self, image: np.ndarray) -> list[Face]:
        """Detect every face and compute its template."""
        return self.embed(image, self.detect(image))
