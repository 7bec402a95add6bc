"""The embedded gallery: one SQLite file (WAL mode, every write in a transaction)."""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from faceprint.errors import (
    GalleryError,
    GalleryNotFoundError,
    IdentityExistsError,
    PhotoNotFoundError,
    ReadOnlyGalleryError,
    UnknownIdentityError,
)
from faceprint.gallery import crypto
from faceprint.gallery.base import (
    Identity,
    Template,
    TemplateMatrix,
    changes_since,
    error_guard,
    group_centroids,
)
from faceprint.names import normalize_name, shown, validate_name

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS identities (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    metadata TEXT NOT NULL DEFAULT '{}',
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS templates (
    id INTEGER PRIMARY KEY,
    identity_id INTEGER NOT NULL REFERENCES identities(id) ON DELETE CASCADE,
    model TEXT NOT NULL,
    dim INTEGER NOT NULL,
    embedding BLOB NOT NULL,
    source TEXT NOT NULL,
    file_sha256 TEXT NOT NULL,
    box TEXT NOT NULL,
    quality REAL,
    created_at TEXT NOT NULL,
    UNIQUE (identity_id, file_sha256, box, model)
);
CREATE INDEX IF NOT EXISTS templates_by_identity ON templates(identity_id);
CREATE INDEX IF NOT EXISTS templates_by_model ON templates(model);
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS changes (version INTEGER NOT NULL, identity_id INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS changes_by_version ON changes(version);
"""

#: How many versions of per-identity changes are kept, so that an index older than that rebuilds.
CHANGE_LOG_VERSIONS = 100_000


class ThreadConnections:
    """One SQLite connection per thread (sqlite3 connections must not be shared across
    threads), each in WAL mode with foreign keys on, autocommit unless a transaction is begun.

    ``read_only``: the file or its folder is not writable. The file is opened with
    ``mode=ro``; a WAL file whose shared-memory index cannot be created there is opened as
    immutable (nobody can be writing it through a folder we cannot write either)."""

    def __init__(self, path: Path, read_only: bool = False) -> None:
        self.path = path
        self.read_only = read_only
        self._local = threading.local()

    def _connect(self) -> sqlite3.Connection:
        if not self.read_only:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            return db
        uri = self.path.resolve().as_uri()
        for flags in ("?mode=ro", "?mode=ro&immutable=1"):
            db = sqlite3.connect(uri + flags, timeout=30, isolation_level=None, uri=True)
            try:
                db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
                return db
            except sqlite3.OperationalError:
                db.close()  # a WAL file needs its -shm index, which a read-only folder cannot hold
        return sqlite3.connect(uri + "?mode=ro&immutable=1", timeout=30, isolation_level=None, uri=True)

    def get(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            try:
                db = self._connect()
                db.execute("PRAGMA foreign_keys=ON")
                if not self.read_only:
                    db.execute("PRAGMA synchronous=NORMAL")
            except sqlite3.DatabaseError as exc:
                raise gallery_error(self.path, exc) from exc
            self._local.db = db
        return db

    def close(self) -> None:
        """Close this thread's connection."""
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None


def writable(path: Path) -> bool:
    """Whether SQLite can write the gallery: the file, and its folder (for the -wal and -shm files)."""
    return os.access(path, os.W_OK) and os.access(path.parent, os.W_OK | os.X_OK)


def read_only_error(path: Path) -> ReadOnlyGalleryError:
    return ReadOnlyGalleryError(f"{path}: the gallery is read-only (file or folder not writable): cannot change it")


def gallery_error(path: Path, exc: sqlite3.Error) -> GalleryError:
    """A SQLite failure as a message a user can act on (it names the file and the cause)."""
    text = str(exc)
    low = text.lower()
    if "readonly" in low or "read-only" in low:
        return read_only_error(path)
    if "disk is full" in low or "disk full" in low:
        return GalleryError(f"{path}: the disk is full: nothing more could be written to the gallery")
    if "malformed" in low or "not a database" in low or "corrupt" in low:
        return GalleryError(
            f"{path}: the gallery file is damaged ({text}); restore it from a backup (or try: sqlite3 FILE .recover)"
        )
    if "locked" in low or "busy" in low:
        return GalleryError(f"{path}: the gallery is locked by another process ({text}); try again")
    if "unable to open" in low:
        return GalleryError(f"{path}: cannot open the gallery file ({text})")
    return GalleryError(f"{path}: gallery error: {text}")


#: Any SQLite error inside a store method becomes a :class:`GalleryError` naming the file.
_guarded = error_guard(sqlite3.Error, lambda store, exc: gallery_error(store.path, exc))  # type: ignore[arg-type]


def create_gallery_file(path: Path) -> None:
    """Create a new, complete gallery file at ``path`` atomically: the schema is written under a
    temporary name and linked into place, so no reader ever sees a file without its tables. If
    another process created ``path`` meanwhile, its file is kept."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        db = sqlite3.connect(tmp, isolation_level=None)
        try:
            db.executescript(_SCHEMA)
            db.execute("INSERT INTO settings VALUES ('schema_version', ?)", (json.dumps(SCHEMA_VERSION),))
        finally:
            db.close()
        try:
            os.link(tmp, path)  # unlike rename, fails instead of replacing a file created meanwhile
        except FileExistsError:
            pass
        except OSError:  # a file system without hard links
            if not path.exists():
                os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class SQLiteStore:
    """Gallery storage in one SQLite file. Safe for several threads and processes."""

    def __init__(self, path: str | Path, create: bool = True, key: crypto.KeySource = "environment") -> None:
        """Open the gallery at ``path``; a missing one is created only when ``create`` (commands
        that only read say it does not exist instead). A file or folder that is not writable is
        opened read-only: reading works, writing raises :class:`ReadOnlyGalleryError`.

        ``key``: the key of an encrypted gallery (default: $FACEPRINT_KEY or $FACEPRINT_KEY_FILE), see
        :mod:`faceprint.gallery.crypto`; a gallery without templates opened with one becomes encrypted."""
        self.path = Path(path)
        #: seals and opens the templates of an encrypted gallery; None: the gallery is not encrypted
        self.cipher: crypto.GalleryCipher | None = None
        key = crypto.resolve_key(key)
        if self.path.is_dir():
            raise GalleryError(f"{self.path}: is a folder, not a gallery file")
        if not self.path.exists():
            if not create:
                raise GalleryNotFoundError(
                    f"{self.path}: no gallery here (check --gallery / $FACEPRINT_GALLERY, or enrol someone first)"
                )
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                create_gallery_file(self.path)
            except OSError as exc:
                raise GalleryError(f"{self.path}: cannot create the gallery: {exc.strerror or exc}") from exc
            except sqlite3.Error as exc:
                raise gallery_error(self.path, exc) from exc
        self.read_only = not writable(self.path)
        self._conn = ThreadConnections(self.path, self.read_only)
        self._open()
        self.cipher = self._open_encryption(key)

    @_guarded
    def _open(self) -> None:
        db = self._db()
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if not {"identities", "templates", "settings"} <= tables:
            if tables or self.read_only:
                raise GalleryError(f"{self.path}: not a faceprint gallery (it has other tables)")
            # an empty SQLite file (made by another tool, or a faceprint that crashed mid-create)
            db.executescript(_SCHEMA)
        elif not self.read_only:
            db.executescript(_SCHEMA)  # tables added by later versions (IF NOT EXISTS)
        row = db.execute("SELECT value FROM settings WHERE key='schema_version'").fetchone()
        if row is None and not self.read_only:
            with self._tx() as tx:
                tx.execute("INSERT OR IGNORE INTO settings VALUES ('schema_version', ?)", (json.dumps(SCHEMA_VERSION),))
        elif row is not None and json.loads(row[0]) > SCHEMA_VERSION:
            raise GalleryError(f"{self.path}: gallery written by a newer faceprint (schema {row[0]})")

    @_guarded
    def _open_encryption(self, key: bytes | None) -> crypto.GalleryCipher | None:
        """The gallery's cipher, after checking the key (before anything is written): an encrypted
        gallery needs its key; a key is refused for a gallery with unencrypted templates, and encrypts
        one without templates."""
        header = crypto.stored_header(self._db())
        if header is not None:
            if key is None:
                raise crypto.missing_key_error(self.path)
            return crypto.GalleryCipher.from_header(key, header, self.path)
        if key is None:
            return None
        count = "SELECT COUNT(*) FROM templates"
        if n := self._db().execute(count).fetchone()[0]:
            raise crypto.plain_gallery_error(self.path, n)
        if self.read_only:
            return None  # nothing to read, and nothing can be added
        with self._tx() as db:
            header = crypto.stored_header(db)
            if header is None:  # unless another process encrypted it meanwhile
                if n := db.execute(count).fetchone()[0]:
                    raise crypto.plain_gallery_error(self.path, n)
                cipher = crypto.GalleryCipher.create(key)
                db.execute("INSERT INTO settings VALUES (?, ?)", (crypto.HEADER_SETTING, json.dumps(cipher.header())))
                return cipher
        return crypto.GalleryCipher.from_header(key, header, self.path)

    def _check_cipher(self, db: sqlite3.Connection) -> None:
        """In a write transaction: the gallery is still sealed as when it was opened (not rekeyed since)."""
        header = crypto.stored_header(db)
        if (header or {}).get("salt") != (self.cipher.salt.hex() if self.cipher else None):
            raise crypto.changed_error(self.path)

    def _plain(self, blob: bytes, template_id: int, identity_id: int, model: str) -> bytes:
        """A stored embedding's float32 bytes (decrypted, in an encrypted gallery)."""
        if self.cipher is None:
            return blob
        return self.cipher.open_template(blob, template_id, identity_id, model, self.path)

    def _db(self) -> sqlite3.Connection:
        return self._conn.get()

    class _Tx:
        def __init__(self, db: sqlite3.Connection) -> None:
            self.db = db

        def __enter__(self) -> sqlite3.Connection:
            # IMMEDIATE: take the write lock up front so concurrent writers queue instead of failing
            self.db.execute("BEGIN IMMEDIATE")
            return self.db

        def __exit__(self, exc_type: object, *_: object) -> None:
            self.db.execute("ROLLBACK" if exc_type else "COMMIT")

    def _tx(self) -> SQLiteStore._Tx:
        if self.read_only:
            raise read_only_error(self.path)
        return SQLiteStore._Tx(self._db())

    def _identity_id(self, db: sqlite3.Connection, name: str) -> int:
        row = db.execute("SELECT id FROM identities WHERE name=?", (normalize_name(name),)).fetchone()
        if row is None:
            raise UnknownIdentityError(f"no identity named {shown(name)} in {self.path}")
        return int(row[0])

    def _bump(self, db: sqlite3.Connection, identity_id: int) -> None:
        """Next version, and which identity it changed (in the caller's transaction): indexes catch
        up with ``changed_identities`` instead of re-reading every template."""
        db.execute(
            "INSERT INTO settings VALUES ('version', '1') "
            "ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + 1"
        )
        version = int(db.execute("SELECT value FROM settings WHERE key='version'").fetchone()[0])
        db.execute("INSERT INTO changes VALUES (?, ?)", (version, identity_id))
        if version % 1000 == 0:  # keep the log bounded; an index older than the log rebuilds
            db.execute("DELETE FROM changes WHERE version <= ?", (version - CHANGE_LOG_VERSIONS,))

    @_guarded
    def add_identity(self, name: str, metadata: dict[str, Any] | None = None) -> Identity:
        name = validate_name(name)
        with self._tx() as db:
            try:
                db.execute(
                    "INSERT INTO identities (name, metadata, created_at) VALUES (?, ?, ?)",
                    (name, json.dumps(metadata or {}), _now()),
                )
            except sqlite3.IntegrityError as exc:
                raise IdentityExistsError(f"identity {shown(name)} already exists") from exc
        return self.get_identity(name)

    @_guarded
    def get_identity(self, name: str) -> Identity:
        row = (
            self._db()
            .execute(
                "SELECT i.name, i.metadata, i.created_at, COUNT(t.id) FROM identities i "
                "LEFT JOIN templates t ON t.identity_id = i.id WHERE i.name=? GROUP BY i.id",
                (normalize_name(name),),
            )
            .fetchone()
        )
        if row is None:
            raise UnknownIdentityError(f"no identity named {shown(name)} in {self.path}")
        return Identity(row[0], json.loads(row[1]), row[3], datetime.fromisoformat(row[2]))

    @_guarded
    def identities(self) -> list[Identity]:
        rows = (
            self._db()
            .execute(
                "SELECT i.name, i.metadata, i.created_at, COUNT(t.id) FROM identities i "
                "LEFT JOIN templates t ON t.identity_id = i.id GROUP BY i.id ORDER BY i.name"
            )
            .fetchall()
        )
        return [Identity(r[0], json.loads(r[1]), r[3], datetime.fromisoformat(r[2])) for r in rows]

    @_guarded
    def update_metadata(self, name: str, metadata: dict[str, Any]) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE identities SET metadata=? WHERE id=?", (json.dumps(metadata), self._identity_id(db, name))
            )

    @_guarded
    def rename_identity(self, old: str, new: str) -> None:
        new = validate_name(new)
        with self._tx() as db:
            ident = self._identity_id(db, old)
            try:
                db.execute("UPDATE identities SET name=? WHERE id=?", (new, ident))
            except sqlite3.IntegrityError as exc:
                raise IdentityExistsError(f"identity {shown(new)} already exists") from exc
            self._bump(db, ident)

    @_guarded
    def remove_identity(self, name: str) -> int:
        with self._tx() as db:
            ident = self._identity_id(db, name)
            n = db.execute("SELECT COUNT(*) FROM templates WHERE identity_id=?", (ident,)).fetchone()[0]
            db.execute("DELETE FROM templates WHERE identity_id=?", (ident,))
            db.execute("DELETE FROM identities WHERE id=?", (ident,))
            self._bump(db, ident)
        return int(n)

    @_guarded
    def remove_template(self, name: str, template_id: int) -> Template:
        with self._tx() as db:
            ident = self._identity_id(db, name)
            found = [t for t in self._templates(db, "t.id=? AND t.identity_id=?", (template_id, ident))]
            if not found:
                raise PhotoNotFoundError(f"{shown(name)} has no photo with id {template_id}")
            db.execute("DELETE FROM templates WHERE id=?", (template_id,))
            self._bump(db, ident)
        return found[0]

    @_guarded
    def purge(self) -> None:
        """Erase what removed records leave in the files, so that no deleted template can be read back
        from them: the change-log rows of removed identities (an index that needed them rebuilds), then
        VACUUM, which rewrites every page (the file keeps no free pages and no deleted cells; it makes
        ``secure_delete`` unnecessary), then a TRUNCATE checkpoint, which empties the -wal file (it
        holds older copies of pages, including the VACUUM's). Waits for readers up to the busy timeout."""
        with self._tx() as db:
            db.execute("DELETE FROM changes WHERE identity_id NOT IN (SELECT id FROM identities)")
        db = self._db()
        db.execute("VACUUM")
        busy = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
        if busy:
            raise GalleryError(
                f"{self.path}: removed, but another process kept reading the gallery, so its write-ahead log "
                f"({self.path.name}-wal) still holds old pages; stop that process and run the purge again"
            )

    @_guarded
    def add_templates(self, name: str, templates: list[Template], create: bool = True) -> list[int]:
        name = validate_name(name)
        added: list[int] = []
        with self._tx() as db:
            row = db.execute("SELECT id FROM identities WHERE name=?", (name,)).fetchone()
            if row is None:
                if not create:
                    raise UnknownIdentityError(f"no identity named {shown(name)} in {self.path}")
                cur = db.execute(
                    "INSERT INTO identities (name, metadata, created_at) VALUES (?, '{}', ?)", (name, _now())
                )
                ident = int(cur.lastrowid or 0)
            else:
                ident = int(row[0])
            self._check_cipher(db)
            # sealed rows are bound to their id, so it is chosen here (under the write lock), not by SQLite
            next_id: int | None = None
            if self.cipher is not None:
                next_id = int(db.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM templates").fetchone()[0])
            for t in templates:
                vec = np.ascontiguousarray(t.embedding, dtype=np.float32)
                blob = vec.tobytes()
                if self.cipher is not None:
                    blob = self.cipher.seal(blob, crypto.template_aad(next_id, ident, t.model))
                cur = db.execute(
                    "INSERT OR IGNORE INTO templates (id, identity_id, model, dim, embedding, source, "
                    "file_sha256, box, quality, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        next_id,
                        ident,
                        t.model,
                        vec.shape[0],
                        blob,
                        t.source,
                        t.file_sha256,
                        json.dumps([int(v) for v in t.box]),
                        t.quality,
                        _now(),
                    ),
                )
                if cur.rowcount:
                    added.append(int(cur.lastrowid or 0))
                    if next_id is not None:
                        next_id += 1
            if added:
                self._bump(db, ident)
        return added

    @_guarded
    def has_source(self, name: str, file_sha256: str, model: str) -> bool:
        row = (
            self._db()
            .execute(
                "SELECT 1 FROM templates t JOIN identities i ON i.id = t.identity_id "
                "WHERE i.name=? AND t.file_sha256=? AND t.model=? LIMIT 1",
                (normalize_name(name), file_sha256, model),
            )
            .fetchone()
        )
        return row is not None

    @_guarded
    def templates(self, name: str | None = None) -> list[Template]:
        if name is None:
            return self._templates(self._db(), "1", ())
        db = self._db()
        return self._templates(db, "t.identity_id=?", (self._identity_id(db, name),))

    def _templates(self, db: sqlite3.Connection, where: str, args: tuple[Any, ...]) -> list[Template]:
        sql = (
            "SELECT t.id, i.name, t.model, t.embedding, t.source, t.file_sha256, t.box, t.quality, "
            "t.created_at, t.identity_id FROM templates t JOIN identities i ON i.id = t.identity_id"
        )
        rows = db.execute(f"{sql} WHERE {where} ORDER BY t.id", args).fetchall()
        return [
            Template(
                embedding=np.frombuffer(self._plain(r[3], r[0], r[9], r[2]), dtype=np.float32).copy(),
                model=r[2],
                source=r[4],
                file_sha256=r[5],
                box=tuple(json.loads(r[6])),
                quality=r[7],
                id=r[0],
                identity=r[1],  # type: ignore[arg-type]
                created_at=datetime.fromisoformat(r[8]),
            )
            for r in rows
        ]

    @_guarded
    def matrix(self, model: str) -> TemplateMatrix:
        rows = (
            self._db()
            .execute(
                "SELECT t.id, i.name, t.embedding, t.dim, t.identity_id FROM templates t "
                "JOIN identities i ON i.id = t.identity_id WHERE t.model=? ORDER BY t.id",
                (model,),
            )
            .fetchall()
        )
        names: list[str] = []
        index: dict[str, int] = {}
        labels = np.empty(len(rows), np.int32)
        ids = np.empty(len(rows), np.int64)
        dim = rows[0][3] if rows else 0
        vectors = np.empty((len(rows), dim), np.float32)
        for k, (tid, name, blob, _, ident) in enumerate(rows):
            if name not in index:
                index[name] = len(names)
                names.append(name)
            labels[k] = index[name]
            ids[k] = tid
            vectors[k] = np.frombuffer(self._plain(blob, tid, ident, model), dtype=np.float32)
        return TemplateMatrix(ids=ids, labels=labels, names=names, vectors=vectors)

    @_guarded
    def identity_count(self, model: str | None = None) -> int:
        """How many identities (with at least one template of ``model``, when given)."""
        if model is None:
            return int(self._db().execute("SELECT COUNT(*) FROM identities").fetchone()[0])
        sql = "SELECT COUNT(DISTINCT identity_id) FROM templates WHERE model=?"
        return int(self._db().execute(sql, (model,)).fetchone()[0])

    @_guarded
    def identity_templates(self, model: str, identity_ids: list[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(identity id of each row, (N, D) templates) of ``model`` for every identity (or those among
        ``identity_ids``), grouped by identity and in template order within each, without building
        Template objects."""
        sql = "SELECT identity_id, embedding, id FROM templates WHERE model=?"
        if identity_ids is None:
            rows = self._db().execute(sql + " ORDER BY identity_id, id", (model,)).fetchall()
        else:
            rows = []
            wanted = sorted(set(identity_ids))
            for s in range(0, len(wanted), 500):  # SQLite caps the number of bound parameters
                chunk = wanted[s : s + 500]
                marks = ",".join("?" * len(chunk))
                # "+model": keep SQLite on the identity index (the model index would scan every template)
                query = (
                    f"SELECT identity_id, embedding, id FROM templates WHERE identity_id IN ({marks}) AND +model=? "
                    "ORDER BY identity_id, id"
                )
                rows += self._db().execute(query, (*chunk, model)).fetchall()
        if not rows:
            return np.zeros(0, np.int64), np.zeros((0, 0), np.float32)
        ids = np.fromiter((r[0] for r in rows), np.int64, len(rows))
        blobs = b"".join(self._plain(r[1], r[2], r[0], model) for r in rows)
        return ids, np.frombuffer(blobs, np.float32).reshape(len(rows), -1)

    def centroids(self, model: str, identity_ids: list[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(identity ids, unit mean templates) of every identity with templates of ``model`` (or of
        those among ``identity_ids``; the others have none)."""
        return group_centroids(*self.identity_templates(model, identity_ids))

    @_guarded
    def identity_names(self, identity_ids: list[int]) -> dict[int, str]:
        """Current names of the given identity ids (ids that no longer exist are left out)."""
        out: dict[int, str] = {}
        wanted = sorted(set(identity_ids))
        for s in range(0, len(wanted), 500):
            chunk = wanted[s : s + 500]
            sql = f"SELECT id, name FROM identities WHERE id IN ({','.join('?' * len(chunk))})"
            out.update((int(i), n) for i, n in self._db().execute(sql, chunk))
        return out

    @_guarded
    def changed_identities(self, since: int) -> tuple[int, set[int]] | None:
        """(current version, ids of the identities changed after version ``since``), or None when
        the change log does not cover every version since then (too old, or written by a faceprint
        that kept no log): the caller must then re-read everything."""
        sql = "SELECT version, identity_id FROM changes WHERE version > ? AND version <= ?"
        # the version is read first: a change landing after it is only applied twice
        return changes_since(since, self.version(), lambda a, b: self._db().execute(sql, (a, b)).fetchall())

    @_guarded
    def models(self) -> list[str]:
        return [r[0] for r in self._db().execute("SELECT DISTINCT model FROM templates ORDER BY model")]

    @_guarded
    def get_setting(self, key: str) -> Any | None:
        row = self._db().execute("SELECT value FROM settings WHERE key=?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    @_guarded
    def settings(self) -> dict[str, Any]:
        """Every setting (calibrated thresholds, and the store's own: schema_version, version)."""
        return {k: json.loads(v) for k, v in self._db().execute("SELECT key, value FROM settings ORDER BY key")}

    @_guarded
    def set_setting(self, key: str, value: Any) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO settings VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                (key, json.dumps(value)),
            )

    def version(self) -> int:
        return int(self.get_setting("version") or 0)

    @_guarded
    def rekey(self, new_key: bytes | None) -> int:
        """Re-seal every template (and thumbnail) under ``new_key`` (None: store them unencrypted) in one
        transaction: interrupted, the gallery keeps its old key. Then the file is vacuumed and its
        write-ahead log emptied, so that no page of the old form is left behind. Returns the templates
        re-sealed. Search index files beside the gallery are the caller's to remove."""
        cipher = crypto.GalleryCipher.create(new_key) if new_key is not None else None
        with self._tx() as db:
            self._check_cipher(db)
            rows = db.execute("SELECT id, identity_id, model, embedding FROM templates").fetchall()
            sealed = []
            for tid, ident, model, blob in rows:
                plain = self._plain(blob, tid, ident, model)
                aad = crypto.template_aad(tid, ident, model)
                sealed.append((plain if cipher is None else cipher.seal(plain, aad), tid))
            db.executemany("UPDATE templates SET embedding=? WHERE id=?", sealed)
            crypto.rekey_thumbnails(db, self.cipher, cipher, self.path)
            if cipher is None:
                db.execute("DELETE FROM settings WHERE key=?", (crypto.HEADER_SETTING,))
            else:
                db.execute(
                    "INSERT INTO settings VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                    (crypto.HEADER_SETTING, json.dumps(cipher.header())),
                )
        self.cipher = cipher
        try:
            self.purge()  # freed pages and the -wal file still hold the old form
        except GalleryError as exc:
            raise GalleryError(f"the new key is in place, but old pages may remain: {exc}") from exc
        return len(rows)

    def close(self) -> None:
        self._conn.close()
