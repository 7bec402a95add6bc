"""The gallery of known people: a storage backend plus search over its templates."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from faceprint.gallery.base import GalleryStore, Identity, Template, TemplateMatrix
from faceprint.gallery.sqlite import SQLiteStore
from faceprint.match import Aggregation, rank_identities
from faceprint.types import Candidate


def default_gallery_path() -> Path:
    """``$FACEPRINT_GALLERY``, else ``$XDG_DATA_HOME/faceprint/gallery.db``."""
    env = os.environ.get("FACEPRINT_GALLERY")
    if env:
        return Path(env)
    data = os.environ.get("XDG_DATA_HOME") or os.path.expanduser("~/.local/share")
    return Path(data) / "faceprint" / "gallery.db"


def open_store(location: str | Path) -> GalleryStore:
    """A storage backend for a location: a file path (SQLite) for now."""
    return SQLiteStore(location)


class Gallery:
    """Identities and their templates, with 1:N search.

    Search is exact (one matrix product) and uses an in-memory copy of the templates that
    is refreshed whenever another process or thread changes the store.
    """

    def __init__(self, store: GalleryStore | str | Path | None = None, aggregation: Aggregation = "max") -> None:
        self.store: GalleryStore = (
            open_store(default_gallery_path() if store is None else store)
            if store is None or isinstance(store, (str, Path))
            else store
        )
        self.aggregation = aggregation
        self._cache: dict[str, tuple[int, TemplateMatrix]] = {}
        self._lock = threading.Lock()

    # identities -----------------------------------------------------------------
    def add_identity(self, name: str, metadata: dict[str, Any] | None = None) -> Identity:
        return self.store.add_identity(name, metadata)

    def identities(self) -> list[Identity]:
        return self.store.identities()

    def get_identity(self, name: str) -> Identity:
        return self.store.get_identity(name)

    def rename(self, old: str, new: str) -> None:
        self.store.rename_identity(old, new)

    def remove(self, name: str) -> int:
        return self.store.remove_identity(name)

    def add_templates(self, name: str, templates: list[Template], create: bool = True) -> list[int]:
        return self.store.add_templates(name, templates, create=create)

    def templates(self, name: str | None = None) -> list[Template]:
        return self.store.templates(name)

    def __len__(self) -> int:
        return len(self.store.identities())

    # search -----------------------------------------------------------------------
    def matrix(self, model: str) -> TemplateMatrix:
        version = self.store.version()
        with self._lock:
            cached = self._cache.get(model)
            if cached is None or cached[0] != version:
                cached = (version, self.store.matrix(model))
                self._cache[model] = cached
            return cached[1]

    def search(self, queries: np.ndarray, model: str, top_k: int = 5) -> list[list[Candidate]]:
        """Top-k identities (best first) for each unit-length query template."""
        queries = np.atleast_2d(np.asarray(queries, np.float32))
        return rank_identities(queries, self.matrix(model), top_k, self.aggregation)

    def identity_vectors(self, name: str, model: str) -> np.ndarray:
        vectors = [t.embedding for t in self.store.templates(name) if t.model == model]
        return np.asarray(vectors, np.float32).reshape(len(vectors), -1)

    # settings ---------------------------------------------------------------------
    def setting(self, key: str) -> Any | None:
        return self.store.get_setting(key)

    def set_setting(self, key: str, value: Any) -> None:
        self.store.set_setting(key, value)

    def close(self) -> None:
        self.store.close()


__all__ = ["Gallery", "GalleryStore", "Identity", "SQLiteStore", "Template", "TemplateMatrix", "default_gallery_path"]
