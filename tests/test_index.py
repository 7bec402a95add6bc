"""The centroid ANN index and the Gallery's use of it, on synthetic clustered vectors (no models); the
Gallery tests run over each store (``gallery_url``: SQLite, PostgreSQL)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from faceprint.gallery import Gallery, GalleryStore, SQLiteStore, Template, open_store
from faceprint.gallery.index import CentroidIndex, IndexParams, StoreIndex, sidecar_path

MODEL = "test-model"
DIM = 32


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def face_like(n_ids: int, per_id: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Templates shaped like face templates: identity centres in a narrow cone around a common
    direction (different people ~0.8-0.9 cosine), photos scattered around them (same person ~0.95).
    Returns (centres (n_ids, DIM), templates (n_ids * per_id, DIM), labels)."""
    rng = np.random.default_rng(seed)
    mean = unit(rng.normal(size=DIM))
    centres = unit(mean + 0.45 * rng.normal(size=(n_ids, DIM)).astype(np.float32) / np.sqrt(DIM))
    labels = np.repeat(np.arange(n_ids), per_id)
    templates = unit(centres[labels] + 0.2 * rng.normal(size=(len(labels), DIM)).astype(np.float32) / np.sqrt(DIM))
    return centres, templates, labels


def queries_for(centres: np.ndarray, n: int, seed: int = 1) -> np.ndarray:
    """New photos of enrolled people."""
    rng = np.random.default_rng(seed)
    who = rng.choice(len(centres), n, replace=False)
    return unit(centres[who] + 0.2 * rng.normal(size=(n, DIM)).astype(np.float32) / np.sqrt(DIM))


def exact_top(vectors: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    return np.argsort(-(queries @ vectors.T), axis=1)[:, :k]


def template(vec: np.ndarray, sha: str) -> Template:
    return Template(embedding=vec, model=MODEL, source=f"{sha}.jpg", file_sha256=sha, box=(0, 0, 10, 10))


def enrol(store: GalleryStore, templates: np.ndarray, labels: np.ndarray, prefix: str = "p") -> None:
    for person in np.unique(labels):
        rows = np.flatnonzero(labels == person)
        store.add_templates(f"{prefix}{person}", [template(templates[r], f"{prefix}{person}-{r}") for r in rows])


def test_ann_agrees_with_exact_search_on_clustered_vectors() -> None:
    centres, _, _ = face_like(5_000, 1)
    index = CentroidIndex(DIM, IndexParams())
    index.upsert(np.arange(len(centres)) + 1000, centres)
    queries = queries_for(centres, 300)
    keys, scores = index.search(queries, 10)
    truth = exact_top(centres, queries, 10) + 1000
    assert np.mean(keys[:, 0] == truth[:, 0]) >= 0.99
    # reported scores are exact cosines, best first
    exact = np.einsum("qd,qkd->qk", queries, centres[keys - 1000])
    np.testing.assert_allclose(scores, exact, atol=1e-5)
    assert np.all(np.diff(scores, axis=1) <= 0)


def test_upsert_remove_and_padding() -> None:
    centres, _, _ = face_like(50, 1)
    index = CentroidIndex(DIM)
    index.upsert(np.arange(50), centres)
    index.upsert(np.array([7]), centres[8])  # replaced, not duplicated
    assert len(index) == 50
    np.testing.assert_allclose(index.vectors(np.array([7]))[0], centres[8], atol=1e-6)
    index.remove(np.array([8, 999]))  # an unknown key is ignored
    keys, scores = index.search(centres[8], 3)
    assert keys[0, 0] == 7 and 8 not in keys[0]
    keys, scores = index.search(centres[:2], 100)  # more than indexed: padded
    assert (keys[:, 49:] == -1).all() and np.isneginf(scores[:, 49:]).all()
    assert (keys[:, :49] >= 0).all()


def test_save_load_round_trip(tmp_path: Path) -> None:
    centres, _, _ = face_like(500, 1)
    index = CentroidIndex(DIM, model=MODEL, version=42)
    index.upsert(np.arange(500) * 3, centres)
    sidecar = tmp_path / "g.db.abc.index.json"
    index.save(sidecar)
    index.save(sidecar)  # a second save replaces the first file
    assert len(list(tmp_path.glob("*.faiss"))) == 1
    loaded = CentroidIndex.load(sidecar, MODEL)
    assert loaded is not None and loaded.version == 42 and len(loaded) == 500
    q = queries_for(centres, 20)
    np.testing.assert_array_equal(loaded.search(q, 5)[0], index.search(q, 5)[0])
    assert CentroidIndex.load(sidecar, "another-model") is None
    assert CentroidIndex.load(sidecar, MODEL, IndexParams(lists_per_sqrt=8)) is None  # built otherwise
    narrower = CentroidIndex.load(sidecar, MODEL, IndexParams(probe_scale=1))  # a search setting: same file
    assert narrower is not None and narrower.nprobe < loaded.nprobe == loaded.nlist
    next(tmp_path.glob("*.faiss")).write_bytes(b"garbage")
    assert CentroidIndex.load(sidecar, MODEL) is None


Big = tuple[str, np.ndarray, np.ndarray, np.ndarray]


@pytest.fixture
def big(gallery_url: str) -> Big:
    """A gallery of 400 people x 2 photos: above a cut-over of 100 identities."""
    centres, templates, labels = face_like(400, 2, seed=3)
    enrol(open_store(gallery_url), templates, labels)
    return gallery_url, centres, templates, labels


@pytest.fixture
def big_file(tmp_path: Path) -> tuple[Path, np.ndarray, np.ndarray, np.ndarray]:
    """``big`` in a SQLite file, for what concerns the index files beside it."""
    centres, templates, labels = face_like(400, 2, seed=3)
    path = tmp_path / "g.db"
    enrol(SQLiteStore(path), templates, labels)
    return path, centres, templates, labels


def exact_names(path: str | Path, queries: np.ndarray, k: int = 1) -> list[list[str]]:
    exact = Gallery(path, ann_min_identities=10**9)
    return [[c.identity for c in row] for row in exact.search(queries, MODEL, k)]


def test_gallery_above_the_cutover_matches_exact_search(big: Big, tmp_path: Path) -> None:
    path, centres, _, _ = big
    queries = queries_for(centres, 100)
    gallery = Gallery(path, ann_min_identities=100)
    got = gallery.search(queries, MODEL, top_k=3)
    assert MODEL in gallery._indexes  # the index path was taken
    if path.startswith("postgresql:"):  # a database's index lives in memory: nothing written here
        assert gallery._indexes[MODEL].path is None and list(tmp_path.iterdir()) == []
    else:
        assert sidecar_path(Path(path), MODEL).is_file()
    want = Gallery(path, ann_min_identities=10**9).search(queries, MODEL, top_k=3)
    assert [r[0].identity for r in got] == [r[0].identity for r in want]
    for g, w in zip(got, want):
        assert g[0].score == pytest.approx(w[0].score, abs=1e-5)  # exact cosines, not approximations
    name = got[0][0].identity
    assert gallery.score(queries[0], name, MODEL) == pytest.approx(got[0][0].score, abs=1e-5)
    assert gallery.search(queries[0], "another-model") == [[]]


def test_index_follows_changes_from_another_connection(big: Big) -> None:
    path, centres, _, _ = big
    gallery = Gallery(path, ann_min_identities=100)
    q = queries_for(centres, 1, seed=5)
    first = gallery.search(q, MODEL)[0][0].identity
    other = Gallery(path, ann_min_identities=10**9)  # another process, say, that never loads the index
    # a new person exactly where the query is
    other.add_templates("newcomer", [template(q[0], "new")])
    assert gallery.search(q, MODEL)[0][0].identity == "newcomer"
    other.rename("newcomer", "renamed")
    assert gallery.search(q, MODEL)[0][0].identity == "renamed"
    other.remove("renamed")
    assert gallery.search(q, MODEL)[0][0].identity == first
    other.rename(first, "moved")
    assert gallery.search(q, MODEL)[0][0].identity == "moved"
    # a template added to an existing person moves their centroid
    other.add_templates("moved", [template(unit(-q[0]), "far")])
    assert gallery.search(q, MODEL, 1)[0][0].identity == exact_names(path, q)[0][0]
    assert gallery._indexes[MODEL].last_sync["how"] == "caught up"


def test_a_stale_index_file_is_caught_up_or_rebuilt(big_file: tuple[Path, np.ndarray, np.ndarray, np.ndarray]) -> None:
    path, centres, _, _ = big_file
    q = queries_for(centres, 50, seed=6)
    gallery = Gallery(path, ann_min_identities=100)
    gallery.search(q, MODEL)
    gallery.close()
    # changes made while nobody had the index open
    store = SQLiteStore(path)
    store.add_templates("newcomer", [template(q[0], "new")])
    store.remove_identity("p0")
    reopened = Gallery(path, ann_min_identities=100)
    got = reopened.search(q, MODEL)
    assert reopened._indexes[MODEL].last_sync["how"] == "caught up"
    assert [r[0].identity for r in got] == [r[0] for r in exact_names(path, q)]
    # a change log that cannot tell what changed (pruned, or an old faceprint wrote): rebuilt
    store.add_templates("another", [template(q[1], "another")])
    store._db().execute("DELETE FROM changes")
    again = Gallery(path, ann_min_identities=100)
    got = again.search(q, MODEL)
    assert again._indexes[MODEL].last_sync["how"] == "built"
    assert [r[0].identity for r in got] == [r[0] for r in exact_names(path, q)]


def first_answers(path: str | Path, queries: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """The best identity for each query through the index, which is then saved and closed."""
    gallery = Gallery(path, ann_min_identities=100)
    best = [r[0].identity for r in gallery.search(queries, MODEL)]
    gallery.close()
    return queries, best


def test_deleting_the_index_files_is_safe(big_file: tuple[Path, np.ndarray, np.ndarray, np.ndarray]) -> None:
    path, centres, _, _ = big_file
    q, want = first_answers(path, queries_for(centres, 30, seed=7))
    for f in path.parent.glob("g.db.*"):
        if f.suffix in (".faiss", ".npy", ".json"):
            f.unlink()
    fresh = Gallery(path, ann_min_identities=100)
    assert [r[0].identity for r in fresh.search(q, MODEL)] == want
    assert fresh._indexes[MODEL].last_sync["how"] == "built"
    # only the data file deleted: the sidecar names a missing file, so it is rebuilt as well
    fresh.close()
    for f in path.parent.glob("g.db.*.faiss"):
        f.unlink()
    again = Gallery(path, ann_min_identities=100)
    assert [r[0].identity for r in again.search(q, MODEL)] == want


def test_store_index_keeps_in_step_within_one_process(gallery_url: str) -> None:
    centres, templates, labels = face_like(30, 2, seed=8)
    store = open_store(gallery_url)
    enrol(store, templates, labels)
    indexed = StoreIndex(store, MODEL)  # in memory only
    index = indexed.sync()
    assert len(index) == 30 and index.version == store.version()
    store.remove_template("p3", store.templates("p3")[0].id or 0)
    store.remove_template("p3", store.templates("p3")[0].id or 0)  # p3 has no templates left
    index = indexed.sync()
    assert len(index) == 29
    ids, _ = store.centroids(MODEL)
    assert set(index.keys().tolist()) == set(ids.tolist())


def test_small_galleries_stay_exact_and_write_no_files(gallery_url: str, tmp_path: Path) -> None:
    centres, templates, labels = face_like(20, 2, seed=9)
    path = gallery_url
    enrol(open_store(path), templates, labels)
    gallery = Gallery(path)
    gallery.search(queries_for(centres, 5), MODEL)
    assert gallery._indexes == {}
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("g.db")) == []
    assert not list(tmp_path.glob("*.faiss"))


def test_replacements_move_keys_and_growth_retrains_the_lists() -> None:
    centres, _, _ = face_like(4_000, 1, seed=10)
    index = CentroidIndex(DIM)
    index.upsert(np.arange(1_000), centres[:1_000])
    assert index.trained_on == 1_000 and index.nlist == 1_000 // 39
    index.upsert(np.arange(10), centres[2_000:2_010])  # moved far: found at the new place only
    assert len(index) == 1_000
    np.testing.assert_allclose(index.vectors(np.arange(10)), centres[2_000:2_010], atol=1e-6)
    keys, scores = index.search(centres[2_003], 1)
    assert keys[0, 0] == 3 and scores[0, 0] == pytest.approx(1.0, abs=1e-5)
    assert 3 not in index.search(centres[3], 5)[0][0]
    index.upsert(np.arange(1_000, 2_000), centres[1_000:2_000])  # doubled: not yet retrained
    assert index.trained_on == 1_000
    index.upsert(np.array([2_000]), centres[3_000])  # past double: retrained on all 2,001
    assert index.trained_on == 2_001 and index.nlist == 2_001 // 39 and len(index) == 2_001
    np.testing.assert_allclose(index.vectors(np.array([3, 1_500])), centres[[2_003, 1_500]], atol=1e-6)
    index.remove(np.arange(1_001, 2_001))  # halved, but not below: kept
    assert index.trained_on == 2_001
    index.remove(np.arange(500, 1_001))  # below half: retrained on the 500 left
    assert index.trained_on == 500 and len(index) == 500
    assert set(index.keys().tolist()) == set(range(500))
    q = queries_for(centres[:500], 50)
    live = index.vectors(index.keys())
    _, scores = index.search(q, 1)
    np.testing.assert_allclose(scores[:, 0], (q @ live.T).max(1), atol=1e-6)
    index.remove(index.keys())
    assert len(index) == 0 and index.search(q, 3)[0].max() == -1


def test_an_empty_index_saves_and_loads(tmp_path: Path) -> None:
    index = CentroidIndex(DIM, model=MODEL, version=3)
    sidecar = tmp_path / "g.db.abc.index.json"
    index.save(sidecar)
    loaded = CentroidIndex.load(sidecar, MODEL)
    assert loaded is not None and len(loaded) == 0 and loaded.version == 3
    loaded.upsert(np.arange(100), face_like(100, 1)[0])
    assert len(loaded) == 100


def test_probe_scale_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FACEPRINT_ANN_PROBE_SCALE", "6")
    assert Gallery(tmp_path / "g.db").index_params == IndexParams(probe_scale=6.0)
    monkeypatch.delenv("FACEPRINT_ANN_PROBE_SCALE")
    assert Gallery(tmp_path / "g.db").index_params == IndexParams()


def test_an_index_file_of_an_older_format_is_rebuilt(
    big_file: tuple[Path, np.ndarray, np.ndarray, np.ndarray],
) -> None:
    path, centres, _, _ = big_file
    q, want = first_answers(path, queries_for(centres, 10, seed=11))
    sidecar = sidecar_path(path, MODEL)
    meta = json.loads(sidecar.read_text())
    sidecar.write_text(json.dumps(meta | {"format": 1}))  # what faceprint's HNSW index wrote
    assert CentroidIndex.load(sidecar, MODEL) is None
    again = Gallery(path, ann_min_identities=100)
    assert [r[0].identity for r in again.search(q, MODEL)] == want
    assert again._indexes[MODEL].last_sync["how"] == "built"


# multi-view scoring ------------------------------------------------------------------------------
def test_a_key_with_several_vectors_scores_its_best() -> None:
    centres, _, _ = face_like(600, 1, seed=12)
    index = CentroidIndex(DIM)
    index.upsert(np.arange(500), centres[:500])
    # key 7 gets three views far apart; key 8 two
    index.upsert(np.array([7, 8, 7, 7, 8]), centres[[500, 510, 501, 502, 511]])
    assert len(index) == 503 and index.identities == 500 and index.most_views == 3
    np.testing.assert_allclose(index.vectors(np.array([7, 8]), view=1), centres[[501, 511]], atol=1e-6)
    assert not index.vectors(np.array([8]), view=2).any()  # key 8 has no third view
    for view in (500, 501, 502):
        keys, scores = index.search(centres[view], 3)
        assert keys[0, 0] == 7 and scores[0, 0] == pytest.approx(1.0, abs=1e-5)
        assert len(set(keys[0].tolist())) == 3  # one place per key, however many of its views are near
    keys, scores = index.search(queries_for(centres[:500], 50), 10)
    for row in keys:
        assert len(set(row.tolist())) == 10
    # replacing a key's views by one vector drops the others; removing a key drops all of its views
    index.upsert(np.array([7]), centres[7])
    assert len(index) == 501 and index.most_views == 2
    index.remove(np.array([8]))
    assert len(index) == 499 and index.identities == 499 and index.most_views == 1
    assert 8 not in index.search(centres[510], 5)[0][0]
    with pytest.raises(ValueError):
        index.upsert(np.zeros(17, np.int64), centres[:17])


def diverse_gallery(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """400 people, 2-4 photos each; every fourth person has a second look (another centre) as well.
    Returns (queries near every look of the first 60 people, their person numbers)."""
    centres, templates, labels = face_like(400, 2, seed=13)
    second, more, _ = face_like(100, 2, seed=14)
    rows = [(int(p), t) for p, t in zip(labels, templates)] + [(4 * (i // 2), t) for i, t in enumerate(more)]
    store = open_store(path)
    for person in range(400):
        own = [t for p, t in rows if p == person]
        store.add_templates(f"p{person}", [template(t, f"p{person}-{k}") for k, t in enumerate(own)])
    looks = np.concatenate([centres[:60], second[:15]])
    noise = np.random.default_rng(15).normal(size=looks.shape).astype(np.float32)
    return unit(looks + 0.2 * noise / np.sqrt(DIM)), np.concatenate([np.arange(60), 4 * np.arange(15)])


def test_views_exact_and_index_paths_agree(gallery_url: str) -> None:
    path = gallery_url
    queries, who = diverse_gallery(path)
    exact = Gallery(path, "views", ann_min_identities=10**9)
    ann = Gallery(path, "views", ann_min_identities=100)
    want, got = exact.search(queries, MODEL, 5), ann.search(queries, MODEL, 5)
    indexed = ann._indexes[MODEL]
    assert indexed.index is not None and indexed.index.most_views == 2  # the people with two looks
    assert indexed.index.identities == 400 and len(indexed.index) > 400
    assert [r[0].identity for r in got] == [r[0].identity for r in want]
    for g, w in zip(got, want):
        assert [c.identity for c in g] == [c.identity for c in w]
        np.testing.assert_allclose([c.score for c in g], [c.score for c in w], atol=1e-5)
    for q, p in zip(queries[::7], who[::7]):
        assert ann.score(q, f"p{p}", MODEL) == pytest.approx(exact.score(q, f"p{p}", MODEL), abs=1e-5)
    # the index follows a person who gains a second look, and one who loses theirs
    other = Gallery(path, ann_min_identities=10**9)
    other.add_templates("p1", [template(queries[-1], "new-1"), template(queries[-2], "new-2")])
    other.remove_template("p4", other.templates("p4")[-1].id or 0)
    other.remove_template("p4", other.templates("p4")[-1].id or 0)
    got, want = ann.search(queries, MODEL, 3), exact.search(queries, MODEL, 3)
    assert ann._indexes[MODEL].last_sync["how"] == "caught up"
    assert ann._indexes[MODEL].index.most_views == 3  # type: ignore[union-attr]
    assert [[c.identity for c in r] for r in got] == [[c.identity for c in r] for r in want]
    assert "p1" in [c.identity for c in got[-1]]  # found through its new view
    assert ann.score(queries[-1], "p1", MODEL) == pytest.approx(exact.score(queries[-1], "p1", MODEL), abs=1e-5)


def test_an_index_of_other_scoring_or_format_is_rebuilt(tmp_path: Path) -> None:
    path = tmp_path / "g.db"
    queries, _ = diverse_gallery(path)
    centroid = Gallery(path, ann_min_identities=100)
    want = [r[0].identity for r in centroid.search(queries, MODEL)]
    centroid.close()
    sidecar = sidecar_path(path, MODEL)
    assert json.loads(sidecar.read_text())["scoring"] is None
    # a views gallery cannot use the centroid index (its vectors are others): rebuilt, and saved as such
    views = Gallery(path, "views", ann_min_identities=100)
    views.search(queries, MODEL)
    assert views._indexes[MODEL].last_sync["how"] == "built"
    views.close()
    assert json.loads(sidecar.read_text())["scoring"]["aggregation"] == "views"
    # a sidecar of format 2 (one vector per identity under its id) is ignored and rebuilt
    meta = json.loads(sidecar.read_text())
    sidecar.write_text(json.dumps(meta | {"format": 2, "scoring": None}))
    again = Gallery(path, ann_min_identities=100)
    assert [r[0].identity for r in again.search(queries, MODEL)] == want
    assert again._indexes[MODEL].last_sync["how"] == "built"
    assert json.loads(sidecar.read_text())["format"] == 3
