"""The faceprint command, run as a user would: separate processes over one gallery file."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import DEMO, FIXTURES, faceprint

PHOTOS = DEMO / "photos"


@pytest.fixture(scope="module")
def enrolled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    gallery = tmp_path_factory.mktemp("cli") / "g.db"
    proc = faceprint(gallery, "enroll", str(DEMO / "gallery"), check=True)
    assert "enrolled 9 photo(s) of 5 person(s)" in proc.stdout
    return gallery


def test_enrol_persists_across_processes_and_identify_json(enrolled: Path) -> None:
    proc = faceprint(enrolled, "identify", "--json", "--top-k", "2", str(PHOTOS / "two_people.jpg"), check=True)
    (line,) = proc.stdout.splitlines()
    record = json.loads(line)
    assert record["image"] == str(PHOTOS / "two_people.jpg") and record["error"] is None
    assert {f["identity"] for f in record["faces"]} == {"obama", "biden"}
    for face in record["faces"]:
        left, top, right, bottom = face["box"]
        assert right > left and bottom > top
        assert len(face["candidates"]) == 2
        assert face["score"] == face["candidates"][0]["score"]
        assert face["candidates"][0]["score"] >= face["candidates"][1]["score"]


def test_people_lists_template_counts(enrolled: Path) -> None:
    data = json.loads(faceprint(enrolled, "people", "--json", check=True).stdout)
    assert {p["name"]: p["templates"] for p in data["people"]} == {
        "alex_lacamoire": 1,
        "biden": 2,
        "kit_harington": 2,
        "obama": 2,
        "rose_leslie": 2,
    }


def test_reenrol_skips_known_images(enrolled: Path) -> None:
    proc = faceprint(enrolled, "enroll", str(DEMO / "gallery"), check=True)
    assert "enrolled 0 photo(s)" in proc.stdout and "9 already enrolled" in proc.stdout


def test_batch_keeps_going_and_reports_failures(enrolled: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes((PHOTOS / "obama1.jpg").read_bytes()[:4000])
    text = tmp_path / "text.png"
    text.write_text("hello")
    inputs = [
        str(PHOTOS / "obama1.jpg"),
        str(empty),
        str(tmp_path / "missing.jpg"),
        str(truncated),
        str(text),
        str(FIXTURES / "no_faces" / "skimage_moon.png"),
        str(PHOTOS / "johnsnow_test1.jpg"),
    ]
    proc = faceprint(enrolled, "identify", "--json", *inputs)
    assert proc.returncode == 1
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["image"] for r in records] == inputs  # one line per input, in order, none lost
    by_image = {r["image"]: r for r in records}
    assert by_image[inputs[0]]["faces"][0]["identity"] == "obama"
    assert by_image[inputs[-1]]["faces"][0]["identity"] == "kit_harington"
    assert "empty file" in by_image[str(empty)]["error"]
    assert "no such file" in by_image[str(tmp_path / "missing.jpg")]["error"]
    assert "cannot decode" in by_image[str(truncated)]["error"]
    assert "not an image" in by_image[str(text)]["error"]
    assert by_image[inputs[5]] == {"image": inputs[5], "faces": [], "error": None}  # no face is not an error
    assert "4 file(s) failed" in proc.stderr and str(truncated) in proc.stderr


def test_verify_json_and_exit_codes(enrolled: Path) -> None:
    same = faceprint(enrolled, "verify", "--json", str(PHOTOS / "obama1.jpg"), str(DEMO / "gallery/obama/obama.jpg"))
    assert same.returncode == 0
    data = json.loads(same.stdout)
    assert data["same"] is True and set(data) == {"same", "score", "threshold", "note"} and data["note"] is None
    diff = faceprint(enrolled, "verify", "--json", str(PHOTOS / "obama1.jpg"), str(DEMO / "gallery/biden/biden.jpg"))
    assert diff.returncode == 3 and json.loads(diff.stdout)["same"] is False
    ident = faceprint(enrolled, "verify", str(PHOTOS / "johnsnow_test1.jpg"), "--identity", "kit_harington")
    assert ident.returncode == 0 and "same person" in ident.stdout
    missing = faceprint(enrolled, "verify", str(PHOTOS / "obama1.jpg"), "--identity", "nobody")
    assert missing.returncode == 1 and "no identity named 'nobody'" in missing.stderr


def test_detect_json(enrolled: Path) -> None:
    proc = faceprint(enrolled, "detect", "--json", str(PHOTOS / "kit_with_rose.jpg"), check=True)
    record = json.loads(proc.stdout)
    assert len(record["faces"]) == 2
    for face in record["faces"]:
        left, top, right, bottom = face["box"]
        assert len(face["landmarks"]) == 5
        assert all(left - 5 <= x <= right + 5 and top - 5 <= y <= bottom + 5 for x, y in face["landmarks"])


def test_enrol_by_name_takes_the_person_from_a_group_photo(tmp_path: Path) -> None:
    gallery = tmp_path / "g.db"
    proc = faceprint(gallery, "enroll", "--name", "obama", str(PHOTOS / "two_people.jpg"), str(PHOTOS / "obama1.jpg"))
    assert proc.returncode == 0, proc.stderr
    assert "two_people.jpg: several faces; took (243, 54, 391, 202): agrees" in proc.stderr
    assert "enrolled 2 photo(s)" in proc.stdout


def test_rename_and_remove(tmp_path: Path) -> None:
    gallery = tmp_path / "g.db"
    faceprint(gallery, "enroll", "--name", "obama", str(PHOTOS / "obama1.jpg"), check=True)
    faceprint(gallery, "enroll", "--name", "biden", str(DEMO / "gallery/biden/biden.jpg"), check=True)
    assert faceprint(gallery, "rename", "obama", "biden").returncode == 1  # name taken
    faceprint(gallery, "rename", "obama", "barack", check=True)
    faceprint(gallery, "remove", "biden", check=True)
    assert faceprint(gallery, "remove", "biden").returncode == 1
    data = json.loads(faceprint(gallery, "people", "--json", check=True).stdout)
    assert [p["name"] for p in data["people"]] == ["barack"]
    proc = faceprint(gallery, "identify", "--json", str(PHOTOS / "obama1.jpg"), check=True)
    assert json.loads(proc.stdout)["faces"][0]["identity"] == "barack"


def test_enrol_folder_errors(tmp_path: Path) -> None:
    assert faceprint(tmp_path / "g.db", "enroll", str(PHOTOS / "obama1.jpg")).returncode == 2  # not a folder
    (tmp_path / "empty").mkdir()
    assert "no identity folders" in faceprint(tmp_path / "g.db", "enroll", str(tmp_path / "empty")).stderr


def test_crash_mid_enrol_leaves_a_consistent_gallery(tmp_path: Path) -> None:
    """Kill the process while it enrols: what was committed stays, nothing is half-written."""
    people = tmp_path / "people"
    for i in range(6):
        (people / f"p{i}").mkdir(parents=True)
        for src in sorted((DEMO / "gallery").rglob("*.jp*g"))[:3]:
            shutil.copy(src, people / f"p{i}" / src.name)
    gallery = tmp_path / "g.db"
    env = {**os.environ, "FACEPRINT_GALLERY": str(gallery)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "faceprint.cli", "enroll", str(people)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 300
    while time.time() < deadline:
        time.sleep(0.2)
        if gallery.exists():
            with sqlite3.connect(gallery) as db:
                if db.execute("SELECT COUNT(*) FROM templates").fetchone()[0] >= 2:
                    break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with sqlite3.connect(gallery) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        n = db.execute("SELECT COUNT(*) FROM templates").fetchone()[0]
        orphans = db.execute("SELECT COUNT(*) FROM templates WHERE identity_id NOT IN (SELECT id FROM identities)")
        assert orphans.fetchone()[0] == 0
    assert 2 <= n < 18
    # running it again completes the job without duplicating what was stored
    faceprint(gallery, "enroll", str(people), check=True)
    data = json.loads(faceprint(gallery, "people", "--json", check=True).stdout)
    assert sum(p["templates"] for p in data["people"]) == 18
