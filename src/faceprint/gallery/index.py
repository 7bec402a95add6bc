"""Approximate nearest-neighbour search over identity centroids, for galleries too large to scan.

Identity scores are cosines to each identity's unit mean template ("centroid", the default scoring),
so one vector per identity is indexed, keyed by the store's identity id; with multi-view scoring
("views", ``faceprint.match.ViewRule``) an identity has one vector per view and scores its best. The index is FAISS's
IVF-flat: the centroids are clustered into lists, and a query scans the lists nearest to it. Chosen
by measurement (``benchmarks/search.py``): face templates of different people are all alike (cosines
0.75-0.93), so HNSW graphs (FAISS, usearch, hnswlib) needed wide, slow walks and still missed; IVF
reaches recall@1 >= 0.99 at under 2 ms on 333k identities. It keeps float32 vectors, deletes
natively, and every candidate is re-scored exactly, so the scores equal exact search's.

On disk, beside the gallery file: ``<gallery>.<model hash>.<token>.faiss`` (lists, vectors, ids) and
the sidecar ``<gallery>.<model hash>.index.json`` (the store version and model the index is for, and
which token's file holds it). The sidecar is replaced atomically after the file it names is
complete, so concurrent writers never leave it pointing at a half-written file. Whenever the
sidecar's version differs from the store's, the index catches up from the store's change log (only
the identities that changed are re-read), or is rebuilt from the records when the log cannot tell;
so it never disagrees with the records, and deleting any of these files is always safe. In an encrypted
gallery (:mod:`faceprint.gallery.crypto`) the ``.faiss`` file is sealed whole with the gallery's
cipher, and the sidecar records which cipher: a file sealed otherwise, or not at all, is rebuilt.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import re
import secrets
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np
from cryptography.exceptions import InvalidTag

from faceprint.gallery.crypto import GalleryCipher, index_aad

if TYPE_CHECKING:
    from faceprint.match import ViewRule

log = logging.getLogger(__name__)

#: 1 was an HNSW graph plus a keys file, 2 stored one vector per identity under its id; 3 stores view j of
#: identity i under the FAISS id i * VIEW_SLOTS + j. Files of another format are ignored and rebuilt.
FORMAT = 3
#: FAISS ids per identity: the most scoring vectors (views) one identity can have in the index.
VIEW_SLOTS = 16
#: Orphaned index files (a writer died between writing one and its sidecar) older than this are removed.
ORPHAN_AGE_S = 600
#: FAISS's k-means wants at least this many training vectors per list.
MIN_PER_LIST = 39


@dataclass(frozen=True)
class IndexParams:
    """IVF settings.

    - ``lists_per_sqrt``: lists at training, per square root of the vector count (FAISS's usual range
      is 4-16; the low end, since the list centres are scanned on every query).
    - ``probe_scale``: a query scans ``probe_scale * sqrt(lists)`` of the lists. A fixed share of the
      lists would lose recall on small indexes or waste time on large ones: on face-like templates
      the scan needed for recall@1 0.99 grew about as the square root of the lists
      (``benchmarks/search.py``). 4 keeps 1M templates (333k identities) under 2 ms a query at
      recall@1 0.997; galleries of one photo per person are harder (0.987-0.992 at 200k-1M
      identities), and 6 brings them to 0.995 at 1.5x the time.
    - ``train_per_list``: the k-means sample per list (FAISS wants at least 39).
    - ``retrain_growth``: rebuild once the index holds this many times more, or fewer, vectors than
      it was trained on, so the lists stay balanced as a gallery grows or shrinks.
    """

    lists_per_sqrt: float = 4.0
    probe_scale: float = 4.0
    train_per_list: int = 50
    retrain_growth: float = 2.0

    def build_settings(self) -> dict[str, float]:
        """What the saved lists depend on: a saved index built otherwise is rebuilt (the probe scale
        is a search setting, so changing it keeps the file)."""
        return {k: v for k, v in asdict(self).items() if k != "probe_scale"}


@runtime_checkable
class IndexableStore(Protocol):
    """What a store offers so that an index can follow it without reading every template."""

    def version(self) -> int: ...

    def identity_count(self, model: str | None = None) -> int: ...

    def centroids(self, model: str, identity_ids: list[int] | None = None) -> tuple[np.ndarray, np.ndarray]: ...

    def identity_templates(
        self, model: str, identity_ids: list[int] | None = None
    ) -> tuple[np.ndarray, np.ndarray]: ...

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
    """An IVF-flat index (FAISS ``IndexIVFFlat``, inner product) over vectors keyed by non-negative
    integers (identity ids), with exact re-scoring. A key holds one vector (its centroid) or up to
    :data:`VIEW_SLOTS` (its views); its score for a query is its best vector's.

    It is trained on the vectors it first receives, and retrained from its own vectors whenever the
    count has grown or shrunk by ``retrain_growth`` since (a rebuild: seconds at 300k identities,
    amortised over the doubling). A replaced key is removed and re-added, so it moves to its new list.
    """

    def __init__(
        self,
        dim: int,
        params: IndexParams | None = None,
        model: str = "",
        version: int = -1,
        scoring: dict[str, Any] | None = None,
    ) -> None:
        self.dim = dim
        self.params = params or IndexParams()
        self.model = model
        self.version = version  # the store version whose records this index reflects
        self.scoring = scoring  # what the vectors are (None: identity centroids), recorded in the sidecar
        self._faiss = _faiss()
        self._ivf: Any = None  # untrained until the first vectors arrive
        self.trained_on = 0  # vectors the lists were trained for
        self._views = np.zeros(0, np.uint8)  # key -> vectors indexed (ids are dense: an array, not a dict)
        self._keys_with = np.zeros(VIEW_SLOTS + 1, np.int64)  # vector count -> keys with that many

    def __len__(self) -> int:
        """Vectors indexed (identities, unless some have several views)."""
        return 0 if self._ivf is None else int(self._ivf.ntotal)

    @property
    def identities(self) -> int:
        """Keys indexed."""
        return int(self._keys_with[1:].sum())

    @property
    def most_views(self) -> int:
        """The largest number of vectors any key has (0 when empty)."""
        used = np.flatnonzero(self._keys_with[1:])
        return int(used[-1]) + 1 if len(used) else 0

    @property
    def nlist(self) -> int:
        return 0 if self._ivf is None else int(self._ivf.nlist)

    @property
    def nprobe(self) -> int:
        return min(self.nlist, math.ceil(self.params.probe_scale * math.sqrt(self.nlist)))

    def keys(self) -> np.ndarray:
        return np.flatnonzero(self._views).astype(np.int64)

    def _counts(self, keys: np.ndarray) -> np.ndarray:
        """Vectors indexed for each key (0: not indexed)."""
        out = np.zeros(len(keys), np.int64)
        inside = (keys >= 0) & (keys < len(self._views))
        out[inside] = self._views[keys[inside]]
        return out

    def _set_counts(self, keys: np.ndarray, counts: np.ndarray) -> None:
        """Record that each (distinct) key now holds ``counts`` vectors."""
        if len(keys) and keys.max() >= len(self._views):
            grown = np.zeros(max(int(keys.max()) + 1, 2 * len(self._views)), np.uint8)
            grown[: len(self._views)] = self._views
            self._views = grown
        np.subtract.at(self._keys_with, self._views[keys].astype(np.int64), 1)
        np.add.at(self._keys_with, counts, 1)
        self._views[keys] = counts

    def _mark_slots(self, slots: np.ndarray) -> None:
        """Record the keys of FAISS ids just indexed (every vector of each key is among them)."""
        keys, counts = np.unique(slots // VIEW_SLOTS, return_counts=True)
        self._set_counts(keys, counts)

    @staticmethod
    def _slots_of(keys: np.ndarray, counts: np.ndarray) -> np.ndarray:
        """The FAISS ids of the first ``counts[i]`` vectors of each key."""
        offsets = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
        return np.repeat(keys * VIEW_SLOTS, counts) + offsets

    def upsert(self, keys: np.ndarray, vectors: np.ndarray, threads: int = 0) -> None:
        """Add or replace the vectors of ``keys``: rows with the same key are that key's vectors (its
        views), and all of a key's old vectors are replaced. threads=0: all cores, for training and large
        adds."""
        keys = np.asarray(keys, np.int64).ravel()
        if len(keys) == 0:
            return
        if keys.min() < 0:
            raise ValueError("keys must be non-negative integers")
        vectors = np.ascontiguousarray(vectors, np.float32).reshape(len(keys), self.dim)
        order = np.argsort(keys, kind="stable")  # a key's vectors keep their order: view j -> slot j
        keys, vectors = keys[order], vectors[order]
        distinct, first, counts = np.unique(keys, return_index=True, return_counts=True)
        if counts.max() > VIEW_SLOTS:
            raise ValueError(f"at most {VIEW_SLOTS} vectors per key")
        slots = keys * VIEW_SLOTS + (np.arange(len(keys)) - np.repeat(first, counts))
        self._drop(distinct)
        if self._ivf is None or len(self) + len(keys) > self.params.retrain_growth * self.trained_on:
            old_slots, old_vectors = self._contents()
            self._train(np.concatenate([old_slots, slots]), np.concatenate([old_vectors, vectors]), threads)
            return
        # a few vectors (catching up with an enrolment) gain nothing from threads, and on a busy
        # machine waiting for a descheduled OpenMP thread costs more than the insert
        with _omp_threads(self._faiss, threads if len(keys) >= 1000 else 1):
            self._ivf.add_with_ids(vectors, slots)
        self._set_counts(distinct, counts)

    def remove(self, keys: np.ndarray) -> None:
        """Drop every vector of ``keys`` (unknown keys are ignored)."""
        self._drop(np.unique(np.asarray(keys, np.int64).ravel()))
        if self._ivf is not None and len(self) * self.params.retrain_growth < self.trained_on:
            self._train(*self._contents(), threads=0)  # shrank: fewer, fuller lists

    def _drop(self, keys: np.ndarray) -> None:
        """Remove the vectors of distinct ``keys``, where indexed."""
        counts = self._counts(keys)
        known = counts > 0
        if known.any():
            slots = self._slots_of(keys[known], counts[known])
            self._ivf.remove_ids(self._faiss.IDSelectorArray(len(slots), self._faiss.swig_ptr(slots)))
            self._set_counts(keys[known], np.zeros(int(known.sum()), np.int64))

    def _train(self, slots: np.ndarray, vectors: np.ndarray, threads: int) -> None:
        """A new index, its lists clustered from a sample of ``vectors``, holding all of them."""
        faiss, p = self._faiss, self.params
        self._ivf, self.trained_on = None, 0
        self._views = np.zeros(0, np.uint8)
        self._keys_with = np.zeros(VIEW_SLOTS + 1, np.int64)
        if len(slots) == 0:
            return
        nlist = max(1, min(int(p.lists_per_sqrt * math.sqrt(len(slots))), len(slots) // MIN_PER_LIST))
        ivf = faiss.IndexIVFFlat(faiss.IndexFlatIP(self.dim), self.dim, nlist, faiss.METRIC_INNER_PRODUCT)
        ivf.cp.seed = 1234  # deterministic lists: the same gallery always gives the same index
        ivf.set_direct_map_type(faiss.DirectMap.Hashtable)  # remove and reconstruct by id
        sample = np.random.default_rng(0).permutation(len(slots))[: nlist * p.train_per_list]
        with _omp_threads(faiss, threads):
            if nlist == 1:  # one list needs no clustering (and k-means warns on so few points)
                ivf.quantizer.add(vectors[:1])
                ivf.is_trained = True
            else:
                ivf.train(vectors[np.sort(sample)])
            ivf.add_with_ids(vectors, slots)
        self._ivf, self.trained_on = ivf, len(slots)
        self._mark_slots(slots)

    def _contents(self, with_vectors: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Every FAISS id the index holds and, unless not wanted (loading needs only the ids), its
        vector, read back from the lists."""
        slots, vectors = [np.zeros(0, np.int64)], [np.zeros((0, self.dim), np.float32)]
        if self._ivf is None:
            return slots[0], vectors[0]
        faiss, lists = self._faiss, self._ivf.invlists
        for i in range(self._ivf.nlist):
            if not (n := lists.list_size(i)):
                continue
            ids = lists.get_ids(i)
            slots.append(faiss.rev_swig_ptr(ids, n).copy())
            lists.release_ids(i, ids)
            if with_vectors:  # IVF-flat codes are the float32 vectors themselves
                codes = lists.get_codes(i)
                vectors.append(faiss.rev_swig_ptr(codes, n * lists.code_size).view(np.float32).reshape(n, -1).copy())
                lists.release_codes(i, codes)
        return np.concatenate(slots), np.concatenate(vectors)

    def vectors(self, keys: np.ndarray, view: int = 0) -> np.ndarray:
        """(len(keys), dim) stored vector number ``view`` of each key (its only one, for a key with one);
        zeros for a key without it."""
        keys = np.asarray(keys, np.int64).ravel()
        out = np.zeros((len(keys), self.dim), np.float32)
        known = self._counts(keys) > view
        if known.any():
            out[known] = self._ivf.reconstruct_batch(np.ascontiguousarray(keys[known] * VIEW_SLOTS + view))
        return out

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(Q, k) keys and exact scores (the best of each key's vectors), best first, for (Q, dim) unit
        queries; rows with fewer than k hits are padded with key -1 and score -inf."""
        queries = np.ascontiguousarray(np.atleast_2d(queries), np.float32)
        keys = np.full((len(queries), k), -1, np.int64)
        scores = np.full((len(queries), k), -np.inf, np.float32)
        if len(self) == 0 or k <= 0:
            return keys, scores
        params = self._faiss.SearchParametersIVF()
        params.nprobe = self.nprobe
        # a key may fill several of the nearest places with its views: k keys need k * (most views) hits
        wanted = min(k * max(self.most_views, 1), len(self))
        with _omp_threads(self._faiss, 1):
            _, found = self._ivf.search(queries, wanted, params=params)
        for i in range(len(queries)):
            hit = found[i][found[i] >= 0]
            if len(hit) == 0:
                continue
            # re-score: exact float32 inner products, in numpy's summation
            exact = self._ivf.reconstruct_batch(np.ascontiguousarray(hit)) @ queries[i]
            order = np.argsort(-exact, kind="stable")
            owners = hit[order] // VIEW_SLOTS
            _, first = np.unique(owners, return_index=True)  # each key's best vector
            best = order[np.sort(first)][:k]
            keys[i, : len(best)] = hit[best] // VIEW_SLOTS
            scores[i, : len(best)] = exact[best]
        return keys, scores

    # persistence ------------------------------------------------------------------------------
    def save(self, sidecar: Path, cipher: GalleryCipher | None = None) -> None:
        """Write the index next to ``sidecar`` under a fresh token, then the sidecar (atomically)
        that names it: readers never see a sidecar for a half-written file. With the ``cipher`` of an
        encrypted gallery the index file is sealed whole (it holds the centroids in the clear)."""
        token = secrets.token_hex(6)
        base = sidecar.name.removesuffix(".index.json")
        data = sidecar.with_name(f"{base}.{token}.faiss")
        old = _read_sidecar(sidecar)
        if self._ivf is not None and cipher is None:
            self._faiss.write_index(self._ivf, str(data))
        elif self._ivf is not None:
            plain = self._faiss.serialize_index(self._ivf).tobytes()
            data.write_bytes(cipher.seal(plain, index_aad(self.model, token)))
        meta = {"format": FORMAT, "model": self.model, "version": self.version, "dim": self.dim, "size": len(self)}
        meta["encryption"] = None if cipher is None else cipher.fingerprint
        meta |= {"token": token, "trained_on": self.trained_on, "params": self.params.build_settings()}
        meta["scoring"] = self.scoring
        meta["saved_at"] = time.time()
        tmp = sidecar.with_name(f".{sidecar.name}.{token}.tmp")
        tmp.write_text(json.dumps(meta))
        os.replace(tmp, sidecar)
        if old and old.get("token") and old["token"] != token:
            for suffix in (".faiss", ".keys.npy"):  # .keys.npy: format 1's second file
                with contextlib.suppress(OSError):
                    sidecar.with_name(f"{base}.{old['token']}{suffix}").unlink()
        _remove_orphans(sidecar, keep=token)

    @classmethod
    def load(
        cls,
        sidecar: Path,
        model: str,
        params: IndexParams | None = None,
        scoring: dict[str, Any] | None = None,
        cipher: GalleryCipher | None = None,
    ) -> CentroidIndex | None:
        """The saved index for ``model`` and ``scoring``, or None when there is none, or it is for another
        model, format, scoring or parameters, or its file is missing or damaged, or it was not sealed by
        ``cipher`` (the caller rebuilds)."""
        params = params or IndexParams()
        base = sidecar.name.removesuffix(".index.json")
        for _ in range(2):  # a concurrent writer may replace the files between reading the sidecar and opening them
            meta = _read_sidecar(sidecar)
            if not meta or meta.get("format") != FORMAT or meta.get("model") != model:
                return None
            if meta.get("params") != params.build_settings() or meta.get("scoring") != scoring:
                return None
            if meta.get("encryption") != (None if cipher is None else cipher.fingerprint):
                return None  # sealed with another key, or not sealed: a stale plaintext copy is never read
            index = cls(int(meta["dim"]), params, model, int(meta["version"]), scoring)
            if meta.get("size") == 0:
                return index
            try:
                ivf = _read_index(index._faiss, sidecar.with_name(f"{base}.{meta['token']}.faiss"), cipher, model)
            except (OSError, RuntimeError, ValueError) as exc:
                log.info("index %s unreadable (%s): rebuilding", sidecar, exc)
                continue
            if ivf.d != index.dim or ivf.ntotal != meta.get("size") or not hasattr(ivf, "nlist"):
                return None
            index._ivf, index.trained_on = ivf, int(meta.get("trained_on", ivf.ntotal))  # read_index downcasts
            index._mark_slots(index._contents(with_vectors=False)[0])
            return index
        return None


def _read_index(faiss: Any, path: Path, cipher: GalleryCipher | None, model: str) -> Any:
    """A FAISS index file, opened with the gallery's cipher when it is sealed; ValueError if it does not open."""
    if cipher is None:
        return faiss.read_index(str(path))
    token = path.name.removesuffix(".faiss").rsplit(".", 1)[-1]
    try:
        plain = cipher.open(path.read_bytes(), index_aad(model, token))
    except InvalidTag:
        raise ValueError("it does not decrypt with the gallery's key") from None
    return faiss.deserialize_index(np.frombuffer(plain, np.uint8))


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


def remove_index_files(gallery_file: Path) -> list[Path]:
    """Delete the index files of every model beside the gallery file (sidecars, index files, temporary
    files): after a purge they would still hold removed identities' centroids. Returns what was deleted."""
    name = re.escape(gallery_file.name)
    model, token = r"[0-9a-f]{12}", r"[0-9a-f]{12}"
    own = re.compile(
        rf"{name}\.{model}\.(index\.json|{token}\.(faiss|keys\.npy))|\.{name}\.{model}\.index\.json\.{token}\.tmp"
    )
    removed: list[Path] = []
    for path in gallery_file.parent.iterdir():
        if own.fullmatch(path.name):
            with contextlib.suppress(FileNotFoundError):  # another process removed it first
                path.unlink()
                removed.append(path)
    return removed


class StoreIndex:
    """The centroid index of one model, kept in step with a store (and with its file, if any); with a
    ``views`` rule, each identity's view vectors instead of its centroid.

    ``sync()`` is called before every search: it costs one version read when nothing changed; when
    another process or thread changed the store, only the changed identities are re-read and
    re-indexed; when the change log cannot say what changed, the index is rebuilt from the records.
    """

    #: Save after this many incremental changes (a stale file is fine: opening it catches up from the log).
    SAVE_EVERY = 10_000

    def __init__(
        self,
        store: IndexableStore,
        model: str,
        path: Path | None = None,
        params: IndexParams | None = None,
        views: ViewRule | None = None,
    ) -> None:
        self.store = store
        self.model = model
        self.path = path  # the sidecar; None: keep the index in memory only
        self.params = params or IndexParams()
        self.views = views
        self.scoring = None if views is None else {"aggregation": "views", **views.settings()}
        self.index: CentroidIndex | None = None
        self._unsaved = 0
        self.last_sync: dict[str, Any] = {}  # what the last sync did and how long it took (for benchmarks and logs)

    @property
    def cipher(self) -> GalleryCipher | None:
        """The store's cipher, when its gallery is encrypted: the index file is sealed with it."""
        return getattr(self.store, "cipher", None)

    def sync(self) -> CentroidIndex:
        t0 = time.perf_counter()
        version = self.store.version()
        if self.index is not None and self.index.version == version:
            return self.index
        how = "loaded"
        if self.index is None and self.path is not None:
            self.index = CentroidIndex.load(self.path, self.model, self.params, self.scoring, self.cipher)
        if self.index is not None and self.index.version != version:
            how = "caught up"
            if not self._catch_up(self.index):
                self.index = None
        if self.index is None:
            how = "built"
            self.index = self._build()
            if self.path is not None:
                self.index.save(self.path, self.cipher)
                self._unsaved = 0
        elif self._unsaved >= self.SAVE_EVERY:
            self.save()
        self.last_sync = {"how": how, "seconds": time.perf_counter() - t0, "size": self.index.identities}
        self.last_sync["vectors"] = len(self.index)
        log.debug("centroid index %s: %s", self.model, self.last_sync)
        return self.index

    def save(self) -> None:
        if self.index is not None and self.path is not None and self._unsaved:
            self.index.save(self.path, self.cipher)
            self._unsaved = 0

    def _vectors(self, identity_ids: list[int] | None) -> tuple[np.ndarray, np.ndarray]:
        """(identity id of each vector, vectors) of these identities (None: all) that have templates."""
        if self.views is None:
            return self.store.centroids(self.model, identity_ids)
        from faceprint.match import identity_views  # faceprint.match imports this module

        made = identity_views(*self.store.identity_templates(self.model, identity_ids), self.views)
        return made.owners, made.vectors

    def _build(self) -> CentroidIndex:
        version = self.store.version()  # read before the records: a change landing between is applied again
        ids, vectors = self._vectors(None)
        index = CentroidIndex(vectors.shape[1] if len(ids) else 0, self.params, self.model, version, self.scoring)
        if len(ids):
            index.upsert(ids, vectors)
        return index

    def _catch_up(self, index: CentroidIndex) -> bool:
        changed = self.store.changed_identities(index.version)
        if changed is None:
            return False
        version, ids = changed
        wanted = sorted(ids)
        if wanted:
            have, vectors = self._vectors(wanted)
            if len(have) and index.dim == 0:
                return False  # the first templates of this model: build it with the right dimension
            if len(have) and vectors.shape[1] != index.dim:
                return False
            index.remove(np.setdiff1d(np.asarray(wanted, np.int64), have))  # gone, or no templates left
            index.upsert(have, vectors)
            self._unsaved += len(wanted)
        index.version = version
        return True
