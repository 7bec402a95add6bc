"""Passive liveness: is the face in one photo a live person, or a print / a screen held up to the camera?

The model is MiniFASNet from Silent-Face-Anti-Spoofing (Minivision, Apache-2.0), the one deepface runs
for ``anti_spoofing=True``: two small CNNs (about 0.4 M parameters each) that look at the face box
enlarged 2.7x (MiniFASNetV2) and 4.0x (MiniFASNetV1SE), so they see the face together with what
surrounds it (a screen's edge, a hand holding a print, moire, glare). Each outputs 3 classes; class 1
is a live face. The live score is the mean of the two models' class-1 probabilities, as the authors
average their softmax outputs.

``data/*.onnx`` were converted once from the published checkpoints by ``tools/convert_minifasnet.py``
(see ``data/LICENSE-MiniFASNet``); nothing is downloaded at run time.

Boxes are faceprint's ``(left, top, right, bottom)`` with exclusive right/bottom, so ``right - left``
is the width the authors' ``(x, y, w, h)`` box holds (their detector gives ``w = right - left + 1``
for an inclusive right edge). faceprint's default detector, BlazeFace, needs no adjustment: on the
authors' three sample photos its boxes give the scores the authors' own pipeline gives, to 3 decimals.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from faceprint.errors import ModelError
from faceprint.types import Face

if TYPE_CHECKING:
    import onnxruntime

Box = tuple[int, int, int, int]
DATA_DIR = Path(__file__).with_name("data")
#: (ONNX file, how much the face box is enlarged for that model's patch)
MODELS: tuple[tuple[str, float], ...] = (("minifasnet_v2_2.7.onnx", 2.7), ("minifasnet_v1se_4.0.onnx", 4.0))
PATCH_SIZE = 80
LIVE_CLASS = 1


def patch_box(width: int, height: int, box: Box, scale: float) -> Box:
    """The inclusive ``(left, top, right, bottom)`` pixels of the patch for ``box`` enlarged by ``scale``
    in a ``width`` x ``height`` image.

    As the authors cut it: the box grows about its centre (less when the image is too small for the
    full enlargement: the patch never exceeds the image), and a patch that crosses an image edge is
    shifted back inside rather than clipped, so it keeps its size and aspect.
    """
    left, top, right, bottom = box
    box_w, box_h = right - left, bottom - top
    scale = min((height - 1) / box_h, (width - 1) / box_w, scale)
    half_w, half_h = box_w * scale / 2, box_h * scale / 2
    cx, cy = left + box_w / 2, top + box_h / 2
    x0, y0, x1, y1 = cx - half_w, cy - half_h, cx + half_w, cy + half_h
    if x0 < 0:
        x0, x1 = 0, x1 - x0
    if y0 < 0:
        y0, y1 = 0, y1 - y0
    if x1 > width - 1:
        x0, x1 = x0 - (x1 - width + 1), width - 1
    if y1 > height - 1:
        y0, y1 = y0 - (y1 - height + 1), height - 1
    return int(x0), int(y0), int(x1), int(y1)


def crop_patch(image: np.ndarray, box: Box | Face, scale: float, size: int = PATCH_SIZE) -> np.ndarray:
    """The ``size`` x ``size`` patch a model sees: ``box`` enlarged by ``scale``, cut and resized
    (bilinear). Same channel order as ``image``. Raises ``ValueError`` for an empty box or one that
    does not overlap the image."""
    h, w = _check_image(image)
    left, top, right, bottom = _check_box(box, w, h)
    x0, y0, x1, y1 = patch_box(w, h, (left, top, right, bottom), scale)
    return cv2.resize(image[y0 : y1 + 1, x0 : x1 + 1], (size, size), interpolation=cv2.INTER_LINEAR)


class PassiveLiveness:
    """Both MiniFASNet models, loaded once. ``score`` one face, ``score_many`` a batch (the faces of a
    video's frames, or of one photo). Thread-safe: onnxruntime sessions may run concurrently."""

    def __init__(self, threads: int = 1, *, batch_size: int = 64, providers: Sequence[str] | None = None) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        # one thread by default: the models are tiny (~45 MFLOPs), and callers parallelise over faces/processes
        opts.intra_op_num_threads = max(1, threads)
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        self.batch_size = max(1, batch_size)
        self._models: list[tuple[onnxruntime.InferenceSession, float]] = []
        for name, scale in MODELS:
            path = DATA_DIR / name
            try:
                session = ort.InferenceSession(str(path), opts, providers=list(providers or ["CPUExecutionProvider"]))
            except Exception as exc:  # noqa: BLE001 - missing or damaged file: say which
                raise ModelError(f"{path}: cannot load the liveness model: {exc}") from exc
            self._models.append((session, scale))

    def score(self, image_bgr: np.ndarray, box: Box | Face, *, rgb: bool = False) -> float:
        """Live probability (0-1) of the face in ``box`` (``(left, top, right, bottom)`` or a ``Face``) of
        ``image_bgr``, an (H, W, 3) uint8 image in BGR order (OpenCV's) or RGB with ``rgb=True``
        (faceprint's ``load_image``)."""
        return float(self.score_many([(image_bgr, box)], rgb=rgb)[0])

    def score_many(self, items: Iterable[tuple[np.ndarray, Box | Face]], *, rgb: bool = False) -> np.ndarray:
        """Live probabilities of many faces, ``items`` being ``(image, box)`` pairs (frames of a video, or
        one image repeated for each of its faces): float32 array, one per item. Items are read and run
        ``batch_size`` at a time, so a long video's frames need not all be in memory."""
        scores: list[np.ndarray] = []
        chunk: list[tuple[np.ndarray, Box | Face]] = []
        for item in items:
            chunk.append(item)
            if len(chunk) == self.batch_size:
                scores.append(self._score_batch(chunk, rgb))
                chunk = []
        if chunk or not scores:
            scores.append(self._score_batch(chunk, rgb))
        return np.concatenate(scores)

    def _score_batch(self, items: list[tuple[np.ndarray, Box | Face]], rgb: bool) -> np.ndarray:
        live = np.zeros(len(items), dtype=np.float32)
        if not items:
            return live
        for session, scale in self._models:
            patches = [crop_patch(image, box, scale) for image, box in items]
            batch = np.stack(patches)[..., ::-1] if rgb else np.stack(patches)  # the models were trained on BGR
            # NCHW float, 0-255: the authors' transform does not divide by 255
            x = np.ascontiguousarray(batch.transpose(0, 3, 1, 2), dtype=np.float32)
            live += session.run(["probs"], {"input": x})[0][:, LIVE_CLASS]
        return live / len(self._models)


def _check_image(image: np.ndarray) -> tuple[int, int]:
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        got = f"{image.dtype} array of shape {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
        raise ValueError(f"liveness needs an (H, W, 3) uint8 colour image, got a {got}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"liveness needs a non-empty image, got shape {image.shape}")
    return image.shape[0], image.shape[1]


def _check_box(box: Box | Face, width: int, height: int) -> Box:
    left, top, right, bottom = (int(v) for v in (box.box if isinstance(box, Face) else box))
    if right <= left or bottom <= top:
        raise ValueError(f"face box {(left, top, right, bottom)} is empty (need left < right and top < bottom)")
    if right <= 0 or bottom <= 0 or left >= width or top >= height:
        raise ValueError(f"face box {(left, top, right, bottom)} lies outside the {width}x{height} image")
    return left, top, right, bottom
