"""Erasure: ``faceprint remove NAME --purge`` leaves none of the person's templates in the gallery's
files (database, write-ahead log, shared memory, search index files), which a byte scan shows."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from faceprint.gallery import Gallery
from faceprint.gallery.sqlite import SQLiteStore

from .conftest import DEMO, faceprint

GONE = "alex_lacamoire"  # one photo: the index's centroid of them is their template
PHOTO = DEMO / "gallery" / GONE / "img1.jpg"
#: the search index from 2 people on, so that identify writes its files beside the gallery
ENV = {"FACEPRINT_ANN_MIN_IDENTITIES": "2"}


def vectors_in(data: bytes, vectors: np.ndarray) -> list[str]:
    """Where any of ``vectors`` appears in ``data`` as float32, float64 or float16 (at every byte
    alignment, within the rounding of that type, so a centroid equal but for the last bit counts)."""
    hits: list[str] = []
    dim = vectors.shape[1]
    for dtype, tol in ((np.float32, 1e-6), (np.float64, 1e-6), (np.float16, 2e-3)):
        size = np.dtype(dtype).itemsize
        for shift in range(size):
            count = (len(data) - shift) // size
            if count < dim:
                continue
            with np.errstate(all="ignore"):  # random bytes decode to inf and nan too
                values = np.frombuffer(data, dtype, count, shift).astype(np.float64)
                for k, v in enumerate(vectors):
                    for at in np.flatnonzero(np.abs(values[: count - dim + 1] - v[0]) <= tol):
                        if np.all(np.abs(values[at : at + dim] - v) <= tol):
                            hits.append(f"vector {k} as {np.dtype(dtype).name} at byte {shift + at * size}")
    return hits


def scan(folder: Path, vectors: np.ndarray) -> dict[str, list[str]]:
    """{file name: hits} for every file in the gallery's folder that holds any of ``vectors``."""
    found = {p.name: vectors_in(p.read_bytes(), vectors) for p in sorted(folder.iterdir()) if p.is_file()}
    return {name: hits for name, hits in found.items() if hits}


def test_scanner_finds_vectors_in_every_encoding() -> None:
    v = np.random.default_rng(0).normal(size=(1, 128))
    v /= np.linalg.norm(v)
    for dtype in (np.float32, np.float64, np.float16):
        blob = b"\x01\x02\x03" + v.astype(dtype).tobytes() + b"tail"
        assert vectors_in(blob, v), dtype
    assert not vectors_in(np.random.default_rng(1).bytes(4096), v)


@pytest.fixture()
def enrolled(tmp_path: Path) -> Path:
    folder = tmp_path / "gallery"
    folder.mkdir()
    gallery = folder / "g.db"
    faceprint(gallery, "enroll", str(DEMO / "gallery"), check=True, env=ENV)
    faceprint(gallery, "identify", str(DEMO / "photos" / "two_people.jpg"), check=True, env=ENV)  # writes the index
    return gallery


def removed_vectors(gallery: Path) -> np.ndarray:
    """What `faceprint embed --json` prints for the removed person's photo, and their centroid."""
    record = json.loads(faceprint(gallery, "embed", "--json", str(PHOTO), check=True).stdout)
    templates = np.asarray([f["embedding"] for f in record["faces"]], np.float64)
    centroid = templates.mean(axis=0)
    return np.vstack([templates, centroid / np.linalg.norm(centroid)])


def test_remove_purge_leaves_no_template_in_the_gallery_files(enrolled: Path) -> None:
    folder = enrolled.parent
    vectors = removed_vectors(enrolled)
    # a thumbnail, as the service keeps one per person in the same file
    from faceprint.server.store import ServerStore

    jpeg = PHOTO.read_bytes()
    assert ServerStore(enrolled).set_thumbnail(GONE, jpeg)

    assert any(jpeg[600:1600] in p.read_bytes() for p in folder.iterdir())
    before = scan(folder, vectors)
    index_files = [p.name for p in folder.iterdir() if p.suffix in (".faiss", ".json")]
    assert index_files, "identify wrote no index files"
    assert any(name.endswith(".faiss") for name in before), before  # the index holds the centroid
    assert any(name.startswith("g.db") and not name.endswith(".faiss") for name in before), before  # the records
    with sqlite3.connect(enrolled) as db:
        ident = db.execute("SELECT id FROM identities WHERE name=?", (GONE,)).fetchone()[0]
        assert db.execute("SELECT COUNT(*) FROM changes WHERE identity_id=?", (ident,)).fetchone()[0] > 0

    proc = faceprint(enrolled, "remove", GONE, "--purge", check=True, env=ENV)
    assert "alex_lacamoire' (1 template(s)); purged" in proc.stdout

    assert scan(folder, vectors) == {}
    for path in folder.iterdir():
        assert jpeg[600:1600] not in path.read_bytes(), path.name  # the thumbnail went with its row
    assert not [p for p in folder.iterdir() if p.suffix in (".faiss", ".json")]
    wal = folder / "g.db-wal"
    assert not wal.exists() or wal.stat().st_size == 0
    with sqlite3.connect(enrolled) as db:
        assert db.execute("SELECT COUNT(*) FROM changes WHERE identity_id=?", (ident,)).fetchone()[0] == 0
        assert db.execute("PRAGMA freelist_count").fetchone()[0] == 0

    # the others are still found (the index is rebuilt from the records)
    out = faceprint(enrolled, "identify", "--json", str(DEMO / "photos" / "two_people.jpg"), check=True, env=ENV)
    assert {f["identity"] for f in json.loads(out.stdout)["faces"]} == {"obama", "biden"}


def test_plain_remove_leaves_bytes_behind(enrolled: Path) -> None:
    """Why --purge exists: without it, the removed template is still in the files."""
    vectors = removed_vectors(enrolled)
    faceprint(enrolled, "remove", GONE, check=True, env=ENV)
    assert scan(enrolled.parent, vectors) != {}


def test_purge_one_photo_and_through_the_api(tmp_path: Path, engine: object) -> None:
    from faceprint import Recognizer

    rec = Recognizer(Gallery(tmp_path / "g.db"), engine)  # type: ignore[arg-type]
    rec.enroll("biden", sorted((DEMO / "gallery" / "biden").iterdir()))
    rec.enroll("obama", sorted((DEMO / "gallery" / "obama").iterdir()))
    first = rec.gallery.templates("biden")[0]
    rec.gallery.remove_template("biden", int(first.id or 0), purge=True)
    assert scan(tmp_path, first.embedding[None].astype(np.float64)) == {}
    assert len(rec.gallery.templates("biden")) == 1
    n = rec.gallery.remove("obama", purge=True)
    assert n == 2 and [i.name for i in SQLiteStore(tmp_path / "g.db").identities()] == ["biden"]


def test_purge_postgres(pg_url: str) -> None:
    """PostgreSQL: the rows and their change log go, and VACUUM FULL rewrites the tables (new files)."""
    import psycopg

    from faceprint.gallery.base import Template

    gallery = Gallery(pg_url)
    rng = np.random.default_rng(0)
    for name in ("ann", "bob"):
        vector = rng.normal(size=8).astype(np.float32)
        gallery.add_templates(name, [Template(vector / np.linalg.norm(vector), "m", "s", name, (0, 0, 1, 1))])

    def files() -> tuple[int, int]:
        with psycopg.connect(pg_url) as conn:
            row = conn.execute("SELECT pg_relation_filenode('templates'), COUNT(*) FROM changes").fetchone()
            return int(row[0]), int(row[1])  # type: ignore[index]

    node, changes = files()
    assert gallery.remove("ann", purge=True) == 1
    new_node, new_changes = files()
    assert new_node != node and new_changes == changes - 1  # ann's enrolment row went (the removal's too)
    assert [i.name for i in gallery.identities()] == ["bob"]
    gallery.close()


def test_service_delete_purges_by_default(tmp_path: Path, engine: object) -> None:
    from fastapi.testclient import TestClient

    from faceprint import Recognizer
    from faceprint.server import ServerStore, create_app

    path = tmp_path / "g.db"
    rec = Recognizer(Gallery(path), engine)  # type: ignore[arg-type]
    store = ServerStore(path)
    admin, _ = store.create_key("admin")
    with TestClient(create_app(rec, store=store), headers={"Authorization": f"Bearer {admin}"}) as client:
        for person in ("obama", "biden"):
            photos = sorted((DEMO / "gallery" / person).iterdir())
            files = [("files", (p.name, p.read_bytes(), "image/jpeg")) for p in photos]
            assert client.post(f"/v1/identities/{person}/images?create=true", files=files).status_code == 200
        vectors = np.stack([t.embedding for t in rec.gallery.templates("biden")]).astype(np.float64)
        thumbnail = store.thumbnail("biden")
        assert thumbnail and scan(tmp_path, vectors)
        gone = client.delete("/v1/identities/biden")
        assert gone.json() == {"name": "biden", "templates_removed": 2, "purged": True}
        assert scan(tmp_path, vectors) == {}
        assert not any(thumbnail[200:1200] in p.read_bytes() for p in tmp_path.iterdir())
        kept = client.delete("/v1/identities/obama?purge=false")
        assert kept.json() == {"name": "obama", "templates_removed": 2, "purged": False}
