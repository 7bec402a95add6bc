"""FaceEngine: detector + aligner + embedder, loaded once, used by every front end."""

from __future__ import annotations

import threading
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

#: The second look at a photo where the detector found nothing, the way a person steps back:
#: detectors learnt faces with some context around them and miss tight crops (BlazeFace: 23 of
#: the 40 face-api.js gallery crops, 4 of the 14 SimpleFR ones). The retry runs on a copy
#: scaled to RETRY_SIDE px (up or down: the faces it is for fill the frame, and the cost stays
#: bounded on big photos) inside a border of RETRY_PAD x that side of flat mid-grey, which is
#: zero after BlazeFace's input scaling. A replicated or mirrored border made faces of texture
#: in no_faces/ (a cell image, a rocket), and so did a black one. With this geometry BlazeFace
#: found all 54 crops, HOG 52 (BlazeFace alone on the original: 27), with nothing on no_faces/.
RETRY_SIDE = 224
RETRY_PAD = 0.5
RETRY_FILL = 128
#: the retry's second detector, after the engine's own one
RETRY_DETECTOR = "hog"


def normalize(vectors: np.ndarray) -> np.ndarray:
    """Unit-length rows (cosine similarity becomes a dot product)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


@dataclass
class FaceSearch:
    """What :meth:`FaceEngine.find_faces` found, and the passes it ran to find it."""

    faces: list[Face]
    tried: list[str]  # e.g. ["blazeface", "blazeface on a padded copy", "hog on a padded copy"]


def _to_image(faces: list[Face], scale: float, offset: int, width: int, height: int) -> list[Face]:
    """Faces found on a copy scaled by ``scale`` inside an ``offset`` px border -> the image's own
    pixels (in place), boxes clipped to it. A face centred in the border is not in the image."""
    kept = []
    for f in faces:
        left, top, right, bottom = ((v - offset) / scale for v in f.box)
        if not (0 <= (left + right) / 2 < width and 0 <= (top + bottom) / 2 < height):
            continue
        f.box = (max(0, round(left)), max(0, round(top)), min(width, round(right)), min(height, round(bottom)))
        if f.landmarks is not None:
            f.landmarks = (f.landmarks - offset) / scale
        kept.append(f)
    return kept


def _largest_first(faces: list[Face]) -> list[Face]:
    return sorted(faces, key=lambda f: f.width * f.height, reverse=True)


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
        self._retry_detector: Detector | None = None  # built on the first retry that needs it
        self._retry_lock = threading.Lock()

    @property
    def info(self) -> ModelInfo:
        return ModelInfo(self.detector.name, self.embedder.name, self.embedder.model_id, self.flip)

    def detect(self, image: np.ndarray) -> list[Face]:
        """Faces in an RGB image, largest first, with boxes in the image's own pixels (one pass of
        the detector; :meth:`find_faces` looks again where this finds nothing)."""
        h, w = image.shape[:2]
        scale = min(1.0, self.max_detect_side / max(h, w))
        if scale == 1.0:
            return _largest_first(self.detector.detect(image))
        small = cv2.resize(image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
        return _largest_first(_to_image(self.detector.detect(small), scale, 0, w, h))

    def find_faces(self, image: np.ndarray) -> FaceSearch:
        """:meth:`detect`, and where that finds nothing, a second look on a padded copy (see
        :data:`RETRY_PAD`): with the engine's detector, then with dlib's HOG. Photos with a face
        cost nothing more; one without costs ~50 ms more."""
        tried = [self.detector.name]
        faces = self.detect(image)
        if faces:
            return FaceSearch(faces, tried)
        h, w = image.shape[:2]
        scale = RETRY_SIDE / max(h, w)
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        small = cv2.resize(image, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        pad = round(RETRY_PAD * RETRY_SIDE)
        padded = cv2.copyMakeBorder(small, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=(RETRY_FILL,) * 3)
        for detector in self._retry_detectors():
            tried.append(f"{detector.name} on a padded copy")
            faces = _to_image(detector.detect(padded), scale, pad, w, h)
            if faces:
                for f in faces:
                    f.extra["found_by"] = tried[-1]
                return FaceSearch(_largest_first(faces), tried)
        return FaceSearch([], tried)

    def _retry_detectors(self) -> list[Detector]:
        if self.detector.name == RETRY_DETECTOR:
            return [self.detector]
        with self._retry_lock:  # one engine may serve several threads
            if self._retry_detector is None:
                self._retry_detector = get_detector(RETRY_DETECTOR)
        return [self.detector, self._retry_detector]

    def chips(self, image: np.ndarray, faces: list[Face]) -> np.ndarray:
        return face_chips(image, faces)

    def embed_chips(self, chips: np.ndarray) -> np.ndarray:
        """Unit-length templates for aligned chips (flip-averaged when enabled)."""
        return self._embed_chips(chips)[0]

    def _embed_chips(self, chips: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(templates, flip agreement): with flip averaging, the cosine between each chip's descriptor
        and its mirror image's comes for free, and says how stable the template is (a quality signal)."""
        if len(chips) == 0:
            return np.zeros((0, self.embedder.dim), np.float32), None
        if not self.flip:
            return normalize(self.embedder.embed(chips)), None
        both = self.embedder.embed(np.concatenate([chips, chips[:, :, ::-1]]))
        n = len(chips)
        plain, mirrored = normalize(both[:n]), normalize(both[n:])
        return normalize(plain + mirrored), np.einsum("ij,ij->i", plain, mirrored)

    def embed(self, image: np.ndarray, faces: list[Face]) -> list[Face]:
        """Fill ``face.embedding`` for each face (in place) and return the faces; with flip averaging,
        also ``face.extra["flip_agreement"]`` (cosine of the chip's and its mirror's descriptors)."""
        templates, agreement = self._embed_chips(self.chips(image, faces))
        for k, (face, t) in enumerate(zip(faces, templates)):
            face.embedding = t
            if agreement is not None:
                face.extra["flip_agreement"] = float(agreement[k])
        return faces

    def analyze(self, image: np.ndarray) -> list[Face]:
        """Find every face (:meth:`find_faces`) and compute its template."""
        return self.embed(image, self.find_faces(image).faces)
