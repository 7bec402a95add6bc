"""LFW protocol end to end on the bundled fixtures, the template cache, and calibration."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from faceprint import FaceEngine, Recognizer
from faceprint.cli import app
from faceprint.errors import FaceprintError
from faceprint.evaluate.cache import EmbeddingCache
from faceprint.evaluate.extract import TemplateExtractor, compute_templates, nearest_centre
from faceprint.evaluate.lfw import evaluate_pairs, pair_images, parse_pairs
from faceprint.gallery import Gallery
from faceprint.types import Face

from .conftest import FIXTURES

LFW = FIXTURES / "lfw"
PEOPLE = sorted(p.name for p in LFW.iterdir() if p.is_dir())

runner = CliRunner()


@pytest.fixture(scope="module")
def cache_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One embedding cache for the module: each fixture image is embedded once."""
    return tmp_path_factory.mktemp("cache") / "templates.sqlite3"


@pytest.fixture()
def env(cache_file: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FACEPRINT_EMBEDDING_CACHE", str(cache_file))
    return cache_file


@pytest.fixture(scope="module")
def tiny_pairs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2 sets x (3 same + 3 different) pairs over the 10 fixture people (3 photos each)."""
    lines = ["2\t3"]
    for s in range(2):
        lines += [f"{PEOPLE[s * 3 + k]}\t1\t{2 + (k + s) % 2}" for k in range(3)]
        lines += [f"{PEOPLE[s * 3 + k]}\t{1 + k}\t{PEOPLE[9 - s * 3 - k]}\t{3 - k}" for k in range(3)]
    path = tmp_path_factory.mktemp("pairs") / "pairs.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


def _flat(text: str) -> str:
    """Console output with rich's line wrapping undone."""
    return " ".join(text.split())


def _run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["--embedder", "onnx", *args])
    return result.exit_code, result.stdout


def test_lfw_cli_end_to_end_and_cache(env: Path, tiny_pairs: Path, tmp_path: Path) -> None:
    args = ["evaluate", "lfw", "--root", str(LFW), "--pairs", str(tiny_pairs), "--json", "--workers", "1"]
    code, stdout = _run(*args, "--plot", str(tmp_path / "roc.png"))
    assert code == 0, stdout
    first = json.loads(stdout)
    for key in ("pairs", "accuracy_mean", "accuracy_std", "auc", "tar_at_far_1e-2", "tar_at_far_1e-3", "eer"):
        assert key in first
    n_images = len(pair_images(LFW, parse_pairs(tiny_pairs)))
    assert first["pairs"] == 12 and first["folds"] == 2 and first["images"] == n_images
    assert first["no_face"] == 0 and first["unscored_pairs"] == 0
    assert first["images_per_s"] > 0
    # these are easy pairs of well-known faces: the model separates them
    assert first["accuracy_mean"] >= 0.9 and first["auc"] >= 0.95
    assert (tmp_path / "roc.png").stat().st_size > 1000
    # second run: every template comes from the cache, and the figures do not move
    code, stdout = _run(*args)
    second = json.loads(stdout)
    assert code == 0
    assert second["cache_misses"] == 0 and second["cache_hits"] == n_images
    assert second["images_per_s"] is None  # nothing was computed
    for key in ("accuracy_mean", "auc", "eer", "tar_at_far_1e-2"):
        assert second[key] == first[key]


def test_lfw_human_output_and_bad_pairs_file(env: Path, tiny_pairs: Path, tmp_path: Path) -> None:
    code, stdout = _run("evaluate", "lfw", "--root", str(LFW), "--pairs", str(tiny_pairs))
    assert code == 0
    assert "accuracy" in stdout and "TAR @ FAR 1e-3" in stdout and "no face found in 0" in _flat(stdout)
    bad = tmp_path / "bad.txt"
    bad.write_text("1 1\nAriel_Sharon 1 two\nAriel_Sharon 1 Colin_Powell 1\n")
    result = runner.invoke(app, ["evaluate", "lfw", "--root", str(LFW), "--pairs", str(bad)])
    assert result.exit_code == 2
    assert f"{bad}:2:" in _flat(result.stderr)


def test_missing_image_is_named(tmp_path: Path) -> None:
    pairs = tmp_path / "p.txt"
    pairs.write_text("1\nAriel_Sharon 1 9\nAriel_Sharon 1 Colin_Powell 1\n")
    with pytest.raises(FaceprintError, match=r"Ariel_Sharon_0009\.jpg: image not found \(used by .*p\.txt:2\)"):
        pair_images(LFW, parse_pairs(pairs))


def test_no_face_falls_back_to_the_centre(engine: FaceEngine, tmp_path: Path) -> None:
    """A pair whose image has no detectable face still counts, through the central box."""
    root = tmp_path / "lfw"
    for name in ("Ariel_Sharon", "Colin_Powell"):
        shutil.copytree(LFW / name, root / name)
    (root / "Nobody").mkdir()
    shutil.copy(FIXTURES / "no_faces" / "compreface_017_0.jpg", root / "Nobody" / "Nobody_0001.jpg")
    pairs = tmp_path / "pairs.txt"
    pairs.write_text(
        "1\t2\nAriel_Sharon\t1\t2\nColin_Powell\t1\t3\nAriel_Sharon\t1\tNobody\t1\nColin_Powell\t2\tAriel_Sharon\t3\n"
    )
    centre = evaluate_pairs(root, parse_pairs(pairs), TemplateExtractor(engine, "centre"))
    s = centre.summary
    assert (s["pairs"], s["no_face"], s["fallbacks"], s["unscored_pairs"]) == (4, 1, 1, 0)
    # "none": the image gets no template; its pair is still counted (as an error)
    none = evaluate_pairs(root, parse_pairs(pairs), TemplateExtractor(engine, "none"))
    assert (none.summary["no_face"], none.summary["without_template"], none.summary["unscored_pairs"]) == (1, 1, 1)
    # the default policy looks again first; on a blank image that finds nothing either
    tmpl = TemplateExtractor(engine)(np.full((250, 250, 3), 128, np.uint8))
    assert tmpl.status == "fallback" and tmpl.embedding is not None
    assert np.linalg.norm(tmpl.embedding) == pytest.approx(1.0, abs=1e-4)


def test_retry_finds_what_the_engine_missed(engine: FaceEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    from faceprint.image import load_image

    image = load_image(LFW / "Colin_Powell" / "Colin_Powell_0001.jpg").pixels
    found = TemplateExtractor(engine)(image)
    monkeypatch.setattr(engine, "detect", lambda img: [])  # an engine detector that misses the face
    retried = TemplateExtractor(engine)(image)
    assert (found.status, retried.status) == ("face", "retry")
    assert retried.faces >= 1 and retried.embedding is not None and found.embedding is not None
    # the second look finds the same face: nearly the same template
    assert float(found.embedding @ retried.embedding) > 0.95


def test_nearest_centre_is_picked_not_largest() -> None:
    big_corner = Face(box=(0, 0, 120, 120), score=1.0)
    small_centre = Face(box=(100, 100, 150, 150), score=0.5)
    assert nearest_centre([big_corner, small_centre], 250, 250) is small_centre


def test_cache_keys_include_the_pipeline(engine: FaceEngine, tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path / "c.sqlite3")
    files = sorted((LFW / PEOPLE[0]).iterdir())[:2]
    centre, none = TemplateExtractor(engine, "centre"), TemplateExtractor(engine, "none")
    assert centre.context != none.context and centre.context.startswith(engine.info.template_model)
    _, stats = compute_templates(files, centre, cache)
    assert (stats.cache_hits, stats.cache_misses, stats.computed) == (0, 2, 2)
    _, stats = compute_templates(files, none, cache)  # another policy: not reused
    assert (stats.cache_hits, stats.cache_misses) == (0, 2)
    got, stats = compute_templates(files, centre, EmbeddingCache(tmp_path / "c.sqlite3"))
    assert (stats.cache_hits, stats.cache_misses, stats.computed) == (2, 0, 0)
    assert all(t.embedding is not None and t.embedding.dtype == np.float32 for t in got.values())


def test_worker_processes_give_the_same_templates_in_order(engine: FaceEngine, tmp_path: Path) -> None:
    files = [sorted((LFW / person).iterdir())[0] for person in PEOPLE[:4]]
    files.append(Path(shutil.copy(files[0], tmp_path / "copy.jpg")))  # same bytes: computed once, counted twice
    extractor = TemplateExtractor(engine)
    seen: list[int] = []
    alone, _ = compute_templates(files, extractor, workers=1)
    pooled, stats = compute_templates(files, extractor, workers=2, on_progress=seen.append)
    assert stats.computed == 4 and sum(seen) == 5
    assert list(pooled) == list(alone) == files
    for path, template in alone.items():
        assert pooled[path].status == template.status and pooled[path].box == template.box
        assert float(pooled[path].embedding @ template.embedding) > 0.9999


def test_calibrate_stores_the_verify_threshold(env: Path, tiny_pairs: Path, tmp_path: Path, engine: FaceEngine) -> None:
    gallery = tmp_path / "g.db"
    # 6 impostor pairs cannot measure FAR 0.1 (needs ~100): refused, nothing stored
    result = runner.invoke(
        app, ["-g", str(gallery), "calibrate", "--root", str(LFW), "--pairs", str(tiny_pairs), "--far", "0.1"]
    )
    assert result.exit_code == 2
    assert "too few for FAR 0.1" in _flat(result.stderr) and "--all-pairs" in _flat(result.stderr)
    assert Gallery(gallery).setting(f"threshold.verify.{engine.info.template_model}") is None
    # every pair among the pairs file's images
    files = pair_images(LFW, parse_pairs(tiny_pairs))
    n_genuine = sum(a.parent == b.parent for i, a in enumerate(files) for b in files[i + 1 :])
    n_all = len(files) * (len(files) - 1) // 2
    result = runner.invoke(
        app,
        ["-g", str(gallery), "calibrate", "--root", str(LFW), "--pairs", str(tiny_pairs), "--far", "0.1"]
        + ["--all-pairs", "--json"],
    )
    assert result.exit_code == 0, result.stderr
    stored = json.loads(result.stdout)
    value = stored["value"]
    assert {"threshold", "far", "measured_on", "pairs", "date"} <= set(value)
    assert (value["pairs"], value["impostor_pairs"], value["far"]) == (n_all, n_all - n_genuine, 0.1)
    assert value["measured_far"] <= 0.1
    rec = Recognizer(Gallery(gallery), engine)
    assert stored["key"] == f"threshold.verify.{rec.model}"
    assert rec.verify_threshold == pytest.approx(value["threshold"])
    rec.gallery.close()


def test_calibrate_identification_and_evaluate_identification(env: Path, tmp_path: Path, engine: FaceEngine) -> None:
    gallery = tmp_path / "g.db"
    # 7 of the 10 people held out, each probed with all 3 photos: 21 unknown probes
    split = ["--root", str(LFW), "--enrol", "1", "--probes", "3", "--unknown-fraction", "0.7", "--seed", "3"]
    # FPIR 0.05 needs about 200 unknown probes: refused
    result = runner.invoke(app, ["-g", str(gallery), "calibrate", "--identification", *split])
    assert result.exit_code == 2 and "too few for FPIR 0.05" in _flat(result.stderr)
    result = runner.invoke(app, ["-g", str(gallery), "calibrate", "--identification", *split, "--fpir", "0.5"])
    assert result.exit_code == 0, result.stderr
    assert "stored threshold.identify." in _flat(result.stdout)
    rec = Recognizer(Gallery(gallery), engine)
    stored = rec.gallery.setting(f"threshold.identify.{rec.model}")
    assert rec.identify_threshold == pytest.approx(stored["threshold"])
    rec.gallery.close()

    plot = tmp_path / "det.png"
    code, stdout = _run("evaluate", "identification", *split, "--json", "--plot", str(plot))
    assert code == 0, stdout
    s = json.loads(stdout)
    assert (s["enrolled_identities"], s["unknown_identities"], s["probes"], s["unknown_probes"]) == (3, 7, 6, 21)
    assert s["seed"] == 3 and len(s["split"]) == 12
    assert 0.0 <= s["rank1"] <= s["rank5"] <= 1.0 and s["rank1"] >= 0.8
    assert "dir_at_fpir_1e-1" in s and s["warnings"]  # FPIR 1e-2 cannot be measured on 21 unknowns
    assert plot.stat().st_size > 1000
