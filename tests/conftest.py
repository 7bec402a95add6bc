from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

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


def unprivileged() -> list[str]:
    """A command prefix that drops root (root ignores file permissions: a read-only gallery is only
    read-only to another user), or none when not root. Skips, with the reason, where that user cannot
    run faceprint from this checkout (a clone inside a folder only root may enter)."""
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: cannot test as a user that permissions apply to")
    prefix = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    probe = subprocess.run([*prefix, sys.executable, "-c", "import faceprint"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"user 65534 cannot import faceprint from this checkout: {probe.stderr.strip()[-160:]}")
    return prefix


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
    enrol_demo_people(path, engine)
    return path


def enrol_demo_people(location: str | Path, engine: FaceEngine) -> None:
    rec = Recognizer(Gallery(location), engine)
    for person in sorted((DEMO / "gallery").iterdir()):
        result = rec.enroll(person.name, sorted(person.iterdir()))
        assert not result.errors, result.errors
    rec.gallery.close()


# PostgreSQL ---------------------------------------------------------------------------------------
class Postgres:
    """The session's PostgreSQL server: a fresh database per test, dropped afterwards."""

    def __init__(self, server: Any) -> None:
        self.server = server
        self._names = itertools.count()

    def url(self, database: str = "postgres") -> str:
        return str(self.server.get_uri(database))

    def _admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(sql)

    def new_database(self) -> str:
        name = f"faceprint_test_{os.getpid()}_{next(self._names)}"
        self._admin(f"CREATE DATABASE {name}")
        return self.url(name)

    def drop_database(self, url: str) -> None:
        name = url.split("?")[0].rsplit("/", 1)[1]
        self._admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")  # FORCE: ends connections left open


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """A PostgreSQL 16 server with pgvector for the session, run by pgserver from its wheel in a temp
    folder (as root, pgserver runs it as the system user ``pgserver``, which it creates). Skipped, with
    the reason, only where the server cannot start."""
    try:
        with warnings.catch_warnings():  # platformdirs: no $XDG_RUNTIME_DIR here, so /tmp/runtime-<uid> (fine)
            warnings.simplefilter("ignore")
            import pgserver
    except ImportError as exc:
        pytest.skip(f"PostgreSQL tests need the postgres extra (pip install -e '.[postgres]'): {exc}")
    top = Path(tempfile.mkdtemp(prefix="faceprint-pg-"))
    try:
        server = pgserver.get_server(top / "data", cleanup_mode="stop")
    except Exception as exc:  # noqa: BLE001 - any failure to start means: no server here, say why
        shutil.rmtree(top, ignore_errors=True)
        pytest.skip(f"the PostgreSQL server could not start: {type(exc).__name__}: {exc}")
    yield Postgres(server)
    server.cleanup()
    shutil.rmtree(top, ignore_errors=True)


@pytest.fixture()
def pg_stores(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """Every PostgresStore opened during the test, closed after it (their pools hold connections)."""
    from faceprint.gallery.postgres import PostgresStore

    opened: list[Any] = []
    original = PostgresStore.__init__

    def recording(self: Any, *args: Any, **kwargs: Any) -> None:
        opened.append(self)
        original(self, *args, **kwargs)

    monkeypatch.setattr(PostgresStore, "__init__", recording)
    yield opened
    for store in opened:
        store.close()


@pytest.fixture()
def pg_url(postgres: Postgres, pg_stores: list[Any]) -> Iterator[str]:
    """The URL of an empty database of its own for this test."""
    url = postgres.new_database()
    yield url
    for store in pg_stores:
        store.close()
    postgres.drop_database(url)


@pytest.fixture(params=["sqlite", "postgresql"])
def gallery_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a test's gallery lives, once per store: a SQLite file, then a PostgreSQL database."""
    if request.param == "sqlite":
        return str(tmp_path / "g.db")
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture(scope="session")
def demo_gallery_pg(postgres: Postgres, engine: FaceEngine) -> str:
    """A PostgreSQL database with the five demo people enrolled (built once per session)."""
    url = postgres.new_database()
    enrol_demo_people(url, engine)
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def demo_location(request: pytest.FixtureRequest) -> str:
    """The demo people's gallery, once per store."""
    if request.param == "sqlite":
        return str(request.getfixturevalue("demo_gallery"))
    url = str(request.getfixturevalue("demo_gallery_pg"))  # first: skips where no server can start
    request.getfixturevalue("pg_stores")
    return url
