"""dlib's detectors: HOG (fast default on CPU) and MMOD CNN (accurate, slow on CPU).

Both hand their boxes to dlib's 5-point shape predictor, which gives the landmarks the
ResNet's alignment was trained with.
"""

from __future__ import annotations

import threading

import numpy as np

from faceprint.models import MMOD_FILE, SHAPE5_FILE, dlib_model
from faceprint.types import Face


class Landmarker5:
    """dlib's 5-point shape predictor (about 1 ms per face)."""

    def __init__(self) -> None:
        import dlib

        self._dlib = dlib
        self._predictor = dlib.shape_predictor(str(dlib_model(SHAPE5_FILE)))

    def __call__(self, image: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
        rect = self._dlib.rectangle(*(int(v) for v in box))
        shape = self._predictor(image, rect)
        return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)


def _faces(image: np.ndarray, rects: list, scores: list[float], landmarks: Landmarker5) -> list[Face]:
    """dlib rectangles (inclusive corners, may overhang the image) -> faces with landmarks."""
    h, w = image.shape[:2]
    faces = []
    for rect, score in zip(rects, scores):
        corners = (rect.left(), rect.top(), rect.right(), rect.bottom())
        box = (max(0, corners[0]), max(0, corners[1]), min(w, corners[2] + 1), min(h, corners[3] + 1))
        if box[2] - box[0] < 4 or box[3] - box[1] < 4:
            continue
        # landmarks come from the unclipped box: that is what the predictor was trained on
        faces.append(Face(box=box, score=float(score), landmarks=landmarks(image, corners)))
    return faces


class HogDetector:
    """dlib's HOG + linear SVM frontal face detector."""

    name = "hog"

    def __init__(self, upsample: int = 1, min_score: float = 0.0) -> None:
        import dlib

        self.upsample = upsample
        self.min_score = min_score
        self._detector = dlib.get_frontal_face_detector()
        self._landmarks = Landmarker5()
        # dlib objects are not documented as thread-safe; serialise calls on one instance
        self._lock = threading.Lock()

    def detect(self, image: np.ndarray) -> list[Face]:
        with self._lock:
            rects, scores, _ = self._detector.run(image, self.upsample, self.min_score)
            return _faces(image, rects, scores, self._landmarks)


class MmodDetector:
    """dlib's MMOD CNN detector: finds more faces at more angles; 0.3-26 s/image on CPU."""

    name = "cnn"

    def __init__(self, upsample: int = 1) -> None:
        import dlib

        self.upsample = upsample
        self._detector = dlib.cnn_face_detection_model_v1(str(dlib_model(MMOD_FILE)))
        self._landmarks = Landmarker5()
        self._lock = threading.Lock()

    def detect(self, image: np.ndarray) -> list[Face]:
        with self._lock:
            dets = self._detector(image, self.upsample)
            return _faces(image, [d.rect for d in dets], [d.confidence for d in dets], self._landmarks)
