"""``faceprint analyze`` (and the quality ``identify --json`` gained), as a user runs them."""

from __future__ import annotations

import json
import socket
from pathlib import Path

from .conftest import DEMO, FIXTURES, faceprint

PHOTOS = DEMO / "photos"
FACE_FIELDS = {
    "box",
    "score",
    "quality",
    "quality_factors",
    "pose",
    "eyes_open",
    "mouth_open",
    "gaze",
    "expression",
    "face_like",
}


def lines(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def test_analyze_json_one_object_per_image(tmp_path: Path) -> None:
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 not really")
    proc = faceprint(
        tmp_path / "g.db", "analyze", "--json", str(PHOTOS / "two_people.jpg"), str(PHOTOS / "obama1.jpg"), str(broken)
    )
    assert proc.returncode == 1  # a bad file, as in every batch command
    records = lines(proc.stdout)
    assert [Path(r["image"]).name for r in records] == ["two_people.jpg", "obama1.jpg", "broken.jpg"]
    two, obama, bad = records
    assert bad["faces"] == [] and "broken.jpg" in bad["error"]
    assert two["error"] is None and len(two["faces"]) == 2 and len(obama["faces"]) == 1
    for face in two["faces"] + obama["faces"]:
        assert set(face) == FACE_FIELDS
        left, top, right, bottom = face["box"]
        assert 0 <= left < right and 0 <= top < bottom
        assert 0.0 <= face["quality"] <= 1.0
        assert set(face["pose"]) == {"yaw", "pitch", "roll"}
        assert face["expression"]["label"] in face["expression"]["scores"]
        assert face["expression"]["backend"] == "builtin"
    assert "broken.jpg" in proc.stderr and "failed" in proc.stderr
    assert not (tmp_path / "g.db").exists()  # analysis needs no gallery, and makes none


def test_analyze_without_expression_and_in_words(tmp_path: Path) -> None:
    proc = faceprint(tmp_path / "g.db", "analyze", "--json", "--expression", "none", str(PHOTOS / "obama1.jpg"))
    assert proc.returncode == 0, proc.stderr
    (record,) = lines(proc.stdout)
    assert record["faces"][0]["expression"] is None
    proc = faceprint(tmp_path / "g.db", "analyze", str(PHOTOS / "obama1.jpg"), str(FIXTURES / "no_faces"))
    assert proc.returncode == 0, proc.stderr
    assert "obama1.jpg: 1 face(s)" in proc.stdout and "quality" in proc.stdout and "yaw" in proc.stdout
    assert ": no faces" in proc.stdout


def test_analyze_a_folder_with_workers(tmp_path: Path) -> None:
    proc = faceprint(tmp_path / "g.db", "-w", "2", "analyze", "--json", str(PHOTOS))
    assert proc.returncode == 0, proc.stderr
    records = lines(proc.stdout)
    assert len(records) == len(list(PHOTOS.iterdir()))
    assert all(r["error"] is None and r["faces"] for r in records)


def test_analyze_vlm_options(tmp_path: Path) -> None:
    photo = str(PHOTOS / "obama1.jpg")
    proc = faceprint(tmp_path / "g.db", "analyze", "--expression", "vlm", photo)
    assert proc.returncode == 2 and "--vlm-url" in proc.stderr
    proc = faceprint(tmp_path / "g.db", "analyze", "--vlm-url", "http://127.0.0.1:1/v1", photo)
    assert proc.returncode == 2 and "--expression vlm" in proc.stderr
    # a server that is not there stops the command before any photo is read
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again below: nothing listens there
    url = f"http://127.0.0.1:{port}/v1"
    proc = faceprint(
        tmp_path / "g.db",
        "analyze",
        "--expression",
        "vlm",
        "--vlm-url",
        url,
        "--vlm-model",
        "llava",
        photo,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert str(port) in proc.stderr


def test_identify_json_reports_quality(tmp_path: Path, demo_gallery: Path) -> None:
    proc = faceprint(demo_gallery, "identify", "--json", str(PHOTOS / "two_people.jpg"), str(PHOTOS / "obama1.jpg"))
    assert proc.returncode == 0, proc.stderr
    for record in lines(proc.stdout):
        for face in record["faces"]:
            assert 0.0 <= face["quality"] <= 1.0
            assert face["identity"] in ("obama", "biden")
