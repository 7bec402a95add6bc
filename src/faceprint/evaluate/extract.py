"""One template per evaluation image, the way benchmark protocols expect.

Benchmark images (LFW and most folder-per-identity sets) are crops centred on the person
they are labelled with, so the face to use is the one *nearest the centre*, not the largest.
When the engine's detector finds nothing, the image is not dropped (dropping pairs flatters
accuracy); the fallback policy decides:

- ``"retry"`` (default): look again with dlib's HOG at a finer scale and a lower score
  threshold (a second chance that costs ~0.5 s, on the few images that need it), then, if
  still nothing, ``"centre"``. On LFW View 2 (pairs.txt) it found 36 of the 40 faces that
  HOG missed, and accuracy went from 98.97% to 99.07% (62 -> 56 errors) over ``"centre"``.
- ``"centre"``: align a fixed central box with the 5-point landmarker.
- ``"none"``: no template; the image's pairs count as errors.

With ``quality=True`` the extractor also measures the chosen face for quality
(:meth:`faceprint.analyze.FaceAnalyzer.measure`), so that evaluations can rank pairs by it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from faceprint.image import load_image
from faceprint.pipeline import EngineSpec, parallel_map
from faceprint.types import Face

if TYPE_CHECKING:
    from faceprint.analyze import FaceAnalyzer
    from faceprint.engine import FaceEngine
    from faceprint.evaluate.cache import EmbeddingCache

Fallback = Literal["retry", "centre", "none"]
FALLBACKS: tuple[str, ...] = ("retry", "centre", "none")
DEFAULT_FALLBACK = "retry"
#: the second look: HOG score threshold (dlib's default is 0) and the largest image side
#: upsampled twice / once (finer scales find smaller and harder faces, at 4x the cost each)
RETRY_MIN_SCORE = -0.6
RETRY_UPSAMPLE_SIDES = (500, 1000)

#: the fallback face box as fractions (left, top, right, bottom) of the image: the median
#: HOG box on 300 random LFW images was (67, 80, 176, 188) of 250x250 (10th-90th percentile
#: within 12 px); geometry only, no identity labels were used
CENTRE_BOX = (0.27, 0.32, 0.71, 0.75)
#: bump when the selection or fallback behaviour changes, so cached templates are not reused
POLICY_VERSION = "2"

Status = Literal["face", "retry", "fallback", "none"]


@dataclass
class ImageTemplate:
    """The template of one evaluation image: ``status`` says where its face came from."""

    embedding: np.ndarray | None
    status: str  # "face" (detected), "retry" (second look), "fallback" (central box) or "none"
    faces: int = 0  # faces the detector found
    box: tuple[int, ...] | None = None
    #: the face's raw quality measures (faceprint.analyze.measures), when they were asked for
    measures: dict[str, float] | None = None


def nearest_centre(faces: Sequence[Face], width: int, height: int) -> Face:
    """The face whose box centre is nearest the image centre (benchmark crops are centred)."""
    cx, cy = width / 2, height / 2
    return min(faces, key=lambda f: ((f.box[0] + f.box[2]) / 2 - cx) ** 2 + ((f.box[1] + f.box[3]) / 2 - cy) ** 2)


def centre_box(width: int, height: int) -> tuple[int, int, int, int]:
    left, top, right, bottom = CENTRE_BOX
    return (round(left * width), round(top * height), round(right * width), round(bottom * height))


class TemplateExtractor:
    """Image -> :class:`ImageTemplate` with a given engine and fallback policy.

    Given an :class:`EngineSpec`, the engine is built on first use only.
    """

    def __init__(
        self, engine: FaceEngine | EngineSpec, fallback: str = DEFAULT_FALLBACK, quality: bool = False
    ) -> None:
        if fallback not in FALLBACKS:
            raise ValueError(f"unknown fallback {fallback!r}; choose from {', '.join(FALLBACKS)}")
        self._engine = None if isinstance(engine, EngineSpec) else engine
        self.spec = engine if isinstance(engine, EngineSpec) else EngineSpec.of(engine)
        self.fallback = fallback
        self.quality = quality
        self._analyzer: FaceAnalyzer | None = None
        self._landmarker: Callable[[np.ndarray, tuple[int, int, int, int]], np.ndarray] | None = None
        self._hog: object | None = None

    @property
    def engine(self) -> FaceEngine:
        if self._engine is None:
            self._engine = self.spec.build()
        return self._engine

    @property
    def template_model(self) -> str:
        return self._engine.info.template_model if self._engine is not None else self.spec.template_model

    @property
    def context(self) -> str:
        """Everything besides the image bytes that the template depends on (the cache key)."""
        s = self.spec
        return f"{self.template_model}|det={s.detector}|pick=centre|fallback={self.fallback}|v{POLICY_VERSION}"

    def describe(self) -> dict[str, str]:
        return {
            "model": self.template_model,
            "detector": self.spec.detector,
            "embedder": self.spec.embedder,
            "fallback": self.fallback,
        }

    def _landmarks(self, image: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
        if self._landmarker is None:
            from faceprint.detect.dlib_detectors import Landmarker5

            self._landmarker = Landmarker5()
        return self._landmarker(image, box)

    def _retry(self, image: np.ndarray) -> list[Face]:
        """A second, more permissive HOG pass (boxes in dlib's inclusive convention)."""
        import dlib

        if self._hog is None:
            self._hog = dlib.get_frontal_face_detector()
        side = max(image.shape[:2])
        upsample = sum(side <= limit for limit in RETRY_UPSAMPLE_SIDES)
        rects, scores, _ = self._hog.run(image, upsample, RETRY_MIN_SCORE)  # type: ignore[attr-defined]
        return [
            Face(box=(r.left(), r.top(), r.right() + 1, r.bottom() + 1), score=float(s))
            for r, s in zip(rects, scores)
            if r.right() > r.left() and r.bottom() > r.top()
        ]

    def _with_landmarks(self, image: np.ndarray, face: Face) -> Face:
        if face.landmarks is None:
            # dlib rectangles are inclusive: (right - 1, bottom - 1), as the detectors use them
            left, top, right, bottom = face.box
            face.landmarks = self._landmarks(image, (left, top, right - 1, bottom - 1))
        return face

    def find_face(self, image: np.ndarray) -> tuple[Face | None, str, int]:
        """(the face to use, with its 5 landmarks, or None; its status; faces the detector found),
        by the fallback policy, before any template is computed."""
        h, w = image.shape[:2]
        faces = self.engine.detect(image)
        status = "face"
        if not faces and self.fallback == "retry":
            faces = self._retry(image)
            status = "retry"
        if faces:
            return self._with_landmarks(image, nearest_centre(faces, w, h)), status, len(faces)
        if self.fallback in ("retry", "centre"):
            return self._with_landmarks(image, Face(box=centre_box(w, h), score=0.0)), "fallback", 0
        return None, "none", 0

    def __call__(self, image: np.ndarray) -> ImageTemplate:
        face, status, n_faces = self.find_face(image)
        if face is None:
            return ImageTemplate(None, "none", 0, None)
        return self.template_of(image, face, status, n_faces)

    def template_of(self, image: np.ndarray, face: Face, status: str, n_faces: int) -> ImageTemplate:
        """The template (and measures, with ``quality``) of a face :meth:`find_face` gave."""
        self.engine.embed(image, [face])
        measures = None
        if self.quality:
            if self._analyzer is None:
                from faceprint.analyze import FaceAnalyzer

                self._analyzer = FaceAnalyzer(expression="none", face_like=False)
            measures = self._analyzer.measure(image, face)
        return ImageTemplate(face.embedding, status, n_faces, tuple(int(v) for v in face.box), measures)


@dataclass
class ExtractStats:
    images: int = 0
    cache_hits: int = 0
    cache_misses: int = 0
    computed: int = 0
    compute_s: float = 0.0
    wall_s: float = 0.0
    status: dict[str, int] = field(default_factory=lambda: {"face": 0, "retry": 0, "fallback": 0, "none": 0})

    @property
    def images_per_s(self) -> float | None:
        """Images run through the pipeline per second (cache hits excluded); None if all hit."""
        return self.computed / self.compute_s if self.computed and self.compute_s > 0 else None

    def as_dict(self) -> dict[str, object]:
        ips = self.images_per_s
        return {
            "images": self.images,
            # images where the engine's detector found no face, however they were then handled
            "no_face": self.status["retry"] + self.status["fallback"] + self.status["none"],
            "found_on_retry": self.status["retry"],
            "fallbacks": self.status["fallback"],
            "without_template": self.status["none"],
            "cache_hits": self.cache_hits,
            "cache_misses": self.cache_misses,
            "images_per_s": round(ips, 2) if ips is not None else None,
        }


def _extract_file(extractor: TemplateExtractor, job: tuple[str, str]) -> tuple[str, ImageTemplate]:
    sha, path = job
    return sha, extractor(load_image(path).pixels)


def _file_extractor(
    spec: EngineSpec, fallback: str, quality: bool
) -> Callable[[tuple[str, str]], tuple[str, ImageTemplate]]:
    """What each worker process runs: its own engine, built once."""
    return partial(_extract_file, TemplateExtractor(spec.build(), fallback, quality))


def compute_templates(
    paths: Sequence[Path],
    extractor: TemplateExtractor,
    cache: EmbeddingCache | None = None,
    workers: int = 1,
    on_progress: Callable[[int], None] | None = None,
) -> tuple[dict[Path, ImageTemplate], ExtractStats]:
    """Templates for every path (cached ones read, the rest computed and stored).

    With ``workers > 1`` the misses are computed in that many processes (the shared
    :func:`faceprint.pipeline.parallel_map`), each with its own engine built from the same
    detector/embedder names (dlib and ONNX Runtime objects do not cross process boundaries).
    """
    t_start = time.perf_counter()
    stats = ExtractStats(images=len(paths))
    sha_of: dict[Path, str] = {}
    for p in paths:
        sha_of[p] = load_sha256(p)
    context = extractor.context
    known: dict[str, ImageTemplate] = {}
    if cache is not None:
        before = (cache.stats.hits, cache.stats.misses)
        known = cache.get_many(sha_of.values(), context, with_measures=extractor.quality)
        stats.cache_hits = cache.stats.hits - before[0]
        stats.cache_misses = cache.stats.misses - before[1]
    else:
        stats.cache_misses = len(set(sha_of.values()))
    uses: dict[str, int] = {}  # identical files are computed once but counted per path
    todo: dict[str, Path] = {}
    for p, sha in sha_of.items():
        uses[sha] = uses.get(sha, 0) + 1
        if sha not in known:
            todo.setdefault(sha, p)
    if on_progress:
        on_progress(sum(n for sha, n in uses.items() if sha in known))

    t0 = time.perf_counter()
    fresh: list[tuple[str, ImageTemplate]] = []
    batch: list[tuple[str, ImageTemplate]] = []

    jobs = [(sha, str(p)) for sha, p in todo.items()]
    if workers > 1 and len(jobs) > 1:
        make = partial(_file_extractor, extractor.spec, extractor.fallback, extractor.quality)
        results = parallel_map(make, jobs, workers)
    else:
        results = map(partial(_extract_file, extractor), jobs)
    for sha, template in results:
        fresh.append((sha, template))
        batch.append((sha, template))
        if cache is not None and len(batch) >= 64:  # write as we go: an interrupted run keeps its work
            cache.put_many(batch, context)
            batch.clear()
        if on_progress:
            on_progress(uses[sha])
    if cache is not None:
        cache.put_many(batch, context)
    stats.computed = len(fresh)
    stats.compute_s = time.perf_counter() - t0
    known.update(fresh)
    out = {p: known[sha] for p, sha in sha_of.items()}
    for t in out.values():
        stats.status[t.status] = stats.status.get(t.status, 0) + 1
    stats.wall_s = time.perf_counter() - t_start
    return out, stats


def load_sha256(path: Path) -> str:
    """sha256 of the file bytes (the cache's image key), naming the file on failure."""
    import hashlib

    from faceprint.errors import ImageError

    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError as exc:
        raise ImageError(f"{path}: cannot read: {exc.strerror or exc}") from exc
