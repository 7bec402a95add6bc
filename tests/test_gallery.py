"""The gallery stores (SQLite, and PostgreSQL where a server can start) and search, without running any model."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from faceprint.errors import (
    FaceprintError,
    GalleryError,
    GalleryNotFoundError,
    IdentityExistsError,
    InvalidNameError,
    PhotoNotFoundError,
    UnknownIdentityError,
)
from faceprint.gallery import Gallery, SQLiteStore, Template, ViewRule, open_store
from faceprint.gallery.base import GalleryStore, TemplateMatrix
from faceprint.match import gallery_views, identity_scores, rank_identities

from .conftest import damage_gallery

MODEL = "test-model"


def unit(rng: np.random.Generator, dim: int = 8) -> np.ndarray:
    v = rng.normal(size=dim).astype(np.float32)
    return v / np.linalg.norm(v)


def template(vec: np.ndarray, sha: str, box: tuple[int, int, int, int] = (0, 0, 10, 10)) -> Template:
    return Template(embedding=vec, model=MODEL, source=f"{sha}.jpg", file_sha256=sha, box=box)


def test_identities_crud(gallery_url: str) -> None:
    store = open_store(gallery_url)
    store.add_identity("ann", {"team": "red"})
    with pytest.raises(IdentityExistsError):
        store.add_identity("ann")
    with pytest.raises(FaceprintError, match="it is empty"):
        store.add_identity("  ")
    store.add_templates("bob", [template(np.ones(8, np.float32) / np.sqrt(8), "b1")])
    assert [(i.name, i.templates) for i in store.identities()] == [("ann", 0), ("bob", 1)]
    assert store.get_identity("ann").metadata == {"team": "red"}
    store.rename_identity("bob", "rob")
    with pytest.raises(IdentityExistsError):
        store.rename_identity("rob", "ann")
    with pytest.raises(UnknownIdentityError):
        store.rename_identity("bob", "x")
    assert store.remove_identity("rob") == 1
    assert store.templates() == []
    with pytest.raises(UnknownIdentityError):
        store.add_templates("nobody", [template(np.ones(8, np.float32), "n")], create=False)


def test_version_changes_with_templates(gallery_url: str) -> None:
    store = open_store(gallery_url)
    v0 = store.version()
    store.add_templates("a", [template(np.ones(8, np.float32), "x")])
    v1 = store.version()
    assert v1 != v0
    store.add_templates("a", [template(np.ones(8, np.float32), "x")])  # duplicate: nothing changes
    assert store.version() == v1


def test_a_failing_batch_is_rolled_back(gallery_url: str) -> None:
    store = open_store(gallery_url)
    good = template(np.ones(8, np.float32), "ok")
    bad = Template(embedding=np.ones(8, np.float32), model=MODEL, source="x", file_sha256="y", box=None)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        store.add_templates("ann", [good, bad])
    assert store.identities() == [] and store.templates() == []


def test_not_a_gallery_file(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(FaceprintError, match="junk.db"):
        SQLiteStore(junk)


def test_concurrent_writers_lose_nothing(gallery_url: str) -> None:
    store = open_store(gallery_url)
    errors: list[BaseException] = []

    def writer(k: int) -> None:
        try:
            own = open_store(gallery_url) if k % 2 else store  # separate connections and a shared one
            rng = np.random.default_rng(k)
            for i in range(25):
                own.add_templates(f"person{i % 5}", [template(unit(rng), f"w{k}-{i}")])
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(store.templates()) == 150
    assert sorted(i.templates for i in store.identities()) == [30] * 5


def test_search_cache_follows_changes_from_another_connection(gallery_url: str) -> None:
    rng = np.random.default_rng(0)
    gallery = Gallery(gallery_url)
    a, b = unit(rng), unit(rng)
    gallery.add_templates("a", [template(a, "a")])
    assert gallery.search(a, MODEL)[0][0].identity == "a"
    other = Gallery(gallery_url)
    other.add_templates("b", [template(b, "b")])
    assert gallery.search(b, MODEL)[0][0].identity == "b"  # sees the other writer's template
    other.remove("b")
    assert [c.identity for c in gallery.search(b, MODEL, top_k=5)[0]] == ["a"]
    assert gallery.search(a, "another-model") == [[]]


@settings(max_examples=30, deadline=None)
@given(
    st.lists(st.integers(0, 4), min_size=1, max_size=20),
    st.integers(0, 10_000),
)
def test_identity_scores_agree_with_brute_force(labels: list[int], seed: int) -> None:
    rng = np.random.default_rng(seed)
    vectors = np.stack([unit(rng) for _ in labels])
    uniq = sorted(set(labels))
    remap = np.array([uniq.index(x) for x in labels], np.int32)
    matrix = TemplateMatrix(np.arange(len(labels)), remap, [f"id{x}" for x in uniq], vectors)
    q = np.stack([unit(rng) for _ in range(3)])
    # random 8-d vectors are all diverse: "views" then scores the best of each identity's view vectors
    views = gallery_views(matrix, ViewRule())
    np.testing.assert_allclose(identity_scores(q, matrix, "views", views=views), identity_scores(q, matrix, "views"))
    for j in range(len(uniq)):
        own = views.vectors[views.owners == j]
        np.testing.assert_allclose(identity_scores(q, matrix, "views")[:, j], (q @ own.T).max(1), atol=1e-6)
    for how in ("max", "mean", "centroid"):
        got = identity_scores(q, matrix, how)
        for j in range(len(uniq)):
            rows = vectors[remap == j]
            if how == "max":
                want = (q @ rows.T).max(1)
            elif how == "mean":
                want = (q @ rows.T).mean(1)
            else:
                c = rows.mean(0)
                want = q @ (c / np.linalg.norm(c))
            np.testing.assert_allclose(got[:, j], want, atol=1e-5)
    ranked = rank_identities(q, matrix, top_k=3)
    for row in ranked:
        assert len(row) == min(3, len(uniq))
        assert [c.score for c in row] == sorted((c.score for c in row), reverse=True)


def test_a_new_gallery_is_never_seen_half_made(tmp_path: Path) -> None:
    """A reader polling for the file (as another process would) always finds the tables in it."""
    for k in range(40):
        path = tmp_path / f"g{k}.db"
        maker = threading.Thread(target=lambda p=path: SQLiteStore(p).close())
        maker.start()
        seen = False
        while maker.is_alive() or not seen:
            if path.exists():
                with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
                    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
                assert {"identities", "templates", "settings"} <= tables, f"half-made gallery: {tables}"
                seen = True
        maker.join()
    assert not list(tmp_path.glob(".*.tmp"))  # no temporary file left behind


def test_two_processes_creating_one_gallery_both_succeed(gallery_url: str) -> None:
    stores: list[GalleryStore] = []
    threads = [threading.Thread(target=lambda: stores.append(open_store(gallery_url))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(stores) == 4
    stores[0].add_identity("a")
    assert [i.name for i in stores[3].identities()] == ["a"]


def test_names_follow_one_rule_and_lookups_normalise(gallery_url: str) -> None:
    store = open_store(gallery_url)
    for bad in ["a/b", "..", "x" * 201, "a\x7fb", "<script>", "a\\b", "line\u2028break"]:
        with pytest.raises(InvalidNameError):
            store.add_identity(bad)
        with pytest.raises(InvalidNameError):
            store.add_templates(bad, [template(np.ones(8, np.float32), "s")])
    store.add_identity("  Zoë  ")
    assert store.get_identity("Zoe\u0308").name == "Zoë"  # NFD spelling finds the NFC name
    store.rename_identity(" Zoë ", "  Zo  ")
    assert [i.name for i in store.identities()] == ["Zo"]
    assert store.remove_identity(" Zo ") == 0


def test_remove_one_photo(gallery_url: str) -> None:
    gallery = Gallery(gallery_url)
    gallery.add_templates("ann", [template(np.ones(8, np.float32) / np.sqrt(8), "a1")])
    gallery.add_templates("ann", [template(-np.ones(8, np.float32) / np.sqrt(8), "a2")])
    gallery.add_templates("bob", [template(np.ones(8, np.float32) / np.sqrt(8), "b1")])
    first, second = gallery.templates("ann")
    bob = gallery.templates("bob")[0]
    with pytest.raises(PhotoNotFoundError):
        gallery.remove_template("ann", bob.id or 0)  # another person's photo
    removed = gallery.remove_template("ann", first.id or 0)
    assert removed.file_sha256 == "a1"
    assert [t.file_sha256 for t in gallery.templates("ann")] == ["a2"]
    assert gallery.search(second.embedding, MODEL, 1)[0][0].identity == "ann"
    with pytest.raises(UnknownIdentityError):
        gallery.remove_template("nobody", 1)


def test_damaged_file_raises_gallery_error(tmp_path: Path) -> None:
    path = tmp_path / "g.db"
    store = SQLiteStore(path)
    rng = np.random.default_rng(0)
    for k in range(50):
        store.add_templates(f"p{k}", [template(unit(rng, 128), f"s{k}")])
    store.close()
    damage_gallery(path)
    with pytest.raises(GalleryError, match="damaged"):
        SQLiteStore(path).matrix(MODEL)


def test_missing_gallery_is_created_only_when_asked(tmp_path: Path) -> None:
    with pytest.raises(GalleryNotFoundError, match="no gallery here"):
        Gallery(tmp_path / "nope.db", create=False)
    assert not (tmp_path / "nope.db").exists()
    with pytest.raises(GalleryError, match="is a folder"):
        SQLiteStore(tmp_path)


def spread(rng: np.random.Generator, centre: np.ndarray, n: int, noise: float = 0.02) -> list[np.ndarray]:
    """``n`` unit templates close to ``centre`` (cosine ~0.997 in 16 dimensions)."""
    return [v / np.linalg.norm(v) for v in centre + noise * rng.normal(size=(n, len(centre))).astype(np.float32)]


def two_sided_person(rng: np.random.Generator, dim: int = 16) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """A frontal and a profile look of one person (cosine ~0.6 between them), 3 templates of each."""
    front = unit(rng, dim)
    side = front + 1.3 * unit(rng, dim)
    side = (side / np.linalg.norm(side)).astype(np.float32)
    return front, side, spread(rng, front, 3) + spread(rng, side, 3)


def test_diverse_templates_make_views_and_a_query_near_either_scores_high(gallery_url: str) -> None:
    rng = np.random.default_rng(4)
    front, side, templates = two_sided_person(rng)
    path = gallery_url
    store = open_store(path)
    store.add_templates("ann", [template(t, f"a{k}") for k, t in enumerate(templates)])
    store.add_templates("bob", [template(t, f"b{k}") for k, t in enumerate(spread(rng, unit(rng, 16), 4))])
    views = Gallery(path, "views", views=ViewRule(blend=1.0))
    plain = Gallery(path)
    ann = gallery_views(views.matrix(MODEL), views.views)
    assert np.bincount(ann.owners).tolist() == [2, 1]  # ann: a frontal and a profile view; bob: one
    for look in (front, side):
        query = spread(rng, look, 1)[0]
        best = views.search(query, MODEL, 2)[0][0]
        assert best.identity == "ann" and best.score > 0.98  # as close as to the look itself
        assert plain.search(query, MODEL, 2)[0][0].score < 0.95  # the mean of both looks fits neither
        assert views.score(query, "ann", MODEL) == pytest.approx(best.score, abs=1e-6)
    # the default rule blends each view with the overall mean: between the two
    blended = Gallery(path, "views").search(spread(rng, side, 1)[0], MODEL, 1)[0][0].score
    assert plain.search(side, MODEL, 1)[0][0].score < blended < 0.99


def test_a_coherent_person_keeps_one_view_and_todays_scores(gallery_url: str) -> None:
    rng = np.random.default_rng(5)
    store = open_store(gallery_url)
    for k in range(6):
        store.add_templates(f"p{k}", [template(t, f"p{k}-{i}") for i, t in enumerate(spread(rng, unit(rng, 16), 5))])
    views, plain = Gallery(gallery_url, "views"), Gallery(gallery_url)
    assert len(gallery_views(views.matrix(MODEL), views.views).vectors) == 6
    queries = np.stack([unit(rng, 16) for _ in range(20)])
    for a, b in zip(views.search(queries, MODEL, 6), plain.search(queries, MODEL, 6)):
        assert a == b  # same names, same scores to the bit
    assert views.score(queries[0], "p3", MODEL) == plain.score(queries[0], "p3", MODEL)


def test_view_rule_is_checked(tmp_path: Path) -> None:
    for bad in ({"split_below": 1.5}, {"blend": -0.1}, {"max_views": 0}, {"max_views": 17}):
        with pytest.raises(ValueError):
            ViewRule(**bad)  # type: ignore[arg-type]
    assert Gallery.__init__.__kwdefaults__["views"] is None  # views are an option: centroid scoring by default
    with pytest.raises(ValueError, match="aggregation 'views'"):
        Gallery(tmp_path / "g.db", views=ViewRule())
