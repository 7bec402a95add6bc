"""Encryption at rest (faceprint.gallery.crypto): with a key, no template is in the gallery's files in
the clear; without it, or with another, the gallery refuses to open and nothing changes; rekey."""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import stat
from pathlib import Path

import numpy as np
import pytest

from faceprint import settings
from faceprint.errors import GalleryError, GalleryKeyError, SettingError
from faceprint.gallery import Gallery, Template, crypto, open_store
from faceprint.gallery.sqlite import SQLiteStore
from faceprint.server.store import open_server_store
from tests.conftest import DEMO, faceprint

K1, K2 = bytes(range(32)), bytes(range(100, 132))


def key_env(key: bytes | None) -> dict[str, str]:
    """The environment of a run with this key (none: FACEPRINT_KEY empty, whatever the caller's is)."""
    return {"FACEPRINT_KEY": "" if key is None else key.hex(), "FACEPRINT_KEY_FILE": "", "FACEPRINT_NEW_KEY": ""}


def folder_bytes(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file())


def found_in(templates: list[np.ndarray], blob: bytes) -> dict[str, int]:
    """How many templates have some run of 4 consecutive values in ``blob`` as float16, float32 or float64
    bytes (4 values: 8 to 32 bytes, which random bytes match by chance with probability ~2^-64)."""
    found = {}
    for dtype in ("<f2", "<f4", "<f8"):
        found[dtype] = sum(
            any(t.astype(dtype)[i : i + 4].tobytes() in blob for i in range(0, len(t) - 3, 4)) for t in templates
        )
    return found


def digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.fixture(scope="module")
def demo_templates() -> list[np.ndarray]:
    """The demo gallery's templates as ``faceprint embed --json`` prints them."""
    proc = faceprint(Path("/nonexistent/g.db"), "-w", "1", "embed", "--json", str(DEMO / "gallery"), check=True)
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    return [np.asarray(f["embedding"], np.float32) for r in records for f in r["faces"]]


@pytest.fixture(scope="module")
def galleries(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The demo people enrolled through the CLI into an encrypted gallery (K1) and a plain one, each in
    its own folder, each searched once through a search index file (ANN cut-over at 1 identity)."""
    made = {}
    for kind, key in (("encrypted", K1), ("plain", None)):
        gallery = tmp_path_factory.mktemp(kind) / "gallery.db"
        env = {**key_env(key), "FACEPRINT_ANN_MIN_IDENTITIES": "1"}
        faceprint(gallery, "-w", "1", "enroll", str(DEMO / "gallery"), env=env, check=True)
        faceprint(gallery, "-w", "1", "identify", str(DEMO / "photos" / "obama1.jpg"), env=env, check=True)
        assert list(gallery.parent.glob("*.faiss")), "the search index file was not written"
        made[kind] = gallery
    return made


def test_no_template_in_the_clear(galleries: dict[str, Path], demo_templates: list[np.ndarray]) -> None:
    assert len(demo_templates) == 9
    # the scan finds every template in the plain gallery (file and index), so it can fail
    assert found_in(demo_templates, folder_bytes(galleries["plain"].parent))["<f4"] == 9
    assert found_in(demo_templates, folder_bytes(galleries["encrypted"].parent)) == {"<f2": 0, "<f4": 0, "<f8": 0}


def test_identify_equals_plain(galleries: dict[str, Path]) -> None:
    photos = sorted(str(p) for p in (DEMO / "photos").glob("*.jpg"))
    answers = {}
    for kind, key in (("encrypted", K1), ("plain", None)):
        args = ("-w", "1", "identify", "--json", "--top-k", "3", *photos)
        answers[kind] = faceprint(galleries[kind], *args, env=key_env(key), check=True).stdout
    assert answers["encrypted"] == answers["plain"] and answers["plain"].count("obama") >= 3


@pytest.mark.parametrize(
    ("env", "message", "code"),
    [
        (key_env(None), "the gallery is encrypted: give its key in FACEPRINT_KEY", 1),
        (key_env(K2), "the gallery is encrypted and this key does not open it", 1),
        ({**key_env(None), "FACEPRINT_KEY": "not-a-key"}, "FACEPRINT_KEY is not a valid key", 2),
    ],
)
def test_refused_without_its_key(galleries: dict[str, Path], env: dict[str, str], message: str, code: int) -> None:
    gallery = galleries["encrypted"]
    before = digest(gallery.parent)
    for args in (["people"], ["-w", "1", "enroll", "--name", "x", str(DEMO / "photos" / "obama1.jpg")]):
        proc = faceprint(gallery, *args, env=env)
        assert proc.returncode == code, proc.stderr
        assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
        assert "Traceback" not in proc.stderr
    assert digest(gallery.parent) == before


def test_rekey(galleries: dict[str, Path], demo_templates: list[np.ndarray], tmp_path: Path) -> None:
    gallery = tmp_path / "gallery.db"
    shutil.copy(galleries["encrypted"], gallery)
    (tmp_path / "new.key").write_text(K2.hex() + "\n")
    proc = faceprint(
        gallery, "gallery", "rekey", "--json", "--new-key-file", str(tmp_path / "new.key"), env=key_env(K1)
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) | {"gallery": ""} == {
        "gallery": "",
        "templates": 9,
        "was_encrypted": True,
        "encrypted": True,
        "key_id": crypto.key_id(K2),
        "index_files_removed": 0,
    }
    old = faceprint(gallery, "people", env=key_env(K1))
    assert old.returncode == 1 and "this key does not open it" in old.stderr
    new = faceprint(gallery, "--key-file", str(tmp_path / "new.key"), "people", "--json", env=key_env(K1), check=True)
    assert len(json.loads(new.stdout)["people"]) == 5
    # decrypt: it opens without a key, and a key is then refused (its templates are not encrypted)
    faceprint(gallery, "gallery", "rekey", "--decrypt", env=key_env(K2), check=True)
    assert faceprint(gallery, "people", env=key_env(None)).returncode == 0
    plain = faceprint(gallery, "people", env=key_env(K1))
    assert plain.returncode == 1 and "`faceprint gallery rekey`" in plain.stderr
    # and encrypt again: the first encryption of a plain gallery, its index files removed
    proc = faceprint(gallery, "gallery", "rekey", env={**key_env(None), "FACEPRINT_NEW_KEY": K1.hex()}, check=True)
    assert "encrypted 9 templates" in proc.stderr
    assert faceprint(gallery, "people", env=key_env(K1)).returncode == 0
    # vacuumed, -wal emptied: the plaintext pages are gone (a plain UPDATE would leave them in free pages)
    assert found_in(demo_templates, folder_bytes(tmp_path)) == {"<f2": 0, "<f4": 0, "<f8": 0}


def test_migrate_keeps_it_encrypted(galleries: dict[str, Path], tmp_path: Path) -> None:
    copy = tmp_path / "copy.db"
    proc = faceprint(
        galleries["encrypted"], "gallery", "migrate", str(galleries["encrypted"]), str(copy), env=key_env(K1)
    )
    assert proc.returncode == 0 and "verified: 5 people and 9 templates" in proc.stderr, proc.stderr
    assert faceprint(copy, "people", env=key_env(None)).returncode == 1  # the copy has its own salt, the same key
    assert faceprint(copy, "people", env=key_env(K1)).returncode == 0


def test_rekey_needs_a_new_key(galleries: dict[str, Path]) -> None:
    proc = faceprint(galleries["encrypted"], "gallery", "rekey", env=key_env(K1))
    assert proc.returncode == 2 and "--new-key-file or FACEPRINT_NEW_KEY" in proc.stderr


# the store, without the CLI ------------------------------------------------------------------------


def unit_vectors(n: int, dim: int = 128, seed: int = 0) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def enrol(gallery: Gallery, vectors: np.ndarray) -> None:
    for i, v in enumerate(vectors):
        gallery.add_templates(f"p{i}", [Template(v, "m", f"s{i}", f"{i:064x}", (0, 0, 1, 1))])


def test_rows_cannot_be_swapped(tmp_path: Path) -> None:
    path = tmp_path / "g.db"
    gallery = Gallery(path, key=K1)
    enrol(gallery, unit_vectors(2))
    gallery.close()
    db = sqlite3.connect(path)
    (a, ea), (b, eb) = db.execute("SELECT id, embedding FROM templates ORDER BY id").fetchall()
    db.executemany("UPDATE templates SET embedding=? WHERE id=?", [(eb, a), (ea, b)])
    db.commit()
    db.close()
    with pytest.raises(GalleryError, match="does not decrypt with the gallery's key"):
        Gallery(path, key=K1).matrix("m")


def test_key_for_plain_gallery_with_templates(tmp_path: Path) -> None:
    path = tmp_path / "g.db"
    enrol(Gallery(path, key=None), unit_vectors(3))
    before = path.read_bytes()
    with pytest.raises(GalleryKeyError, match="3 templates are not encrypted"):
        SQLiteStore(path, key=K1)
    assert path.read_bytes() == before


def test_interrupted_rekey_keeps_the_old_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "g.db"
    vectors = unit_vectors(4)
    enrol(Gallery(path, key=K1), vectors)
    store = SQLiteStore(path, key=K1)

    def crash(*_: object) -> None:
        raise KeyboardInterrupt  # after every template was re-sealed, before the header was written

    monkeypatch.setattr(crypto, "rekey_thumbnails", crash)
    with pytest.raises(KeyboardInterrupt):
        store.rekey(K2)
    store.close()
    with pytest.raises(GalleryKeyError):
        SQLiteStore(path, key=K2)
    np.testing.assert_array_equal(SQLiteStore(path, key=K1).matrix("m").vectors, vectors)


def test_first_encryption_leaves_no_plaintext(tmp_path: Path) -> None:
    """Checked while the store is still open: closing checkpoints the -wal file over the old pages, which
    hides a missing VACUUM; until then (or while another process reads) the old pages are in the files."""
    path = tmp_path / "g.db"
    vectors = unit_vectors(2000)
    gallery = Gallery(path, key=None)
    for i in range(0, len(vectors), 4):
        batch = [Template(v, "m", f"s{i + j}", f"{i + j:064x}", (0, 0, 1, 1)) for j, v in enumerate(vectors[i : i + 4])]
        gallery.add_templates(f"p{i}", batch)
    gallery.close()

    def in_the_clear() -> int:  # every 10th template's first 4 values as float32 (a full scan takes minutes)
        blob = folder_bytes(tmp_path)
        return sum(v[:4].tobytes() in blob for v in vectors[::10])

    assert in_the_clear() == 200
    store = SQLiteStore(path, key=None)
    assert store.rekey(K1) == len(vectors)
    assert in_the_clear() == 0
    store.close()


def test_index_file_sealed(tmp_path: Path) -> None:
    path = tmp_path / "g.db"
    vectors = unit_vectors(60)
    gallery = Gallery(path, key=K1, ann_min_identities=10)
    enrol(gallery, vectors)
    first = gallery.search(vectors[:5], "m", 3)
    gallery.close()
    (index_file,) = tmp_path.glob("*.faiss")
    assert found_in(list(vectors), index_file.read_bytes())["<f4"] == 0
    gallery = Gallery(path, key=K1, ann_min_identities=10)
    assert gallery.search(vectors[:5], "m", 3) == first
    assert gallery._indexes["m"].last_sync["how"] == "loaded"  # the sealed file opened, not rebuilt


def test_thumbnails_sealed(tmp_path: Path) -> None:
    path = tmp_path / "g.db"
    gallery = Gallery(path, key=K1)
    enrol(gallery, unit_vectors(1))
    jpeg = b"\xff\xd8\xff\xe0 a face crop \xff\xd9"
    service = open_server_store(gallery.store)
    assert service.set_thumbnail("p0", jpeg)
    assert service.thumbnail("p0") == jpeg and service.records()[1] == {"p0": jpeg}
    gallery.close()
    assert b"a face crop" not in path.read_bytes()
    store = SQLiteStore(path, key=K1)
    store.rekey(K2)  # thumbnails are re-sealed with the templates
    assert open_server_store(SQLiteStore(path, key=K2)).thumbnail("p0") == jpeg


def test_postgres_refused_with_a_key() -> None:
    with pytest.raises(GalleryError, match="supported for SQLite galleries only"):
        open_store("postgresql://user@localhost:1/db", key=K1)


def test_key_formats(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import base64

    for text in (K1.hex(), base64.b64encode(K1).decode(), base64.urlsafe_b64encode(K1).decode().rstrip("=")):
        assert settings.parse_key(f" {text}\n", "x") == K1
    for bad in ("", "abc", K1.hex()[:-2], base64.b64encode(K1 + b"!").decode()):
        with pytest.raises(SettingError, match="x is not a valid key"):
            settings.parse_key(bad, "x")
    monkeypatch.setenv("FACEPRINT_KEY", K1.hex())
    monkeypatch.setenv("FACEPRINT_KEY_FILE", str(tmp_path / "k"))
    with pytest.raises(SettingError, match="both set"):
        settings.gallery_key()


def test_key_file_option_errors(tmp_path: Path) -> None:
    gallery = tmp_path / "g.db"
    (tmp_path / "short.key").write_text("abcd")
    for path, message in (
        (tmp_path / "missing.key", "cannot read the key file"),
        (tmp_path / "short.key", "not a valid key"),
    ):
        proc = faceprint(gallery, "--key-file", str(path), "people", env=key_env(None))
        assert proc.returncode == 2 and message in proc.stderr and str(path) in proc.stderr, proc.stderr
        assert K1.hex() not in proc.stderr and "abcd" not in proc.stderr  # a key is never shown
    assert not gallery.exists()


def test_new_key(tmp_path: Path) -> None:
    out = tmp_path / "gallery.key"
    faceprint(tmp_path / "g.db", "gallery", "new-key", "--out", str(out), check=True)
    assert len(settings.read_key_file(out)) == 32 and stat.S_IMODE(out.stat().st_mode) == 0o600
    again = faceprint(tmp_path / "g.db", "gallery", "new-key", "--out", str(out))
    assert again.returncode == 2 and "never overwritten" in again.stderr
    printed = faceprint(tmp_path / "g.db", "gallery", "new-key", check=True).stdout
    assert len(settings.parse_key(printed, "printed")) == 32
