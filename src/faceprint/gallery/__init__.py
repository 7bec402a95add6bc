"""The gallery of known people: a storage backend plus search over its templates."""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from faceprint import settings
from faceprint.errors import FaceprintError
from faceprint.gallery.base import GalleryStore, Identity, Template, TemplateMatrix
from faceprint.gallery.index import IndexableStore, IndexParams, StoreIndex, sidecar_path
from faceprint.gallery.sqlite import SQLiteStore
from faceprint.match import Aggregation, identity_centroids, identity_scores, rank_identities
from faceprint.types import Candidate

log = logging.getLogger(__name__)

#: Identities (of one model) from which search goes through the ANN index instead of scanning every
#: centroid. Below it exact search costs well under a millisecond a query and needs no index file;
#: measured with ``benchmarks/search.py --cutover``. Override per Gallery or with $FACEPRINT_ANN_MIN_IDENTITIES.
DEFAULT_ANN_MIN_IDENTITIES = int(settings.ANN_MIN_IDENTITIES.default)


def default_gallery_path() -> Path:
    """``$FACEPRINT_GALLERY``, else ``$XDG_DATA_HOME/faceprint/gallery.db``."""
    env = os.environ.get("FACEPRINT_GALLERY")
    if env:
        return Path(env)
    data = os.environ.get("XDG_DATA_HOME") or os.path.expanduser("~/.local/share")
    return Path(data) / "faceprint" / "gallery.db"


def open_store(location: str | Path, create: bool = True) -> GalleryStore:
    """A storage backend for a location: a file path (SQLite) for now. A missing gallery is
    created only when ``create``; otherwise GalleryNotFoundError."""
    return SQLiteStore(location, create=create)


class Gallery:
    """Identities and their templates, with 1:N search.

    Search is exact (one matrix product) and uses an in-memory copy of the templates that
    is refreshed whenever another process or thread changes the store.

    From ``ann_min_identities`` identities of a model on (centroid scoring, a store that can
    follow changes), search goes through an approximate index over the identity centroids
    (``faceprint.gallery.index``), saved beside the gallery file; its candidates are re-scored
    exactly, and it catches up with the store's changes before every search.
    """

    def __init__(
        self,
        store: GalleryStore | str | Path | None = None,
        aggregation: Aggregation = "centroid",
        *,
        ann_min_identities: int | None = None,
        index_params: IndexParams | None = None,
        create: bool = True,
    ) -> None:
        self.store: GalleryStore = (
            open_store(default_gallery_path() if store is None else store, create=create)
            if store is None or isinstance(store, (str, Path))
            else store
        )
        self.aggregation = aggregation
        self.ann_min_identities = (
            ann_min_identities if ann_min_identities is not None else settings.ann_min_identities()
        )
        # recall against speed, without code
        self.index_params = index_params or IndexParams(probe_scale=settings.ann_probe_scale())
        self._cache: dict[str, tuple[int, TemplateMatrix, np.ndarray]] = {}
        self._indexes: dict[str, StoreIndex] = {}
        self._small: dict[str, int] = {}  # model -> store version at which it was counted below the cut-over
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

    def remove_template(self, name: str, template_id: int) -> Template:
        """Delete one photo's template of ``name`` (see :meth:`templates` for the ids); returns what
        was removed. Raises UnknownIdentityError for an unknown person, PhotoNotFoundError for an id
        that is not one of theirs."""
        return self.store.remove_template(name, template_id)

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

    def _index(self, model: str) -> StoreIndex | None:
        """The model's ANN index, synced with the store, when the gallery is large enough for one
        (caller holds the lock). None: search exactly."""
        store = self.store
        if self.aggregation != "centroid" or not isinstance(store, IndexableStore):
            return None  # the index holds centroids; "max"/"mean" need every template
        indexed = self._indexes.get(model)
        if indexed is None:
            version = store.version()
            if self._small.get(model) == version:
                return None
            # counting all identities is cheap and bounds the per-model count (a scan of its templates)
            if (
                store.identity_count() < self.ann_min_identities
                or store.identity_count(model) < self.ann_min_identities
            ):
                self._small[model] = version
                return None
            path = getattr(store, "path", None)
            indexed = StoreIndex(store, model, sidecar_path(Path(path), model) if path else None, self.index_params)
            self._indexes[model] = indexed
        try:
            index = indexed.sync()
        except FaceprintError as exc:  # faiss missing: correct but slow
            log.warning("%s; searching exactly", exc)
            del self._indexes[model]
            self._small[model] = store.version()
            return None
        if len(index) < self.ann_min_identities // 2:  # shrank well below the cut-over (half: no flapping)
            del self._indexes[model]
            return None
        self._cache.pop(model, None)  # the exact path's template copy is not needed any more
        return indexed

    def search(self, queries: np.ndarray, model: str, top_k: int = 5) -> list[list[Candidate]]:
        """Top-k identities (best first) for each unit-length query template."""
        queries = np.atleast_2d(np.asarray(queries, np.float32))
        with self._lock:  # the index is modified in place when it catches up: no search meanwhile
            indexed = self._index(model)
            if indexed is not None and indexed.index is not None:
                keys, scores = indexed.index.search(queries, top_k)
                names = self.store.identity_names(sorted({int(k) for k in keys.ravel() if k >= 0}))  # type: ignore[attr-defined]
                return [
                    [Candidate(names[int(k)], float(sc)) for k, sc in zip(kr, sr) if int(k) in names]
                    for kr, sr in zip(keys, scores)
                ]
        _, matrix, centroids = self._cached(model)
        return rank_identities(queries, matrix, top_k, self.aggregation, centroids)

    def score(self, query: np.ndarray, name: str, model: str) -> float:
        """The identity-level score of one query against the enrolled person ``name``."""
        if model in self._indexes:  # a large gallery: read this identity's templates, not everyone's
            vectors = [t.embedding for t in self.store.templates(name) if t.model == model]
            if not vectors:
                raise FaceprintError(f"identity {name!r} has no templates for model {model}")
            centroid = np.sum(vectors, axis=0)
            centroid /= max(float(np.linalg.norm(centroid)), 1e-12)
            return float(np.asarray(query, np.float32).ravel() @ centroid)
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
        with self._lock:
            for indexed in self._indexes.values():
                try:
                    indexed.save()  # catch-up work since the last save; a stale file also works
                except OSError as exc:
                    log.warning("could not save the search index: %s", exc)
            self._indexes.clear()
        self.store.close()


__all__ = [
    "DEFAULT_ANN_MIN_IDENTITIES",
    "Gallery",
    "GalleryStore",
    "Identity",
    "IndexParams",
    "SQLiteStore",
    "Template",
    "TemplateMatrix",
    "default_gallery_path",
]
