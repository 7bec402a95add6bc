"""The embedded gallery: one SQLite file (WAL mode, every write in a transaction)."""

from __future__ import annotations

import json
import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from faceprint.errors import FaceprintError, IdentityExistsError, UnknownIdentityError
from faceprint.gallery.base import Identity, Template, TemplateMatrix

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
    threads), each in WAL mode with foreign keys on, autocommit unless a transaction is begun."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()

    def get(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            try:
                db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
                db.execute("PRAGMA journal_mode=WAL")
            except sqlite3.DatabaseError as exc:
                raise FaceprintError(f"{self.path}: not a faceprint gallery ({exc})") from exc
            db.execute("PRAGMA foreign_keys=ON")
            db.execute("PRAGMA synchronous=NORMAL")
            self._local.db = db
        return db

    def close(self) -> None:
        """Close this thread's connection."""
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _validate_name(name: str) -> str:
    name = name.strip()
    if not name:
        raise FaceprintError("identity name must not be empty")
    if len(name) > 200 or any(ord(c) < 32 for c in name):
        raise FaceprintError(f"invalid identity name {name!r}")
    return name


class SQLiteStore:
    """Gallery storage in one SQLite file. Safe for several threads and processes."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = ThreadConnections(self.path)
        # executescript commits on its own, so the schema goes in before the transaction
        self._db().executescript(_SCHEMA)
        with self._tx() as db:
            row = db.execute("SELECT value FROM settings WHERE key='schema_version'").fetchone()
            if row is None:
                db.execute("INSERT INTO settings VALUES ('schema_version', ?)", (json.dumps(SCHEMA_VERSION),))
            elif json.loads(row[0]) > SCHEMA_VERSION:
                raise FaceprintError(f"{self.path}: gallery written by a newer faceprint (schema {row[0]})")

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
        return SQLiteStore._Tx(self._db())

    def _identity_id(self, db: sqlite3.Connection, name: str) -> int:
        row = db.execute("SELECT id FROM identities WHERE name=?", (name,)).fetchone()
        if row is None:
            raise UnknownIdentityError(f"no identity named {name!r} in {self.path}")
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

    def add_identity(self, name: str, metadata: dict[str, Any] | None = None) -> Identity:
        name = _validate_name(name)
        with self._tx() as db:
            try:
                db.execute(
                    "INSERT INTO identities (name, metadata, created_at) VALUES (?, ?, ?)",
                    (name, json.dumps(metadata or {}), _now()),
                )
            except sqlite3.IntegrityError as exc:
                raise IdentityExistsError(f"identity {name!r} already exists") from exc
        return self.get_identity(name)

    def get_identity(self, name: str) -> Identity:
        row = (
            self._db()
            .execute(
                "SELECT i.name, i.metadata, i.created_at, COUNT(t.id) FROM identities i "
                "LEFT JOIN templates t ON t.identity_id = i.id WHERE i.name=? GROUP BY i.id",
                (name,),
            )
            .fetchone()
        )
        if row is None:
            raise UnknownIdentityError(f"no identity named {name!r} in {self.path}")
        return Identity(row[0], json.loads(row[1]), row[3], datetime.fromisoformat(row[2]))

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

    def update_metadata(self, name: str, metadata: dict[str, Any]) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE identities SET metadata=? WHERE id=?", (json.dumps(metadata), self._identity_id(db, name))
            )

    def rename_identity(self, old: str, new: str) -> None:
        new = _validate_name(new)
        with self._tx() as db:
            ident = self._identity_id(db, old)
            try:
                db.execute("UPDATE identities SET name=? WHERE id=?", (new, ident))
            except sqlite3.IntegrityError as exc:
                raise IdentityExistsError(f"identity {new!r} already exists") from exc
            self._bump(db, ident)

    def remove_identity(self, name: str) -> int:
        with self._tx() as db:
            ident = self._identity_id(db, name)
            n = db.execute("SELECT COUNT(*) FROM templates WHERE identity_id=?", (ident,)).fetchone()[0]
            db.execute("DELETE FROM templates WHERE identity_id=?", (ident,))
            db.execute("DELETE FROM identities WHERE id=?", (ident,))
            self._bump(db, ident)
        return int(n)

    def remove_template(self, template_id: int) -> None:
        with self._tx() as db:
            row = db.execute("SELECT identity_id FROM templates WHERE id=?", (template_id,)).fetchone()
            if row is None:
                return
            db.execute("DELETE FROM templates WHERE id=?", (template_id,))
            self._bump(db, int(row[0]))

    def add_templates(self, name: str, templates: list[Template], create: bool = True) -> list[int]:
        name = _validate_name(name)
        added: list[int] = []
        with self._tx() as db:
            row = db.execute("SELECT id FROM identities WHERE name=?", (name,)).fetchone()
            if row is None:
                if not create:
                    raise UnknownIdentityError(f"no identity named {name!r} in {self.path}")
                cur = db.execute(
                    "INSERT INTO identities (name, metadata, created_at) VALUES (?, '{}', ?)", (name, _now())
                )
                ident = int(cur.lastrowid or 0)
            else:
                ident = int(row[0])
            for t in templates:
                vec = np.ascontiguousarray(t.embedding, dtype=np.float32)
                cur = db.execute(
                    "INSERT OR IGNORE INTO templates (identity_id, model, dim, embedding, source, "
                    "file_sha256, box, quality, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        ident,
                        t.model,
                        vec.shape[0],
                        vec.tobytes(),
                        t.source,
                        t.file_sha256,
                        json.dumps([int(v) for v in t.box]),
                        t.quality,
                        _now(),
                    ),
                )
                if cur.rowcount:
                    added.append(int(cur.lastrowid or 0))
            if added:
                self._bump(db, ident)
        return added

    def has_source(self, name: str, file_sha256: str, model: str) -> bool:
        row = (
            self._db()
            .execute(
                "SELECT 1 FROM templates t JOIN identities i ON i.id = t.identity_id "
                "WHERE i.name=? AND t.file_sha256=? AND t.model=? LIMIT 1",
                (name, file_sha256, model),
            )
            .fetchone()
        )
        return row is not None

    def templates(self, name: str | None = None) -> list[Template]:
        sql = (
            "SELECT t.id, i.name, t.model, t.embedding, t.source, t.file_sha256, t.box, t.quality, "
            "t.created_at FROM templates t JOIN identities i ON i.id = t.identity_id"
        )
        rows = (
            self._db().execute(sql + " WHERE i.name=? ORDER BY t.id", (name,)).fetchall()
            if name is not None
            else self._db().execute(sql + " ORDER BY t.id").fetchall()
        )
        if name is not None and not rows:
            self.get_identity(name)  # raises for an unknown name
        return [
            Template(
                embedding=np.frombuffer(r[3], dtype=np.float32).copy(),
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

    def matrix(self, model: str) -> TemplateMatrix:
        rows = (
            self._db()
            .execute(
                "SELECT t.id, i.name, t.embedding, t.dim FROM templates t JOIN identities i ON i.id = t.identity_id "
                "WHERE t.model=? ORDER BY t.id",
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
        for k, (tid, name, blob, _) in enumerate(rows):
            if name not in index:
                index[name] = len(names)
                names.append(name)
            labels[k] = index[name]
            ids[k] = tid
            vectors[k] = np.frombuffer(blob, dtype=np.float32)
        return TemplateMatrix(ids=ids, labels=labels, names=names, vectors=vectors)

    def identity_count(self, model: str | None = None) -> int:
        """How many identities (with at least one template of ``model``, when given)."""
        if model is None:
            return int(self._db().execute("SELECT COUNT(*) FROM identities").fetchone()[0])
        sql = "SELECT COUNT(DISTINCT identity_id) FROM templates WHERE model=?"
        return int(self._db().execute(sql, (model,)).fetchone()[0])

    def centroids(self, model: str, identity_ids: list[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(identity ids, unit mean templates) of every identity with templates of ``model`` (or of
        those among ``identity_ids``; the others have none), without building Template objects."""
        sql = "SELECT identity_id, embedding FROM templates WHERE model=?"
        if identity_ids is None:
            rows = self._db().execute(sql + " ORDER BY identity_id", (model,)).fetchall()
        else:
            rows = []
            wanted = sorted(set(identity_ids))
            for s in range(0, len(wanted), 500):  # SQLite caps the number of bound parameters
                chunk = wanted[s : s + 500]
                marks = ",".join("?" * len(chunk))
                # "+model": keep SQLite on the identity index (the model index would scan every template)
                query = (
                    f"SELECT identity_id, embedding FROM templates WHERE identity_id IN ({marks}) AND +model=? "
                    "ORDER BY identity_id"
                )
                rows += self._db().execute(query, (*chunk, model)).fetchall()
        if not rows:
            return np.zeros(0, np.int64), np.zeros((0, 0), np.float32)
        ids = np.fromiter((r[0] for r in rows), np.int64, len(rows))
        vectors = np.frombuffer(b"".join(r[1] for r in rows), np.float32).reshape(len(rows), -1)
        starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
        sums = np.add.reduceat(vectors, starts, axis=0)
        return ids[starts], sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)

    def identity_names(self, identity_ids: list[int]) -> dict[int, str]:
        """Current names of the given identity ids (ids that no longer exist are left out)."""
        out: dict[int, str] = {}
        wanted = sorted(set(identity_ids))
        for s in range(0, len(wanted), 500):
            chunk = wanted[s : s + 500]
            sql = f"SELECT id, name FROM identities WHERE id IN ({','.join('?' * len(chunk))})"
            out.update((int(i), n) for i, n in self._db().execute(sql, chunk))
        return out

    def changed_identities(self, since: int) -> tuple[int, set[int]] | None:
        """(current version, ids of the identities changed after version ``since``), or None when
        the change log does not cover every version since then (too old, or written by a faceprint
        that kept no log): the caller must then re-read everything."""
        version = self.version()  # read first: a change landing after it is only applied twice
        if since == version:
            return version, set()
        if since > version:
            return None  # the store was replaced by an older file
        rows = (
            self._db()
            .execute("SELECT version, identity_id FROM changes WHERE version > ? AND version <= ?", (since, version))
            .fetchall()
        )
        if len({r[0] for r in rows}) != version - since:
            return None
        return version, {int(r[1]) for r in rows}

    def models(self) -> list[str]:
        return [r[0] for r in self._db().execute("SELECT DISTINCT model FROM templates ORDER BY model")]

    def get_setting(self, key: str) -> Any | None:
        row = self._db().execute("SELECT value FROM settings WHERE key=?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def set_setting(self, key: str, value: Any) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO settings VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                (key, json.dumps(value)),
            )

    def version(self) -> int:
        return int(self.get_setting("version") or 0)

    def close(self) -> None:
        self._conn.close()
