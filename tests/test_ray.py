"""``--executor ray``: the batch pipeline on Ray actors gives what local workers give, in order, with a
bad image reported the same way; a dead actor's items are retried; its actors can be seen in Ray's state
and are gone afterwards, also when the driver is stopped by a signal.

The tests start their own local Ray (2 CPUs, a small object store, loopback addresses, with the
dashboard that Ray's state API needs) and skip, saying why, only where Ray is not installed or cannot
start."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import pytest

from faceprint.engine import FaceEngine
from faceprint.pipeline import EngineSpec, analyze_image, analyze_images, parallel_map, set_executor

from . import test_pipeline
from .conftest import FIXTURES, faceprint
from .test_pipeline import _kill_batch, batch  # noqa: F401 (a fixture, used by name)

LFW = FIXTURES / "lfw"
RAY_ENV = ("RAY_ADDRESS", "RAY_AUTH_MODE", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER")


@pytest.fixture(scope="module")
def ray_head() -> Iterator[str]:
    """A local Ray head for this module; yields its address (what ``RAY_ADDRESS`` takes)."""
    saved = {name: os.environ.get(name) for name in RAY_ENV}
    os.environ.pop("RAY_ADDRESS", None)  # a Ray of our own, not one the caller points at
    try:
        # importing faceprint's executor first keeps this Ray on loopback addresses
        pytest.importorskip("faceprint.ray_executor", reason="Ray is not installed (pip install 'faceprint[ray]')")
        import ray
        from ray import cloudpickle

        try:
            ray.init(
                address="local",
                num_cpus=2,
                object_store_memory=200 * 1024**2,
                include_dashboard=True,  # Ray's state API (list_actors) is served by it
                dashboard_host="127.0.0.1",
                logging_level="WARNING",
                log_to_driver=False,
            )
        except Exception as exc:  # any reason Ray cannot start here is a skip
            pytest.skip(f"a local Ray cannot start here: {type(exc).__name__}: {exc}")
        cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the actors cannot import tests/
        try:
            yield ray.get_runtime_context().gcs_address
        finally:
            ray.shutdown()
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


# --------------------------------------------------------------- functions the actors build
def _slower_first(n: int) -> Callable[[int], tuple[int, int]]:
    def fn(i: int) -> tuple[int, int]:
        time.sleep(0.02 * (n - i))  # early items finish last: the order must come from the pool
        return i, os.getpid()

    return fn


def _dies_on(victim: int, marker: Path | None) -> Callable[[int], int]:
    """Kill the actor's process on ``victim`` (once, if ``marker`` is given: it records the death)."""

    def fn(i: int) -> int:
        if i == victim and (marker is None or not marker.exists()):
            if marker is not None:
                marker.touch()
            os._exit(1)
        return i

    return fn


def _raises_on(victim: int) -> Callable[[int], int]:
    def fn(i: int) -> int:
        if i == victim:
            raise ValueError(f"item {i} is bad")
        return i

    return fn


def _within(seconds: float, condition: Callable[[], bool]) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


# ------------------------------------------------------------------------- the actor pool
def test_results_come_in_input_order_from_every_actor(ray_head: str) -> None:
    results = list(parallel_map(partial(_slower_first, 12), range(12), workers=2, executor="ray"))
    assert [i for i, _ in results] == list(range(12))
    assert len({pid for _, pid in results}) == 2  # both actors worked


def test_a_worker_that_dies_is_replaced_and_its_items_retried(ray_head: str, tmp_path: Path) -> None:
    marker = tmp_path / "died"
    results = list(parallel_map(partial(_dies_on, 5, marker), range(10), workers=2, executor="ray"))
    assert marker.exists(), "the actor never died: the test proved nothing"
    assert results == list(range(10))


def test_an_item_that_kills_every_worker_stops_the_batch(ray_head: str) -> None:
    from faceprint.ray_executor import ATTEMPTS, WorkerLostError

    with pytest.raises(WorkerLostError, match=f"^3: {ATTEMPTS} Ray workers died"):
        list(parallel_map(partial(_dies_on, 3, None), range(6), workers=2, executor="ray"))


def test_an_exception_raised_by_the_function_ends_the_batch(ray_head: str) -> None:
    with pytest.raises(ValueError, match="item 2 is bad"):  # as with local worker processes
        list(parallel_map(partial(_raises_on, 2), range(6), workers=2, executor="ray"))


def test_actors_are_seen_in_ray_state_while_they_work_and_gone_after(ray_head: str, engine: FaceEngine) -> None:
    from ray.util.state import list_actors

    def alive() -> list[object]:
        # this head's address: without one, Ray asks the newest cluster started on the machine
        return list_actors(ray_head, filters=[("class_name", "=", "FaceprintWorker"), ("state", "=", "ALIVE")])

    photos = sorted(LFW.glob("*/*.jpg"))[:8]
    set_executor("ray")
    try:
        results = analyze_images(photos, engine, EngineSpec.of(engine), "all", workers=2)
        first = next(results)  # the batch is under way: its actors live until it ends
        assert _within(30, lambda: len(alive()) == 2)  # the second may still be loading its models
        got = [first, *results]
    finally:
        set_executor("local")
    want = [analyze_image(engine, str(p)) for p in photos]
    assert [(r.source, r.sha256, [f.box for f in r.faces]) for r in got] == [
        (w.source, w.sha256, [f.box for f in w.faces]) for w in want
    ]
    assert _within(15, lambda: not alive())  # ray.kill returns before the actor is gone


# ------------------------------------------------------------------------------ the command
@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """LFW photos, a photo without a face, and a truncated file."""
    folder = tmp_path_factory.mktemp("photos")
    for p in sorted(LFW.glob("*/*.jpg")):
        os.symlink(p, folder / p.name)
    os.symlink(FIXTURES / "no_faces" / "skimage_moon.png", folder / "moon.png")
    data = (LFW / "Tony_Blair" / "Tony_Blair_0001.jpg").read_bytes()
    (folder / "truncated.jpg").write_bytes(data[: len(data) // 3])
    return folder


@pytest.fixture(scope="module")
def gallery(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("gallery") / "g.db"
    faceprint(path, "--workers", "1", "enroll", str(LFW))  # a refused photo or two is fine here
    return path


def _on_ray(ray_head: str) -> dict[str, str]:
    return {"RAY_ADDRESS": ray_head}


def _failures(stderr: str) -> list[str]:
    """The failure summary at the end of a batch (the progress bar and Ray's notices vary)."""
    lines = stderr.splitlines()
    start = next((i for i, line in enumerate(lines) if "file(s) failed" in line), len(lines))
    return lines[start:]


@pytest.mark.parametrize(
    "command", [["identify", "--json"], ["detect", "--json"], ["cluster", "--json"]], ids=lambda c: c[0]
)
def test_each_batch_command_on_a_running_ray_head_answers_as_the_local_run(
    ray_head: str, gallery: Path, photos: Path, command: list[str]
) -> None:
    local = faceprint(gallery, "--workers", "2", *command, str(photos))
    remote = faceprint(gallery, "--executor", "ray", "--workers", "2", *command, str(photos), env=_on_ray(ray_head))
    assert remote.returncode == local.returncode, remote.stderr
    assert remote.stdout == local.stdout
    assert _failures(remote.stderr) == _failures(local.stderr)
    if command[0] != "cluster":  # one line per image, the bad ones included, in input order
        lines = [json.loads(line) for line in remote.stdout.splitlines()]
        assert [Path(r["image"]).name for r in lines] == sorted(p.name for p in photos.iterdir())
        assert [r["image"] for r in lines if r["error"]] == [str(photos / "truncated.jpg")]


def test_enrolment_on_ray_stores_what_a_local_one_stores(ray_head: str, tmp_path: Path) -> None:
    local, on_ray = tmp_path / "local.db", tmp_path / "ray.db"
    runs = [
        faceprint(local, "--workers", "2", "enroll", str(LFW)),
        faceprint(on_ray, "--executor", "ray", "enroll", str(LFW), env=_on_ray(ray_head)),
    ]
    assert runs[1].returncode == runs[0].returncode, runs[1].stderr
    assert _failures(runs[1].stderr) == _failures(runs[0].stderr)
    listed = [json.loads(faceprint(g, "people", "--json", check=True).stdout)["people"] for g in (local, on_ray)]
    stored = [[(p["name"], p["templates"]) for p in people] for people in listed]
    assert stored[1] == stored[0]
    assert len(stored[1]) == len(list(LFW.iterdir()))


def test_an_address_where_nothing_listens_fails_at_once(tmp_path: Path) -> None:
    pytest.importorskip("ray", reason="Ray is not installed (pip install 'faceprint[ray]')")
    with socket.socket() as sock:  # a port that was free a moment ago
        sock.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{sock.getsockname()[1]}"
    started = time.monotonic()
    proc = faceprint(tmp_path / "g.db", "--executor", "ray", "detect", str(LFW), env={"RAY_ADDRESS": address})
    assert proc.returncode == 1, proc.stderr
    assert f"error: cannot reach the Ray cluster at RAY_ADDRESS={address}: Connection refused" in proc.stderr
    assert time.monotonic() - started < 30  # not Ray's minutes of retries


def test_executor_ray_without_ray_installed_is_one_line_and_exit_2(tmp_path: Path) -> None:
    hide_ray = "import sys; sys.modules['ray'] = None; from faceprint.cli import run; run()"
    proc = subprocess.run(
        [sys.executable, "-c", hide_ray, "--executor", "ray", "identify", str(LFW)],
        capture_output=True,
        text=True,
        env={**os.environ, "FACEPRINT_GALLERY": str(tmp_path / "g.db")},
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == ["error: --executor ray needs Ray: pip install 'faceprint[ray]'"]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=lambda s: s.name)
def test_a_stopped_driver_leaves_no_ray_of_its_own_behind(
    tmp_path: Path,
    batch: Path,  # noqa: F811 (test_pipeline's fixture, imported above)
    monkeypatch: pytest.MonkeyPatch,
    sig: signal.Signals,
) -> None:
    pytest.importorskip("ray", reason="Ray is not installed (pip install 'faceprint[ray]')")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)  # the driver starts a local Ray: its own to stop
    # test_pipeline's kill-and-watch, with the same command on Ray (exec keeps the pid)
    wrapper = tmp_path / "faceprint-on-ray"
    wrapper.write_text(f'#!/bin/sh\nexec "{test_pipeline.FACEPRINT}" --executor ray "$@"\n')
    wrapper.chmod(0o755)
    monkeypatch.setattr(test_pipeline, "FACEPRINT", wrapper)
    status, stderr, _ = _kill_batch(tmp_path, batch, sig)  # every Ray process it started is gone
    assert status == {signal.SIGTERM: 143, signal.SIGINT: 130}[sig], stderr
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr, stderr
