"""The gallery of known people: a storage backend plus search over its templates."""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from faceprint import settings
from faceprint.errors import FaceprintError, GalleryError
from faceprint.gallery.base import GalleryStore, Identity, Template, TemplateMatrix
from faceprint.gallery.crypto import KEY_HELP, KeySource, resolve_key
from faceprint.gallery.index import IndexableStore, IndexParams, StoreIndex, remove_index_files, sidecar_path
from faceprint.gallery.location import POSTGRES_SCHEMES, shown_url, url_scheme
from faceprint.gallery.sqlite import SQLiteStore
from faceprint.match import (
    DEFAULT_VIEWS,
    Aggregation,
    IdentityViews,
    ViewRule,
    gallery_views,
    identity_centroids,
    identity_scores,
    identity_views,
    top_identities,
)
from faceprint.types import Candidate

if TYPE_CHECKING:
    from faceprint.privacy.protect import TemplateProtection

log = logging.getLogger(__name__)

#: Identities (of one model) from which search goes through the ANN index instead of scanning every
#: centroid. Below it exact search costs well under a millisecond a query and needs no index file;
#: measured with ``benchmarks/search.py --cutover``. Override per Gallery or with $FACEPRINT_ANN_MIN_IDENTITIES.
DEFAULT_ANN_MIN_IDENTITIES = int(settings.ANN_MIN_IDENTITIES.default)


def default_gallery_path() -> str | Path:
    """``$FACEPRINT_GALLERY`` (a path, or a database URL kept as text), else ``$XDG_DATA_HOME/faceprint/gallery.db``."""
    env = os.environ.get("FACEPRINT_GALLERY")
    if env:
        return env if url_scheme(env) else Path(env)
    data = os.environ.get("XDG_DATA_HOME") or os.path.expanduser("~/.local/share")
    return Path(data) / "faceprint" / "gallery.db"


def open_store(location: str | Path, create: bool = True, key: KeySource = "environment") -> GalleryStore:
    """A storage backend for a location: a ``postgresql://`` (or ``postgres://``) URL for the PostgreSQL
    store, else a file path for SQLite. A URL of any other scheme is an error, never taken for a path. A
    missing gallery is created only when ``create``; otherwise GalleryNotFoundError. ``key``: see
    :class:`SQLiteStore` (encryption at rest is for SQLite galleries only)."""
    scheme = url_scheme(location) if isinstance(location, str) else None
    if scheme in POSTGRES_SCHEMES:
        if resolve_key(key) is not None:  # in-database search needs the vectors in the clear: refuse, never ignore
            raise GalleryError(
                f"{shown_url(str(location))}: encryption at rest is supported for SQLite galleries only: "
                f"unset {KEY_HELP} for a PostgreSQL gallery"
            )
        try:
            from faceprint.gallery.postgres import PostgresStore
        except ImportError as exc:
            raise GalleryError(
                f"{shown_url(str(location))}: a PostgreSQL gallery needs psycopg, psycopg_pool and pgvector: "
                f"pip install 'faceprint[postgres]' ({exc})"
            ) from exc
        return PostgresStore(str(location), create=create)
    if scheme is not None:
        raise GalleryError(
            f"{shown_url(str(location))}: unknown gallery URL scheme {scheme!r}: "
            f"give a file path or a {' or '.join(s + '://' for s in POSTGRES_SCHEMES)} URL"
        )
    first = Path(location).parts[:1]
    if first and first[0].rstrip(":").lower() in POSTGRES_SCHEMES and first[0].endswith(":"):
        # e.g. Path("postgresql://host/db") == Path("postgresql:/host/db"): a mangled URL, not a folder to create
        raise GalleryError(f"{location}: looks like a database URL that lost its '//': pass the URL as text")
    return SQLiteStore(location, create=create, key=key)


class Gallery:
    """Identities and their templates, with 1:N search.

    Search is exact (one matrix product) and uses an in-memory copy of the templates that
    is refreshed whenever another process or thread changes the store.

    From ``ann_min_identities`` identities of a model on (centroid or views scoring, a store that
    can follow changes), search goes through an approximate index over the identity centroids, or
    their view vectors (``faceprint.gallery.index``), saved beside the gallery file; its candidates
    are re-scored exactly, and it catches up with the store's changes before every search.

    ``aggregation="views"`` scores each person by the best of several view vectors when their
    templates are diverse (``views``: the :class:`~faceprint.match.ViewRule`, default
    :data:`~faceprint.match.DEFAULT_VIEWS`); a person whose templates agree scores as with "centroid".

    A protected gallery (:mod:`faceprint.privacy.protect`) stores templates transformed by its key's
    secret matrix: ``protect_key`` (default: ``$FACEPRINT_PROTECT_KEY`` or ``$FACEPRINT_PROTECT_KEY_FILE``)
    is needed to add templates and to search, and new templates and queries are transformed here.

    An encrypted gallery (:mod:`faceprint.gallery.crypto`, SQLite only) keeps its templates, index files
    and thumbnails sealed with AES-GCM: ``key`` (default: ``$FACEPRINT_KEY`` or ``$FACEPRINT_KEY_FILE``)
    is needed to open it at all.
    """

    def __init__(
        self,
        store: GalleryStore | str | Path | None = None,
        aggregation: Aggregation = "centroid",
        *,
        views: ViewRule | None = None,
        ann_min_identities: int | None = None,
        index_params: IndexParams | None = None,
        create: bool = True,
        protect_key: bytes | None = None,
        key: KeySource = "environment",
    ) -> None:
        self.store: GalleryStore = (
            open_store(default_gallery_path() if store is None else store, create=create, key=key)
            if store is None or isinstance(store, (str, Path))
            else store
        )
        if views is not None and aggregation != "views":
            raise ValueError(f"a view rule needs aggregation 'views', not {aggregation!r}")
        self.aggregation = aggregation
        #: the view rule when scoring by views, else None
        self.views = (views or DEFAULT_VIEWS) if aggregation == "views" else None
        self.ann_min_identities = (
            ann_min_identities if ann_min_identities is not None else settings.ann_min_identities()
        )
        # recall against speed, without code
        self.index_params = index_params or IndexParams(probe_scale=settings.ann_probe_scale())
        self._cache: dict[str, tuple[int, TemplateMatrix, IdentityViews | None]] = {}
        self._indexes: dict[str, StoreIndex] = {}
        self._small: dict[str, int] = {}  # model -> store version at which it was counted below the cut-over
        self._lock = threading.Lock()
        self._protect_key = protect_key
        self._protection: tuple[TemplateProtection | None] | None = None  # checked on first use

    # identities -----------------------------------------------------------------
    def add_identity(self, name: str, metadata: dict[str, Any] | None = None) -> Identity:
        return self.store.add_identity(name, metadata)

    def identities(self) -> list[Identity]:
        return self.store.identities()

    def get_identity(self, name: str) -> Identity:
        return self.store.get_identity(name)

    def rename(self, old: str, new: str) -> None:
        self.store.rename_identity(old, new)

    def remove(self, name: str, purge: bool = False) -> int:
        """Delete a person and their templates (returns how many); with ``purge``, also erase what
        is left of them in the gallery's files (:meth:`purge`)."""
        removed = self.store.remove_identity(name)
        if purge:
            self.purge()
        return removed

    def add_templates(self, name: str, templates: list[Template], create: bool = True) -> list[int]:
        protection = self.protection
        if protection is not None:
            templates = protection.templates(templates)
        return self.store.add_templates(name, templates, create=create)

    def templates(self, name: str | None = None) -> list[Template]:
        return self.store.templates(name)

    def remove_template(self, name: str, template_id: int, purge: bool = False) -> Template:
        """Delete one photo's template of ``name`` (see :meth:`templates` for the ids); returns what
        was removed. Raises UnknownIdentityError for an unknown person, PhotoNotFoundError for an id
        that is not one of theirs. ``purge``: as for :meth:`remove`."""
        removed = self.store.remove_template(name, template_id)
        if purge:
            self.purge()
        return removed

    def purge(self) -> None:
        """Erase what removed people and photos leave behind in the gallery's storage: the store's
        own leftovers (``GalleryStore.purge``: free pages, write-ahead log, change-log rows of removed
        people) and the search index files beside a gallery file, which hold identity centroids (the
        next search that needs an index rebuilds it from the records)."""
        with self._lock:
            # an index in memory still holds the removed centroids, and close() would save it again
            self._indexes.clear()
            self._cache.clear()
            self._small.clear()
            self.store.purge()
            path = getattr(self.store, "path", None)
            if isinstance(path, Path):
                remove_index_files(path)

    # protection -------------------------------------------------------------------
    @property
    def protection(self) -> TemplateProtection | None:
        """The gallery's template protection (None: unprotected), checked against the key on first
        use; raises ProtectionKeyError for a missing or wrong key, or a key for an unprotected gallery."""
        if self._protection is None:
            from faceprint.privacy.protect import gallery_protection

            key = self._protect_key if self._protect_key is not None else settings.protect_key()
            self._protection = (gallery_protection(self.store, key),)
        return self._protection[0]

    def check_protection_key(self) -> None:
        """Raise ProtectionKeyError now if the protection key is missing or wrong (front ends call
        this before reading any photo, so a key mistake costs nothing)."""
        _ = self.protection

    def _queries(self, queries: np.ndarray) -> np.ndarray:
        protection = self.protection
        return queries if protection is None else protection.apply(queries)

    def unprotected(self, vectors: np.ndarray) -> np.ndarray:
        """Stored templates as the engine makes them (the same vectors in an unprotected gallery)."""
        protection = self.protection
        return vectors if protection is None else protection.revert(vectors)

    def __len__(self) -> int:
        return len(self.store.identities())

    # search -----------------------------------------------------------------------
    def _cached(self, model: str) -> tuple[int, TemplateMatrix, IdentityViews | None]:
        """(store version, templates, each identity's scoring vectors: None for "max"/"mean", which
        need every template)."""
        version = self.store.version()
        with self._lock:
            cached = self._cache.get(model)
            if cached is None or cached[0] != version:
                matrix = self.store.matrix(model)
                cached = (version, matrix, self._scoring_vectors(matrix))
                self._cache[model] = cached
            return cached

    def _scoring_vectors(self, matrix: TemplateMatrix) -> IdentityViews | None:
        if self.aggregation == "centroid":
            return IdentityViews(np.arange(len(matrix.names)), identity_centroids(matrix))
        if self.aggregation == "views":
            return gallery_views(matrix, self.views)
        return None

    def matrix(self, model: str) -> TemplateMatrix:
        """Every template of ``model`` (cached until the store changes)."""
        return self._cached(model)[1]

    def _index(self, model: str) -> StoreIndex | None:
        """The model's ANN index, synced with the store, when the gallery is large enough for one
        (caller holds the lock). None: search exactly."""
        store = self.store
        if self.aggregation not in ("centroid", "views") or not isinstance(store, IndexableStore):
            return None  # the index holds centroids or views; "max"/"mean" need every template
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
            # beside a gallery file only: a database's index lives in memory and catches up from its change log
            path = getattr(store, "path", None)
            sidecar = sidecar_path(path, model) if isinstance(path, Path) else None
            indexed = StoreIndex(store, model, sidecar, self.index_params, self.views)
            self._indexes[model] = indexed
        try:
            index = indexed.sync()
        except FaceprintError as exc:  # faiss missing: correct but slow
            log.warning("%s; searching exactly", exc)
            del self._indexes[model]
            self._small[model] = store.version()
            return None
        if index.identities < self.ann_min_identities // 2:  # shrank well below the cut-over (half: no flapping)
            del self._indexes[model]
            return None
        self._cache.pop(model, None)  # the exact path's template copy is not needed any more
        return indexed

    def search(self, queries: np.ndarray, model: str, top_k: int = 5) -> list[list[Candidate]]:
        """Top-k identities (best first) for each unit-length query template."""
        queries = self._queries(np.atleast_2d(np.asarray(queries, np.float32)))
        with self._lock:  # the index is modified in place when it catches up: no search meanwhile
            indexed = self._index(model)
            if indexed is not None and indexed.index is not None:
                keys, scores = indexed.index.search(queries, top_k)
                names = self.store.identity_names(sorted({int(k) for k in keys.ravel() if k >= 0}))  # type: ignore[attr-defined]
                return [
                    [Candidate(names[int(k)], float(sc)) for k, sc in zip(kr, sr) if int(k) in names]
                    for kr, sr in zip(keys, scores)
                ]
        _, matrix, scoring = self._cached(model)
        if not matrix.names:
            return [[] for _ in range(len(queries))]
        return top_identities(self._scores(queries, matrix, scoring), matrix.names, top_k)

    def _scores(self, queries: np.ndarray, matrix: TemplateMatrix, scoring: IdentityViews | None) -> np.ndarray:
        """(Q, n_identities) exact identity scores, identities in ``matrix.names`` order."""
        if scoring is not None:
            return scoring.scores(queries)
        return identity_scores(queries, matrix, self.aggregation)

    def score(self, query: np.ndarray, name: str, model: str) -> float:
        """The identity-level score of one query against the enrolled person ``name``."""
        query = self._queries(np.atleast_2d(np.asarray(query, np.float32)))
        if model in self._indexes:  # a large gallery: read this identity's templates, not everyone's
            vectors = [t.embedding for t in self.store.templates(name) if t.model == model]
            if not vectors:
                raise FaceprintError(f"identity {name!r} has no templates for model {model}")
            # the index path only runs for "centroid" and "views": the same vectors the index holds
            own = identity_views(np.zeros(len(vectors), np.int64), np.stack(vectors), self.views)
            return float(own.scores(query)[0, 0])
        _, matrix, scoring = self._cached(model)
        if name not in matrix.names:
            self.store.get_identity(name)  # raises UnknownIdentityError for an unknown name
            raise FaceprintError(f"identity {name!r} has no templates for model {model}")
        return float(self._scores(query, matrix, scoring)[0, matrix.names.index(name)])

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
    "ViewRule",
    "default_gallery_path",
]
