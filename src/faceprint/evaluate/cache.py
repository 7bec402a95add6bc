"""Embedding cache for evaluations: one SQLite file, keyed by image content and pipeline.

A template depends on the image bytes (sha256 of the file), the template model (which
includes flip averaging), the detector and the policy for picking or inventing the face
(see :mod:`faceprint.evaluate.extract`); all four form the key, so changing any of them
never returns a stale template. Re-running an evaluation then only reads this file.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from faceprint.evaluate.extract import ImageTemplate
from faceprint.models import cache_dir

SCHEMA = """
CREATE TABLE IF NOT EXISTS templates (
    sha256 TEXT NOT NULL,
    context TEXT NOT NULL,
    status TEXT NOT NULL,
    faces INTEGER NOT NULL,
    box TEXT,
    embedding BLOB,
    PRIMARY KEY (sha256, context)
) WITHOUT ROWID;
"""


def default_cache_path() -> Path:
    """``$FACEPRINT_EMBEDDING_CACHE``, else ``<cache_dir>/embeddings/templates.sqlite3``."""
    env = os.environ.get("FACEPRINT_EMBEDDING_CACHE")
    if env:
        return Path(env)
    return cache_dir() / "embeddings" / "templates.sqlite3"


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0


class EmbeddingCache:
    """``get_many``/``put_many`` of :class:`ImageTemplate` by (sha256, context)."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else default_cache_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.stats = CacheStats()
        self._local = threading.local()
        with self._db() as db:
            db.executescript(SCHEMA)

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            # WAL + a long timeout: several evaluations (or engineers) may share the file
            db = sqlite3.connect(self.path, timeout=60)
            db.execute("PRAGMA journal_mode=WAL")
            self._local.db = db
        return db

    def get_many(self, shas: Iterable[str], context: str) -> dict[str, ImageTemplate]:
        """Cached templates for these hashes (missing ones are absent); counts hits and misses."""
        wanted = list(dict.fromkeys(shas))
        found: dict[str, ImageTemplate] = {}
        db = self._db()
        for i in range(0, len(wanted), 500):  # stay under SQLite's bound-parameter limit
            chunk = wanted[i : i + 500]
            marks = ",".join("?" * len(chunk))
            rows = db.execute(
                f"SELECT sha256, status, faces, box, embedding FROM templates WHERE context=? AND sha256 IN ({marks})",
                [context, *chunk],
            )
            for sha, status, faces, box, blob in rows:
                found[sha] = ImageTemplate(
                    embedding=None if blob is None else np.frombuffer(blob, dtype=np.float32).copy(),
                    status=status,
                    faces=int(faces),
                    box=tuple(json.loads(box)) if box else None,
                )
        self.stats.hits += len(found)
        self.stats.misses += len(wanted) - len(found)
        return found

    def put_many(self, items: Iterable[tuple[str, ImageTemplate]], context: str) -> None:
        rows = [
            (
                sha,
                context,
                t.status,
                t.faces,
                json.dumps([int(v) for v in t.box]) if t.box is not None else None,
                None if t.embedding is None else np.asarray(t.embedding, np.float32).tobytes(),
            )
            for sha, t in items
        ]
        if rows:
            with self._db() as db:
                db.executemany("INSERT OR REPLACE INTO templates VALUES (?, ?, ?, ?, ?, ?)", rows)

    def __len__(self) -> int:
        return int(self._db().execute("SELECT COUNT(*) FROM templates").fetchone()[0])

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None
