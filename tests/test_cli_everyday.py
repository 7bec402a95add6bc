"""Everyday command-line features a newcomer expects: choices and --version, flat-folder enrolment,
one photo at a time, batch verification, readable output on a pipe, honest messages."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from faceprint.evaluate import metrics
from faceprint.evaluate.lfw import VerificationReport, plot_roc, verification_summary
from faceprint.image import load_image
from faceprint.names import name_from_filename

from .conftest import DEMO, faceprint, shared_data_dir

PHOTOS = DEMO / "photos"
GALLERY = DEMO / "gallery"


@pytest.fixture(scope="module")
def enrolled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    gallery = tmp_path_factory.mktemp("everyday") / "g.db"
    faceprint(gallery, "enroll", str(GALLERY), check=True)
    return gallery


def test_version_and_closed_options_are_choices(tmp_path: Path) -> None:
    version = faceprint(tmp_path / "g.db", "--version")
    assert version.returncode == 0 and version.stdout.startswith("faceprint ")
    bad = faceprint(tmp_path / "g.db", "--detector", "foo", "detect", str(PHOTOS / "obama1.jpg"))
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert "'foo' is not one of" in bad.stderr
    helped = faceprint(tmp_path / "g.db", "--help").stdout
    assert "hog|cnn|blazeface" in helped and "onnx|dlib" in helped
    identify_help = faceprint(tmp_path / "g.db", "identify", "--help").stdout
    assert "<bool>" not in identify_help  # flags take no value
    assert faceprint(tmp_path / "g.db", "serve", "--log-level", "loud").returncode == 2


def test_messages_on_a_pipe_are_not_wrapped_inside_a_file_name(tmp_path: Path) -> None:
    deep = tmp_path / ("a_rather_long_folder_name_" * 4) / "no_face_here.png"
    deep.parent.mkdir()
    shutil.copy(DEMO.parent / "tests/fixtures/no_faces/skimage_moon.png", deep)
    proc = faceprint(tmp_path / "g.db", "enroll", "--name", "x", str(deep), env={"COLUMNS": "80"})
    assert proc.returncode == 1
    assert any(str(deep) in line and "no face" in line for line in proc.stderr.splitlines()), proc.stderr


def test_other_model_setting_is_named(enrolled: Path) -> None:
    proc = faceprint(enrolled, "--no-flip", "identify", str(PHOTOS / "obama1.jpg"))
    assert proc.returncode == 2
    assert "made with model dlib_face_recognition_resnet_model_v1+flip" in proc.stderr
    assert "drop --no-flip" in proc.stderr and "no people enrolled" not in proc.stderr
    ident = faceprint(enrolled, "--no-flip", "verify", str(PHOTOS / "obama1.jpg"), "--identity", "obama")
    assert ident.returncode == 1 and "drop --no-flip" in ident.stderr


def test_detect_text_shows_scores_and_landmarks(tmp_path: Path) -> None:
    proc = faceprint(tmp_path / "g.db", "detect", str(PHOTOS / "kit_with_rose.jpg"), check=True)
    lines = proc.stdout.splitlines()
    assert lines[0].endswith("2 face(s)")
    assert all("score 0." in line and line.count("(") == 6 for line in lines[1:3])


def test_summary_counts_people_actually_enrolled(enrolled: Path) -> None:
    proc = faceprint(enrolled, "enroll", "--name", "obama", str(GALLERY / "obama" / "obama.jpg"), check=True)
    assert "enrolled 0 photo(s) of 0 person(s); 1 already enrolled" in proc.stdout


@pytest.mark.parametrize(
    ("file", "name"),
    [
        ("obama.jpg", "obama"),
        ("biden_2.png", "biden"),
        ("biden-02.jpg", "biden"),
        ("biden (3).jpg", "biden"),
        ("0008_jessica.png", "jessica"),
        ("kit_harington.jpg", "kit_harington"),
        ("0001.jpg", "0001"),
        ("r2d2.jpg", "r2d2"),
    ],
)
def test_name_from_filename(file: str, name: str) -> None:
    assert name_from_filename(file) == name


def test_enrol_by_filename(tmp_path: Path) -> None:
    flat = tmp_path / "flat"
    flat.mkdir()
    shutil.copy(GALLERY / "obama" / "obama.jpg", flat / "obama.jpg")
    shutil.copy(GALLERY / "obama" / "obama2.jpg", flat / "obama_2.jpg")
    shutil.copy(GALLERY / "biden" / "biden.jpg", flat / "0003_biden.jpg")
    gallery = tmp_path / "g.db"
    proc = faceprint(gallery, "enroll", "--by-filename", "--json", str(flat), check=True)
    rows = {r["identity"]: r["added"] for r in map(json.loads, proc.stdout.splitlines())}
    assert rows == {"biden": 1, "obama": 2}
    assert faceprint(gallery, "enroll", "--by-filename", "--name", "x", str(flat)).returncode == 2


def test_enrol_by_filename_names_every_simplefr_person(tmp_path: Path) -> None:
    data = shared_data_dir()
    if data is None:
        pytest.skip("shared evaluation data not found (set FACEPRINT_DATA or put it at ../shared/data)")
    folder = data / "videos" / "simplefr_gallery"
    gallery = tmp_path / "g.db"
    faceprint(gallery, "enroll", "--by-filename", str(folder))
    names = {p["name"] for p in json.loads(faceprint(gallery, "people", "--json").stdout)["people"]}
    assert names == {name_from_filename(f) for f in folder.iterdir()}
    assert len(names) == 14


def test_photos_listing_and_removing_one(tmp_path: Path) -> None:
    gallery = tmp_path / "g.db"
    faceprint(gallery, "enroll", "--name", "obama", *map(str, sorted((GALLERY / "obama").iterdir())), check=True)
    listed = json.loads(faceprint(gallery, "photos", "--json", "obama", check=True).stdout)
    assert listed["identity"] == "obama" and len(listed["photos"]) == 2
    first = listed["photos"][0]
    assert Path(first["source"]).is_absolute() and len(first["box"]) == 4 and first["created_at"]
    table = faceprint(gallery, "photos", "obama", check=True).stdout
    assert "2 photo(s) of obama" in table
    removed = faceprint(gallery, "remove", "obama", "--photo", str(first["id"]), check=True)
    assert f"removed photo {first['id']}" in removed.stdout
    again = json.loads(faceprint(gallery, "photos", "--json", "obama", check=True).stdout)
    assert [p["id"] for p in again["photos"]] == [listed["photos"][1]["id"]]
    missing = faceprint(gallery, "remove", "obama", "--photo", str(first["id"]))
    assert missing.returncode == 1 and "no photo with id" in missing.stderr
    assert faceprint(gallery, "photos", "nobody").returncode == 1


def test_verify_pairs_from_csv(tmp_path: Path) -> None:
    pairs = tmp_path / "pairs.csv"
    pairs.write_text(
        "file_x,file_y,Decision\n"
        f"{PHOTOS / 'obama1.jpg'},{GALLERY / 'obama' / 'obama.jpg'},Yes\n"
        f"{PHOTOS / 'obama1.jpg'},{GALLERY / 'biden' / 'biden.jpg'},No\n"
        f"{PHOTOS / 'obama1.jpg'},missing.jpg,Yes\n"
    )
    proc = faceprint(tmp_path / "none.db", "verify", "--pairs", str(pairs), "--json")
    assert proc.returncode == 1  # one pair could not be compared
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["same"] for r in rows] == [True, False, None]
    assert [r["expected"] for r in rows] == [True, False, True]
    assert "no such file" in rows[2]["error"] and str(tmp_path / "missing.jpg") in rows[2]["error"]
    assert "2/2 labelled pairs right" in proc.stderr
    assert not (tmp_path / "none.db").exists()  # comparing photos needs no gallery


def test_roc_legend_lists_only_points_on_the_axis(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    scores = np.r_[rng.uniform(0.9, 1, 40), rng.uniform(0.5, 0.95, 20)]
    labels = np.r_[np.ones(40, bool), np.zeros(20, bool)]
    summary = verification_summary(scores, labels, np.arange(60) % 2)
    summary["model"] = "m"
    report = VerificationReport(summary, scores, labels, metrics.roc_curve(scores, labels))
    legend = plot_roc(report, tmp_path / "roc.png")
    assert not any("FAR 0.001" in entry or "FAR 0.01" in entry for entry in legend), legend  # 20 impostors


def test_identify_annotate_and_crops(enrolled: Path, tmp_path: Path) -> None:
    photos = [str(PHOTOS / "kit_with_rose.jpg"), str(PHOTOS / "obama1.jpg")]
    proc = faceprint(
        enrolled, "identify", "--annotate", str(tmp_path / "a"), "--crops", str(tmp_path / "c"), *photos, check=True
    )
    assert proc.returncode == 0
    drawn = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert drawn == ["kit_with_rose.jpg", "obama1.jpg"]
    original = load_image(PHOTOS / "obama1.jpg").pixels
    annotated = load_image(tmp_path / "a" / "obama1.jpg").pixels
    assert annotated.shape == original.shape and np.abs(annotated.astype(int) - original).max() > 100  # boxes drawn
    crops = sorted(str(p.relative_to(tmp_path / "c")) for p in (tmp_path / "c").rglob("*.jpg"))
    assert crops == [
        "kit_harington/kit_with_rose-face1.jpg",
        "obama/obama1-face1.jpg",
        "rose_leslie/kit_with_rose-face2.jpg",
    ]


def test_identify_annotate_never_overwrites_an_input(enrolled: Path, tmp_path: Path) -> None:
    photo = tmp_path / "obama1.jpg"
    shutil.copy(PHOTOS / "obama1.jpg", photo)
    before = photo.read_bytes()
    proc = faceprint(enrolled, "identify", "--annotate", str(tmp_path), str(photo))
    assert proc.returncode == 1 and "not overwriting it" in proc.stderr
    assert photo.read_bytes() == before
    blocker = tmp_path / "file"
    blocker.write_text("x")
    bad = faceprint(enrolled, "identify", "--crops", str(blocker), str(photo))
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


def test_evaluate_uses_every_core_by_default() -> None:
    from faceprint.cli.evaluate import _workers
    from faceprint.pipeline import default_workers

    assert _workers(None) == default_workers(1_000_000) and _workers(3) == 3


def test_verify_says_when_it_compared_the_largest_of_several_faces(tmp_path: Path) -> None:
    group, single = str(PHOTOS / "obama_and_biden.jpg"), str(PHOTOS / "obama1.jpg")
    proc = faceprint(tmp_path / "none.db", "verify", "--json", group, single)
    data = json.loads(proc.stdout)
    assert data["note"] == f"{group} has 2 faces: compared the largest"
    assert "compared the largest" in proc.stderr
    plain = faceprint(tmp_path / "none.db", "verify", single, single)
    assert plain.returncode == 0 and "note" not in plain.stderr
