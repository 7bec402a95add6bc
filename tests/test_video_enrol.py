"""Enrolling from a video: the track taken, the views chosen, what the gallery stores, the CLI."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pytest

from faceprint import FaceEngine, Gallery, Recognizer
from faceprint.errors import InvalidNameError, MultipleFacesError, NoFaceError, VideoError
from faceprint.video import Sample, TrackItem, enrol_from_video
from faceprint.video.enrol import NEAR_DUPLICATE, choose_track, select_views
from faceprint.video.pipeline import TRACK_THRESHOLD

from .conftest import FIXTURES, faceprint

CLIP = FIXTURES / "video" / "hamilton_120-199.mp4"  # 80 frames of Lin-Manuel Miranda, 640x360
LIN = FIXTURES / "video" / "lin-manuel-miranda.png"


def unit(seed: int, dim: int = 128) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=dim)
    return (v / np.linalg.norm(v)).astype(np.float32)


def sample(frame: int, embedding: np.ndarray, weight: float, box: tuple[int, int, int, int] | None = None) -> Sample:
    return Sample(frame, frame / 30, box or (frame, 0, frame + 50, 50), embedding, weight, 0.9)


def item(track_id: int, detections: int, template: np.ndarray) -> TrackItem:
    return TrackItem(
        track_id, template, 0.0, 3.0, 0, 90, detections, 1.0, (0, 0, 50, 50), 0, 0.0, 0.5,
        samples=[sample(0, template, 0.5)],
    )  # fmt: skip


def test_enrol_from_video_stores_sharp_different_views(engine: FaceEngine, tmp_path: Path) -> None:
    rec = Recognizer(Gallery(tmp_path / "g.db"), engine)
    frames: list[int] = []
    result = enrol_from_video(rec, "lin", CLIP, max_views=5, on_progress=frames.append)
    assert frames == [1] * 80 and result.tracks == 1 and result.track is not None
    assert result.track.start_frame <= 5 and result.track.detections >= 14
    assert len(result.views) == 5 and result.added == [v.source for v in result.views] and not result.errors
    assert len({v.box for v in result.views}) == 5 and len({v.frame for v in result.views}) == 5
    best = max(s.weight for s in result.track.samples)
    assert result.views[0].quality == best and all(v.quality >= 0.5 * best for v in result.views)
    for v in result.views:
        assert v.stored and v.source == f"{CLIP}#t={v.time_s:.3f}&frame={v.frame}"
        assert v.time_s == pytest.approx(v.frame / 29.97)
    stored = rec.gallery.templates("lin")
    assert sorted(t.source for t in stored) == sorted(result.added)
    assert {t.file_sha256 for t in stored} == {hashlib.sha256(CLIP.read_bytes()).hexdigest()}
    vectors = np.stack([t.embedding for t in stored])
    assert (vectors @ vectors.T)[np.triu_indices(5, 1)].max() < NEAR_DUPLICATE  # no two alike
    (match,) = rec.identify(LIN)  # the photo of the same person is recognised from the video's views
    assert match.identity == "lin"

    again = enrol_from_video(rec, "lin", CLIP)  # the same clip again: the same views, already there
    assert again.added == [] and again.skipped == result.added and not any(v.stored for v in again.views)
    assert len(rec.gallery.templates("lin")) == 5


def test_enrol_from_video_refuses_before_reading(engine: FaceEngine, tmp_path: Path) -> None:
    rec = Recognizer(Gallery(tmp_path / "g.db"), engine)
    with pytest.raises(InvalidNameError):
        enrol_from_video(rec, "bad\nname", tmp_path / "missing.mp4")  # the name is checked first
    with pytest.raises(VideoError, match="camera 0: enrolling needs a video file"):
        enrol_from_video(rec, "x", 0)  # refused without opening the camera
    with pytest.raises(VideoError, match="no such file"):
        enrol_from_video(rec, "x", tmp_path / "missing.mp4")
    assert rec.gallery.identities() == []


def test_choose_track_takes_the_most_present_person_or_refuses() -> None:
    a, b = unit(1), unit(2)
    assert choose_track([item(1, 10, a), item(2, 30, b)], "clip").track_id == 2
    assert choose_track([item(1, 30, a), item(2, 23, b)], "clip").track_id == 1  # clearly more present
    with pytest.raises(MultipleFacesError, match=r"clip: several people .*track 1: .*track 2: "):
        choose_track([item(1, 30, a), item(2, 28, b)], "clip")
    # a track about as long but of the same person (another shot) is no rival
    same = (a + 0.05 * b) / np.linalg.norm(a + 0.05 * b)
    assert float(same @ a) >= TRACK_THRESHOLD
    assert choose_track([item(1, 30, a), item(2, 30, same)], "clip").track_id == 1
    with pytest.raises(NoFaceError, match="clip: no face"):
        choose_track([], "clip")


def test_select_views_by_quality_then_diversity() -> None:
    a, b, c = unit(1), unit(2), unit(3)
    mix = (a + b) / np.linalg.norm(a + b)
    samples = [
        sample(0, a, 0.9),  # the best
        sample(5, a, 0.8),  # the same view again: a near duplicate
        sample(10, mix, 0.6),  # half new
        sample(15, b, 0.5),  # new, less sharp
        sample(20, c, 0.3),  # new but too poor (under half the best)
        sample(25, b, 0.7, box=(0, 0, 50, 50)),  # the best view's box again
    ]
    samples[0].box = (0, 0, 50, 50)
    chosen = select_views(samples, 5)
    assert [s.frame for s in chosen] == [0, 15, 10]
    assert [s.frame for s in select_views(samples, 2)] == [0, 15]
    assert select_views([], 3) == []


def test_cli_enroll_video(tmp_path: Path) -> None:
    gallery = tmp_path / "g.db"
    proc = faceprint(gallery, "enroll", "--name", "lin", "--video", str(CLIP), "--json", check=True)
    record = json.loads(proc.stdout)
    assert record["identity"] == "lin" and record["added"] == 5 and record["tracks"] == 1
    assert record["track"]["track_id"] >= 1 and record["track"]["detections"] >= 14
    assert [v["stored"] for v in record["views"]] == [True] * 5
    assert all(re.search(r"#t=\d+\.\d{3}&frame=\d+$", v["source"]) for v in record["views"])
    proc = faceprint(gallery, "enroll", "--name", "lin", "--video", str(CLIP), check=True)
    assert "0 view(s)" in proc.stdout and "5 already enrolled" in proc.stdout
    assert re.search(r"took track \d+ of 1 in .*hamilton_120-199\.mp4", " ".join(proc.stderr.split()))
    misuse = (["--video", str(CLIP)], ["--name", "x", "--video", str(CLIP), str(LIN)], ["--name", "x", "--video", "0"])
    for args in misuse:
        proc = faceprint(gallery, "enroll", *args)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    proc = faceprint(gallery, "enroll", "--name", "x", "--video", str(tmp_path / "missing.mp4"))
    assert proc.returncode == 1 and "no such file" in proc.stderr
