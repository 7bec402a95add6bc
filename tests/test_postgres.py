"""What only the PostgreSQL store has: URLs, schema migrations, connection errors, read-only users,
processes sharing a pool's store, the migrate command, and `faceprint serve` replicas on one database.
The behaviour both stores share is tested over both (``gallery_url`` in test_gallery, test_index and
test_recognize)."""

from __future__ import annotations

import multiprocessing
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

psycopg = pytest.importorskip("psycopg", reason="PostgreSQL tests need the postgres extra")

from faceprint.errors import GalleryError, GalleryNotFoundError, ReadOnlyGalleryError  # noqa: E402
from faceprint.gallery import Gallery, SQLiteStore, Template, open_store  # noqa: E402
from faceprint.gallery.location import shown_url  # noqa: E402
from faceprint.gallery.postgres import MIGRATIONS, SCHEMA_VERSION, PostgresStore, database_error  # noqa: E402
from faceprint.server.store import PostgresServerStore, open_server_store  # noqa: E402

from .conftest import DEMO, Postgres, faceprint  # noqa: E402

MODEL = "test-model"


def template(seed: int, sha: str, dim: int = 16) -> Template:
    v = np.random.default_rng(seed).normal(size=dim).astype(np.float32)
    return Template(
        embedding=v / np.linalg.norm(v), model=MODEL, source=f"{sha}.jpg", file_sha256=sha, box=(1, 2, 3, 4)
    )


def admin_sql(url: str, *statements: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for sql in statements:
            conn.execute(sql)


# ---------------------------------------------------------------------------- locations
def test_urls_pick_the_store_and_never_become_folders(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert isinstance(open_store(pg_url), PostgresStore)
    assert isinstance(open_store(pg_url.replace("postgresql://", "postgres://", 1)), PostgresStore)
    with pytest.raises(GalleryError, match="unknown gallery URL scheme 'mysql'") as info:
        open_store("mysql://user:secret@host/db")
    assert "secret" not in str(info.value)
    with pytest.raises(GalleryError, match="lost its '//'"):
        open_store(Path("postgresql://host/db"))  # what a Path makes of a URL
    assert list(tmp_path.iterdir()) == []  # no "postgresql:" folder, no SQLite file
    assert shown_url("postgresql://ann:pw@db.example:5433/g?sslmode=require&password=x") == (
        "postgresql://ann@db.example:5433/g?sslmode=require&password=***"
    )


def test_connection_errors_say_what_is_wrong(postgres: Postgres, tmp_path: Path) -> None:
    with pytest.raises(GalleryError, match="the database does not exist"):
        open_store(postgres.url("no_such_database"))
    with pytest.raises(GalleryError, match="refused the login"):
        open_store(postgres.url().replace("postgres:@", "nobody@", 1))
    down = postgres.url().split("?")[0] + f"?host={tmp_path}"  # no server listens there
    with pytest.raises(GalleryError, match="cannot reach the database server"):
        open_store(down)
    refused = database_error("db", psycopg.OperationalError('password authentication failed for user "ann"'))
    assert "refused the login" in str(refused)
    full = database_error("db", psycopg.errors.DiskFull("could not extend file: No space left on device"))
    assert "disk is full" in str(full)


def test_a_missing_gallery_is_created_only_when_asked(pg_url: str) -> None:
    with pytest.raises(GalleryNotFoundError, match="no gallery in this database"):
        Gallery(pg_url, create=False)
    with psycopg.connect(pg_url) as conn:
        assert PostgresStore.schema_version(conn) == 0  # nothing was created
    Gallery(pg_url).add_templates("ann", [template(0, "a")])
    assert [i.name for i in Gallery(pg_url, create=False).identities()] == ["ann"]


def test_a_database_with_other_tables_is_not_taken_for_a_gallery(pg_url: str) -> None:
    admin_sql(pg_url, "CREATE TABLE identities (x int)")
    with pytest.raises(GalleryError, match="not a faceprint gallery"):
        open_store(pg_url)


# ---------------------------------------------------------------------------- schema
def test_schema_is_versioned_and_older_ones_are_migrated(pg_url: str) -> None:
    # what a faceprint of schema 1 left behind (no service tables yet), with a person in it
    with psycopg.connect(pg_url) as conn, conn.transaction(), conn.cursor() as cur:
        cur.execute(
            "CREATE TABLE schema_version (version integer PRIMARY KEY, applied_at timestamptz NOT NULL "
            "DEFAULT now(), faceprint text NOT NULL)"
        )
        MIGRATIONS[1](cur)
        cur.execute("INSERT INTO schema_version (version, faceprint) VALUES (1, 'old')")
        cur.execute("INSERT INTO identities (name) VALUES ('ann')")
    store = PostgresStore(pg_url, create=False)  # opening migrates, even without create
    with psycopg.connect(pg_url) as conn:
        assert [r[0] for r in conn.execute("SELECT version FROM schema_version ORDER BY version")] == [1, 2, 3]
    assert [i.name for i in store.identities()] == ["ann"]
    assert open_server_store(store).list_keys() == []  # the tables of version 2 are there
    admin_sql(pg_url, "INSERT INTO schema_version (version, faceprint) VALUES (99, 'future')")
    with pytest.raises(GalleryError, match="newer faceprint"):
        PostgresStore(pg_url)


def test_replicas_starting_together_migrate_once(pg_url: str) -> None:
    stores: list[PostgresStore] = []
    errors: list[BaseException] = []

    def start() -> None:
        try:
            stores.append(PostgresStore(pg_url))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(stores) == 6
    with psycopg.connect(pg_url) as conn:
        assert [r[0] for r in conn.execute("SELECT version FROM schema_version")] == list(range(1, SCHEMA_VERSION + 1))


def test_a_user_without_write_rights_reads_but_cannot_write(pg_url: str) -> None:
    store = PostgresStore(pg_url)
    store.add_templates("ann", [template(0, "a")])
    database = pg_url.split("?")[0].rsplit("/", 1)[1]
    admin_sql(
        pg_url,
        "DROP ROLE IF EXISTS faceprint_reader",
        "CREATE ROLE faceprint_reader LOGIN",
        f"GRANT CONNECT ON DATABASE {database} TO faceprint_reader",
        "GRANT SELECT ON ALL TABLES IN SCHEMA public TO faceprint_reader",
    )
    try:
        reader = PostgresStore(pg_url.replace("postgres:@", "faceprint_reader@", 1))
        assert reader.read_only and [i.name for i in reader.identities()] == ["ann"]
        assert Gallery(reader).search(template(0, "a").embedding, MODEL)[0][0].identity == "ann"
        with pytest.raises(ReadOnlyGalleryError, match="read-only"):
            reader.add_templates("bob", [template(1, "b")])
        service = open_server_store(reader)
        assert service.read_only and not service.set_thumbnail("ann", b"jpeg")
        reader.close()
    finally:
        admin_sql(
            pg_url,
            "REASSIGN OWNED BY faceprint_reader TO postgres",
            "DROP OWNED BY faceprint_reader",
            "DROP ROLE faceprint_reader",
        )


# ---------------------------------------------------------------------------- processes
def _child_writes(url: str, store: PostgresStore, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    store.add_templates("child", [template(7, "child")])  # over a pool of its own, not the parent's sockets
    out.put(store.version())


def test_a_forked_process_gets_its_own_connections(pg_url: str) -> None:
    store = PostgresStore(pg_url)
    store.add_templates("parent", [template(6, "parent")])
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    child = ctx.Process(target=_child_writes, args=(pg_url, store, out))
    child.start()
    child.join(60)
    assert child.exitcode == 0 and out.get(timeout=5) == 2
    assert [i.name for i in store.identities()] == ["child", "parent"]  # the parent's pool still works


def test_the_index_rebuilds_when_the_change_log_cannot_tell(pg_url: str) -> None:
    rng = np.random.default_rng(3)
    store = PostgresStore(pg_url)
    for k in range(150):
        store.add_templates(f"p{k}", [template(k, f"s{k}")])
    gallery = Gallery(pg_url, ann_min_identities=100)
    q = rng.normal(size=16).astype(np.float32)
    q /= np.linalg.norm(q)
    gallery.search(q, MODEL)
    assert gallery._indexes[MODEL].last_sync["how"] == "built"
    store.add_templates("newcomer", [Template(q, MODEL, "n.jpg", "n", (0, 0, 1, 1))])
    assert gallery.search(q, MODEL)[0][0].identity == "newcomer"
    assert gallery._indexes[MODEL].last_sync["how"] == "caught up"
    store.add_templates("another", [template(999, "another")])
    with store.transaction() as cur:
        cur.execute("DELETE FROM changes")  # pruned, say
    assert gallery.search(q, MODEL)[0][0].identity == "newcomer"
    assert gallery._indexes[MODEL].last_sync["how"] == "built"


# ---------------------------------------------------------------------------- the command line
def test_cli_on_a_database_url_writes_nothing_locally(pg_url: str, tmp_path: Path) -> None:
    env = {"FACEPRINT_CACHE": str(tmp_path / "cache")}
    work = tmp_path / "work"
    work.mkdir()
    prefix = ("env", "-C", str(work))  # run in an empty folder: nothing may appear there
    assert faceprint(pg_url, "people", prefix=prefix, env=env).returncode == 1  # no gallery yet, none made
    enrolled = faceprint(pg_url, "enroll", str(DEMO / "gallery"), prefix=prefix, env=env)
    assert enrolled.returncode == 0, enrolled.stderr
    found = faceprint(
        pg_url,
        "--gallery",
        pg_url,
        "identify",
        "--json",
        str(DEMO / "photos" / "two_people.jpg"),
        prefix=prefix,
        env=env,
    )
    assert found.returncode == 0, found.stderr
    assert '"biden"' in found.stdout and '"obama"' in found.stdout
    assert list(work.iterdir()) == []
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT count(*) FROM templates").fetchone() == (9,)
    bad = faceprint("sqlite://x.db", "people", prefix=prefix, env=env)
    assert bad.returncode == 1 and "unknown gallery URL scheme 'sqlite'" in bad.stderr


def test_migrate_sqlite_to_postgres_and_back(pg_url: str, tmp_path: Path) -> None:
    src = tmp_path / "src.db"
    store = SQLiteStore(src)
    for k in range(30):
        store.add_templates(f"person {k}", [template(100 * k + j, f"{k}-{j}") for j in range(k % 3 + 1)])
    store.add_identity("nobody yet", {"team": "red"})
    store.set_setting("identify_threshold:test-model", 0.8125)
    service = open_server_store(store)
    secret, _ = service.create_key("admin", "ops")
    service.set_thumbnail("person 3", b"\xff\xd8thumb")
    there = faceprint(tmp_path / "unused.db", "gallery", "migrate", str(src), pg_url, "--json")
    assert there.returncode == 0, there.stderr
    assert '"verified": true' in there.stdout
    pg = PostgresStore(pg_url)
    assert pg.get_setting("identify_threshold:test-model") == 0.8125
    assert pg.get_identity("nobody yet").metadata == {"team": "red"}
    keys = open_server_store(pg)
    assert isinstance(keys, PostgresServerStore) and keys.authenticate(secret) is not None
    assert keys.thumbnail("person 3") == b"\xff\xd8thumb"
    back = faceprint(tmp_path / "unused.db", "gallery", "migrate", pg_url, str(tmp_path / "back.db"))
    assert back.returncode == 0, back.stderr
    assert "counts and checksums agree" in back.stderr
    again = faceprint(tmp_path / "unused.db", "gallery", "migrate", str(src), pg_url)
    assert again.returncode == 1 and "migrate into an empty gallery" in again.stderr
    assert not (tmp_path / "unused.db").exists()


# ---------------------------------------------------------------------------- replicas
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture()
def replicas(pg_url: str, tmp_path: Path) -> Iterator[list[str]]:
    """Two `faceprint serve` processes over one database: their base URLs."""
    env = {**os.environ, "FACEPRINT_GALLERY": pg_url, "FACEPRINT_CACHE": str(tmp_path / "cache")}
    procs, urls = [], []
    for k in range(2):
        port = free_port()
        log = open(tmp_path / f"replica{k}.log", "w")  # noqa: SIM115 - closed with the process
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "faceprint.cli", "serve", "--port", str(port), "--log-level", "warning"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
        urls.append(f"http://127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + 120
        for url, proc in zip(urls, procs):
            while True:
                assert proc.poll() is None, (tmp_path / f"replica{urls.index(url)}.log").read_text()
                try:
                    if httpx.get(url + "/v1/health", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, "a replica did not start"
                time.sleep(0.2)
        yield urls
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(30)


def test_two_replicas_share_people_keys_and_thumbnails(replicas: list[str], pg_url: str) -> None:
    a, b = replicas
    created = faceprint(pg_url, "keys", "create", "--role", "admin")
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip().splitlines()[-1]
    headers = {"Authorization": f"Bearer {key}"}
    obama = sorted((DEMO / "gallery" / "obama").iterdir())
    files = [("files", (p.name, p.read_bytes(), "image/jpeg")) for p in obama]
    r = httpx.post(a + "/v1/identities/obama/images", params={"create": True}, files=files, headers=headers, timeout=60)
    assert r.status_code == 200 and r.json()["added"] == 2, r.text
    # the other replica: at once (it reads the gallery's version before every search)
    photo = DEMO / "photos" / "obama1.jpg"
    r = httpx.post(
        b + "/v1/identify", files={"image": (photo.name, photo.read_bytes(), "image/jpeg")}, headers=headers, timeout=60
    )
    assert r.status_code == 200 and [f["identity"] for f in r.json()["faces"]] == ["obama"], r.text
    thumb = httpx.get(b + "/v1/identities/obama/thumbnail", headers=headers, timeout=30)
    assert thumb.status_code == 200 and thumb.content[:2] == b"\xff\xd8"
    revoked = faceprint(pg_url, "keys", "revoke", "1")
    assert revoked.returncode == 0, revoked.stderr
    for replica in replicas:  # a key revoked once is refused by every replica
        assert httpx.get(replica + "/v1/identities", headers=headers, timeout=30).status_code == 401
