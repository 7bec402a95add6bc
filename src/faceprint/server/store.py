"""What the service keeps beside the gallery, in the gallery's own storage: API keys (hashed),
one small JPEG thumbnail per identity, and the audit log (:mod:`faceprint.server.audit`).

Both live in tables of their own, so the gallery schema and its readers are untouched. In a SQLite
gallery they are in its file (:class:`ServerStore`), which carries its keys and thumbnails with it
when copied; in a PostgreSQL gallery they are in its database (:class:`PostgresServerStore`, tables
made by the gallery's schema migrations), so every replica of the service sees the same keys: a key
revoked through one is refused by all from their next request.

Both run the same SQL (SQLite >= 3.35 and PostgreSQL share ``RETURNING`` and ``ON CONFLICT``); only
the placeholders and the connections differ.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from PIL import Image

from faceprint.errors import FaceprintError
from faceprint.gallery.base import GalleryStore
from faceprint.gallery.crypto import GalleryCipher, thumbnail_aad
from faceprint.gallery.sqlite import ThreadConnections, read_only_error, writable
from faceprint.image import ImageReader

if TYPE_CHECKING:
    from faceprint.gallery.postgres import PostgresStore

Role = Literal["admin", "read"]
ROLES: tuple[Role, ...] = ("admin", "read")
KEY_PREFIX = "fpk_"
THUMBNAIL_SIZE = 160  # pixels, long side

_SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL DEFAULT '',
    role TEXT NOT NULL,
    key_hash TEXT NOT NULL UNIQUE,
    hint TEXT NOT NULL,
    created_at TEXT NOT NULL,
    last_used_at TEXT,
    revoked_at TEXT
);
CREATE TABLE IF NOT EXISTS identity_thumbnails (
    identity_id INTEGER PRIMARY KEY REFERENCES identities(id) ON DELETE CASCADE,
    jpeg BLOB NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS audit_log (
    id INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    key_id INTEGER,
    key_name TEXT NOT NULL DEFAULT '',
    method TEXT NOT NULL,
    route TEXT NOT NULL,
    status INTEGER NOT NULL,
    duration_ms REAL NOT NULL,
    request TEXT NOT NULL,
    answer TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_log_at ON audit_log (at);
CREATE INDEX IF NOT EXISTS audit_log_key ON audit_log (key_id, id);
"""
#: the service's own tables (an older gallery opened read-only may lack some)
TABLES = ("api_keys", "identity_thumbnails", "audit_log")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def hash_key(key: str) -> str:
    # the keys are 32 random bytes, so a plain (unsalted, fast) hash is enough: there is no
    # dictionary to attack, and a stolen database does not reveal usable keys
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class ApiKey:
    id: int
    name: str
    role: Role
    hint: str  # the first characters of the key, to tell keys apart in listings
    created_at: str
    last_used_at: str | None
    revoked_at: str | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def make_thumbnail(
    pixels: np.ndarray, box: tuple[int, int, int, int] | None = None, size: int = THUMBNAIL_SIZE, quality: int = 85
) -> bytes:
    """A small JPEG (at most ``size`` px) of the face in ``box`` (with some margin), or of the whole image."""
    h, w = pixels.shape[:2]
    if box is not None:
        left, top, right, bottom = box
        side = max(right - left, bottom - top)
        margin = int(side * 0.35)
        cx, cy = (left + right) // 2, (top + bottom) // 2
        half = side // 2 + margin
        crop = pixels[max(0, cy - half) : min(h, cy + half), max(0, cx - half) : min(w, cx + half)]
        if crop.size:
            pixels = crop
    img = Image.fromarray(np.ascontiguousarray(pixels))
    img.thumbnail((size, size))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def file_thumbnail(images: ImageReader, path: str | Path, box: tuple[int, int, int, int]) -> bytes:
    """The thumbnail of the face at ``box`` (in the file's pixels, as the gallery stores boxes) of
    an image file, decoded within the service's limits; raises ImageError."""
    loaded = images.load(path)
    return make_thumbnail(loaded.pixels, loaded.box_from_original(box))


class ServerStore:
    """API keys and thumbnails in the gallery's SQLite file. Thread-safe (a connection per thread).

    The logic is here; :class:`PostgresServerStore` runs it over the gallery's PostgreSQL database
    instead, by overriding how statements are run (:meth:`_rows`, :meth:`_write`)."""

    #: seconds between writes of a key's last-used time (a write on every request would make
    #: every read take the database's write lock)
    TOUCH_EVERY = 60.0
    #: driver errors: a failed last-used write is ignored; a thumbnail whose identity went meanwhile is skipped
    _BUSY: tuple[type[Exception], ...] = (sqlite3.OperationalError,)
    _GONE: tuple[type[Exception], ...] = (sqlite3.IntegrityError,)
    #: an encrypted gallery's cipher: thumbnails are face crops, sealed like its templates
    cipher: GalleryCipher | None = None

    def __init__(self, path: str | Path, cipher: GalleryCipher | None = None) -> None:
        """Open the tables beside the gallery at ``path`` (created with it, and added here to an
        older gallery). A read-only gallery is served read-only: keys and thumbnails stored before
        still work, nothing new is written (a key cannot be created there). ``cipher``: the gallery
        store's, when it is encrypted."""
        self.path = Path(path)
        self.cipher = cipher
        self.read_only = not writable(self.path)
        self._conn = ThreadConnections(self.path, self.read_only)
        self._touched: dict[int, float] = {}
        self._touch_lock = threading.Lock()
        if self.read_only:
            tables = {r[0] for r in self._rows("SELECT name FROM sqlite_master WHERE type='table'")}
            self._missing = set(TABLES) - tables
        else:
            self._missing = set()
            self._conn.get().executescript(_SCHEMA)

    def _rows(self, sql: str, args: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
        """Run a reading statement (``?`` placeholders) and return its rows."""
        return self._conn.get().execute(sql, args).fetchall()

    def _write(self, sql: str, args: tuple[object, ...]) -> list[tuple[Any, ...]]:
        """Run one writing statement, a transaction of its own; returns its RETURNING rows."""
        if self.read_only:
            raise read_only_error(self.path)
        return self._rows(sql, args)

    def close(self) -> None:
        self._conn.close()

    # keys -------------------------------------------------------------------------------
    def create_key(self, role: str, name: str = "") -> tuple[str, ApiKey]:
        """A new key: returns the secret (shown once, never stored) and its record."""
        if role not in ROLES:
            raise FaceprintError(f"unknown role {role!r}; choose from {', '.join(ROLES)}")
        secret = KEY_PREFIX + secrets.token_urlsafe(32)
        rows = self._write(
            "INSERT INTO api_keys (name, role, key_hash, hint, created_at) VALUES (?, ?, ?, ?, ?) RETURNING id",
            (name, role, hash_key(secret), secret[: len(KEY_PREFIX) + 6], _now()),
        )
        return secret, self.get_key(int(rows[0][0]))

    def _row(self, row: tuple[object, ...]) -> ApiKey:
        return ApiKey(int(row[0]), *row[1:])  # type: ignore[arg-type]

    _COLUMNS = "id, name, role, hint, created_at, last_used_at, revoked_at"

    def get_key(self, key_id: int) -> ApiKey:
        rows = self._rows(f"SELECT {self._COLUMNS} FROM api_keys WHERE id=?", (key_id,))
        if not rows:
            raise FaceprintError(f"no API key with id {key_id}")
        return self._row(rows[0])

    def list_keys(self) -> list[ApiKey]:
        if "api_keys" in self._missing:
            return []
        return [self._row(r) for r in self._rows(f"SELECT {self._COLUMNS} FROM api_keys ORDER BY id")]

    def revoke_key(self, key_id: int) -> ApiKey:
        key = self.get_key(key_id)
        if key.active:
            self._write("UPDATE api_keys SET revoked_at=? WHERE id=?", (_now(), key_id))
        return self.get_key(key_id)

    def active_key_count(self) -> int:
        if "api_keys" in self._missing:
            return 0
        return int(self._rows("SELECT COUNT(*) FROM api_keys WHERE revoked_at IS NULL")[0][0])

    def authenticate(self, secret: str) -> ApiKey | None:
        """The active key with this secret, or None. Looked up on every request, so a key
        revoked from the command line stops working at once, even in a running server."""
        if not secret or len(secret) > 256 or "api_keys" in self._missing:
            return None
        rows = self._rows(
            f"SELECT {self._COLUMNS} FROM api_keys WHERE key_hash=? AND revoked_at IS NULL", (hash_key(secret),)
        )
        if not rows:
            return None
        key = self._row(rows[0])
        self._touch(key.id)
        return key

    def _touch(self, key_id: int) -> None:
        now = time.monotonic()
        with self._touch_lock:
            if now - self._touched.get(key_id, -1e9) < self.TOUCH_EVERY:
                return
            self._touched[key_id] = now
        # a busy (or read-only) database must not fail the request: the time is only informative
        with contextlib.suppress(*self._BUSY, FaceprintError):
            self._write("UPDATE api_keys SET last_used_at=? WHERE id=?", (_now(), key_id))

    # thumbnails ---------------------------------------------------------------------------
    def _identity_id(self, name: str) -> int | None:
        rows = self._rows("SELECT id FROM identities WHERE name=?", (name,))
        return None if not rows else int(rows[0][0])

    def thumbnail(self, name: str) -> bytes | None:
        if "identity_thumbnails" in self._missing:
            return None
        rows = self._rows(
            "SELECT t.identity_id, t.jpeg FROM identity_thumbnails t JOIN identities i ON i.id = t.identity_id "
            "WHERE i.name=?",
            (name,),
        )
        return None if not rows else self._jpeg(*rows[0])

    def _jpeg(self, identity_id: int, stored: bytes) -> bytes:
        """A stored thumbnail's JPEG (decrypted, in an encrypted gallery)."""
        if self.cipher is None:
            return bytes(stored)
        return self.cipher.open_thumbnail(bytes(stored), identity_id, self.path)

    def has_thumbnails(self) -> set[str]:
        if "identity_thumbnails" in self._missing:
            return set()
        rows = self._rows("SELECT i.name FROM identity_thumbnails t JOIN identities i ON i.id = t.identity_id")
        return {r[0] for r in rows}

    def set_thumbnail(self, name: str, jpeg: bytes, replace: bool = False) -> bool:
        """Store the identity's thumbnail (by default only if it has none yet)."""
        ident = self._identity_id(name)
        if ident is None:
            return False
        if self.read_only:
            return False  # a thumbnail is a convenience: a read-only gallery just has none
        if self.cipher is not None:
            jpeg = self.cipher.seal(jpeg, thumbnail_aad(ident))
        verb = "UPDATE SET jpeg=excluded.jpeg, created_at=excluded.created_at" if replace else "NOTHING"
        try:
            rows = self._write(
                "INSERT INTO identity_thumbnails (identity_id, jpeg, created_at) VALUES (?, ?, ?) "
                f"ON CONFLICT (identity_id) DO {verb} RETURNING identity_id",
                (ident, jpeg, _now()),
            )
        except self._GONE:
            return False  # the identity was removed in between
        return bool(rows)

    # copying between galleries ----------------------------------------------------------------
    _KEY_RECORD = "name, role, key_hash, hint, created_at, last_used_at, revoked_at"

    def records(self) -> tuple[list[tuple[Any, ...]], dict[str, bytes]]:
        """Every key (hashed, in creation order) and every thumbnail (by identity name), as
        :meth:`add_records` takes them: what ``faceprint gallery migrate`` carries to another gallery."""
        keys = [] if "api_keys" in self._missing else self._rows(f"SELECT {self._KEY_RECORD} FROM api_keys ORDER BY id")
        if "identity_thumbnails" in self._missing:
            return keys, {}
        sql = "SELECT i.name, i.id, t.jpeg FROM identity_thumbnails t JOIN identities i ON i.id = t.identity_id"
        return keys, {name: self._jpeg(ident, jpeg) for name, ident, jpeg in self._rows(sql)}

    def add_records(self, keys: list[tuple[Any, ...]], thumbnails: dict[str, bytes]) -> None:
        """Store keys and thumbnails read by :meth:`records` from another gallery (a key already here,
        or a thumbnail of a person not here, is skipped)."""
        for key in keys:
            self._write(
                f"INSERT INTO api_keys ({self._KEY_RECORD}) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                tuple(key),
            )
        for name, jpeg in thumbnails.items():
            self.set_thumbnail(name, jpeg)


class PostgresServerStore(ServerStore):
    """API keys and thumbnails in the gallery's PostgreSQL database, over the gallery store's own
    connection pool. Every replica of the service reads the same keys and thumbnails."""

    def __init__(self, gallery: PostgresStore) -> None:
        import psycopg

        self._BUSY = (psycopg.OperationalError,)
        self._GONE = (psycopg.errors.ForeignKeyViolation,)
        self.gallery = gallery
        self.path = gallery.path  # type: ignore[assignment]  # the URL as shown: no password
        self.read_only = gallery.read_only
        self._touched = {}
        self._touch_lock = threading.Lock()
        # an older schema that a read-only user could not migrate lacks them: served without
        found = self._rows("SELECT " + ", ".join(f"to_regclass('{n}') IS NOT NULL" for n in TABLES))[0]
        self._missing = {n for n, there in zip(TABLES, found) if not there}

    def _rows(self, sql: str, args: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
        import psycopg

        try:
            with self.gallery.connection() as conn:
                cur = conn.execute(sql.replace("?", "%s"), args)
                return cur.fetchall() if cur.description else []
        except self._GONE:
            raise  # set_thumbnail's to handle
        except psycopg.Error as exc:
            raise self.gallery._error(exc) from exc

    def close(self) -> None:
        """Nothing of its own: the connections are the gallery's."""


def open_server_store(gallery: GalleryStore) -> ServerStore:
    """The service's keys and thumbnails where the gallery lives: its SQLite file or its database."""
    from faceprint.gallery.sqlite import SQLiteStore

    if isinstance(gallery, SQLiteStore):
        return ServerStore(gallery.path, gallery.cipher)
    return PostgresServerStore(gallery)  # type: ignore[arg-type]
