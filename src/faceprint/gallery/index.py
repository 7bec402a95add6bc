"""Approximate nearest-neighbour search over identity centroids, for galleries too large to scan.

Identity scores are cosines to each identity's unit mean template ("centroid", the default scoring),
so one vector per identity is indexed, keyed by the store's identity id. The graph is FAISS's HNSW
(chosen by measurement over usearch and hnswlib: ``benchmarks/search.py --compare``); it keeps
float32 vectors, so every candidate is re-scored exactly from the stored centroid.

On disk, beside the gallery file: ``<gallery>.<model hash>.<token>.faiss`` (the graph and vectors),
``<gallery>.<model hash>.<token>.keys.npy`` (row -> identity id) and the sidecar
``<gallery>.<model hash>.index.json`` (the store version and model the index is for, and which
token's files hold it). The sidecar is replaced atomically after the files it names are complete,
so concurrent writers never leave it pointing at half-written files. Whenever the sidecar's
version differs from the store's, the index catches up from the store's change log (only the
identities that changed are re-read), or is rebuilt from the records when the log cannot tell;
so it never disagrees with the records, and deleting any of these files is always safe.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import secrets
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

log = logging.getLogger(__name__)

FORMAT = 1
#: Orphaned index files (a writer died between writing one and its sidecar) older than this are removed.
ORPHAN_AGE_S = 600


@dataclass(frozen=True)
class IndexParams:
    """HNSW settings (M, efConstruction, efSearch). Templates of different people are all alike
    (cosines 0.75-0.93), so the graph walk needs a wide search to find the true nearest centroid:
    efSearch 256 is what reached recall@1 >= 0.99 against exact search (benchmarks/search.py)."""

    connectivity: int = 16
    expansion_add: int = 128
    expansion_search: int = 256


@runtime_checkable
class IndexableStore(Protocol):
    """What a store offers so that an index can follow it without reading every template."""

    def version(self) -> int: ...

    def identity_count(self, model: str | None = None) -> int: ...

    def centroids(self, model: str, identity_ids: list[int] | None = None) -> tuple[np.ndarray, np.ndarray]: ...

    def identity_names(self, identity_ids: list[int]) -> dict[int, str]: ...

    def changed_identities(self, since: int) -> tuple[int, set[int]] | None: ...


def _faiss() -> Any:
    try:
        import faiss
    except ImportError as exc:  # an optional dependency: only large galleries need it
        from faceprint.errors import FaceprintError

        raise FaceprintError("searching a large gallery needs FAISS: pip install faiss-cpu") from exc
    return faiss


@contextlib.contextmanager
def _omp_threads(faiss: Any, n: int) -> Iterator[None]:
    """FAISS's OpenMP thread count for a block: all cores to build, one to search (a single query
    gains nothing from more, and on a shared machine extra threads only wait: ~5x slower measured)."""
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(n if n > 0 else os.cpu_count() or 1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


class CentroidIndex:
    """An HNSW graph (FAISS ``IndexHNSWFlat``, inner product) over unit vectors keyed by non-negative
    integers (identity ids: dense, so key -> row is an array), with exact re-scoring.

    FAISS's HNSW cannot delete, so a removed or replaced key leaves a tombstone row that searches
    skip (it still routes the graph walk); a replaced vector that moved only a little (the usual
    case: one more photo of the person) is overwritten in place instead. The graph is rebuilt from
    the live rows once tombstones pass ``COMPACT_AT`` of the rows.
    """

    COMPACT_AT = 0.2
    #: Overwrite a replaced vector in place when it is at least this close to the old one: its graph
    #: links still lead to it (a face centroid moves ~0.99 when a photo is added).
    IN_PLACE_COSINE = 0.98

    def __init__(self, dim: int, params: IndexParams | None = None, model: str = "", version: int = -1) -> None:
        self.dim = dim
        self.params = params or IndexParams()
        self.model = model
        self.version = version  # the store version whose records this index reflects
        self._faiss = _faiss()
        self._graph = self._new_graph()
        self._keys = np.zeros(0, np.int64)  # row -> key, -1: tombstone
        self._rows = np.zeros(0, np.int64)  # key -> row, -1: absent
        self._selector: Any = None  # live-row filter for searches, None while there are no tombstones
        self._bitmap = np.zeros(0, np.uint8)  # the selector's memory: must live as long as it

    def _new_graph(self) -> Any:
        graph = self._faiss.IndexHNSWFlat(max(self.dim, 1), self.params.connectivity, self._faiss.METRIC_INNER_PRODUCT)
        graph.hnsw.efConstruction = self.params.expansion_add
        return graph

    def __len__(self) -> int:
        return int(np.count_nonzero(self._keys >= 0))

    @property
    def tombstones(self) -> int:
        return len(self._keys) - len(self)

    def keys(self) -> np.ndarray:
        return self._keys[self._keys >= 0].copy()

    def _stored(self) -> np.ndarray:
        """(rows, dim) float32 view of the graph's vector storage (no copy)."""
        n = self._graph.ntotal
        if n == 0:
            return np.zeros((0, self.dim), np.float32)
        flat = self._faiss.downcast_index(self._graph.storage)
        return self._faiss.rev_swig_ptr(flat.get_xb(), n * self.dim).reshape(n, self.dim)

    def _row_of(self, keys: np.ndarray) -> np.ndarray:
        rows = np.full(len(keys), -1, np.int64)
        known = (keys >= 0) & (keys < len(self._rows))
        rows[known] = self._rows[keys[known]]
        return rows

    def upsert(self, keys: np.ndarray, vectors: np.ndarray, threads: int = 0) -> None:
        """Add or replace the vectors of ``keys`` (threads=0: all cores)."""
        keys = np.asarray(keys, np.int64).ravel()
        if len(keys) == 0:
            return
        if len(np.unique(keys)) != len(keys) or keys.min() < 0:
            raise ValueError("keys must be distinct non-negative integers")
        vectors = np.ascontiguousarray(vectors, np.float32).reshape(len(keys), self.dim)
        rows = self._row_of(keys)
        old = rows >= 0
        stored = self._stored()
        close = np.zeros(len(keys), bool)
        if old.any():
            close[old] = np.einsum("ij,ij->i", stored[rows[old]], vectors[old]) >= self.IN_PLACE_COSINE
            stored[rows[close]] = vectors[close]
        self.remove(keys[old & ~close])
        new = ~close
        if new.any():
            first = self._graph.ntotal
            # a few vectors (catching up with an enrolment) gain nothing from threads, and on a busy
            # machine waiting for a descheduled OpenMP thread costs more than the insert
            with _omp_threads(self._faiss, threads if new.sum() >= 1000 else 1):
                self._graph.add(vectors[new])
            added = np.arange(first, first + int(new.sum()))
            self._keys = np.concatenate([self._keys, keys[new]])
            if keys.max() >= len(self._rows):
                grown = np.full(max(int(keys.max()) + 1, 2 * len(self._rows)), -1, np.int64)
                grown[: len(self._rows)] = self._rows
                self._rows = grown
            self._rows[keys[new]] = added
            self._refresh_selector()

    def remove(self, keys: np.ndarray) -> None:
        keys = np.asarray(keys, np.int64).ravel()
        rows = self._row_of(keys)
        rows = rows[rows >= 0]
        if len(rows):
            self._rows[self._keys[rows]] = -1
            self._keys[rows] = -1
            self._refresh_selector()
            if self.tombstones > self.COMPACT_AT * len(self._keys):
                self._compact()

    def _refresh_selector(self) -> None:
        if self.tombstones == 0:
            self._selector, self._bitmap = None, np.zeros(0, np.uint8)
            return
        self._bitmap = np.packbits(self._keys >= 0, bitorder="little")
        self._selector = self._faiss.IDSelectorBitmap(len(self._keys), self._faiss.swig_ptr(self._bitmap))

    def _compact(self, threads: int = 0) -> None:
        """Rebuild the graph from the live rows (drops the tombstones)."""
        live = np.flatnonzero(self._keys >= 0)
        keys, vectors = self._keys[live], self._stored()[live].copy()
        self._graph = self._new_graph()
        self._keys = np.zeros(0, np.int64)
        self._rows[:] = -1
        self._selector = None
        self.upsert(keys, vectors, threads)

    def vectors(self, keys: np.ndarray) -> np.ndarray:
        """(len(keys), dim) stored vectors; zeros for a key that is not indexed."""
        rows = self._row_of(np.asarray(keys, np.int64).ravel())
        out = np.zeros((len(rows), self.dim), np.float32)
        out[rows >= 0] = self._stored()[rows[rows >= 0]]
        return out

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(Q, k) keys and exact cosine scores, best first, for (Q, dim) unit queries; rows with fewer
        than k hits are padded with key -1 and score -inf."""
        queries = np.ascontiguousarray(np.atleast_2d(queries), np.float32)
        keys = np.full((len(queries), k), -1, np.int64)
        scores = np.full((len(queries), k), -np.inf, np.float32)
        if len(self) == 0 or k <= 0:
            return keys, scores
        params = self._faiss.SearchParametersHNSW()
        params.efSearch = max(self.params.expansion_search, k)  # the graph walk keeps ef candidates: never below k
        if self._selector is not None:
            params.sel = self._selector
        with _omp_threads(self._faiss, 1):
            _, rows = self._graph.search(queries, k, params=params)
        stored = self._stored()
        for i in range(len(queries)):
            hit = rows[i][rows[i] >= 0]
            if len(hit) == 0:
                continue
            exact = stored[hit] @ queries[i]  # re-score: exact float32 cosines, in numpy's summation
            order = np.argsort(-exact, kind="stable")
            keys[i, : len(hit)] = self._keys[hit[order]]
            scores[i, : len(hit)] = exact[order]
        return keys, scores

    # persistence ------------------------------------------------------------------------------
    def save(self, sidecar: Path) -> None:
        """Write the graph and the keys next to ``sidecar`` under a fresh token, then the sidecar
        (atomically) that names them: readers never see a sidecar for half-written files."""
        token = secrets.token_hex(6)
        base = sidecar.name.removesuffix(".index.json")
        graph, keys = sidecar.with_name(f"{base}.{token}.faiss"), sidecar.with_name(f"{base}.{token}.keys.npy")
        old = _read_sidecar(sidecar)
        self._faiss.write_index(self._graph, str(graph))
        np.save(keys, self._keys)
        meta = {"format": FORMAT, "model": self.model, "version": self.version, "dim": self.dim, "size": len(self)}
        meta |= {"token": token, "params": asdict(self.params), "saved_at": time.time()}
        tmp = sidecar.with_name(f".{sidecar.name}.{token}.tmp")
        tmp.write_text(json.dumps(meta))
        os.replace(tmp, sidecar)
        if old and old.get("token") and old["token"] != token:
            for suffix in (".faiss", ".keys.npy"):
                with contextlib.suppress(OSError):
                    sidecar.with_name(f"{base}.{old['token']}{suffix}").unlink()
        _remove_orphans(sidecar, keep=token)

    @classmethod
    def load(cls, sidecar: Path, model: str, params: IndexParams | None = None) -> CentroidIndex | None:
        """The saved index for ``model``, or None when there is none, or it is for another model,
        format or parameters, or its files are missing or damaged (the caller rebuilds)."""
        params = params or IndexParams()
        base = sidecar.name.removesuffix(".index.json")
        for _ in range(2):  # a concurrent writer may replace the files between reading the sidecar and opening them
            meta = _read_sidecar(sidecar)
            if not meta or meta.get("format") != FORMAT or meta.get("model") != model:
                return None
            if meta.get("params") != asdict(params):
                return None
            index = cls(int(meta["dim"]), params, model, int(meta["version"]))
            try:
                graph = index._faiss.read_index(str(sidecar.with_name(f"{base}.{meta['token']}.faiss")))
                keys = np.load(sidecar.with_name(f"{base}.{meta['token']}.keys.npy"))
            except (OSError, RuntimeError, ValueError) as exc:
                log.info("index %s unreadable (%s): rebuilding", sidecar, exc)
                continue
            if (
                graph.d != max(index.dim, 1)
                or graph.ntotal != len(keys)
                or int(np.count_nonzero(keys >= 0)) != meta.get("size")
            ):
                return None
            index._graph = graph
            index._keys = keys.astype(np.int64)
            index._rows = np.full(int(keys.max(initial=-1)) + 1, -1, np.int64)
            live = np.flatnonzero(index._keys >= 0)
            index._rows[index._keys[live]] = live
            index._refresh_selector()
            return index
        return None


def _read_sidecar(sidecar: Path) -> dict[str, Any] | None:
    try:
        meta = json.loads(sidecar.read_text())
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


def _remove_orphans(sidecar: Path, keep: str) -> None:
    prefix = sidecar.name.removesuffix(".index.json") + "."
    now = time.time()
    for path in [*sidecar.parent.glob(prefix + "*.faiss"), *sidecar.parent.glob(prefix + "*.keys.npy")]:
        with contextlib.suppress(OSError):
            if not path.name.startswith(prefix + keep + ".") and now - path.stat().st_mtime > ORPHAN_AGE_S:
                path.unlink()


def sidecar_path(gallery_file: Path, model: str) -> Path:
    """``<gallery>.<model hash>.index.json``: one index per model, since one gallery may hold several."""
    digest = hashlib.sha1(model.encode()).hexdigest()[:12]
    return gallery_file.with_name(f"{gallery_file.name}.{digest}.index.json")


class StoreIndex:
    """The centroid index of one model, kept in step with a store (and with its file, if any).

    ``sync()`` is called before every search: it costs one version read when nothing changed; when
    another process or thread changed the store, only the changed identities are re-read and
    re-indexed; when the change log cannot say what changed, the index is rebuilt from the records.
    """

    #: Save after this many incremental changes (a stale file is fine: opening it catches up from the log).
    SAVE_EVERY = 10_000

    def __init__(
        self, store: IndexableStore, model: str, path: Path | None = None, params: IndexParams | None = None
    ) -> None:
        self.store = store
        self.model = model
        self.path = path  # the sidecar; None: keep the index in memory only
        self.params = params or IndexParams()
        self.index: CentroidIndex | None = None
        self._unsaved = 0
        self.last_sync: dict[str, Any] = {}  # what the last sync did and how long it took (for benchmarks and logs)

    def sync(self) -> CentroidIndex:
        t0 = time.perf_counter()
        version = self.store.version()
        if self.index is not None and self.index.version == version:
            return self.index
        how = "loaded"
        if self.index is None and self.path is not None:
            self.index = CentroidIndex.load(self.path, self.model, self.params)
        if self.index is not None and self.index.version != version:
            how = "caught up"
            if not self._catch_up(self.index):
                self.index = None
        if self.index is None:
            how = "built"
            self.index = self._build()
            if self.path is not None:
                self.index.save(self.path)
                self._unsaved = 0
        elif self._unsaved >= self.SAVE_EVERY:
            self.save()
        self.last_sync = {"how": how, "seconds": time.perf_counter() - t0, "size": len(self.index)}
        log.debug("centroid index %s: %s", self.model, self.last_sync)
        return self.index

    def save(self) -> None:
        if self.index is not None and self.path is not None and self._unsaved:
            self.index.save(self.path)
            self._unsaved = 0

    def _build(self) -> CentroidIndex:
        version = self.store.version()  # read before the records: a change landing between is applied again
        ids, centroids = self.store.centroids(self.model)
        index = CentroidIndex(centroids.shape[1] if len(ids) else 0, self.params, self.model, version)
        if len(ids):
            index.upsert(ids, centroids)
        return index

    def _catch_up(self, index: CentroidIndex) -> bool:
        changed = self.store.changed_identities(index.version)
        if changed is None:
            return False
        version, ids = changed
        wanted = sorted(ids)
        if wanted:
            have, centroids = self.store.centroids(self.model, wanted)
            if len(have) and index.dim == 0:
                return False  # the first templates of this model: build it with the right dimension
            if len(have) and centroids.shape[1] != index.dim:
                return False
            index.remove(np.setdiff1d(np.asarray(wanted, np.int64), have))  # gone, or no templates left
            index.upsert(have, centroids)
            self._unsaved += len(wanted)
        index.version = version
        return True
