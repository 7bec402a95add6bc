"""Many images through detect + align + embed on every core, results in input order.

Each worker process loads its own FaceEngine once (single-threaded: on a small machine, N
one-thread workers beat one N-thread engine) and sends back only boxes, scores, landmarks and
templates. At most ``2 * workers`` images are in flight, so memory stays bounded however long
the input list is.

Workers never outlive the batch: a worker whose parent dies (even by SIGKILL) exits within a
second, and Ctrl-C or SIGTERM of the parent cancels what is queued and ends the workers before
the parent itself goes.

Where the workers run is the *executor*: ``"local"`` (processes on this machine, above) or ``"ray"``
(actors on a Ray cluster, :mod:`faceprint.ray_executor`), chosen per call or for the whole context
with :func:`set_executor` (``faceprint --executor``).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from contextvars import ContextVar
from dataclasses import dataclass
from functools import partial
from multiprocessing import get_context
from multiprocessing.connection import wait as wait_ready
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from faceprint.detect import DEFAULT_DETECTOR
from faceprint.engine import FaceEngine
from faceprint.errors import FaceprintError, MultipleFacesError, NoFaceError
from faceprint.image import ImageInput, LoadedImage, as_image
from faceprint.types import Face

if TYPE_CHECKING:
    from faceprint.analyze import AnalyzerSpec, FaceAnalyzer

#: "all" faces with templates; "single" exactly one face (else an error); "largest" the largest
#: face; "subject" all faces with templates, at least one (else an error), for the enrolment's
#: subject choice; "detect" all faces without templates
Mode = Literal["all", "single", "largest", "subject", "detect"]
T = TypeVar("T")
R = TypeVar("R")
Executor = Literal["local", "ray"]
EXECUTORS: tuple[Executor, ...] = ("local", "ray")
#: a context variable, not a global: the CLI sets it once per command; library callers may set it
#: in one thread without changing what another thread's batches use
_executor: ContextVar[Executor] = ContextVar("faceprint_executor", default="local")


def set_executor(name: Executor) -> None:
    """Where :func:`parallel_map` (so every batch) runs from now on in this context."""
    if name not in EXECUTORS:
        raise ValueError(f"unknown executor {name!r}: expected one of {', '.join(EXECUTORS)}")
    _executor.set(name)


def get_executor() -> Executor:
    return _executor.get()


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
    #: the error itself (its class carries the code the service answers with)
    exception: FaceprintError | None = None
    #: faces the detector found, before ``mode`` kept some (e.g. "largest" of a group photo)
    found: int = 0
    #: (width, height) of the decoded image
    size: tuple[int, int] | None = None


def source_name(image: ImageInput) -> str:
    """How an input is named in results and messages."""
    if isinstance(image, (str, os.PathLike)):
        return str(image)
    return image.source if isinstance(image, LoadedImage) else "<image>"


def image_faces(
    engine: FaceEngine, loaded: LoadedImage, mode: Mode = "all", count: list[int] | None = None
) -> list[Face]:
    """The faces of one image as ``mode`` asks (see :data:`Mode`), largest first. ``count``, when
    given, receives how many faces the detector found."""
    found = engine.find_faces(loaded.pixels)
    faces = found.faces
    if count is not None:
        count.append(len(faces))
    if mode == "detect":
        return faces
    if mode != "all":
        if not faces:
            raise NoFaceError(f"{loaded.source}: no face found (tried {', '.join(found.tried)})")
        if len(faces) > 1 and mode == "single":
            raise MultipleFacesError(
                f"{loaded.source}: {len(faces)} faces found where one person was expected "
                "(crop the photo, or use --largest to take the largest face)"
            )
        if mode != "subject":
            faces = faces[:1]  # the engine returns the largest first
    return engine.embed(loaded.pixels, faces)


def analyze_image(
    engine: FaceEngine, image: ImageInput, mode: Mode = "all", analyzer: FaceAnalyzer | None = None
) -> ImageResult:
    """:func:`image_faces` for any image input, with errors returned as text, not raised; with an
    ``analyzer``, each face also gets its ``analysis`` (measured here, where the pixels are)."""
    try:
        loaded = as_image(image)
        found: list[int] = []
        faces = image_faces(engine, loaded, mode, found)
        if analyzer is not None:
            faces = analyzer.analyze(loaded.pixels, faces)
        height, width = loaded.pixels.shape[:2]
        return ImageResult(
            loaded.source, loaded.sha256, faces, found=found[0] if found else len(faces), size=(width, height)
        )
    except FaceprintError as exc:
        return ImageResult(source_name(image), None, [], str(exc), exc)


def default_workers(n_items: int) -> int:
    """Every core for real batches; in-process for a handful (worker start-up costs ~1 s)."""
    return 1 if n_items < 8 else max(1, min(os.cpu_count() or 1, 8))


# ------------------------------------------------------------------- worker processes
_worker_fn: Callable[[Any], Any] | None = None
#: how often a worker checks that its parent is still there (prctl's signal comes first on Linux)
PARENT_POLL_S = 0.5
#: how long stopped workers get to exit on SIGTERM before they are killed
STOP_GRACE_S = 2.0
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


class Terminated(SystemExit):
    """SIGTERM arrived while :func:`parallel_map` ran in the main thread. Raised there instead of
    the default action (the process ends on the spot and leaves its workers behind), so that the
    workers are stopped first; uncaught, it ends the process with status 143 (128 + SIGTERM)."""

    def __init__(self) -> None:
        super().__init__(128 + signal.SIGTERM)


def _init_worker(make: Callable[[], Callable[[Any], Any]], parent: int, pdeathsig: bool) -> None:
    global _worker_fn
    _exit_with_parent(parent, pdeathsig)
    # Ctrl-C in a terminal signals the whole process group: the parent alone decides what stops,
    # and ends the workers itself. SIGINT was blocked from the spawn until here (_signals_blocked)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    _worker_fn = make()


def _exit_with_parent(parent: int, pdeathsig: bool) -> None:
    """End this worker as soon as ``parent`` is gone. Otherwise a killed parent leaves its workers
    (~250 MB each) waiting on the task queue for ever, and the resource tracker waiting on them."""
    if pdeathsig and sys.platform.startswith("linux"):
        # the kernel sends the signal when the *thread* that spawned us ends, so the parent asks
        # for it only when that is its main thread
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # it died before prctl took effect
        os._exit(1)
    # the fallback elsewhere (macOS, a pool started from another thread)
    threading.Thread(target=_watch_parent, args=(parent,), name="faceprint-parent-watch", daemon=True).start()


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(PARENT_POLL_S)
    os._exit(1)


def _work(item: Any) -> Any:
    assert _worker_fn is not None
    return _worker_fn(item)


@contextlib.contextmanager
def _signals_blocked(*signals: signal.Signals) -> Iterator[None]:
    """Hold ``signals`` back from this thread for the body (they arrive after it). A process spawned
    meanwhile starts with them blocked, so a Ctrl-C while it imports prints no traceback there
    (CPython starts its resource tracker the same way)."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, signals)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated()


@contextlib.contextmanager
def _sigterm_raises() -> Iterator[None]:
    """For the body, SIGTERM raises :class:`Terminated` in the main thread. Left alone where Python
    cannot install handlers (other threads) or where the application handles SIGTERM itself."""
    main = threading.current_thread() is threading.main_thread()
    if not main or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        yield
        return
    signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        # a generator closed by the garbage collector may get here in another thread
        with contextlib.suppress(ValueError):
            if signal.getsignal(signal.SIGTERM) is _raise_terminated:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _stop(pool: ProcessPoolExecutor) -> None:
    """Cancel the queued items and end the workers now (a plain shutdown would first run every
    item already queued)."""
    # CPython's executor keeps both there; it offers no public handle on them
    workers = list((getattr(pool, "_processes", None) or {}).values())
    manager: threading.Thread | None = getattr(pool, "_executor_manager_thread", None)
    pool.shutdown(wait=False, cancel_futures=True)
    for p in workers:
        p.terminate()
    alive = {p.sentinel: p for p in workers}  # a sentinel turns ready when its process ends
    deadline = time.monotonic() + STOP_GRACE_S
    while alive and (left := deadline - time.monotonic()) > 0:
        for ready in wait_ready(list(alive), left):
            del alive[ready]
    for p in alive.values():
        p.kill()
    if manager is not None:
        # it notices the ends and closes the pool's pipes; at interpreter exit, Python < 3.12 races
        # that closing and may print "OSError: handle is closed" unless it is over
        manager.join(STOP_GRACE_S)


def parallel_map(
    make: Callable[[], Callable[[T], R]], items: Iterable[T], workers: int, executor: Executor | None = None
) -> Iterator[R]:
    """``fn(item)`` for every item, yielded in input order, where each of ``workers`` workers builds
    ``fn = make()`` once (a model is loaded once per worker, not per item; ``make`` must pickle: a
    module-level function or a ``functools.partial`` of one). At most ``2 * workers`` items are in
    flight, so memory stays bounded however long ``items`` is.

    The workers are spawned processes, or with ``executor="ray"`` (default: :func:`get_executor`)
    actors on a Ray cluster (:func:`faceprint.ray_executor.ray_map`). If anything ends the loop early
    (an error, Ctrl-C, SIGTERM: see :class:`Terminated`, or the consumer closing this generator),
    the queued items are cancelled and the workers ended."""
    with _sigterm_raises():
        if (executor or get_executor()) == "ray":
            from faceprint.ray_executor import ray_map

            yield from ray_map(make, items, workers)
        else:
            yield from _process_map(make, items, workers)


def _process_map(make: Callable[[], Callable[[T], R]], items: Iterable[T], workers: int) -> Iterator[R]:
    # spawn, not fork: the parent may hold threads and native library state
    on_main_thread = threading.current_thread() is threading.main_thread()
    pool = ProcessPoolExecutor(
        workers,
        mp_context=get_context("spawn"),
        initializer=_init_worker,
        initargs=(make, os.getpid(), on_main_thread),
    )
    pending: deque[Future[R]] = deque()
    try:
        for item in items:
            with _signals_blocked(signal.SIGINT):  # submit() spawns the workers
                pending.append(pool.submit(_work, item))
            if len(pending) >= 2 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
        pool.shutdown()
    except BaseException:
        _stop(pool)
        raise


def _engine_analyzer(
    spec: EngineSpec, mode: Mode, analysis: AnalyzerSpec | None = None
) -> Callable[[ImageInput], ImageResult]:
    return partial(analyze_image, spec.build(), mode=mode, analyzer=None if analysis is None else analysis.build())


def analyze_images(
    images: Iterable[ImageInput],
    engine: FaceEngine,
    spec: EngineSpec,
    mode: Mode = "all",
    workers: int = 1,
    analyzer: FaceAnalyzer | None = None,
    analysis: AnalyzerSpec | None = None,
) -> Iterator[ImageResult]:
    """Yield one :class:`ImageResult` per image, in order. ``workers`` > 1 uses processes
    built from ``spec``; 1 uses ``engine`` in this process, except on Ray (:func:`set_executor`),
    where even one worker is an actor of the cluster. With ``analysis`` (a face-analysis spec), each
    face is also analysed: by ``analyzer`` here, or by one built from the spec in each worker."""
    if workers <= 1 and get_executor() == "local":
        if analysis is not None and analyzer is None:
            analyzer = analysis.build()
        for image in images:
            yield analyze_image(engine, image, mode, analyzer)
        return
    # paths travel as strings; the worker reads the file itself
    sent = (str(image) if isinstance(image, Path) else image for image in images)
    yield from parallel_map(partial(_engine_analyzer, spec, mode, analysis), sent, workers)
