"""Quality in evaluations: the error-versus-discard characteristic, and quality measures in the
template cache (old cache files without them are completed, not trusted)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from faceprint.analyze.quality import MEASURES_VERSION
from faceprint.evaluate.cache import EmbeddingCache
from faceprint.evaluate.edc import DISCARDS, edc_curve, error_versus_discard, plot_edc
from faceprint.evaluate.extract import ImageTemplate, TemplateExtractor, compute_templates
from faceprint.pipeline import EngineSpec

from .conftest import REPO, faceprint

LFW_FIXTURES = REPO / "tests" / "fixtures" / "lfw"


# --------------------------------------------------------------------------------------- EDC
def test_error_versus_discard_by_hand() -> None:
    # 10 genuine pairs (2 fail at 0.5), 2 impostors that never count
    scores = np.array([0.9, 0.4, 0.8, 0.3, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.1, 0.2])
    labels = np.array([True] * 10 + [False] * 2)
    quality = np.array([0.5, 0.1, 0.6, 0.7, 0.8, 0.9, 0.9, 0.9, 0.9, 0.9, 0.0, 0.0])
    rows = error_versus_discard(scores, labels, quality, 0.5, discards=(0.0, 0.1, 0.2, 0.5))
    assert [r["discard"] for r in rows] == [0.0, 0.1, 0.2, 0.5]
    assert rows[0] == {"discard": 0.0, "fnmr": 0.2, "false_non_matches": 2, "kept": 10, "reduction": 0.0}
    # the lowest quality pair (0.1) is a failure: dropping 10% halves the FNMR... of 9 left
    assert rows[1]["false_non_matches"] == 1 and rows[1]["kept"] == 9 and rows[1]["fnmr"] == pytest.approx(1 / 9)
    assert rows[2]["false_non_matches"] == 1 and rows[2]["kept"] == 8  # 0.5 was a success
    assert rows[3]["false_non_matches"] == 0 and rows[3]["reduction"] == 1.0
    x, y = edc_curve(scores, labels, quality, 0.5, max_discard=0.3)
    assert x[0] == 0.0 and y[0] == pytest.approx(0.2) and y[1] == pytest.approx(1 / 9)
    assert DISCARDS == (0.0, 0.05, 0.1, 0.2)


def test_error_versus_discard_checks_its_input() -> None:
    with pytest.raises(ValueError, match="no genuine"):
        error_versus_discard(np.zeros(2), np.zeros(2, bool), np.zeros(2), 0.5)
    with pytest.raises(ValueError, match="differ in length"):
        error_versus_discard(np.zeros(2), np.ones(2, bool), np.zeros(3), 0.5)


def test_plot_edc(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    labels = np.r_[np.ones(200, bool), np.zeros(200, bool)]
    quality = rng.random(400)
    scores = np.where(labels, 0.9 + 0.05 * quality + 0.02 * rng.standard_normal(400), 0.7)
    out = tmp_path / "edc.png"
    plot_edc({"synthetic": (scores, labels, quality)}, 0.929, out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# ------------------------------------------------------------------------------------- cache
def _template(measures: dict[str, float] | None) -> ImageTemplate:
    return ImageTemplate(np.ones(128, np.float32) / np.sqrt(128), "face", 1, (1, 2, 3, 4), measures)


def test_cache_keeps_measures_and_knows_when_they_are_missing(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path / "t.sqlite3")
    cache.put_many([("a", _template({"sharpness": 0.5})), ("b", _template(None))], "ctx")
    got = cache.get_many(["a", "b"], "ctx")
    assert got["a"].measures == {"sharpness": 0.5} and got["b"].measures is None
    # an evaluation that needs quality counts b as a miss, so it is computed again
    assert set(cache.get_many(["a", "b"], "ctx", with_measures=True)) == {"a"}
    # writing a's template again without measures keeps the ones it had
    cache.put_many([("a", _template(None))], "ctx")
    assert cache.get_many(["a"], "ctx")["a"].measures == {"sharpness": 0.5}
    # measures of another version are not trusted
    with sqlite3.connect(tmp_path / "t.sqlite3") as db:
        db.execute("UPDATE templates SET measures=? WHERE sha256='a'", (json.dumps({"version": "0", "x": 1}),))
    assert cache.get_many(["a"], "ctx", with_measures=True) == {}


def test_cache_file_from_before_quality_gets_the_column(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as db:  # the schema before quality measures existed
        db.execute(
            "CREATE TABLE templates (sha256 TEXT NOT NULL, context TEXT NOT NULL, status TEXT NOT NULL, "
            "faces INTEGER NOT NULL, box TEXT, embedding BLOB, PRIMARY KEY (sha256, context)) WITHOUT ROWID"
        )
        db.execute("INSERT INTO templates VALUES ('a', 'ctx', 'face', 1, '[1,2,3,4]', ?)", (bytes(512),))
    cache = EmbeddingCache(path)
    assert cache.get_many(["a"], "ctx")["a"].measures is None  # the template is still good
    assert cache.get_many(["a"], "ctx", with_measures=True) == {}
    cache.put_many([("a", _template({"yaw": 3.0}))], "ctx")
    assert cache.get_many(["a"], "ctx", with_measures=True)["a"].measures == {"yaw": 3.0}
    stored = sqlite3.connect(path).execute("SELECT measures FROM templates").fetchone()[0]
    assert json.loads(stored)["version"] == MEASURES_VERSION


def test_templates_with_quality_are_cached_and_reused(tmp_path: Path) -> None:
    files = sorted((LFW_FIXTURES / "Tony_Blair").iterdir())[:3]
    cache = EmbeddingCache(tmp_path / "t.sqlite3")
    plain = TemplateExtractor(EngineSpec())
    first, _ = compute_templates(files, plain, cache)
    assert all(t.measures is None for t in first.values())
    # asking for quality recomputes those rows (they had none), then reads them
    with_quality = TemplateExtractor(EngineSpec(), quality=True)
    second, stats = compute_templates(files, with_quality, cache)
    assert stats.computed == 3 and all(t.measures and "flip_agreement" in t.measures for t in second.values())
    third, stats = compute_templates(files, with_quality, cache)
    assert stats.computed == 0 and stats.cache_hits == 3
    assert all(np.allclose(second[f].embedding, third[f].embedding) for f in files)  # type: ignore[arg-type]
    assert all(second[f].measures == pytest.approx(third[f].measures) for f in files)


# -------------------------------------------------------------------------- evaluate lfw CLI
def test_evaluate_lfw_reports_edc_and_plots_it(data_dir: Path, tmp_path: Path) -> None:
    env = {"FACEPRINT_EMBEDDING_CACHE": str(tmp_path / "cache.sqlite3")}
    roc = tmp_path / "roc.png"
    args = ["evaluate", "lfw", "--root", str(data_dir / "lfw"), "--pairs", str(data_dir / "lfw" / "pairsDevTest.txt")]
    proc = faceprint(tmp_path / "g.db", *args, "--limit", "60", "--json", "--plot", str(roc), "-w", "1", env=env)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert [r["discard"] for r in summary["edc"]] == [0.0, 0.05, 0.1, 0.2]
    assert all(0.0 <= r["fnmr"] <= 1.0 for r in summary["edc"])
    assert summary["edc_threshold"] == 0.929
    assert summary["edc"][0]["kept"] == summary["genuine_pairs"] == 30
    assert roc.is_file() and (tmp_path / "roc-edc.png").is_file() and summary["plot_edc"].endswith("roc-edc.png")
    # the human summary has the line too; a second run reads everything from the cache
    edc_png = tmp_path / "just-edc.png"
    proc = faceprint(tmp_path / "g.db", *args, "--limit", "60", "--plot-edc", str(edc_png), "-w", "1", env=env)
    assert proc.returncode == 0, proc.stderr
    assert "FNMR @ 0.929" in proc.stdout and "10% discarded" in proc.stdout and "0 misses" in proc.stdout
    assert edc_png.is_file()
