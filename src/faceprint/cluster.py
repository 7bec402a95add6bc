"""Face clustering: group faces by person without a gallery.

Method (default ``"average"``): average-linkage agglomerative clustering on cosine similarity.
For unit-length templates the mean similarity of all pairs across groups A and B is exactly
``sum(A) . sum(B) / (|A| |B|)``, so it comes from one running sum per group and no N x N matrix
is ever built. Two single faces are grouped at ``threshold``; the bar for two groups falls as
their mean covers more pairs (:func:`required_link`, by at most ``slack``), since a mean over
many pairs is a steadier measure than one pair is. The pairs of groups that can merge come from a
kNN graph (FAISS exact inner-product search, ``k`` neighbours per face): groups whose mean reaches
the bar have at least one pair of faces at or above it, so only those kNN edges are kept.
Memory is O(N k): 100,000 faces peaked at 0.7 GB of process memory and took 41 s on one core
(27 s of it the exact kNN search), 10,000 faces 1.2 s (``python benchmarks/cluster_lfw.py --timing``).

Alternatives kept for measurement (``method=``): ``"centroid"`` (cosine of the group means),
``"single"`` (connected components of the thresholded kNN graph) and ``"chinese_whispers"``
(label propagation with weighted votes, seeded, as in dlib's recipe).

Labels are numbered from 0, largest group first (ties: the group whose first face comes first);
faces in groups smaller than ``min_size`` get -1. The same input, with the same thread count,
gives the same labels.
"""

from __future__ import annotations

import heapq
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np

from faceprint.gallery.index import _faiss, _omp_threads

if TYPE_CHECKING:
    from faceprint.engine import FaceEngine
    from faceprint.image import ImageInput

Method = Literal["average", "centroid", "single", "chinese_whispers"]
METHODS: tuple[str, ...] = ("average", "centroid", "single", "chinese_whispers")

#: Chosen on LFW View 1 *training* people only (peopleDevTrain.txt; the benchmark's test people are
#: peopleDevTest.txt, disjoint): 10 seeded sets of 1,000 photos (400 people with one LFW photo, the
#: rest up to 10 photos of each of ~150 people), every face of every photo clustered, each photo
#: scored by its face nearest the centre. The objective, (BCubed F + pairwise F) / 2, peaked at
#: threshold 0.940 with slack 0.0125: BCubed F 0.971, pairwise F 0.943 (slack 0: best 0.9539 at
#: 0.935; Chinese whispers 0.9438 at 0.945; single linkage 0.922 and centroid linkage 0.925 at
#: 0.9525). Reproduce: ``python benchmarks/cluster_lfw.py --calibrate``.
DEFAULT_THRESHOLD = 0.940
DEFAULT_SLACK = 0.0125
DEFAULT_METHOD: Method = "average"
#: neighbours per face in the kNN graph (groups merge along its edges, so one person's photos need
#: only be linked through near neighbours, not all be within k of each other). On the DevTrain sets,
#: k = 8, 16, 32 and 64 gave the same scores with up to 10 and up to 40 photos per person; the
#: search costs about the same for any k this small
DEFAULT_K = 32
#: edges whose similarity is recomputed at once (bounds the working copy: 64k x 128 x 8 bytes)
EDGE_CHUNK = 1 << 16
#: passes of Chinese whispers over all faces (dlib's default is 100 single-node updates per face)
WHISPER_ITERATIONS = 20


@dataclass
class ClusterResult:
    """Groups of faces. ``labels[i]``: the group of face i (0 = largest), -1 below ``min_size``.
    ``scores[i]``: cosine similarity of face i to the mean template of its group (1.0 alone).
    ``sizes[c]``: faces in group c."""

    labels: np.ndarray
    scores: np.ndarray
    sizes: np.ndarray
    threshold: float
    method: str

    @property
    def n_clusters(self) -> int:
        return len(self.sizes)

    def members(self, cluster: int) -> np.ndarray:
        """Indices of the faces in one group, in input order."""
        return np.flatnonzero(self.labels == cluster)


# --------------------------------------------------------------------------- kNN graph
def knn_graph(embeddings: np.ndarray, k: int = DEFAULT_K, threads: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(neighbours, similarities), each (N, k'), k' = min(k, N - 1): every face's nearest other
    faces by cosine, best first (FAISS exact search; ``threads`` 0 = all cores). Neighbours are
    -1 where FAISS returns fewer."""
    x = np.ascontiguousarray(embeddings, dtype=np.float32)
    n = len(x)
    kk = min(k, n - 1)
    if kk <= 0:
        return np.empty((n, 0), np.int64), np.empty((n, 0), np.float32)
    faiss = _faiss()
    index = faiss.IndexFlatIP(x.shape[1])
    index.add(x)
    with _omp_threads(faiss, threads):
        sims, ids = index.search(x, kk + 1)  # +1: a face finds itself
    # drop each face's own entry (not always column 0: exact duplicates tie with it)
    own = ids == np.arange(n)[:, None]
    own[~own.any(axis=1), -1] = True  # no self entry returned: drop the weakest instead
    keep = ~own
    return ids[keep].reshape(n, kk), sims[keep].reshape(n, kk)


def _edges(x: np.ndarray, k: int, threshold: float, threads: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Undirected kNN edges (i < j, each once) with cosine >= threshold, the similarity recomputed
    in float64 so that the edge set does not depend on FAISS's thread count or summation order."""
    n = len(x)
    ids, sims = knn_graph(x, k, threads)
    rows = np.repeat(np.arange(n, dtype=np.int64), ids.shape[1])
    cols = ids.ravel()
    near = (cols >= 0) & (sims.ravel() >= threshold - 1e-4) & (cols != rows)
    keys = np.unique(np.minimum(rows[near], cols[near]) * n + np.maximum(rows[near], cols[near]))
    i, j = keys // n, keys % n
    sim = np.empty(len(keys))
    for start in range(0, len(keys), EDGE_CHUNK):  # chunks: never a (edges x D) float64 copy at once
        a, b = i[start : start + EDGE_CHUNK], j[start : start + EDGE_CHUNK]
        sim[start : start + EDGE_CHUNK] = np.einsum("ij,ij->i", x[a].astype(np.float64), x[b].astype(np.float64))
    ok = sim >= threshold
    return i[ok], j[ok], sim[ok]


# --------------------------------------------------------------------------- methods
def required_link(threshold: float, slack: float, pairs: np.ndarray | float) -> np.ndarray | float:
    """The link two groups need to merge, given ``pairs`` = |A| x |B|: ``threshold`` for two single
    faces, relaxed towards ``threshold - slack`` as the mean covers more pairs (its noise falls
    as 1 / sqrt(pairs), so a lower bar lets as few impostor merges through)."""
    return threshold - slack * (1.0 - 1.0 / np.sqrt(pairs))


def _agglomerate(
    x: np.ndarray, i: np.ndarray, j: np.ndarray, sim: np.ndarray, threshold: float, slack: float, how: str
) -> np.ndarray:
    """Greedy agglomeration along the graph's edges, the pair of groups with the largest margin
    over :func:`required_link` first, while that margin is >= 0. Returns each face's group id
    (the index of one of its faces)."""
    n = len(x)
    sums = x.astype(np.float64)
    size = np.ones(n)
    version = np.zeros(n, np.int64)  # bumped when a group grows, -1 once it is merged away
    parent = np.arange(n)
    adj: list[set[int]] = [set() for _ in range(n)]
    for a, b in zip(i.tolist(), j.tolist()):
        adj[a].add(b)
        adj[b].add(a)
    heap = [(threshold - s, a, b, 0, 0) for s, a, b in zip(sim.tolist(), i.tolist(), j.tolist()) if s >= threshold]
    heapq.heapify(heap)  # entries: (-margin, group, group, their versions when pushed)

    def margins(g: int, others: np.ndarray) -> np.ndarray:
        dots = sums[others] @ sums[g]
        pairs = size[others] * size[g]
        if how == "average":  # mean pairwise cosine, exact for unit-length rows
            link = dots / pairs
        else:  # cosine of the two means
            link = dots / np.maximum(np.linalg.norm(sums[others], axis=1) * np.linalg.norm(sums[g]), 1e-12)
        return link - required_link(threshold, slack, pairs)

    while heap:
        neg, a, b, va, vb = heapq.heappop(heap)
        if neg > 0:
            break
        if version[a] != va or version[b] != vb:
            continue  # stale: one of the two groups has changed or gone since this was pushed
        keep, gone = (a, b) if len(adj[a]) >= len(adj[b]) else (b, a)  # fold the smaller adjacency
        sums[keep] += sums[gone]
        size[keep] += size[gone]
        parent[gone] = keep
        version[keep] += 1
        version[gone] = -1
        for other in adj[gone]:
            adj[other].discard(gone)
            if other != keep:
                adj[other].add(keep)
                adj[keep].add(other)
        adj[gone] = set()
        adj[keep].discard(gone)
        if not adj[keep]:
            continue
        others = np.fromiter(adj[keep], np.int64, len(adj[keep]))
        others.sort()  # a fixed push order: ties pop the same way on every run
        for other, m in zip(others.tolist(), margins(keep, others).tolist()):
            if m >= 0:
                heapq.heappush(heap, (-m, keep, other, int(version[keep]), int(version[other])))
    return _roots(parent)


def _roots(parent: np.ndarray) -> np.ndarray:
    """Follow parent pointers to the root of every element (vectorised path halving)."""
    root = parent.copy()
    while True:
        up = root[root]
        if np.array_equal(up, root):
            return root
        root = up


def _components(n: int, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Connected components (single linkage): each face's smallest reachable index."""
    label = np.arange(n)
    while True:  # min-label propagation with pointer jumping, until nothing changes
        before = label.copy()
        np.minimum.at(label, i, label[j])
        np.minimum.at(label, j, label[i])
        label = label[label]
        if np.array_equal(label, before):
            return label


def _chinese_whispers(n: int, i: np.ndarray, j: np.ndarray, sim: np.ndarray, seed: int = 0) -> np.ndarray:
    """Chinese whispers: each face in turn (a seeded random order per pass) takes the label with
    the largest total edge weight among its neighbours; ties go to the smaller label."""
    src = np.concatenate([i, j])
    dst = np.concatenate([j, i])
    w = np.concatenate([sim, sim])
    order = np.argsort(src, kind="stable")
    src, dst, w = src[order], dst[order], w[order]
    start = np.searchsorted(src, np.arange(n + 1))
    nbrs = [dst[start[v] : start[v + 1]].tolist() for v in range(n)]
    weights = [w[start[v] : start[v + 1]].tolist() for v in range(n)]
    label = list(range(n))
    rng = np.random.default_rng(seed)
    for _ in range(WHISPER_ITERATIONS):
        changed = False
        for v in rng.permutation(n).tolist():
            if not nbrs[v]:
                continue
            votes: dict[int, float] = {}
            for u, wt in zip(nbrs[v], weights[v]):
                votes[label[u]] = votes.get(label[u], 0.0) + wt
            best = min(votes, key=lambda lab: (-votes[lab], lab))
            if best != label[v]:
                label[v] = best
                changed = True
        if not changed:
            break
    return np.asarray(label)


# --------------------------------------------------------------------------- public API
def cluster_templates(
    embeddings: np.ndarray,
    threshold: float = DEFAULT_THRESHOLD,
    min_size: int = 1,
    k: int = DEFAULT_K,
    method: Method = DEFAULT_METHOD,
    slack: float = DEFAULT_SLACK,
    threads: int = 0,
) -> ClusterResult:
    """Group unit-length templates (N, D) by person; see the module docstring for the method.

    ``threshold``: the cosine similarity two single faces need to be grouped; two groups need
    a mean similarity of :func:`required_link` (``threshold - slack`` at most less) to merge.
    ``"single"`` and ``"chinese_whispers"`` use ``threshold`` on each edge and ignore ``slack``.
    ``threads``: FAISS threads for the kNN search (0 = all cores).
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose from {', '.join(METHODS)}")
    if not -1.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be a cosine similarity from -1 to 1, got {threshold}")
    if min_size < 1 or k < 1:
        raise ValueError("min_size and k must be at least 1")
    if not 0.0 <= slack < 1.0:
        raise ValueError(f"slack must be from 0 to 1, got {slack}")
    x = np.ascontiguousarray(embeddings, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"embeddings must be a 2-d array (faces x dimensions), got shape {x.shape}")
    n = len(x)
    grouping = method in ("average", "centroid")
    lowest = threshold - slack if grouping else threshold  # no merge needs a weaker edge than this
    i, j, sim = _edges(x, k, lowest, threads) if n > 1 else (np.empty(0, np.int64),) * 2 + (np.empty(0),)
    if grouping:
        group = _agglomerate(x, i, j, sim, threshold, slack, method)
    elif method == "single":
        group = _components(n, i, j)
    else:
        group = _chinese_whispers(n, i, j, sim)
    return _result(x, group, threshold, min_size, method)


def _result(x: np.ndarray, group: np.ndarray, threshold: float, min_size: int, method: str) -> ClusterResult:
    """Renumber groups by size (descending, then first face), mark small ones -1, score faces."""
    n = len(x)
    if n == 0:
        empty = np.empty(0, np.int64)
        return ClusterResult(empty, np.empty(0, np.float32), empty, threshold, method)
    ids, first, inverse, counts = np.unique(group, return_index=True, return_inverse=True, return_counts=True)
    sums = np.zeros((len(ids), x.shape[1]), np.float64)
    np.add.at(sums, inverse, x)
    means = sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)
    scores = np.einsum("ij,ij->i", x.astype(np.float64), means[inverse]).astype(np.float32)
    rank = np.lexsort((first, -counts))  # groups in output order
    kept = rank[counts[rank] >= min_size]
    new_id = np.full(len(ids), -1, np.int64)
    new_id[kept] = np.arange(len(kept))
    return ClusterResult(new_id[inverse], scores, counts[kept].astype(np.int64), threshold, method)


# --------------------------------------------------------------------------- scoring
def clustering_scores(predicted: Sequence[int] | np.ndarray, truth: Sequence[object]) -> dict[str, float]:
    """BCubed and pairwise precision / recall / F1 of a clustering against true identities.
    A predicted label of -1 (no group) counts as a group of its own."""
    if len(predicted) != len(truth):
        raise ValueError(f"{len(predicted)} predicted labels for {len(truth)} true identities")
    pred = np.asarray(predicted, dtype=np.int64).copy()
    alone = pred < 0
    pred[alone] = pred.max(initial=0) + 1 + np.arange(int(alone.sum()))
    _, p = np.unique(pred, return_inverse=True)
    _, t = np.unique(np.asarray([str(v) for v in truth]), return_inverse=True)
    pairs, n_ij = np.unique(np.stack([p, t], axis=1), axis=0, return_counts=True)
    size_p = np.bincount(p)[pairs[:, 0]]
    size_t = np.bincount(t)[pairs[:, 1]]
    n = len(p)
    b_p = float((n_ij * n_ij / size_p).sum() / n) if n else 1.0
    b_r = float((n_ij * n_ij / size_t).sum() / n) if n else 1.0

    def same(counts: np.ndarray) -> float:
        return float((counts * (counts - 1) / 2).sum())

    tp, pred_pairs, true_pairs = same(n_ij), same(np.bincount(p)), same(np.bincount(t))
    pw_p = tp / pred_pairs if pred_pairs else 1.0
    pw_r = tp / true_pairs if true_pairs else 1.0
    return {
        "bcubed_precision": b_p,
        "bcubed_recall": b_r,
        "bcubed_f": _f1(b_p, b_r),
        "pairwise_precision": pw_p,
        "pairwise_recall": pw_r,
        "pairwise_f": _f1(pw_p, pw_r),
    }


def _f1(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r > 0 else 0.0


# --------------------------------------------------------------------------- images
@dataclass
class FaceRecord:
    """One face of a clustered image, or one face track of a video (``track`` set, ``box`` is its best
    view's in that frame, ``crop`` that view): ``cluster`` is None below ``min_size``."""

    image: str
    box: tuple[int, int, int, int]
    cluster: int | None
    score: float
    track: int | None = None
    start_s: float | None = None
    end_s: float | None = None
    crop: np.ndarray | None = field(default=None, repr=False)

    def as_dict(self) -> dict[str, object]:
        record: dict[str, object] = {
            "image": self.image,
            "box": list(self.box),
            "cluster": self.cluster,
            "score": round(self.score, 4),
        }
        if self.track is not None:
            record.update(track=self.track, start_s=round(self.start_s or 0.0, 3), end_s=round(self.end_s or 0.0, 3))
        return record


@dataclass
class ImageClusters:
    """What :func:`cluster_images` found: the faces in input order (largest first within an
    image), images that could not be read (name, message), and images with no face."""

    faces: list[FaceRecord]
    result: ClusterResult
    errors: list[tuple[str, str]] = field(default_factory=list)
    no_face: list[str] = field(default_factory=list)


def cluster_images(
    images: Iterable[ImageInput],
    engine: FaceEngine,
    workers: int = 1,
    threshold: float = DEFAULT_THRESHOLD,
    min_size: int = 1,
    k: int = DEFAULT_K,
    slack: float = DEFAULT_SLACK,
    on_progress: Callable[[int], None] | None = None,
    videos: Iterable[str | os.PathLike[str]] = (),
) -> ImageClusters:
    """Detect and embed every face of every image (``workers`` processes), and every face track of
    every video (one item per track: its quality-weighted template), then cluster them all. A file
    that fails is listed in ``errors`` and the rest go on. ``on_progress(1)`` per image and per video."""
    from faceprint.pipeline import EngineSpec, analyze_images

    records: list[FaceRecord] = []
    vectors: list[np.ndarray] = []
    errors: list[tuple[str, str]] = []
    no_face: list[str] = []
    for res in analyze_images(images, engine, EngineSpec.of(engine), "all", workers):
        if res.error is not None:
            errors.append((res.source, res.error))
        elif not res.faces:
            no_face.append(res.source)
        for face in res.faces:
            assert face.embedding is not None  # mode "all" embeds every face
            records.append(FaceRecord(res.source, tuple(int(v) for v in face.box), None, 0.0))  # type: ignore[arg-type]
            vectors.append(face.embedding)
        if on_progress:
            on_progress(1)
    for video in videos:
        _add_tracks(str(video), engine, records, vectors, errors, no_face)
        if on_progress:
            on_progress(1)
    dim = vectors[0].shape[0] if vectors else 128
    matrix = np.stack(vectors) if vectors else np.empty((0, dim), np.float32)
    threads = max(1, min(workers, os.cpu_count() or 1))
    result = cluster_templates(matrix, threshold, min_size, k, slack=slack, threads=threads)
    for record, label, score in zip(records, result.labels, result.scores):
        record.cluster = int(label) if label >= 0 else None
        record.score = float(score)
    return ImageClusters(records, result, errors, no_face)


def _add_tracks(
    video: str,
    engine: FaceEngine,
    records: list[FaceRecord],
    vectors: list[np.ndarray],
    errors: list[tuple[str, str]],
    no_face: list[str],
) -> None:
    """A video's face tracks as items to cluster (a track is one person for as long as it lasts)."""
    from faceprint.errors import FaceprintError
    from faceprint.video import track_templates

    try:
        tracks = track_templates(video, engine)
    except FaceprintError as exc:
        errors.append((video, str(exc)))
        return
    if not tracks:
        no_face.append(video)
    for t in tracks:
        records.append(FaceRecord(video, t.box, None, 0.0, t.track_id, t.start_s, t.end_s, t.crop))
        vectors.append(t.template)
