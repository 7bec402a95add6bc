"""1:N search at scale: the centroid ANN index against exact search, on a gallery shaped like real templates.

    python benchmarks/search.py                        # 1M templates (~333k identities): index vs exact
    python benchmarks/search.py --per-identity 1       # 1M identities with one template each (the hard case)
    python benchmarks/search.py --probe-scale 3,4,6    # a query scans scale * sqrt(lists) IVF lists
    python benchmarks/search.py --compare              # also HNSW in usearch / FAISS / hnswlib (--ef)
    python benchmarks/search.py --gallery 200000       # also end to end through Gallery.search (SQLite)
    python benchmarks/search.py --n 100000 --json      # smaller run, machine-readable results too

Data. Real templates: up to 4 photos of every LFW person with >= 3 photos, through the default
FaceEngine (central face), cached in an .npz under the temp dir (~10 min the first time). From them
we fit (1) the within-identity spread: the covariance of templates around their identity's mean,
and (2) the distribution of identity centres: a Gaussian with the centres' mean and covariance (less
the within-identity part that the sample means still carry). Synthetic identities draw a centre from
(2) and templates from centre + (1), renormalised. The real LFW people are enrolled too (all photos
but one), and the queries are held-out photos: the real ones, and a fresh template of synthetic
identities. A fit check prints same-person and different-person cosine quantiles of real and synthetic.

Measured: build time (2 threads), RSS delta and index file size, single-query latency (1 thread) of
top-1 and top-10 including the exact re-scoring, and recall@1 / recall@10 against exact search over
the same centroids. Exact (numpy, 1 BLAS thread) single-query latency is printed alongside.
"""

from __future__ import annotations

import os

# single-query latency is measured with one thread per library (BLAS, OpenMP); set before numpy loads
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import replace  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
try:  # run from a checkout without installing: use the repo's src/
    import faceprint  # noqa: F401
except ImportError:
    sys.path.insert(0, str(REPO / "src"))

from faceprint.gallery.index import CentroidIndex, IndexParams  # noqa: E402

BUILD_THREADS = 2


# --- real templates ---------------------------------------------------------------------------
def data_dir(arg: str | None) -> Path:
    for candidate in (arg, os.environ.get("FACEPRINT_DATA"), REPO.parent / "shared" / "data"):
        if candidate and (Path(candidate) / "lfw").is_dir():
            return Path(candidate)
    sys.exit("LFW not found: pass --data DIR (holding lfw/) or set FACEPRINT_DATA")


def real_templates(lfw: Path, cache: Path, per_person: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """(templates (N, 128), person labels (N,)) for up to ``per_person`` photos of each LFW person
    with >= 3 photos; cached (the embedding takes minutes)."""
    if cache.is_file():
        data = np.load(cache)
        return data["vectors"], data["labels"]
    from faceprint import FaceEngine, load_image

    rows = [line.split("\t") for line in (lfw / "lfw-names.txt").read_text().splitlines() if "\t" in line]
    people = [(name, int(count)) for name, count in rows if int(count) >= 3]
    engine = FaceEngine()
    vectors: list[np.ndarray] = []
    labels: list[int] = []
    t0 = time.perf_counter()
    for pid, (name, count) in enumerate(people):
        for i in range(1, min(count, per_person) + 1):
            img = load_image(lfw / name / f"{name}_{i:04d}.jpg").pixels
            faces = engine.detect(img)
            if not faces:
                continue
            cy, cx = img.shape[0] / 2, img.shape[1] / 2  # LFW's convention: the face nearest the centre
            face = min(faces, key=lambda f: abs((f.box[0] + f.box[2]) / 2 - cx) + abs((f.box[1] + f.box[3]) / 2 - cy))
            vectors.append(engine.embed(img, [face])[0].embedding)
            labels.append(pid)
        if pid % 100 == 0:
            print(f"  embedding LFW: {pid}/{len(people)} people, {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    out = np.stack(vectors).astype(np.float32), np.array(labels, np.int32)
    np.savez(cache, vectors=out[0], labels=out[1])
    return out


# --- the synthetic gallery --------------------------------------------------------------------
def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def psd_root(cov: np.ndarray) -> np.ndarray:
    """A matrix L with L @ L.T == cov (negative eigenvalues from estimation noise clipped to 0)."""
    w, u = np.linalg.eigh((cov + cov.T) / 2)
    return u * np.sqrt(np.clip(w, 0, None))


class FaceSpace:
    """Identity centres ~ N(mu, B B^T); templates ~ unit(centre + W z): fitted to real templates."""

    def __init__(self, vectors: np.ndarray, labels: np.ndarray) -> None:
        centres, resid, counts = [], [], []
        for p in np.unique(labels):
            v = vectors[labels == p].astype(np.float64)
            if len(v) < 2:
                continue
            c = v.mean(0)
            centres.append(c)
            resid.append((v - c) * np.sqrt(len(v) / (len(v) - 1)))  # unbiased spread around the sample mean
            counts.append(len(v))
        c_mat, r_mat = np.stack(centres), np.concatenate(resid)
        cov_w = r_mat.T @ r_mat / len(r_mat)
        # a sample mean of n templates still carries cov_w / n of within-identity noise
        cov_b = np.cov(c_mat.T) - cov_w * float(np.mean(1.0 / np.array(counts)))
        self.mu = c_mat.mean(0)
        self.b = psd_root(cov_b)
        self.w = psd_root(cov_w)
        # some photos sit much further from their person than others (pose, light): a Gaussian with one
        # covariance is too uniform, so each template's noise is scaled by a real residual's relative size
        norms = np.linalg.norm(r_mat, axis=1)
        self.scales = (norms / np.sqrt(np.mean(norms**2))).astype(np.float32)
        self.dim = vectors.shape[1]

    def centres(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return (self.mu + rng.standard_normal((n, self.dim)) @ self.b.T).astype(np.float32)

    def templates(self, centres: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        noise = (rng.standard_normal(centres.shape) @ self.w.T).astype(np.float32)
        return unit(centres + noise * rng.choice(self.scales, len(centres))[:, None])


def cosine_quantiles(vectors: np.ndarray, labels: np.ndarray, rng: np.random.Generator) -> dict[str, list[float]]:
    """5/50/95% quantiles of same-person and different-person cosines."""
    same = []
    for p in np.unique(labels)[:2000]:
        v = vectors[labels == p]
        if len(v) >= 2:
            s = v @ v.T
            same.extend(s[np.triu_indices(len(v), 1)].tolist())
    i, j = rng.integers(0, len(vectors), (2, 20_000))
    keep = labels[i] != labels[j]
    diff = np.einsum("ij,ij->i", vectors[i[keep]], vectors[j[keep]])
    q = [0.05, 0.5, 0.95]
    return {"same": np.quantile(same, q).round(3).tolist(), "different": np.quantile(diff, q).round(3).tolist()}


class Data:
    """The gallery (templates, sorted by identity), identity centroids and held-out queries."""

    templates: np.ndarray  # (N, D) float32
    labels: np.ndarray  # (N,) int64, identity index, non-decreasing
    centroids: np.ndarray  # (I, D) float32 unit
    queries: np.ndarray  # (Q, D)
    query_truth: np.ndarray  # (Q,) identity index
    n_real_queries: int
    fit: dict[str, dict[str, list[float]]]


def make_data(real: tuple[np.ndarray, np.ndarray], n: int, per_identity: float, n_queries: int, seed: int) -> Data:
    rng = np.random.default_rng(seed)
    vectors, labels = real
    space = FaceSpace(vectors, labels)
    d = Data()
    # real people: every photo but the last is enrolled, the last is a query
    people = np.unique(labels)
    last = np.array([np.flatnonzero(labels == p)[-1] for p in people])
    enrolled = np.setdiff1d(np.arange(len(labels)), last)
    real_t, real_l = vectors[enrolled], np.searchsorted(people, labels[enrolled])
    n_real_ids = len(people)
    # synthetic people: counts uniform in 1..2m-1 (mean m), until n templates in all
    n_syn = max(n - len(real_t), 0)
    hi = max(int(round(2 * per_identity - 1)), 1)
    counts = rng.integers(1, hi + 1, int(1.1 * n_syn / (hi + 1) * 2) + hi + 1)  # more than enough draws
    counts = counts[: np.searchsorted(np.cumsum(counts), n_syn) + 1]
    counts[-1] -= max(int(counts.sum()) - n_syn, 0)
    counts = counts[counts > 0]
    n_syn_ids = len(counts)
    centres = space.centres(n_syn_ids, rng)
    syn_l = np.repeat(np.arange(n_syn_ids), counts)
    syn_t = np.empty((len(syn_l), space.dim), np.float32)
    for s in range(0, len(syn_l), 200_000):  # in chunks: the noise temporaries are float64
        syn_t[s : s + 200_000] = space.templates(centres[syn_l[s : s + 200_000]], rng)
    d.templates = np.concatenate([real_t, syn_t])
    d.labels = np.concatenate([real_l, syn_l + n_real_ids]).astype(np.int64)
    d.centroids = centroids_of(d.templates, d.labels)
    # queries: the held-out real photos, and a fresh template of random synthetic people
    q_ids = rng.choice(n_syn_ids, min(n_queries, n_syn_ids), replace=False) if n_syn_ids else np.zeros(0, int)
    d.queries = np.concatenate([vectors[last], space.templates(centres[q_ids], rng)])
    d.query_truth = np.concatenate([np.arange(n_real_ids), q_ids + n_real_ids])
    d.n_real_queries = n_real_ids
    check = np.repeat(np.arange(2000), 3)  # the fit check: 2000 fresh synthetic people, 3 photos each
    d.fit = {
        "real": cosine_quantiles(vectors, labels, rng),
        "synthetic": cosine_quantiles(space.templates(space.centres(2000, rng)[check], rng), check, rng),
    }
    return d


def centroids_of(templates: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Unit mean template of each identity (labels sorted), like faceprint.match.identity_centroids."""
    starts = np.flatnonzero(np.r_[True, labels[1:] != labels[:-1]])
    return unit(np.add.reduceat(templates, starts, axis=0))


def exact_topk(centroids: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Ground truth: (Q, k) ids and scores by brute force, in query batches."""
    ids = np.empty((len(queries), k), np.int64)
    scores = np.empty((len(queries), k), np.float32)
    for s in range(0, len(queries), 64):
        sim = queries[s : s + 64] @ centroids.T
        part = np.argpartition(-sim, k - 1, axis=1)[:, :k]
        ps = np.take_along_axis(sim, part, 1)
        order = np.argsort(-ps, axis=1)
        ids[s : s + 64] = np.take_along_axis(part, order, 1)
        scores[s : s + 64] = np.take_along_axis(ps, order, 1)
    return ids, scores


# --- measuring --------------------------------------------------------------------------------
def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def latency(fn: Callable[[np.ndarray], object], queries: np.ndarray) -> dict[str, float]:
    """p50 / p99 wall ms of single-query calls, and p50 CPU ms of the calling thread (the machine may
    be shared: CPU time is what one query costs when it has a core to itself)."""
    for q in queries[:20]:  # warm up
        fn(q[None])
    wall, cpu = np.empty(len(queries)), np.empty(len(queries))
    for i, q in enumerate(queries):
        c, t = time.thread_time(), time.perf_counter()
        fn(q[None])
        wall[i], cpu[i] = time.perf_counter() - t, time.thread_time() - c
    return {
        "p50": float(np.median(wall) * 1e3),
        "p99": float(np.percentile(wall, 99) * 1e3),
        "cpu50": float(np.median(cpu) * 1e3),
    }


def recall(found: np.ndarray, truth: np.ndarray, k: int) -> float:
    """recall@k: the share of the exact top-k found in the ANN top-k (k=1: top-1 agrees)."""
    hits = [len(set(f[:k].tolist()) & set(t[:k].tolist())) for f, t in zip(found, truth)]
    return float(np.sum(hits) / (k * len(truth)))


def latency_columns(top1: dict[str, float], top10: dict[str, float]) -> dict[str, float]:
    """The table's latency columns (ms) of top-1 and top-10 searches."""
    stats = ("p50", "p99", "cpu50")
    return {f"{stat}_{k}": round(t[stat], 3) for k, t in (("1", top1), ("10", top10)) for stat in stats}


def result_row(
    name: str,
    found: np.ndarray,
    truth: np.ndarray,
    accepted: np.ndarray,
    top1: dict[str, float],
    top10: dict[str, float],
    **kw: object,
) -> dict[str, object]:
    return {
        "index": name,
        **kw,
        **latency_columns(top1, top10),
        "recall@1": round(recall(found, truth, 1), 4),
        "recall@10": round(recall(found, truth, 10), 4),
        # the queries that the default threshold would identify: the ones where a miss costs a match
        "recall@1_accepted": round(recall(found[accepted], truth[accepted], 1), 4) if accepted.any() else None,
    }


# --- library comparison -----------------------------------------------------------------------
def compare_libraries(
    cent: np.ndarray, queries: np.ndarray, truth: np.ndarray, accepted: np.ndarray, tmp: Path, efs: tuple[int, ...]
) -> list[dict[str, object]]:
    """The candidates on the same centroids: HNSW (M=16, efConstruction=128) in usearch, FAISS, hnswlib."""
    rows: list[dict[str, object]] = []
    keys = np.arange(len(cent), dtype=np.int64)

    def measure(
        name: str,
        build: Callable[[], Any],
        search_at: Callable[[Any, int, np.ndarray, int], np.ndarray],
        save: Callable[[Any, Path], None],
    ) -> None:
        gc.collect()
        m0 = rss_mb()
        t = time.perf_counter()
        idx = build()
        t_build = time.perf_counter() - t
        mem = rss_mb() - m0
        path = tmp / f"{name}.bin"
        save(idx, path)
        size = path.stat().st_size / 2**20
        path.unlink()
        for ef in efs:
            found = np.stack([search_at(idx, ef, q[None], 10)[0] for q in queries])
            top1 = latency(lambda q, ef=ef: search_at(idx, ef, q, 1), queries)
            top10 = latency(lambda q, ef=ef: search_at(idx, ef, q, 10), queries)
            rows.append(
                result_row(
                    name,
                    found,
                    truth,
                    accepted,
                    top1,
                    top10,
                    ef=ef,
                    build_s=round(t_build, 1),
                    rss_mb=round(mem),
                    file_mb=round(size),
                )
            )
            print(rows[-1], file=sys.stderr, flush=True)
        idx = None  # free it before the next library builds
        gc.collect()

    try:
        from usearch.index import Index

        for dtype in ("f32", "f16"):

            def build_us(dtype: str = dtype) -> Any:
                idx = Index(ndim=cent.shape[1], metric="ip", dtype=dtype, connectivity=16, expansion_add=128)
                idx.add(keys, cent, threads=BUILD_THREADS)
                return idx

            def search_us(idx: Any, ef: int, q: np.ndarray, k: int) -> np.ndarray:
                idx.expansion_search = ef
                return np.atleast_2d(idx.search(q, k, threads=1).keys)

            measure(f"usearch-{dtype}", build_us, search_us, lambda i, p: i.save(str(p)))
    except ImportError:
        print("usearch not installed", file=sys.stderr)
    try:
        import faiss

        def build_faiss() -> Any:
            faiss.omp_set_num_threads(BUILD_THREADS)
            idx = faiss.IndexHNSWFlat(cent.shape[1], 16, faiss.METRIC_INNER_PRODUCT)
            idx.hnsw.efConstruction = 128
            idx.add(cent)
            faiss.omp_set_num_threads(1)
            return idx

        def search_faiss(idx: Any, ef: int, q: np.ndarray, k: int) -> np.ndarray:
            idx.hnsw.efSearch = ef
            return idx.search(q, k)[1]

        measure("faiss-hnsw", build_faiss, search_faiss, lambda i, p: faiss.write_index(i, str(p)))
    except ImportError:
        print("faiss not installed", file=sys.stderr)
    try:
        import hnswlib

        def build_hnswlib() -> Any:
            idx = hnswlib.Index(space="ip", dim=cent.shape[1])
            idx.init_index(max_elements=len(cent), ef_construction=128, M=16)
            idx.set_num_threads(BUILD_THREADS)
            idx.add_items(cent, keys)
            idx.set_num_threads(1)
            return idx

        def search_hnswlib(idx: Any, ef: int, q: np.ndarray, k: int) -> np.ndarray:
            idx.set_ef(max(ef, k))
            return idx.knn_query(q, k)[0]

        measure("hnswlib", build_hnswlib, search_hnswlib, lambda i, p: i.save_index(str(p)))
    except ImportError:
        print("hnswlib not installed", file=sys.stderr)
    return rows


# --- faceprint's index ------------------------------------------------------------------------
def bench_index(
    d: Data, truth: np.ndarray, accepted: np.ndarray, params: IndexParams, scales: tuple[float, ...], tmp: Path
) -> tuple[list[dict[str, object]], dict[str, float]]:
    """CentroidIndex (what Gallery uses) over every identity centroid, keyed 0..I-1."""
    gc.collect()
    m0 = rss_mb()
    t = time.perf_counter()
    index = CentroidIndex(d.centroids.shape[1], params, model="bench", version=0)
    index.upsert(np.arange(len(d.centroids)), d.centroids, threads=BUILD_THREADS)
    info = {"build_s": time.perf_counter() - t, "rss_mb": rss_mb() - m0, "nlist": index.nlist}
    sidecar = tmp / "bench.index.json"
    t = time.perf_counter()
    index.save(sidecar)
    info["save_s"] = time.perf_counter() - t
    info["file_mb"] = sum(f.stat().st_size for f in tmp.glob("bench.*")) / 2**20
    del index
    gc.collect()
    t = time.perf_counter()
    loaded = CentroidIndex.load(sidecar, "bench", params)
    info["load_s"] = time.perf_counter() - t
    assert loaded is not None
    index = loaded
    rows = []
    for scale in scales:
        index.params = replace(params, probe_scale=scale)
        found = index.search(d.queries, 10)[0]
        top1 = latency(lambda q: index.search(q, 1), d.queries)
        top10 = latency(lambda q: index.search(q, 10), d.queries)
        name = f"CentroidIndex IVF scale {scale:g} ({index.nprobe}/{index.nlist} lists)"
        rows.append(result_row(name, found, truth, accepted, top1, top10))
        print(rows[-1], file=sys.stderr, flush=True)
    return rows, info


def exact_row(d: Data, n_queries: int) -> dict[str, object]:
    """Exact search over the centroids, single query, one BLAS thread (what Gallery does below the cut-over)."""
    cent = d.centroids

    def one(q: np.ndarray, k: int) -> np.ndarray:
        s = (q @ cent.T)[0]
        top = np.argpartition(-s, k - 1)[:k] if k < len(s) else np.arange(len(s))
        return top[np.argsort(-s[top])]

    q = d.queries[:: max(len(d.queries) // n_queries, 1)]
    t1, t10 = latency(lambda x: one(x, 1), q), latency(lambda x: one(x, 10), q)
    return {
        "index": "exact (numpy)",
        **latency_columns(t1, t10),
        "recall@1": 1.0,
        "recall@10": 1.0,
        "recall@1_accepted": 1.0,
    }


# --- end to end through Gallery ---------------------------------------------------------------
def bench_gallery(d: Data, truth: np.ndarray, accepted: np.ndarray, tmp: Path, cut: int) -> dict[str, object]:
    """A SQLite gallery of the same templates, searched through Gallery.search."""
    from faceprint.gallery import Gallery, SQLiteStore, Template

    model = "bench-model"
    path = tmp / "gallery.db"
    store = SQLiteStore(path)
    t = time.perf_counter()
    starts = np.flatnonzero(np.r_[True, d.labels[1:] != d.labels[:-1], True])
    for a, b in zip(starts[:-1], starts[1:]):
        person = int(d.labels[a])
        store.add_templates(
            f"id{person}",
            [Template(d.templates[r], model, f"{person}/{r}.jpg", f"{person}-{r}", (0, 0, 1, 1)) for r in range(a, b)],
        )
    out: dict[str, object] = {"templates": len(d.templates), "identities": len(starts) - 1}
    out["enrol_s"] = round(time.perf_counter() - t, 1)
    store.close()
    position = {f"id{i}": i for i in range(len(d.centroids))}

    def timed_open(**kw: Any) -> tuple[Gallery, float, float]:
        gc.collect()
        m0, t = rss_mb(), time.perf_counter()
        g = Gallery(path, **kw)
        g.search(d.queries[0], model, 1)
        return g, time.perf_counter() - t, rss_mb() - m0

    g, out["first_search_builds_index_s"], _ = timed_open(ann_min_identities=cut)
    g.close()
    del g
    g, open_s, mem = timed_open(ann_min_identities=cut)
    out["open_with_saved_index_s"], out["open_rss_mb"] = round(open_s, 2), round(mem)
    found = np.array([[position[c.identity] for c in r] for r in g.search(d.queries, model, 10)])
    top1 = latency(lambda q: g.search(q, model, 1), d.queries)
    top10 = latency(lambda q: g.search(q, model, 10), d.queries)
    out["ann"] = result_row("Gallery.search (index)", found, truth, accepted, top1, top10)
    other = Gallery(path, ann_min_identities=10**12)
    other.add_templates("newcomer", [Template(d.queries[0], model, "new.jpg", "new", (0, 0, 1, 1))])
    t = time.perf_counter()
    assert g.search(d.queries[0], model, 1)[0][0].identity == "newcomer"
    out["search_after_another_process_enrols_ms"] = round((time.perf_counter() - t) * 1e3, 2)
    other.remove("newcomer")
    g.close()
    exact, open_s, mem = timed_open(ann_min_identities=10**12)
    out["open_exact_s"], out["open_exact_rss_mb"] = round(open_s, 2), round(mem)
    q = d.queries[:: max(len(d.queries) // 200, 1)]
    out["exact"] = {k: round(v, 3) for k, v in latency(lambda x: exact.search(x, model, 1), q).items()}
    exact.close()
    return out


def cutover(real: tuple[np.ndarray, np.ndarray], sizes: list[int], seed: int, tmp: Path) -> list[dict[str, object]]:
    """Exact search (as Gallery does it: scores of every centroid, then a sort) against the index, by size."""
    from faceprint.gallery.base import TemplateMatrix
    from faceprint.match import rank_identities

    rows = []
    for n in sizes:
        d = make_data(real, n, 1, 500, seed)
        matrix = TemplateMatrix(
            np.arange(len(d.centroids)),
            np.arange(len(d.centroids), dtype=np.int32),
            [f"id{i}" for i in range(len(d.centroids))],
            d.centroids,
        )
        exact = latency(lambda q, m=matrix, c=d.centroids: rank_identities(q, m, 5, "centroid", c), d.queries)
        index = CentroidIndex(d.centroids.shape[1])
        index.upsert(np.arange(len(d.centroids)), d.centroids, threads=BUILD_THREADS)
        ann = latency(lambda q, i=index: i.search(q, 5), d.queries)
        rows.append(
            {
                "identities": len(d.centroids),
                "exact_p50": round(exact["p50"], 3),
                "exact_cpu50": round(exact["cpu50"], 3),
                "index_p50": round(ann["p50"], 3),
                "index_cpu50": round(ann["cpu50"], 3),
            }
        )
        print(rows[-1], file=sys.stderr, flush=True)
    return rows


# --- report -----------------------------------------------------------------------------------
COLUMNS = [
    "index",
    "p50_1",
    "p99_1",
    "cpu50_1",
    "p50_10",
    "p99_10",
    "cpu50_10",
    "recall@1",
    "recall@10",
    "recall@1_accepted",
]


def table(rows: list[dict[str, object]], columns: list[str]) -> str:
    cells = [[str(r.get(c, "")) for c in columns] for r in rows]
    widths = [max(len(c), *(len(x[i]) for x in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths)), "  ".join("-" * w for w in widths)]
    lines += ["  ".join(x.ljust(w) for x, w in zip(line, widths)) for line in cells]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=None, help="folder holding lfw/ (default: $FACEPRINT_DATA or ../shared/data)")
    ap.add_argument("--n", type=int, default=1_000_000, help="templates in the gallery")
    ap.add_argument("--per-identity", type=float, default=3, help="mean templates per synthetic identity")
    ap.add_argument("--queries", type=int, default=1000, help="synthetic queries (plus one per real LFW person)")
    ap.add_argument("--probe-scale", default="3,4,6", help="IVF probe scales to measure (scale * sqrt(lists))")
    ap.add_argument("--compare", action="store_true", help="also HNSW in usearch / FAISS / hnswlib, raw")
    ap.add_argument("--ef", default="64,128,256", help="HNSW search expansions for --compare")
    ap.add_argument("--gallery", type=int, default=0, help="also end to end through Gallery.search: N templates")
    ap.add_argument("--cutover", default="", help="sizes (identities) to time exact search against the index at")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    from faceprint.match import DEFAULT_IDENTIFY

    cache = Path(tempfile.gettempdir()) / "faceprint-lfw-templates.npz"
    real = real_templates(data_dir(args.data) / "lfw", cache)
    efs = tuple(int(x) for x in args.ef.split(","))
    tmp = Path(tempfile.mkdtemp(prefix="faceprint-search-"))
    scales = tuple(float(x) for x in args.probe_scale.split(","))
    report: dict[str, object] = {"n": args.n, "per_identity": args.per_identity, "probe_scales": scales}
    if args.cutover:
        report["cutover"] = cutover(real, [int(x) for x in args.cutover.split(",")], args.seed, tmp)
        print(table(report["cutover"], list(report["cutover"][0])))  # type: ignore[index]
    t = time.perf_counter()
    d = make_data(real, args.n, args.per_identity, args.queries, args.seed)
    truth, truth_scores = exact_topk(d.centroids, d.queries, 10)
    accepted = truth_scores[:, 0] >= DEFAULT_IDENTIFY.threshold
    report |= {
        "templates": len(d.templates),
        "identities": len(d.centroids),
        "queries": len(d.queries),
        "real_queries": d.n_real_queries,
        "accepted_queries": int(accepted.sum()),
        "fit": d.fit,
        "exact_rank1_vs_truth": round(float(np.mean(truth[:, 0] == d.query_truth)), 4),
        "data_s": round(time.perf_counter() - t, 1),
    }
    print(
        f"{len(d.templates):,} templates, {len(d.centroids):,} identities, {len(d.queries):,} queries "
        f"({d.n_real_queries} real LFW, {int(accepted.sum())} above the identify threshold)"
    )
    print(f"fit check, cosine 5/50/95%: real {d.fit['real']}  synthetic {d.fit['synthetic']}")
    print(f"exact search top-1 = the query's own identity: {report['exact_rank1_vs_truth']}")
    rows: list[dict[str, object]] = []
    if args.compare:
        rows += compare_libraries(d.centroids, d.queries, truth, accepted, tmp, efs)
    ann_rows, info = bench_index(d, truth, accepted, IndexParams(), scales, tmp)
    rows += ann_rows
    rows.append(exact_row(d, 200))
    report["index"] = {k: round(v, 2) for k, v in info.items()}
    report["rows"] = rows
    print(
        f"\nCentroidIndex over {len(d.centroids):,} centroids in {info['nlist']:,} lists: "
        f"build {info['build_s']:.1f} s ({BUILD_THREADS} threads), "
        f"RSS +{info['rss_mb']:.0f} MB, file {info['file_mb']:.0f} MB, save {info['save_s']:.2f} s, "
        f"load {info['load_s']:.2f} s"
    )
    print("single query, 1 thread; ms (p50/p99 wall, cpu50 = CPU time of the query); recall against exact search\n")
    print(table(rows, COLUMNS + (["build_s", "rss_mb", "file_mb"] if args.compare else [])))
    if args.gallery:
        g = make_data(real, args.gallery, args.per_identity, args.queries, args.seed + 1)
        g_truth, g_scores = exact_topk(g.centroids, g.queries, 10)
        g_acc = g_scores[:, 0] >= DEFAULT_IDENTIFY.threshold
        from faceprint.gallery import DEFAULT_ANN_MIN_IDENTITIES

        e2e = bench_gallery(g, g_truth, g_acc, tmp, min(DEFAULT_ANN_MIN_IDENTITIES, len(g.centroids)))
        report["gallery"] = e2e
        print(f"\nGallery end to end: {e2e['templates']:,} templates / {e2e['identities']:,} identities in SQLite")
        for k, v in e2e.items():
            if k not in ("ann", "templates", "identities"):
                print(f"  {k}: {v}")
        print(table([e2e["ann"]], COLUMNS))  # type: ignore[list-item]
    if args.json:
        print(json.dumps(report, indent=1, default=str))


if __name__ == "__main__":
    main()
