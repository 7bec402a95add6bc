""":func:`faceprint.pipeline.parallel_map` on a Ray cluster: a pool of actors, each building
``fn = make()`` once (one loaded FaceEngine per actor), results yielded in input order.

The cluster is the one ``RAY_ADDRESS`` names, read as ``ray.init`` reads it; when it is unset, a
local Ray is started for the batch (loopback only, a small object store, no dashboard) and shut
down when the batch ends, however it ends. Items travel as they are given (image paths as
strings): each actor reads its files itself, so on several machines the photos must be at the
same path on every node (a shared filesystem).

A task whose actor died (the process was killed, ran out of memory, or its node went away) is
sent to a fresh actor, up to :data:`ATTEMPTS` times; an error *returned* by ``fn`` (a bad image's
:class:`~faceprint.pipeline.ImageResult`) is a normal result, and an exception ``fn`` raises ends
the batch as it does with local processes.

Needs the ``ray`` extra (``pip install 'faceprint[ray]'``); nothing else imports this module.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import suppress
from dataclasses import dataclass
from typing import Any, TypeVar

if not os.environ.get("RAY_ADDRESS"):
    # the Ray started here serves this machine only: Ray then uses and listens on loopback addresses
    # (it reads this once, at import; the name says Windows/macOS, the effect holds on Linux)
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")

import ray  # noqa: E402
from ray.exceptions import AuthenticationError, RayActorError  # noqa: E402

from faceprint.errors import FaceprintError  # noqa: E402

T = TypeVar("T")
R = TypeVar("R")

#: how many actors one item may take down before the batch gives up on it
ATTEMPTS = 3
#: items in flight per actor: one running and one waiting, so an actor never idles on the driver
PER_ACTOR = 2
#: how long the address in RAY_ADDRESS gets to accept a connection
CONNECT_TIMEOUT_S = 10.0
#: object store of a Ray started here; only boxes and templates come back (Ray's minimum is 75 MB)
LOCAL_OBJECT_STORE_BYTES = 200 * 1024**2

#: whether this process started the Ray it is connected to (and so must stop it)
_started_here = False


class WorkerLostError(FaceprintError):
    """One item took down :data:`ATTEMPTS` actors in a row (each died while running it)."""

    code = "worker_lost"


@ray.remote(num_cpus=1)
class FaceprintWorker:
    """One actor of the pool: ``make()`` once, then ``fn(item)`` per call. The class name is what
    ``ray list actors`` shows."""

    def __init__(self, make: Callable[[], Callable[[Any], Any]]) -> None:
        # one thread per actor (one per CPU), as in each local worker process; Ray itself sets this
        # for a 1-CPU actor unless the cluster's environment says otherwise
        os.environ.setdefault("OMP_NUM_THREADS", "1")
        self._fn = make()

    def run(self, item: Any) -> Any:
        return self._fn(item)


def connect(workers: int | None = None) -> None:
    """Join the cluster at ``$RAY_ADDRESS``, else start a local Ray with room for ``workers`` actors
    (at least one per core). Does nothing when this process is already connected."""
    global _started_here
    if ray.is_initialized():
        return
    # ray.init answers SIGTERM with sys.exit(15); faceprint's own handling (pipeline.Terminated:
    # stop the workers, exit 143) stays in force
    main = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGTERM) if main else None
    address = os.environ.get("RAY_ADDRESS")
    if address:
        _check_listening(address)
        try:
            # the actors' own output stays in Ray's logs: stdout stays clean for --json
            ray.init(logging_level=logging.WARNING, log_to_driver=False)
        except ConnectionError as exc:
            hint = ""
            if _auth_refused(exc) and not os.environ.get("RAY_AUTH_MODE"):
                hint = " (the cluster wants its token: set RAY_AUTH_MODE=token, with the token in ~/.ray/auth_token)"
            raise _unreachable(address, f"{exc}{hint}") from None
    else:
        ray.init(
            # "local": a new Ray even where `ray start` left one behind (ray.init would join that)
            address="local",
            num_cpus=max(os.cpu_count() or 1, workers or 0),
            object_store_memory=LOCAL_OBJECT_STORE_BYTES,
            include_dashboard=False,
            # its notices (e.g. on access tokens) are about a Ray that only this machine can reach
            logging_level=logging.ERROR,
            log_to_driver=False,
        )
        _started_here = True
    if main and previous is not None:
        signal.signal(signal.SIGTERM, previous)


def _unreachable(address: str, why: object) -> FaceprintError:
    return FaceprintError(f"cannot reach the Ray cluster at RAY_ADDRESS={address}: {why}")


def _check_listening(address: str) -> None:
    """Fail at once where nothing listens at ``host:port`` (ray.init would retry for minutes).
    Other forms ("auto", "ray://...") are left to Ray."""
    host, _, port = address.rpartition(":")
    if "://" in address or not host or not port.isdigit():
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        raise _unreachable(address, exc.strerror or exc) from None


def _auth_refused(exc: BaseException | None) -> bool:
    """Whether the cluster turned the driver away for lack of its token (Ray says so only in the
    text of an exception down the chain)."""
    while exc is not None:
        if isinstance(exc, AuthenticationError) or "InvalidAuthToken" in str(exc):
            return True
        exc = exc.__cause__
    return False


def disconnect() -> None:
    """Stop the Ray this process started (its actors go with it); leave a cluster it joined."""
    global _started_here
    if _started_here:
        _started_here = False
        ray.shutdown()


def cluster_cpus() -> int:
    connect()
    return max(1, int(ray.cluster_resources().get("CPU", 1)))


def default_workers(n_items: int) -> int:
    """One actor per CPU of the cluster, and no more actors than items."""
    return max(1, min(n_items, cluster_cpus()))


@dataclass
class _Job:
    index: int
    item: Any
    tries: int = 0
    slot: int = 0
    actor: Any = None


class _ActorPool:
    """``size`` actors; each job goes to the least loaded one, at most :data:`PER_ACTOR` each."""

    def __init__(self, make: Callable[[], Callable[[Any], Any]], size: int) -> None:
        self._make = make
        self.actors = [self._spawn() for _ in range(size)]
        self.load = [0] * size

    def _spawn(self) -> Any:
        # SPREAD: on several nodes, the actors go to different machines rather than fill one first
        return FaceprintWorker.options(scheduling_strategy="SPREAD").remote(self._make)  # type: ignore[attr-defined]

    def has_room(self) -> bool:
        return min(self.load) < PER_ACTOR

    def submit(self, job: _Job) -> Any:
        job.slot = min(range(len(self.actors)), key=self.load.__getitem__)
        job.actor = self.actors[job.slot]
        job.tries += 1
        self.load[job.slot] += 1
        return job.actor.run.remote(job.item)

    def finished(self, job: _Job) -> None:
        self.load[job.slot] -= 1

    def replace(self, job: _Job) -> None:
        """A fresh actor for the one that died under ``job`` (once, however many of its jobs fail)."""
        if self.actors[job.slot] is job.actor:
            with suppress(Exception):  # already gone
                ray.kill(job.actor)
            self.actors[job.slot] = self._spawn()

    def close(self) -> None:
        for actor in self.actors:
            with suppress(Exception):
                ray.kill(actor)


def ray_map(make: Callable[[], Callable[[T], R]], items: Iterable[T], workers: int) -> Iterator[R]:
    """``fn(item)`` for every item, in input order, on ``workers`` Ray actors (at most one per CPU
    of the cluster), each building ``fn = make()`` once; at most :data:`PER_ACTOR` items per actor
    are in flight or waiting to be yielded, so memory stays bounded however long ``items`` is.

    The actors are killed when the loop ends, however it ends, and a Ray started here is shut down."""
    connect(workers)
    try:
        pool = _ActorPool(make, max(1, min(workers, cluster_cpus())))
        try:
            yield from _ordered(pool, iter(enumerate(items)), PER_ACTOR * len(pool.actors))
        finally:
            pool.close()
    finally:
        disconnect()


def _ordered(pool: _ActorPool, source: Iterator[tuple[int, Any]], window: int) -> Iterator[Any]:
    running: dict[Any, _Job] = {}  # object ref -> its job
    done: dict[int, Any] = {}  # results that wait for an earlier one
    next_index = 0
    more = True
    while True:
        while more and len(running) + len(done) < window and pool.has_room():
            entry = next(source, None)
            if entry is None:
                more = False
            else:
                job = _Job(*entry)
                running[pool.submit(job)] = job
        if next_index in done:
            yield done.pop(next_index)
            next_index += 1
            continue
        if not running:
            return
        ready, _ = ray.wait(list(running), num_returns=1)
        for ref in ready:
            job = running.pop(ref)
            pool.finished(job)
            try:
                done[job.index] = ray.get(ref)
            except RayActorError as exc:
                if job.tries >= ATTEMPTS:
                    what = str(job.item)[:200]
                    why = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                    raise WorkerLostError(f"{what}: {ATTEMPTS} Ray workers died working on it ({why})") from exc
                pool.replace(job)
                running[pool.submit(job)] = job
