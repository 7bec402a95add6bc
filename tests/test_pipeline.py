"""faceprint.pipeline and the engine's face search: worker processes that never outlive a killed
batch, and the second look that finds faces in tight crops."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from faceprint.detect import Detector
from faceprint.engine import FaceEngine
from faceprint.errors import NoFaceError
from faceprint.image import load_image
from faceprint.pipeline import image_faces
from faceprint.types import Face

from .conftest import FIXTURES

FACEPRINT = Path(sys.executable).with_name("faceprint")
#: the batch: the 30 LFW fixtures, hard-linked into this many person folders each
COPIES = 50
#: every descendant must be gone this long after the signal (measured: 0.1-0.5 s while the workers
#: run; up to ~3.5 s when a kill lands while they still import, on a busy machine)
GONE_WITHIN_S = 10.0


# ------------------------------------------------------------------- worker processes
def _children(pid: int) -> list[int]:
    found = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                found += [int(c) for c in f.read().split()]
    except OSError:  # gone meanwhile
        pass
    return found


def _descendants(pid: int) -> list[int]:
    out = []
    for child in _children(pid):
        out += [child, *_descendants(child)]
    return out


def _stat(pid: int) -> list[str]:
    """/proc/PID/stat after the command name: [state, ppid, ...]; [] once the process is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()
    except OSError:
        return []


def _running(pid: int) -> bool:
    """Alive and not a zombie (an orphan's zombie waits for init, which may be slow to reap it)."""
    stat = _stat(pid)
    return bool(stat) and stat[0] != "Z"


def _start_time(pid: int) -> str | None:
    stat = _stat(pid)
    return stat[19] if stat else None  # field 22 of the whole line: when it started


@pytest.fixture()
def batch(tmp_path: Path) -> Path:
    """A folder of person folders, big enough that enrolling it is still running when killed."""
    sources = sorted((FIXTURES / "lfw").glob("*/*.jpg"))
    assert sources, f"no LFW fixtures in {FIXTURES / 'lfw'}"
    originals = tmp_path / "originals"
    originals.mkdir()
    copies = [Path(shutil.copy(p, originals / p.name)) for p in sources]  # links within one file system
    root = tmp_path / "people"
    for i in range(COPIES):
        for src, copy in zip(sources, copies):
            person = root / f"{src.parent.name}_{i}"
            person.mkdir(parents=True, exist_ok=True)
            os.link(copy, person / src.name)
    return root


def _stored(gallery: Path) -> int:
    try:
        with sqlite3.connect(gallery) as db:
            return int(db.execute("SELECT COUNT(*) FROM templates").fetchone()[0])
    except sqlite3.Error:  # not created yet
        return 0


def _kill_batch(tmp_path: Path, root: Path, sig: signal.Signals, working: bool = True) -> tuple[int, str, list[int]]:
    """Start ``faceprint enroll`` with 2 workers and send ``sig`` once they have stored photos (or,
    with ``working=False``, as soon as they exist); SIGINT goes to the whole process group, as
    Ctrl-C in a terminal does. Asserts that every descendant is gone within GONE_WITHIN_S and
    returns the exit status, stderr and the descendants seen before the signal."""
    if not Path("/proc/self/task").is_dir():
        pytest.skip("needs Linux /proc to find the worker processes")
    err_path, gallery = tmp_path / "stderr.txt", tmp_path / "g.db"
    with open(err_path, "w") as err:  # not a pipe: orphaned workers would hold it open
        proc = subprocess.Popen(
            [str(FACEPRINT), "--gallery", str(gallery), "--workers", "2", "enroll", str(root)],
            stdout=subprocess.DEVNULL,
            stderr=err,
            start_new_session=True,  # its own process group, so that SIGINT reaches only the batch
        )
    family: list[int] = []
    started: dict[int, str | None] = {}
    try:
        deadline = time.monotonic() + 180
        while len(_children(proc.pid)) < 3 or (working and _stored(gallery) < 2):  # 2 workers + resource tracker
            assert proc.poll() is None, err_path.read_text()
            assert time.monotonic() < deadline, "the batch never got going"
            time.sleep(0.02)
        family = _descendants(proc.pid)
        started = {pid: _start_time(pid) for pid in family}
        assert proc.poll() is None, "the batch ended before it could be killed: make it bigger"
        t0 = time.monotonic()
        if sig == signal.SIGINT:
            os.killpg(proc.pid, sig)
        else:
            os.kill(proc.pid, sig)
        status = proc.wait(timeout=60)
        while any(_running(p) for p in family) and time.monotonic() - t0 < GONE_WITHIN_S:
            time.sleep(0.05)
        left = [p for p in family if _running(p)]
        assert not left, f"still running {time.monotonic() - t0:.1f} s after {sig.name}: {left}"
    finally:
        # never leave our own processes behind (and never touch a process that reused a pid)
        started.update((pid, _start_time(pid)) for pid in _descendants(proc.pid))
        for pid, start in started.items():
            if _running(pid) and _start_time(pid) == start:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        proc.kill()
        proc.wait()
    assert len(family) >= 3, family  # the workers and the resource tracker were seen (and are gone)
    return status, err_path.read_text(), family


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=lambda s: s.name)
def test_killed_batch_leaves_no_process_behind(tmp_path: Path, batch: Path, sig: signal.Signals) -> None:
    status, stderr, _ = _kill_batch(tmp_path, batch, sig)
    if sig == signal.SIGTERM:
        assert status == 128 + signal.SIGTERM, stderr  # an exit after stopping the workers, not a kill
        assert "Traceback" not in stderr, stderr


def test_batch_killed_while_workers_start_leaves_no_process_behind(tmp_path: Path, batch: Path) -> None:
    _kill_batch(tmp_path, batch, signal.SIGKILL, working=False)


def test_ctrl_c_stops_the_workers_quietly(tmp_path: Path, batch: Path) -> None:
    status, stderr, _ = _kill_batch(tmp_path, batch, signal.SIGINT)
    assert status == 130, stderr
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr, stderr


# ------------------------------------------------------------------------- face search
class _Blind:
    """A detector that misses the first image it is shown, and sees the rest through ``inner``."""

    def __init__(self, inner: Detector) -> None:
        self.inner = inner
        self.name = inner.name
        self.calls = 0

    def detect(self, image: np.ndarray) -> list[Face]:
        self.calls += 1
        return [] if self.calls == 1 else self.inner.detect(image)


def _cosine(a: Face, b: Face) -> float:
    return float(np.dot(a.embedding, b.embedding))  # type: ignore[arg-type]


def test_retry_maps_the_face_back_to_the_image(engine: FaceEngine) -> None:
    """A face found only on the padded copy lands where the first pass finds it."""
    pixels = load_image(FIXTURES / "lfw" / "Colin_Powell" / "Colin_Powell_0001.jpg").pixels
    direct = engine.embed(pixels, engine.detect(pixels)[:1])[0]
    blind = FaceEngine(detector=_Blind(engine.detector), embedder=engine.embedder)
    found = blind.find_faces(pixels)
    assert found.tried == ["blazeface", "blazeface on a padded copy"]
    retried = blind.embed(pixels, found.faces[:1])[0]
    assert retried.extra["found_by"] == "blazeface on a padded copy"
    assert np.abs(np.subtract(retried.box, direct.box)).max() <= 0.1 * direct.width, (retried.box, direct.box)
    assert np.abs(retried.landmarks - direct.landmarks).max() <= 3.0  # type: ignore[operator]
    assert _cosine(retried, direct) >= 0.99


def test_no_retry_when_the_first_pass_finds_a_face(engine: FaceEngine) -> None:
    counting = _Blind(engine.detector)
    counting.calls = 1  # sees from the start
    found = FaceEngine(detector=counting, embedder=engine.embedder).find_faces(
        load_image(FIXTURES / "lfw" / "Tony_Blair" / "Tony_Blair_0002.jpg").pixels
    )
    assert len(found.faces) == 1 and found.tried == ["blazeface"] and counting.calls == 2


def test_no_face_error_says_what_was_tried(engine: FaceEngine) -> None:
    moon = load_image(FIXTURES / "no_faces" / "skimage_moon.png")
    with pytest.raises(NoFaceError, match=r"no face found \(tried blazeface, blazeface on a padded copy, hog on"):
        image_faces(engine, moon, "single")
    assert image_faces(engine, moon, "all") == []


def _crops(data_dir: Path, pattern: str) -> list[Path]:
    files = sorted(data_dir.glob(pattern))
    assert files, f"no {pattern} in {data_dir}"
    return files


def _no_face(engine: FaceEngine, files: list[Path]) -> list[str]:
    missed = []
    for path in files:
        try:
            image_faces(engine, load_image(path), "single")
        except NoFaceError as exc:
            missed.append(str(exc))
    return missed


def test_tight_gallery_crops_have_a_face(data_dir: Path, engine: FaceEngine) -> None:
    # BlazeFace alone misses 23 of the 40 face-api.js crops and 4 of the 14 SimpleFR ones
    assert len(_no_face(engine, _crops(data_dir, "face_api_js_bbt/*/*.png"))) <= 2
    assert _no_face(engine, _crops(data_dir, "videos/simplefr_gallery/*.png")) == []
    # identification looks again too (amy4.png: one BlazeFace misses on the original)
    assert len(engine.analyze(load_image(data_dir / "face_api_js_bbt" / "amy" / "amy4.png").pixels)) == 1


def test_tight_crops_found_by_the_retry_are_recognised(data_dir: Path, engine: FaceEngine) -> None:
    """Each face-api.js crop's nearest other crop is of the same character (8 x 5 crops)."""
    files = _crops(data_dir, "face_api_js_bbt/*/*.png")
    faces = [image_faces(engine, load_image(p), "largest")[0] for p in files]
    templates = np.stack([f.embedding for f in faces])  # type: ignore[misc]
    scores = templates @ templates.T
    np.fill_diagonal(scores, -1.0)
    wrong = [p.name for i, p in enumerate(files) if files[int(scores[i].argmax())].parent != p.parent]
    assert not wrong, wrong


def test_retry_finds_no_face_where_there_is_none(data_dir: Path, engine: FaceEngine) -> None:
    found = {
        p.name: len(engine.find_faces(load_image(p).pixels).faces) for p in sorted((data_dir / "no_faces").iterdir())
    }
    assert not any(found.values()), found
