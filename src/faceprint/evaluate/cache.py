"""Embedding cache for evaluations: one SQLite file, keyed by image content and pipeline.

A template depends on the image bytes (sha256 of the file), the template model (which
includes flip averaging), the detector and the policy for picking or inventing the face
(see :mod:`faceprint.evaluate.extract`); all four form the key, so changing any of them
never returns a stale template. Re-running an evaluation then only reads this file.

The face's quality measures ride along in the same row (``measures``, JSON tagged with
:data:`faceprint.analyze.quality.MEASURES_VERSION`). An evaluation that needs them counts a row
without them (one written before they existed, or by another version) as a miss, so the image is
computed again and the row completed. Only the measures are stored, not the quality: refitting
how quality combines them needs no recomputation.
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

from faceprint.analyze.quality import MEASURES_VERSION
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
    measures TEXT,
    PRIMARY KEY (sha256, context)
) WITHOUT ROWID;
"""
#: files made before quality measures existed get the column
ADD_MEASURES = "ALTER TABLE templates ADD COLUMN measures TEXT"
#: a row written without measures (an evaluation that did not ask for them) keeps the ones it had
UPSERT = """
INSERT INTO templates (sha256, context, status, faces, box, embedding, measures) VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (sha256, context) DO UPDATE SET
    status = excluded.status, faces = excluded.faces, box = excluded.box, embedding = excluded.embedding,
    measures = COALESCE(excluded.measures, templates.measures)
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


def _measures(text: str | None) -> dict[str, float] | None:
    """Stored measures of the current version, else None (absent, or from another version)."""
    if not text:
        return None
    stored = json.loads(text)
    if stored.pop("version", None) != MEASURES_VERSION:
        return None
    return stored


class EmbeddingCache:
    """``get_many``/``put_many`` of :class:`ImageTemplate` by (sha256, context)."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else default_cache_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.stats = CacheStats()
        self._local = threading.local()
        with self._db() as db:
            db.executescript(SCHEMA)
            columns = {row[1] for row in db.execute("PRAGMA table_info(templates)")}
            if "measures" not in columns:
                db.execute(ADD_MEASURES)

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            # WAL + a long timeout: several evaluations (or engineers) may share the file
            db = sqlite3.connect(self.path, timeout=60)
            db.execute("PRAGMA journal_mode=WAL")
            self._local.db = db
        return db

    def get_many(self, shas: Iterable[str], context: str, with_measures: bool = False) -> dict[str, ImageTemplate]:
        """Cached templates for these hashes (missing ones are absent); counts hits and misses.
        ``with_measures``: only rows that carry quality measures of the current version count."""
        wanted = list(dict.fromkeys(shas))
        found: dict[str, ImageTemplate] = {}
        db = self._db()
        for i in range(0, len(wanted), 500):  # stay under SQLite's bound-parameter limit
            chunk = wanted[i : i + 500]
            marks = ",".join("?" * len(chunk))
            rows = db.execute(
                "SELECT sha256, status, faces, box, embedding, measures FROM templates "
                f"WHERE context=? AND sha256 IN ({marks})",
                [context, *chunk],
            )
            for sha, status, faces, box, blob, measures in rows:
                stored = _measures(measures)
                if with_measures and stored is None:
                    continue
                found[sha] = ImageTemplate(
                    embedding=None if blob is None else np.frombuffer(blob, dtype=np.float32).copy(),
                    status=status,
                    faces=int(faces),
                    box=tuple(json.loads(box)) if box else None,
                    measures=stored,
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
                None if t.measures is None else json.dumps({"version": MEASURES_VERSION, **t.measures}),
            )
            for sha, t in items
        ]
        if rows:
            with self._db() as db:
                db.executemany(UPSERT, rows)

    def __len__(self) -> int:
        return int(self._db().execute("SELECT COUNT(*) FROM templates").fetchone()[0])

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None
