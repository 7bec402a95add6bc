"""The gallery of known people: a storage backend plus search over its templates."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from faceprint.errors import FaceprintError
from faceprint.gallery.base import GalleryStore, Identity, Template, TemplateMatrix
from faceprint.gallery.sqlite import SQLiteStore
from faceprint.match import Aggregation, identity_centroids, identity_scores, rank_identities
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

    def __init__(self, store: GalleryStore | str | Path | None = None, aggregation: Aggregation = "centroid") -> None:
        self.store: GalleryStore = (
            open_store(default_gallery_path() if store is None else store)
            if store is None or isinstance(store, (str, Path))
            else store
        )
        self.aggregation = aggregation
        self._cache: dict[str, tuple[int, TemplateMatrix, np.ndarray]] = {}
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
    def _cached(self, model: str) -> tuple[int, TemplateMatrix, np.ndarray]:
        version = self.store.version()
        with self._lock:
            cached = self._cache.get(model)
            if cached is None or cached[0] != version:
                matrix = self.store.matrix(model)
                cached = (version, matrix, identity_centroids(matrix))
                self._cache[model] = cached
            return cached

    def matrix(self, model: str) -> TemplateMatrix:
        """Every template of ``model`` (cached until the store changes)."""
        return self._cached(model)[1]

    def search(self, queries: np.ndarray, model: str, top_k: int = 5) -> list[list[Candidate]]:
        """Top-k identities (best first) for each unit-length query template."""
        queries = np.atleast_2d(np.asarray(queries, np.float32))
        _, matrix, centroids = self._cached(model)
        return rank_identities(queries, matrix, top_k, self.aggregation, centroids)

    def score(self, query: np.ndarray, name: str, model: str) -> float:
        """The identity-level score of one query against the enrolled person ``name``."""
        _, matrix, centroids = self._cached(model)
        if name not in matrix.names:
            self.store.get_identity(name)  # raises UnknownIdentityError for an unknown name
            raise FaceprintError(f"identity {name!r} has no templates for model {model}")
        scores = identity_scores(np.atleast_2d(np.asarray(query, np.float32)), matrix, self.aggregation, centroids)
        return float(scores[0, matrix.names.index(name)])

    # settings ---------------------------------------------------------------------
    def setting(self, key: str) -> Any | None:
        return self.store.get_setting(key)

    def set_setting(self, key: str, value: Any) -> None:
        self.store.set_setting(key, value)

    def close(self) -> None:
        self.store.close()


__all__ = ["Gallery", "GalleryStore", "Identity", "SQLiteStore", "Template", "TemplateMatrix", "default_gallery_path"]
