"""Face analysis: head pose, eyes, mouth, gaze, quality, expression and face-likeness of each face.

>>> from faceprint import FaceEngine, load_image
>>> from faceprint.analyze import FaceAnalyzer, quality_gate
>>> image = load_image("group.jpg").pixels
>>> faces = FaceAnalyzer().analyze(image, FaceEngine().analyze(image))
>>> [(f.analysis.expression.label, round(f.analysis.quality, 2), quality_gate(f.analysis)) for f in faces]

Dense landmarks come from MediaPipe's face mesh and iris models (:mod:`.landmarks`), the head pose
from them (:mod:`.pose`), quality from both and the template (:mod:`.quality`), the expression from
the built-in model (:mod:`.expression`) or a VLM (:mod:`.vlm`), face-likeness from the template
(:mod:`.facelike`). Models load on first use, once per analyser.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from faceprint.analyze.quality import (
    DEFAULT_MIN_QUALITY,
    MEASURES_VERSION,
    REASONS,
    eyes_open_level,
    mouth_open_level,
    quality_factors,
    quality_gate,
    quality_score,
)
from faceprint.analyze.types import EXPRESSIONS, UNKNOWN, Expression, ExpressionClassifier, FaceAnalysis, Pose
from faceprint.errors import FaceprintError
from faceprint.types import Face

if TYPE_CHECKING:
    from faceprint.analyze.landmarks import LandmarkModels
    from faceprint.engine import FaceEngine
    from faceprint.image import ImageInput
    from faceprint.pipeline import EngineSpec, ImageResult, Mode

#: ``--expression``: the built-in model, a VLM, or no expression at all
EXPRESSION_BACKENDS: tuple[str, ...] = ("builtin", "vlm", "none")
#: the expression crop: the face box enlarged by 25% on a side (what worked on LFW faces; on the LFW
#: set for choices, benchmarks/data/lfw_smiles_dev.txt, 1.0-1.25x were within a photo of each other
#: and 1.4x worse: ``python benchmarks/expression.py --crop S``)
EXPRESSION_CROP = 1.25
#: the crop's pixels at most when the classifier asks for no size (a VLM gets a sharp one)
EXPRESSION_CROP_MAX = 384
#: sampling a crop straight at its size is fine up to this much shrinking (bilinear reads 2x2 pixels
#: per output pixel; LFW's faces shrink about 2.1x). Beyond, it aliases: at 3.0 two of face-api.js's
#: 7 expression photos (larger faces) came out wrong, at 2.5 none; LFW's are the same either way
MAX_DIRECT_SHRINK = 2.5


def face_crop(image: np.ndarray, face: Face, scale: float = EXPRESSION_CROP, size: int | None = None) -> np.ndarray:
    """The upright square around ``face.box`` enlarged ``scale`` times (the image's edge repeated
    where the square leaves it): ``size`` px on a side, else the face's own pixels up to
    :data:`EXPRESSION_CROP_MAX`. Sampled straight from the image (bilinear), which on the LFW set
    for choices called smiles a little better than shrinking a full-resolution crop; a face more than
    :data:`MAX_DIRECT_SHRINK` times the size is first shrunk by area, so it does not alias."""
    from faceprint.analyze.landmarks import square_crop

    left, top, right, bottom = face.box
    side = scale * max(right - left, bottom - top, 1)
    out = size or int(min(EXPRESSION_CROP_MAX, max(16, round(side))))
    centre = np.array([(left + right) / 2, (top + bottom) / 2])
    if side > MAX_DIRECT_SHRINK * out:
        big = square_crop(image, centre, side, 0.0, int(round(side)))[0]
        return cv2.resize(big, (out, out), interpolation=cv2.INTER_AREA)
    return square_crop(image, centre, side, 0.0, out)[0]


def make_expression_classifier(
    backend: str, vlm_url: str | None = None, vlm_model: str | None = None
) -> ExpressionClassifier | None:
    """The classifier for ``--expression``: "builtin", "vlm" (needs the URL and model name) or "none"."""
    if backend == "none":
        return None
    if backend == "builtin":
        from faceprint.analyze.expression import FerExpressionClassifier

        return FerExpressionClassifier()
    if backend == "vlm":
        if not vlm_url or not vlm_model:
            raise FaceprintError("the VLM expression backend needs a URL and a model name (--vlm-url, --vlm-model)")
        try:
            from faceprint.analyze.vlm import VLMExpressionClassifier
        except ImportError as exc:
            raise FaceprintError(f"the VLM expression backend is not available in this install ({exc})") from None
        return VLMExpressionClassifier(vlm_url, vlm_model)
    raise ValueError(f"unknown expression backend {backend!r}; choose from {', '.join(EXPRESSION_BACKENDS)}")


def face_likeness(embeddings: np.ndarray) -> np.ndarray | None:
    """:func:`faceprint.analyze.facelike.face_likeness` of these templates, or None where that
    model is not part of this install."""
    try:
        from faceprint.analyze.facelike import face_likeness as score
    except ImportError:
        return None
    return np.asarray(score(embeddings), np.float64)


class FaceAnalyzer:
    """Analyses faces the engine found (each with its 5 landmarks and, for quality's flip agreement
    and face-likeness, its template).

    ``expression``: "builtin", "vlm" (with ``vlm_url`` and ``vlm_model``), "none", or a classifier
    object with ``classify(face_rgb)``. Safe to share between threads (each model runs one call at
    a time); worker processes build their own.
    """

    def __init__(
        self,
        expression: str | ExpressionClassifier | None = "builtin",
        *,
        vlm_url: str | None = None,
        vlm_model: str | None = None,
        face_like: bool = True,
    ) -> None:
        if isinstance(expression, str):
            if expression not in EXPRESSION_BACKENDS:
                raise ValueError(
                    f"unknown expression backend {expression!r}; choose from {', '.join(EXPRESSION_BACKENDS)}"
                )
            self._expression_name = expression
            self._expression: ExpressionClassifier | None = None
            if expression == "vlm":  # its settings are checked now, not at the first face
                self._expression = make_expression_classifier("vlm", vlm_url, vlm_model)
            elif expression == "builtin":
                from faceprint.analyze.expression import model_path

                model_path()  # a missing model file is said now, not once per image of a batch
        else:
            self._expression_name = "none" if expression is None else "custom"
            self._expression = expression
        self.face_like = face_like
        self._landmarks: LandmarkModels | None = None
        self._lock = threading.Lock()

    @property
    def expression_backend(self) -> str:
        return self._expression_name

    @property
    def expression_classifier(self) -> ExpressionClassifier | None:
        """The classifier when it is built (a VLM's is built at once, the built-in one on first use)."""
        return self._expression

    def _models(self) -> tuple[LandmarkModels, ExpressionClassifier | None]:
        with self._lock:  # built once, on the first face
            if self._landmarks is None:
                from faceprint.analyze.landmarks import LandmarkModels

                self._landmarks = LandmarkModels()
            if self._expression is None and self._expression_name == "builtin":
                self._expression = make_expression_classifier("builtin")
            return self._landmarks, self._expression

    def measure(self, image: np.ndarray, face: Face, pixel_scale: float = 1.0) -> dict[str, float]:
        """The raw measures of one face (what quality is computed from; evaluations cache them).
        ``pixel_scale``: original pixels per pixel of ``image`` (for a reduced copy of a photo)."""
        from faceprint.analyze.landmarks import gaze
        from faceprint.analyze.measures import appearance, geometry
        from faceprint.analyze.pose import head_pose

        landmarks, _ = self._models()
        dense = landmarks(image, face)
        h, w = image.shape[:2]
        pose = head_pose(dense.points, (w, h))
        m = {**appearance(dense), **geometry(dense)}
        m["inter_eye_px"] *= pixel_scale
        m.update(yaw=pose.yaw, pitch=pose.pitch, roll=pose.roll, detection_score=float(face.score))
        m["gaze_x"], m["gaze_y"] = gaze(dense.eyes, dense.irises)
        flip = face.extra.get("flip_agreement")
        if isinstance(flip, float):
            m["flip_agreement"] = flip
        return m

    def analyze(
        self, image: np.ndarray, faces: list[Face], pixel_scale: float = 1.0, expression: bool = True
    ) -> list[Face]:
        """Set ``face.analysis`` on each face (in place) and return the faces; ``expression=False``
        skips the expression this analyser would give."""
        _, classifier = self._models()
        classifier = classifier if expression else None
        measured = [self.measure(image, f, pixel_scale) for f in faces]
        expressions: list[Expression | None] = [None] * len(faces)
        if classifier is not None:
            size = getattr(classifier, "input_size", None)  # the built-in model's 64 px, straight
            expressions = _classify(classifier, [face_crop(image, f, size=size) for f in faces])
        with_template = [i for i, f in enumerate(faces) if f.embedding is not None]
        likeness: list[float | None] = [None] * len(faces)
        if self.face_like and with_template:
            scores = face_likeness(np.stack([faces[i].embedding for i in with_template]))  # type: ignore[misc]
            if scores is not None:
                for i, s in zip(with_template, scores):
                    likeness[i] = float(s)
        for face, m, expression, like in zip(faces, measured, expressions, likeness):
            face.analysis = analysis_of(m, expression, like)
        return faces


def analysis_of(
    measures: dict[str, float], expression: Expression | None = None, face_like: float | None = None
) -> FaceAnalysis:
    """A :class:`FaceAnalysis` from raw measures (as :meth:`FaceAnalyzer.measure` gives them)."""
    return FaceAnalysis(
        pose=Pose(measures["yaw"], measures["pitch"], measures["roll"]),
        eyes_open=eyes_open_level(measures),
        mouth_open=mouth_open_level(measures),
        gaze=(measures["gaze_x"], measures["gaze_y"]),
        quality=quality_score(measures),
        quality_factors=quality_factors(measures),
        expression=expression,
        face_like=face_like,
        measures=measures,
    )


def face_record(face: Face, digits: int = 4) -> dict[str, Any]:
    """One analysed face as JSON-ready values (``faceprint analyze --json`` and the service): box,
    detector score, quality and its factors, pose in degrees, eyes, mouth, gaze, expression,
    face-likeness (None where not measured)."""
    a = face.analysis
    if a is None:
        raise ValueError("the face has not been analysed (FaceAnalyzer.analyze)")

    def r(v: float | None, n: int = digits) -> float | None:
        return None if v is None or not math.isfinite(v) else round(float(v), n)  # JSON has no NaN

    expression = a.expression
    return {
        "box": [int(v) for v in face.box],
        "score": r(face.score),
        "quality": r(a.quality),
        "quality_factors": {k: r(v, 3) for k, v in a.quality_factors.items()},
        "pose": {"yaw": r(a.pose.yaw, 1), "pitch": r(a.pose.pitch, 1), "roll": r(a.pose.roll, 1)},
        "eyes_open": r(a.eyes_open, 3),
        "mouth_open": r(a.mouth_open, 3),
        "gaze": {"horizontal": r(a.gaze[0], 3), "vertical": r(a.gaze[1], 3)},
        "expression": None
        if expression is None
        else {
            "label": expression.label,
            "scores": {k: r(v) for k, v in expression.scores.items()},
            "backend": expression.backend,
        },
        "face_like": r(a.face_like),
    }


def _classify(classifier: ExpressionClassifier, crops: list[np.ndarray]) -> list[Expression | None]:
    many = getattr(classifier, "classify_many", None)  # a VLM asks about several faces at once
    if callable(many):
        return list(many(crops))
    return [classifier.classify(c) for c in crops]


# ------------------------------------------------------------------------- many images
@dataclass(frozen=True)
class AnalyzerSpec:
    """What a worker process needs to build the same :class:`FaceAnalyzer`."""

    expression: str = "builtin"
    vlm_url: str | None = None
    vlm_model: str | None = None
    face_like: bool = True

    def build(self) -> FaceAnalyzer:
        return FaceAnalyzer(self.expression, vlm_url=self.vlm_url, vlm_model=self.vlm_model, face_like=self.face_like)


def analyze_file(engine: FaceEngine, analyzer: FaceAnalyzer, image: ImageInput, mode: Mode = "all") -> ImageResult:
    """Find, embed and analyse the faces of one image (errors returned in the result, not raised):
    :func:`faceprint.pipeline.analyze_image` with this analyser."""
    from faceprint.pipeline import analyze_image

    return analyze_image(engine, image, mode, analyzer)


def analyze_files(
    images: Iterable[ImageInput],
    engine: FaceEngine,
    analyzer: FaceAnalyzer,
    specs: tuple[EngineSpec, AnalyzerSpec],
    mode: Mode = "all",
    workers: int = 1,
) -> Iterator[ImageResult]:
    """:func:`analyze_file` over many images, in order, through the one worker pool
    (:func:`faceprint.pipeline.analyze_images`): ``workers`` > 1 runs that many processes built from
    ``specs`` (models load once per process), 1 uses ``engine`` and ``analyzer`` here."""
    from faceprint.pipeline import analyze_images

    yield from analyze_images(images, engine, specs[0], mode, workers, analyzer=analyzer, analysis=specs[1])


__all__ = [
    "DEFAULT_MIN_QUALITY",
    "EXPRESSIONS",
    "EXPRESSION_BACKENDS",
    "MEASURES_VERSION",
    "REASONS",
    "UNKNOWN",
    "AnalyzerSpec",
    "Expression",
    "FaceAnalysis",
    "FaceAnalyzer",
    "Pose",
    "analysis_of",
    "analyze_file",
    "analyze_files",
    "face_crop",
    "face_record",
    "make_expression_classifier",
    "quality_factors",
    "quality_gate",
    "quality_score",
]
