"""Face clustering: synthetic templates for the behaviour, a few real photos end to end."""

from __future__ import annotations

import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from faceprint import FaceEngine
from faceprint.cluster import (
    DEFAULT_THRESHOLD,
    METHODS,
    cluster_images,
    cluster_templates,
    clustering_scores,
    knn_graph,
    required_link,
)

from .conftest import FIXTURES


def unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v, axis=-1, keepdims=True)).astype(np.float32)


def people(sizes: list[int], seed: int = 0, spread: float = 0.2, dim: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """Templates of ``len(sizes)`` people (random directions: cosine ~0 between people) with
    ``sizes[p]`` photos each, within-person cosine ~0.98; shuffled. Returns (templates, person)."""
    rng = np.random.default_rng(seed)
    centres = unit(rng.normal(size=(len(sizes), dim)))
    who = np.repeat(np.arange(len(sizes)), sizes)
    x = unit(centres[who] + spread * rng.normal(size=(len(who), dim)) / np.sqrt(dim))
    order = rng.permutation(len(who))
    return x[order], who[order]


def partition(labels: np.ndarray) -> set[frozenset[int]]:
    """The groups as sets of face indices (numbering aside)."""
    return {frozenset(np.flatnonzero(labels == lab).tolist()) for lab in np.unique(labels)}


@pytest.mark.parametrize("method", METHODS)
def test_separated_people_are_recovered_exactly(method: str) -> None:
    x, who = people([7, 5, 5, 3, 2, 1, 1, 1])
    res = cluster_templates(x, method=method)  # type: ignore[arg-type]
    assert partition(res.labels) == partition(who)
    assert res.sizes.tolist() == [7, 5, 5, 3, 2, 1, 1, 1]
    assert res.n_clusters == 8 and res.method == method


def test_labels_numbered_from_zero_by_size_and_scores_are_centroid_similarity() -> None:
    x, _ = people([2, 6, 4, 1])
    res = cluster_templates(x)
    assert [len(res.members(c)) for c in range(res.n_clusters)] == [6, 4, 2, 1]
    for c in range(res.n_clusters):
        members = res.members(c)
        mean = x[members].sum(0)
        expected = x[members] @ (mean / np.linalg.norm(mean))
        np.testing.assert_allclose(res.scores[members], expected, atol=1e-5)
    alone = res.members(3)
    assert res.scores[alone] == pytest.approx(1.0)


def test_small_groups_get_minus_one_below_min_size() -> None:
    x, who = people([5, 3, 2, 1, 1])
    res = cluster_templates(x, min_size=3)
    assert res.sizes.tolist() == [5, 3]
    assert set(res.labels.tolist()) == {-1, 0, 1}
    small = np.isin(who, [who[res.labels == -1]])
    assert (res.labels[small] == -1).all() and int(small.sum()) == 4
    assert np.isfinite(res.scores).all()


def test_threshold_is_the_similarity_two_single_faces_need() -> None:
    a = np.zeros(128, np.float32)
    a[0] = 1.0
    for cos, together in ((DEFAULT_THRESHOLD + 0.002, True), (DEFAULT_THRESHOLD - 0.002, False)):
        b = np.zeros(128, np.float32)
        b[0], b[1] = cos, np.sqrt(1 - cos**2)
        res = cluster_templates(np.stack([a, b]))
        assert (res.n_clusters == 1) is together


def test_larger_groups_need_less_than_two_single_faces() -> None:
    assert required_link(0.94, 0.02, 1) == pytest.approx(0.94)
    bars = [required_link(0.94, 0.02, m) for m in (1, 2, 4, 16, 10_000)]
    assert bars == sorted(bars, reverse=True)
    assert bars[-1] == pytest.approx(0.92, abs=5e-4)
    assert required_link(0.94, 0.0, 50) == pytest.approx(0.94)


def test_a_chain_of_faces_does_not_pull_two_people_together() -> None:
    # a -> b -> ... -> e: each step above the threshold, the ends far apart; single linkage chains
    # them all, average linkage keeps the ends apart
    steps = np.linspace(0, 0.9, 6)
    x = unit(np.stack([np.cos(steps), np.sin(steps)] + [np.zeros(6)] * 126, axis=1))
    assert float(x[0] @ x[1]) > DEFAULT_THRESHOLD
    assert cluster_templates(x, method="single").n_clusters == 1
    assert cluster_templates(x).n_clusters > 1


def test_same_input_same_labels_and_order_does_not_change_the_groups() -> None:
    x, _ = people([6, 4, 4, 3, 2, 2, 1, 1, 1], seed=3, spread=0.45)  # noisy: close calls
    first = cluster_templates(x)
    for _ in range(3):
        np.testing.assert_array_equal(cluster_templates(x).labels, first.labels)
    for method in ("chinese_whispers", "single"):
        again = [cluster_templates(x, method=method).labels for _ in range(2)]  # type: ignore[arg-type]
        np.testing.assert_array_equal(*again)
    order = np.random.default_rng(1).permutation(len(x))
    back = np.empty(len(x), np.int64)
    back[order] = cluster_templates(x[order]).labels  # face order[i] was given i-th
    assert partition(back) == partition(first.labels)


def test_duplicates_empty_and_one_face() -> None:
    x, _ = people([3])
    twice = np.concatenate([x, x])
    assert cluster_templates(twice).sizes.tolist() == [6]
    empty = cluster_templates(np.empty((0, 128), np.float32))
    assert empty.labels.size == 0 and empty.n_clusters == 0
    one = cluster_templates(x[:1])
    assert one.labels.tolist() == [0] and one.sizes.tolist() == [1]
    ids, sims = knn_graph(twice, k=4)
    assert ids.shape == sims.shape == (6, 4)
    assert not (ids == np.arange(6)[:, None]).any()  # a face is never its own neighbour


@pytest.mark.parametrize("kwargs", [{"threshold": 1.5}, {"min_size": 0}, {"k": 0}, {"method": "ward"}, {"slack": -0.1}])
def test_bad_arguments_are_refused(kwargs: dict[str, object]) -> None:
    x, _ = people([2])
    with pytest.raises(ValueError):
        cluster_templates(x, **kwargs)  # type: ignore[arg-type]


def test_twenty_thousand_faces_without_an_n_by_n_matrix() -> None:
    x, who = people([5] * 3_000 + [1] * 5_000, seed=5)
    assert len(x) == 20_000
    tracemalloc.start()
    t0 = time.perf_counter()
    res = cluster_templates(x, threads=1)
    seconds = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 200 * 2**20  # an N x N float32 matrix alone would be 1.6 GB
    assert seconds < 60
    assert partition(res.labels) == partition(who)


def test_clustering_scores() -> None:
    truth = ["a", "a", "a", "b", "b", "c"]
    perfect = clustering_scores([0, 0, 0, 1, 1, 2], truth)
    assert all(v == pytest.approx(1.0) for v in perfect.values())
    merged = clustering_scores([0, 0, 0, 0, 0, 0], truth)
    assert merged["bcubed_recall"] == merged["pairwise_recall"] == pytest.approx(1.0)
    assert merged["pairwise_precision"] == pytest.approx(4 / 15)  # 3 + 1 true pairs of 15
    assert merged["bcubed_precision"] == pytest.approx((3 * 3 / 6 + 2 * 2 / 6 + 1 / 6) / 6)
    # -1 means "in no group": each such face counts alone, never together
    alone = clustering_scores([-1, -1, -1, -1, -1, -1], truth)
    assert alone["bcubed_precision"] == alone["pairwise_precision"] == pytest.approx(1.0)
    assert alone["pairwise_recall"] == 0.0


def test_real_photos_group_by_person_and_bad_files_are_reported(engine: FaceEngine, tmp_path: Path) -> None:
    photos = sorted((FIXTURES / "lfw").glob("*/*.jpg"))
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not an image")
    got = cluster_images([*photos, broken], engine)
    assert [name for name, _ in got.errors] == [str(broken)]
    assert not got.no_face
    # each photo by its largest face (listed first)
    first = {}
    for rec in got.faces:
        first.setdefault(rec.image, rec)
    assert all(rec.cluster is not None and 0 < rec.score <= 1 for rec in got.faces)
    labels = [first[str(p)].cluster for p in photos]
    scores = clustering_scores(labels, [p.parent.name for p in photos])  # type: ignore[arg-type]
    assert scores["bcubed_f"] >= 0.9, scores
    record = first[str(photos[0])].as_dict()
    assert set(record) == {"image", "box", "cluster", "score"} and len(record["box"]) == 4  # type: ignore[arg-type]
