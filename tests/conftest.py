from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from faceprint import FaceEngine, Recognizer
from faceprint.gallery import Gallery

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"
DEMO = REPO / "demo"


def faceprint(
    gallery: Path,
    *args: str,
    check: bool = False,
    env: dict[str, str] | None = None,
    prefix: Sequence[str] = (),
    timeout: float = 600,
) -> subprocess.CompletedProcess[str]:
    """Run the ``faceprint`` command in a new process over ``gallery`` (``prefix``: e.g. setpriv
    to run it as another user)."""
    full_env = {**os.environ, "FACEPRINT_GALLERY": str(gallery), "COLUMNS": "200", **(env or {})}
    proc = subprocess.run(
        [*prefix, sys.executable, "-m", "faceprint.cli", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
    )
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def damage_gallery(gallery: Path) -> None:
    """Overwrite the pages of a gallery's templates table with garbage (the file header stays valid)."""
    import sqlite3

    with sqlite3.connect(gallery) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        pages = [r[0] for r in db.execute("SELECT pageno FROM dbstat WHERE name='templates'")]
    with open(gallery, "r+b") as fh:
        for page in pages:
            fh.seek((page - 1) * 4096)
            fh.write(os.urandom(4096))


def shared_data_dir() -> Path | None:
    """``$FACEPRINT_DATA`` or ``../shared/data`` beside the repository, if present."""
    env = os.environ.get("FACEPRINT_DATA")
    for candidate in ([Path(env)] if env else []) + [REPO.parent / "shared" / "data"]:
        if (candidate / "lfw").is_dir():
            return candidate
    return None


@pytest.fixture(scope="session")
def data_dir() -> Path:
    path = shared_data_dir()
    if path is None:
        pytest.skip("shared evaluation data not found (set FACEPRINT_DATA or put it at ../shared/data)")
    return path


@pytest.fixture(scope="session")
def engine() -> FaceEngine:
    return FaceEngine()


@pytest.fixture()
def recognizer(tmp_path: Path, engine: FaceEngine) -> Recognizer:
    return Recognizer(Gallery(tmp_path / "gallery.db"), engine)


@pytest.fixture(scope="session")
def demo_gallery(tmp_path_factory: pytest.TempPathFactory, engine: FaceEngine) -> Path:
    """A gallery file with the five demo people enrolled (built once per session)."""
    path = tmp_path_factory.mktemp("demo") / "gallery.db"
    rec = Recognizer(Gallery(path), engine)
    for person in sorted((DEMO / "gallery").iterdir()):
        result = rec.enroll(person.name, sorted(person.iterdir()))
        assert not result.errors, result.errors
    rec.gallery.close()
    return path
