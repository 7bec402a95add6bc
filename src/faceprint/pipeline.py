"""Many images through detect + align + embed on every core, results in input order.

Each worker process loads its own FaceEngine once (single-threaded: on a small machine, N
one-thread workers beat one N-thread engine) and sends back only boxes, scores, landmarks and
templates. At most ``2 * workers`` images are in flight, so memory stays bounded however long
the input list is.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from functools import partial
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Literal, TypeVar

from faceprint.detect import DEFAULT_DETECTOR
from faceprint.engine import FaceEngine
from faceprint.errors import FaceprintError, MultipleFacesError, NoFaceError
from faceprint.image import ImageInput, LoadedImage, as_image
from faceprint.types import Face

#: "all" faces with templates; "single" exactly one face (else an error); "largest" the largest
#: face; "detect" all faces without templates
Mode = Literal["all", "single", "largest", "detect"]
T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class EngineSpec:
    """The names an engine is built from: what a worker process needs to build the same
    engine, and enough for a cache key without loading any model."""

    detector: str = DEFAULT_DETECTOR
    embedder: str = "onnx"
    flip: bool = True

    @classmethod
    def of(cls, engine: FaceEngine) -> EngineSpec:
        return cls(engine.detector.name, engine.embedder.name, engine.flip)

    @property
    def template_model(self) -> str:
        return embedder_model_id(self.embedder) + ("+flip" if self.flip else "")

    def build(self) -> FaceEngine:
        return FaceEngine(detector=self.detector, embedder=self.embedder, flip=self.flip)


def embedder_model_id(name: str) -> str:
    """The trained model behind an embedder backend, without loading it where it is known."""
    if name in ("onnx", "dlib"):  # both run dlib's ResNet (the ONNX port reproduces it)
        from faceprint.embed.dlib_resnet import MODEL_ID

        return MODEL_ID
    from faceprint.embed import get_embedder

    return get_embedder(name).model_id


@dataclass
class ImageResult:
    source: str
    sha256: str | None
    faces: list[Face]
    error: str | None = None


def source_name(image: ImageInput) -> str:
    """How an input is named in results and messages."""
    if isinstance(image, (str, os.PathLike)):
        return str(image)
    return image.source if isinstance(image, LoadedImage) else "<image>"


def image_faces(engine: FaceEngine, loaded: LoadedImage, mode: Mode = "all") -> list[Face]:
    """The faces of one image as ``mode`` asks (see :data:`Mode`), largest first."""
    faces = engine.detect(loaded.pixels)
    if mode == "detect":
        return faces
    if mode != "all":
        if not faces:
            raise NoFaceError(f"{loaded.source}: no face found")
        if len(faces) > 1 and mode == "single":
            raise MultipleFacesError(
                f"{loaded.source}: {len(faces)} faces found where one person was expected "
                "(crop the photo, or use --largest to take the largest face)"
            )
        faces = faces[:1]  # the engine returns the largest first
    return engine.embed(loaded.pixels, faces)


def analyze_image(engine: FaceEngine, image: ImageInput, mode: Mode = "all") -> ImageResult:
    """:func:`image_faces` for any image input, with errors returned as text, not raised."""
    try:
        loaded = as_image(image)
        return ImageResult(loaded.source, loaded.sha256, image_faces(engine, loaded, mode))
    except FaceprintError as exc:
        return ImageResult(source_name(image), None, [], str(exc))


def default_workers(n_items: int) -> int:
    """Every core for real batches; in-process for a handful (worker start-up costs ~1 s)."""
    return 1 if n_items < 8 else max(1, min(os.cpu_count() or 1, 8))


# ------------------------------------------------------------------- worker processes
_worker_fn: Callable[[Any], Any] | None = None


def _init_worker(make: Callable[[], Callable[[Any], Any]]) -> None:
    global _worker_fn
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    _worker_fn = make()


def _work(item: Any) -> Any:
    assert _worker_fn is not None
    return _worker_fn(item)


def parallel_map(make: Callable[[], Callable[[T], R]], items: Iterable[T], workers: int) -> Iterator[R]:
    """``fn(item)`` for every item, yielded in input order, where each of ``workers`` spawned processes
    builds ``fn = make()`` once (a model is loaded once per process, not per item; ``make`` must
    pickle: a module-level function or a ``functools.partial`` of one). At most ``2 * workers``
    items are in flight, so memory stays bounded however long ``items`` is."""
    # spawn, not fork: the parent may hold threads and native library state
    with ProcessPoolExecutor(
        workers, mp_context=get_context("spawn"), initializer=_init_worker, initargs=(make,)
    ) as pool:
        pending: deque[Future[R]] = deque()
        for item in items:
            pending.append(pool.submit(_work, item))
            if len(pending) >= 2 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def _engine_analyzer(spec: EngineSpec, mode: Mode) -> Callable[[ImageInput], ImageResult]:
    return partial(analyze_image, spec.build(), mode=mode)


def analyze_images(
    images: Iterable[ImageInput],
    engine: FaceEngine,
    spec: EngineSpec,
    mode: Mode = "all",
    workers: int = 1,
) -> Iterator[ImageResult]:
    """Yield one :class:`ImageResult` per image, in order. ``workers`` > 1 uses processes
    built from ``spec``; 1 uses ``engine`` in this process."""
    if workers <= 1:
        for image in images:
            yield analyze_image(engine, image, mode)
        return
    # paths travel as strings; the worker reads the file itself
    sent = (str(image) if isinstance(image, Path) else image for image in images)
    yield from parallel_map(partial(_engine_analyzer, spec, mode), sent, workers)
