"""Video: reader, tracker, quality, timeline, annotated output, bad input, CLI."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from faceprint import FaceEngine, Gallery, Recognizer
from faceprint.engine import normalize
from faceprint.errors import VideoError
from faceprint.video import IouTracker, KalmanBox, VideoReader, VideoRecognizer, iou_matrix, recognize_video
from faceprint.video.output import write_csv, write_json
from faceprint.video.quality import frontal_score, sharpness_score, size_score
from faceprint.video.reader import describe
from faceprint.video.scene import SceneCutDetector

from .conftest import FIXTURES, unprivileged

VIDEO_FIXTURES = FIXTURES / "video"
CLIP = VIDEO_FIXTURES / "hamilton_120-199.mp4"  # 80 frames of Lin-Manuel Miranda, 640x360
LIN = VIDEO_FIXTURES / "lin-manuel-miranda.png"
DISTRACTORS = [FIXTURES / "lfw" / p for p in ("Tony_Blair", "Colin_Powell", "George_W_Bush")]
HAMILTON = "videos/face_recognition_short_hamilton_clip.mp4"
EXAMPLES = "face_recognition_examples/examples"

os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # keep FFmpeg's complaints about bad files quiet


def frame_count(path: Path) -> tuple[int, float]:
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    n = 0
    while cap.read()[0]:
        n += 1
    fps = cap.get(cv2.CAP_PROP_FPS)
    cap.release()
    return n, fps


def truncated_copy(tmp_path: Path, keep: float = 0.5) -> Path:
    """The fixture clip re-muxed as Matroska (whose header survives truncation, unlike MP4's
    index at the end) and cut to ``keep`` of its bytes: a recording that was cut short."""
    full = tmp_path / "full.mkv"
    cap = cv2.VideoCapture(str(CLIP))
    writer = cv2.VideoWriter(str(full), cv2.CAP_FFMPEG, cv2.VideoWriter_fourcc(*"mp4v"), 29.97, (640, 360))
    while True:
        ok, image = cap.read()
        if not ok:
            break
        writer.write(image)
    writer.release()
    data = full.read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[: int(len(data) * keep)])
    return cut


# ------------------------------------------------------------------------------ tracker
def test_iou_matrix() -> None:
    a = np.array([[0, 0, 10, 10], [20, 20, 30, 30]])
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [100, 100, 110, 110]])
    m = iou_matrix(a, b)
    assert m.shape == (2, 3)
    assert m[0, 0] == pytest.approx(1.0)
    assert m[0, 1] == pytest.approx(50 / 150)
    assert m[0, 2] == 0 and m[1].max() == 0
    assert iou_matrix(np.zeros((0, 4)), b).shape == (0, 3)


def test_tracker_keeps_ids_through_motion_and_matches_by_best_iou() -> None:
    tracker = IouTracker(min_hits=2, max_missed=1)
    tracker.predict(0)
    first = tracker.update([(0, 0, 50, 50), (200, 0, 250, 50)], 0)
    assert [t.id for t in first] == [1, 2]
    for frame in range(5, 30, 5):  # both move right 2 px per frame; detections come in swapped order
        tracker.predict(frame)
        dx = 2 * frame
        tracks = tracker.update([(200 + dx, 0, 250 + dx, 50), (dx, 0, 50 + dx, 50)], frame)
        assert [t.id for t in tracks] == [2, 1]
    assert all(t.hits == 6 and t.first_frame == 0 and t.last_frame == 25 for t in tracker.active)


def test_tracker_prediction_follows_constant_velocity() -> None:
    tracker = IouTracker()
    for frame in range(0, 25, 5):  # 4 px per frame to the right, 1 px per frame down
        tracker.predict(frame)
        tracker.update([(4 * frame, frame, 4 * frame + 60, frame + 60)], frame)
    (track,) = tracker.predict(30)  # no detection: the box is the prediction
    left, top, right, bottom = track.box
    assert left == pytest.approx(120, abs=6) and top == pytest.approx(30, abs=3)
    assert right - left == pytest.approx(60, abs=3)
    vx, vy = track.kalman.velocity
    assert vx == pytest.approx(4, abs=0.7) and vy == pytest.approx(1, abs=0.5)


def test_kalman_box_converges_on_a_still_box() -> None:
    k = KalmanBox((10, 10, 50, 50))
    for _ in range(10):
        k.predict(1)
        k.update((12, 10, 52, 50))
    assert k.box == pytest.approx((12, 10, 52, 50), abs=0.5)


def test_tracker_birth_and_death() -> None:
    tracker = IouTracker(min_hits=2, max_missed=2)
    for frame in (0, 5):
        tracker.predict(frame)
        tracker.update([(0, 0, 40, 40)], frame)
    tracker.predict(10)  # a one-off false positive far away: born now ...
    tracker.update([(0, 0, 40, 40), (300, 300, 340, 340)], 10)
    assert len(tracker.active) == 2
    tracker.predict(15)  # ... and discarded when it is not seen again (fewer than min_hits)
    tracker.update([(0, 0, 40, 40)], 15)
    assert [t.id for t in tracker.active] == [1] and [t.id for t in tracker.discarded] == [2]
    for frame in (20, 25):  # the face leaves: survives max_missed empty rounds ...
        tracker.predict(frame)
        tracker.update([], frame)
        assert [t.id for t in tracker.active] == [1]
    tracker.predict(30)  # ... and ends on the next, with its last detected frame
    tracker.update([], 30)
    assert tracker.active == [] and [(t.id, t.last_frame, t.hits) for t in tracker.finished] == [(1, 15, 4)]
    tracker.predict(35)
    (new,) = tracker.update([(0, 0, 40, 40)], 35)  # the same place later: a new track
    assert new.id == 3


def test_tracker_centre_distance_fallback_for_a_fast_jump() -> None:
    tracker = IouTracker(iou_threshold=0.3)
    tracker.predict(0)
    tracker.update([(0, 0, 100, 100)], 0)
    tracker.predict(5)
    (track,) = tracker.update([(45, 10, 145, 110)], 5)  # IoU 0.26: under the gate, but near and same size
    assert track.id == 1
    tracker.predict(10)
    (other,) = tracker.update([(400, 10, 500, 110)], 10)  # far away: a different face
    assert other.id == 2


def test_tracker_end_all() -> None:
    tracker = IouTracker(min_hits=1)
    tracker.predict(0)
    tracker.update([(0, 0, 10, 10), (50, 50, 60, 60)], 0)
    assert len(tracker.end_all()) == 2 and tracker.active == [] and len(tracker.finished) == 2


# ------------------------------------------------------------------------------ quality
def test_quality_cues() -> None:
    frontal = np.array([[30, 40], [42, 40], [58, 40], [70, 40], [50, 60]], np.float32)
    turned = frontal.copy()
    turned[4, 0] = 62  # nose well off the eyes' midpoint
    assert frontal_score(frontal) == pytest.approx(1.0)
    assert frontal_score(turned) < 0.6
    assert size_score((0, 0, 120, 120)) == 1.0 and size_score((0, 0, 30, 30)) < 0.3
    rng = np.random.default_rng(0)
    sharp = rng.integers(0, 255, (150, 150, 3), dtype=np.uint8)
    blurred = cv2.GaussianBlur(sharp, (0, 0), 4)
    assert sharpness_score(sharp) > 0.9 > 0.3 > sharpness_score(blurred)


def test_scene_cut_detector() -> None:
    rng = np.random.default_rng(1)
    a = cv2.resize(rng.integers(0, 255, (9, 16, 3), dtype=np.uint8), (640, 360), interpolation=cv2.INTER_NEAREST)
    b = cv2.resize(rng.integers(0, 255, (9, 16, 3), dtype=np.uint8), (640, 360), interpolation=cv2.INTER_NEAREST)
    cuts = SceneCutDetector()
    assert cuts(a) is False  # the first frame is never a cut
    assert cuts(np.roll(a, 3, axis=1)) is False  # a small pan
    assert cuts(b) is True


# ------------------------------------------------------------------------------- reader
def test_describe_sources() -> None:
    assert describe(0) == ("camera 0", True, 0)
    assert describe("1") == ("camera 1", True, 1)
    name, live, target = describe("rtsp://admin:secret@10.0.0.2/stream")
    assert live and target == "rtsp://admin:secret@10.0.0.2/stream" and "secret" not in name
    assert describe("clip.mp4") == ("clip.mp4", False, "clip.mp4")


def test_reader_reads_a_file() -> None:
    with VideoReader(CLIP) as reader:
        frames = list(reader)
    assert len(frames) == 80 and reader.error is None and reader.dropped == 0
    assert [f.index for f in frames] == list(range(80))
    assert frames[30].time_s == pytest.approx(30 / 29.97)
    assert frames[0].image.shape == (360, 640, 3) and reader.fps == pytest.approx(29.97)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: None, "no such file"),
        (lambda p: p.write_bytes(b""), "empty file"),
        (lambda p: p.write_text("this is not a video\n" * 50), "not a video"),
        (lambda p: p.write_bytes(CLIP.read_bytes()[:100_000]), "not a video"),  # MP4 cut before its index
    ],
    ids=["missing", "empty", "text", "truncated-mp4"],
)
def test_reader_rejects_bad_files(tmp_path: Path, make, message: str) -> None:
    path = tmp_path / "bad.mp4"
    make(path)
    with pytest.raises(VideoError, match=message) as info:
        VideoReader(path)
    assert str(path) in str(info.value) and info.value.code == "bad_video"


def test_reader_zero_frames(tmp_path: Path) -> None:
    path = tmp_path / "zero.avi"
    writer = cv2.VideoWriter(str(path), cv2.CAP_FFMPEG, cv2.VideoWriter_fourcc(*"MJPG"), 25, (64, 64))
    writer.release()  # a valid container holding no frame
    with VideoReader(path) as reader:
        assert list(reader) == []
    assert reader.error is not None and str(path) in reader.error and "no frames" in reader.error


def test_reader_truncated_file_yields_what_it_has(tmp_path: Path) -> None:
    cut = truncated_copy(tmp_path)
    with VideoReader(cut) as reader:
        frames = list(reader)
    assert 10 < len(frames) < 80
    assert reader.error is not None and str(cut) in reader.error and "truncated" in reader.error


def test_live_reader_drops_frames_when_behind() -> None:
    with VideoReader(CLIP, live=True) as reader:  # a file paced at 29.97 fps, like a camera
        assert reader.live
        seen = []
        for frame in reader:
            seen.append(frame.index)
            time.sleep(0.1)  # a consumer at 10 fps
    assert reader.error is None and reader.frames_read == 80
    assert reader.dropped > 30 and len(seen) + reader.dropped == 80
    assert seen == sorted(seen) and seen[-1] == 79  # always the newest frame, the last one included


# ----------------------------------------------------------------------- recognition
@pytest.fixture(scope="module")
def video_engine() -> FaceEngine:
    return FaceEngine()


@pytest.fixture(scope="module")
def lin_gallery(tmp_path_factory: pytest.TempPathFactory, video_engine: FaceEngine) -> Path:
    """Lin-Manuel Miranda plus three LFW people as distractors (fixtures only)."""
    path = tmp_path_factory.mktemp("video") / "gallery.db"
    rec = Recognizer(Gallery(path), video_engine)
    assert not rec.enroll("lin-manuel-miranda", [LIN]).errors
    for person in DISTRACTORS:
        assert not rec.enroll(person.name, sorted(person.iterdir())[:2], largest=True, min_quality=0).errors
    rec.gallery.close()
    return path


def test_clip_identified_with_annotation_crops_and_files(
    lin_gallery: Path, video_engine: FaceEngine, tmp_path: Path
) -> None:
    rec = Recognizer(Gallery(lin_gallery), video_engine)
    annotated = tmp_path / "annotated.mp4"
    seen: list[int] = []
    result = recognize_video(
        CLIP, rec, every=5, annotate=annotated, crops_dir=tmp_path / "crops", on_frame=lambda r: seen.append(r.index)
    )
    assert result.ok and not result.interrupted and seen == list(range(80))
    assert result.stats.detections >= 16 and 0 < result.stats.faces_embedded < result.stats.faces_detected
    (row,) = result.appearances
    assert row.identity == "lin-manuel-miranda" and row.known and row.score >= rec.identify_threshold
    assert row.start_frame <= 5 and row.end_frame >= 70
    assert row.end_s == pytest.approx(row.end_frame / 29.97)
    assert row.crop is not None and Path(row.crop).is_file() and cv2.imread(row.crop) is not None
    assert frame_count(annotated) == (80, pytest.approx(29.97, abs=0.01))

    write_json(result.appearances, tmp_path / "t.json")
    write_csv(result.appearances, tmp_path / "t.csv")
    (record,) = json.loads((tmp_path / "t.json").read_text())
    assert list(record) == ["identity", "track_id", "start_s", "end_s", "start_frame", "end_frame", "score", "crop"]
    (line,) = csv.DictReader((tmp_path / "t.csv").open())
    assert line["identity"] == "lin-manuel-miranda" and int(line["end_frame"]) == record["end_frame"]


def test_frames_api_labels_tracks_and_predicts_between_detections(lin_gallery: Path, video_engine: FaceEngine) -> None:
    rec = Recognizer(Gallery(lin_gallery), video_engine)
    video = VideoRecognizer(rec, every=10)
    results = list(video.frames(CLIP, max_frames=30))
    assert len(results) == 30
    assert [r.index for r in results if r.detected] == [0, 10, 20]
    between = [t for r in results if not r.detected for t in r.tracks]
    assert between and not any(t.detected for t in between)  # boxes from the track's prediction
    assert {t.label for r in results[1:] for t in r.tracks} == {"lin-manuel-miranda"}
    (row,) = video.timeline()
    assert row.identity == "lin-manuel-miranda" and row.end_frame == 20


def test_unknown_people_are_grouped(video_engine: FaceEngine, tmp_path: Path) -> None:
    rec = Recognizer(Gallery(tmp_path / "empty.db"), video_engine)  # nobody enrolled
    result = recognize_video(CLIP, rec, every=10, max_frames=40)
    assert [a.identity for a in result.appearances] == ["unknown-1"]
    assert not result.appearances[0].known and result.appearances[0].crop is None


def test_truncated_video_keeps_partial_results(lin_gallery: Path, video_engine: FaceEngine, tmp_path: Path) -> None:
    cut = truncated_copy(tmp_path)
    rec = Recognizer(Gallery(lin_gallery), video_engine)
    result = recognize_video(cut, rec, every=10)
    assert not result.ok and str(cut) in result.error and "truncated" in result.error  # type: ignore[operator]
    assert 10 < result.stats.frames < 80
    assert [a.identity for a in result.appearances] == ["lin-manuel-miranda"]


def test_zero_frame_video_raises(video_engine: FaceEngine, tmp_path: Path) -> None:
    path = tmp_path / "zero.avi"
    cv2.VideoWriter(str(path), cv2.CAP_FFMPEG, cv2.VideoWriter_fourcc(*"MJPG"), 25, (64, 64)).release()
    rec = Recognizer(Gallery(tmp_path / "g.db"), video_engine)
    with pytest.raises(VideoError, match="no frames"):
        recognize_video(path, rec, annotate=tmp_path / "out.mp4")
    assert not (tmp_path / "out.mp4").exists()


def test_hamilton_clip_is_lin_manuel_miranda(
    data_dir: Path, video_engine: FaceEngine, tmp_path: Path, drawn_text: list[str]
) -> None:
    rec = Recognizer(Gallery(tmp_path / "g.db"), video_engine)
    for name in ("lin-manuel-miranda.png", "alex-lacamoire.png", "obama.jpg", "biden.jpg"):
        assert not rec.enroll(Path(name).stem, [data_dir / EXAMPLES / name]).errors
    crops = tmp_path / "crops"
    result = recognize_video(data_dir / HAMILTON, rec, every=5, crops_dir=crops, annotate=tmp_path / "a.mp4")
    # the newcomer issue: one crop per row (not per track), boxes labelled as their rows
    rows = result.appearances
    assert sorted(crops.iterdir()) == sorted(Path(a.crop) for a in rows if a.crop) and len(rows) >= 4
    assert {r.identity for r in rows} > {"lin-manuel-miranda", "unknown-1"}
    assert set(drawn_text) == {f"{r.identity} #{r.track_id} {r.score:.2f}" for r in rows}
    assert result.ok and result.stats.frames == 275 and result.stats.scene_cuts >= 2
    longest = max(result.appearances, key=lambda a: a.end_frame - a.start_frame)
    assert longest.identity == "lin-manuel-miranda"
    assert longest.end_frame - longest.start_frame >= 100  # one dominant appearance across the close-ups
    lin = [a for a in result.appearances if a.identity == "lin-manuel-miranda"]
    assert sum(a.end_frame - a.start_frame for a in lin) <= 1.2 * (longest.end_frame - longest.start_frame) + 20


#: the shots of the Hamilton clip (first and last frame, found by looking at the frames): Miranda on
#: stage with the pianist small at the back; the pianist in profile close up, dark audience behind
#: him; Miranda; the audience (the Obamas and others) in profile, laughing
HAMILTON_SHOTS = {"stage": (0, 19), "pianist": (20, 81), "miranda": (82, 210), "audience": (211, 274)}


def test_hamilton_unknown_people_stay_apart_and_miranda_is_named(
    data_dir: Path, video_engine: FaceEngine, tmp_path: Path
) -> None:
    """Issue 11, item 3: the gallery of the README (Miranda, Lacamoire, Obama from photos)."""
    rec = Recognizer(Gallery(tmp_path / "g.db"), video_engine)
    for name in ("lin-manuel-miranda.png", "alex-lacamoire.png", "obama.jpg"):
        assert not rec.enroll(Path(name).stem, [data_dir / EXAMPLES / name]).errors
    result = recognize_video(data_dir / HAMILTON, rec, every=5)
    fps = result.fps or 29.97
    on_screen = [HAMILTON_SHOTS["stage"], HAMILTON_SHOTS["miranda"]]
    lin = [a for a in result.appearances if a.identity == "lin-manuel-miranda"]
    assert all(any(s <= a.start_frame and a.end_frame <= e for s, e in on_screen) for a in lin)  # never outside
    assert sum(a.end_frame - a.start_frame + 1 for a in lin) / fps >= 4.5  # of his 4.97 s on screen
    pianist = [a for a in result.appearances if a.start_frame in range(20, 41)]  # in profile, frames 25-40
    assert pianist and all(not a.known for a in pianist)
    others = [a for a in result.appearances if a not in pianist and a.start_frame >= 41]  # audience only
    assert others and {a.identity for a in pianist}.isdisjoint(a.identity for a in others)


def synthetic_timeline(
    rec: Recognizer, tracks: list[tuple[np.ndarray, float, str | None]], **options: float
) -> list[tuple[str, bool]]:
    """(label, known) per track of a timeline built from (template, evidence, gallery identity)
    per track, one after the other, more than ``merge_gap_s`` apart."""
    from faceprint.video.pipeline import Sample, _TrackState
    from faceprint.video.tracker import KalmanBox, Track

    video = VideoRecognizer(rec, merge_gap_s=0.0, **options)  # type: ignore[arg-type]
    for n, (template, evidence, identity) in enumerate(tracks, 1):
        box = (0, 0, 100, 100)
        video.tracker.finished.append(Track(n, KalmanBox(box), 100 * n, 100 * n + 50, 100 * n + 50, hits=5))
        best = Sample(100 * n, 4.0 * n, box, template, evidence, 1.0)
        state = _TrackState(4.0 * n, 4.0 * n + 1, [best], template, evidence, identity, 0.9, [], best)
        video._states[n] = state
    return [(a.identity, a.known) for a in sorted(video.timeline(), key=lambda a: a.track_id)]


def near(template: np.ndarray, cosine: float, seed: int) -> np.ndarray:
    """A unit vector at exactly ``cosine`` to the unit vector ``template``."""
    other = np.random.default_rng(seed).normal(size=template.shape)
    other -= (other @ template) * template
    other /= np.linalg.norm(other)
    return (cosine * template + np.sqrt(1 - cosine**2) * other).astype(np.float32)


def test_unknown_tracks_are_grouped_with_faceprint_cluster(video_engine: FaceEngine, tmp_path: Path) -> None:
    from faceprint.types import Face
    from faceprint.video.pipeline import MIN_EVIDENCE, TRACK_THRESHOLD

    rec = Recognizer(Gallery(tmp_path / "g.db"), video_engine)
    a = near(np.eye(128, dtype=np.float32)[0], 0.0, 1)  # a random unit vector
    b = near(a, 0.5, 2)  # someone else
    ok = 2 * MIN_EVIDENCE
    same, apart = TRACK_THRESHOLD + 0.015, TRACK_THRESHOLD - 0.015
    # one person in two shots, someone else between, then the first again with too little evidence
    assert synthetic_timeline(rec, [(a, ok, None), (b, ok, None), (near(a, same, 3), ok, None)]) == [
        ("unknown-1", False), ("unknown-2", False), ("unknown-1", False)]  # fmt: skip
    assert synthetic_timeline(rec, [(a, ok, None), (near(a, same, 3), MIN_EVIDENCE / 2, None)]) == [
        ("unknown-1", False), ("unknown-2", False)]  # fmt: skip
    assert synthetic_timeline(rec, [(a, ok, None), (near(a, apart, 3), ok, None)]) == [
        ("unknown-1", False), ("unknown-2", False)]  # fmt: skip
    # a track the gallery missed, grouped with a track it named, is that person (scored by the gallery)
    rec.store_face("ann", Face(box=(0, 0, 9, 9), score=1.0, embedding=near(a, 0.95, 4)), "ann.jpg", "0" * 64)
    assert synthetic_timeline(rec, [(near(a, same, 5), ok, None), (a, ok, "ann")]) == [("ann", True), ("ann", True)]
    # ... but not when its group holds two named people: then it is nobody's
    c = near(a, 0.98, 6)
    both = normalize(a + c)
    assert synthetic_timeline(rec, [(both, ok, None), (a, ok, "ann"), (c, ok, "bob")]) == [
        ("unknown-1", False), ("ann", True), ("bob", True)]  # fmt: skip
    # the threshold is an option
    assert synthetic_timeline(rec, [(a, ok, None), (near(a, apart, 3), ok, None)], unknown_threshold=apart - 0.01) == [
        ("unknown-1", False), ("unknown-1", False)]  # fmt: skip


def test_track_templates_without_a_gallery(video_engine: FaceEngine) -> None:
    from faceprint.draw import crop_face
    from faceprint.video import TrackItem, track_templates

    frames: list[int] = []
    (item,) = track_templates(CLIP, video_engine, every=5, on_progress=frames.append)
    assert isinstance(item, TrackItem) and frames == [1] * 80
    assert item.template.shape == (128,) and abs(float(np.linalg.norm(item.template)) - 1) < 1e-5
    assert item.start_frame <= 5 and item.end_frame >= 70 and item.detections >= 14
    assert (item.start_s, item.end_s) == pytest.approx((item.start_frame / 29.97, item.end_frame / 29.97))
    assert item.evidence > 1 and 0 < item.quality <= 1 and item.start_frame <= item.crop_frame <= item.end_frame
    left, top, right, bottom = item.box
    assert 0 <= left < right <= 640 and 0 <= top < bottom <= 360 and right - left > 60
    cap = cv2.VideoCapture(str(CLIP))
    cap.set(cv2.CAP_PROP_POS_FRAMES, item.crop_frame)
    ok, bgr = cap.read()
    assert ok and item.crop is not None and item.crop.dtype == np.uint8
    assert np.array_equal(item.crop, crop_face(bgr, item.box)[..., ::-1])  # RGB, the best view's face
    assert item.samples == []  # not kept unless asked


def stream_reader() -> VideoReader:
    """The fixture clip read as a camera or stream would be: once, with no second read."""
    reader = VideoReader(CLIP)
    reader.is_file = False
    return reader


def leftovers(folder: Path) -> list[str]:
    """Temporary output files left behind (hidden: .<name>.<random>.part<suffix>)."""
    return sorted(p.name for p in folder.rglob("*") if ".part" in p.name)


@pytest.fixture()
def drawn_text(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every text drawn on an image with OpenCV while the test runs."""
    texts: list[str] = []
    put_text = cv2.putText

    def record(image, text, *args, **kwargs):
        texts.append(text)
        return put_text(image, text, *args, **kwargs)

    monkeypatch.setattr(cv2, "putText", record)
    return texts


def test_annotation_labels_and_crops_are_the_timeline_rows(
    video_engine: FaceEngine, tmp_path: Path, drawn_text: list[str]
) -> None:
    """Nobody enrolled, a detection every 10 frames: three tracks make one unknown-1 row. Each
    box is labelled with that row's identity and track (as the table and JSON show them), and
    the row's crop is the only file in the crops folder."""
    rec = Recognizer(Gallery(tmp_path / "empty.db"), video_engine)
    crops = tmp_path / "crops"
    result = recognize_video(CLIP, rec, every=10, annotate=tmp_path / "a.mp4", crops_dir=crops)
    (row,) = result.appearances
    assert row.identity == "unknown-1" and len(row.track_ids) > 1 and row.score == -1  # no one to compare with
    assert set(drawn_text) == {f"unknown-1 #{row.track_id}"}
    assert len(drawn_text) >= 60 and frame_count(tmp_path / "a.mp4")[0] == 80
    assert row.crop is not None and sorted(crops.iterdir()) == [Path(row.crop)]
    assert Path(row.crop).name == f"unknown-1-track{row.track_id:04d}.jpg" and cv2.imread(row.crop) is not None
    assert leftovers(tmp_path) == []


def test_stream_is_annotated_as_it_comes(video_engine: FaceEngine, tmp_path: Path, drawn_text: list[str]) -> None:
    """A stream cannot be read twice: its boxes carry each track's name so far and its number."""
    rec = Recognizer(Gallery(tmp_path / "empty.db"), video_engine)
    result = recognize_video(stream_reader(), rec, every=10, annotate=tmp_path / "a.mkv")
    assert result.annotated == str(tmp_path / "a.mkv") and frame_count(tmp_path / "a.mkv")[0] == 80
    tracks = {t for row in result.appearances for t in row.track_ids}
    assert drawn_text and all(re.fullmatch(r"unknown #\d+", text) for text in drawn_text)
    assert tracks <= {int(text.split("#")[1].split()[0]) for text in drawn_text}


@pytest.mark.parametrize("stream", [False, True], ids=["file", "stream"])
def test_a_failed_run_leaves_earlier_outputs_untouched(video_engine: FaceEngine, tmp_path: Path, stream: bool) -> None:
    annotated = tmp_path / "a.mp4"
    annotated.write_bytes(b"yesterday's video")
    rec = Recognizer(Gallery(tmp_path / "empty.db"), video_engine)

    def crash(result) -> None:
        if result.index == 40:
            raise RuntimeError("out of memory")

    with pytest.raises(RuntimeError, match="out of memory"):
        recognize_video(stream_reader() if stream else CLIP, rec, annotate=annotated, on_frame=crash)
    assert annotated.read_bytes() == b"yesterday's video" and leftovers(tmp_path) == []


def test_timeline_files_appear_complete_or_not_at_all(tmp_path: Path) -> None:
    from faceprint.video.pipeline import Appearance

    def rows_then_crash():
        yield Appearance("a", 1, 0.0, 1.0, 0, 30, 0.9)
        raise OSError(28, "No space left on device")

    for write, name in ((write_json, "t.json"), (write_csv, "t.csv")):
        (tmp_path / name).write_text("yesterday's timeline")
        with pytest.raises(OSError, match="No space left"):
            write(rows_then_crash(), tmp_path / name)
        assert (tmp_path / name).read_text() == "yesterday's timeline"
    assert leftovers(tmp_path) == []


def test_library_refuses_to_annotate_over_its_input(video_engine: FaceEngine, tmp_path: Path) -> None:
    from faceprint.errors import FaceprintError

    clip = tmp_path / "clip.mp4"
    shutil.copy(CLIP, clip)
    rec = Recognizer(Gallery(tmp_path / "empty.db"), video_engine)
    with pytest.raises(FaceprintError, match=f"annotate {clip}: is the input {clip}"):
        recognize_video(clip, rec, annotate=clip)
    assert clip.read_bytes() == CLIP.read_bytes()


# --------------------------------------------------------------------------------- CLI
def faceprint(gallery: Path, *args: str, **kwargs) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FACEPRINT_GALLERY": str(gallery), "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "faceprint.cli", "video", *args], capture_output=True, text=True, env=env, timeout=300
    )


def test_cli_writes_json_csv_and_annotation(lin_gallery: Path, tmp_path: Path) -> None:
    out = tmp_path / "t.json"
    proc = faceprint(
        lin_gallery, str(CLIP), "--every", "10", "--json", str(out), "--csv", str(tmp_path / "t.csv"),
        "--annotate", str(tmp_path / "a.mkv"), "--crops", str(tmp_path / "crops"),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    (record,) = json.loads(out.read_text())
    assert record["identity"] == "lin-manuel-miranda" and Path(record["crop"]).is_file()
    assert (tmp_path / "t.csv").read_text().startswith("identity,track_id,start_s,end_s,start_frame,end_frame")
    assert frame_count(tmp_path / "a.mkv")[0] == 80
    assert "80 frames" in proc.stderr


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        # an output that is the input (however spelled or linked) or another output
        (["--annotate", "{clip}"], "--annotate {clip}: is the input {clip}"),
        (["--annotate", "{dir}/sub/../clip.mp4"], "--annotate {dir}/sub/../clip.mp4: is the input {clip}"),
        (["--annotate", "{dir}/link.mp4"], "--annotate {dir}/link.mp4: is the input {clip}"),
        (["--annotate", "{dir}/hard.mp4"], "--annotate {dir}/hard.mp4: is a hard link to the input {clip}"),
        (["--json", "{clip}"], "--json {clip}: is the input {clip}"),
        (["--csv", "{dir}/hard.mp4"], "--csv {dir}/hard.mp4: is a hard link to the input {clip}"),
        (["--crops", "{clip}"], "--crops {clip}: is the input {clip}"),
        (["--json", "{dir}/t.json", "--csv", "{dir}/t.json"], "--csv {dir}/t.json: is --json {dir}/t.json"),
        (["--annotate", "{dir}/o.mkv", "--crops", "{dir}/o.mkv"], "--crops {dir}/o.mkv: is --annotate {dir}/o.mkv"),
        # an output that cannot be written there
        (["--crops", "{dir}/afile"], "--crops {dir}/afile: is a file, not a folder"),
        (["--crops", "{dir}/afile/crops"], "--crops {dir}/afile/crops: {dir}/afile is a file, not a folder"),
        (["--json", "{dir}/afile/t.json"], "--json {dir}/afile/t.json: {dir}/afile is a file, not a folder"),
        (["--csv", "{dir}/missing/t.csv"], "--csv {dir}/missing/t.csv: folder {dir}/missing does not exist"),
        (["--annotate", "{dir}/missing/a.mp4"], "--annotate {dir}/missing/a.mp4: folder {dir}/missing does not exist"),
        (["--annotate", "{dir}/afile/a.mp4"], "--annotate {dir}/afile/a.mp4: {dir}/afile is a file, not a folder"),
        (["--json", "{dir}"], "--json {dir}: is a folder, not a file"),
        (["--annotate", "{dir}/a.gif"], "{dir}/a.gif: annotated video must end in"),
    ],
    ids=["annotate", "annotate-dotdot", "annotate-symlink", "annotate-hardlink", "json", "csv-hardlink", "crops",
         "json-is-csv", "crops-is-annotate", "crops-file", "crops-under-file", "json-under-file", "csv-no-folder",
         "annotate-no-folder", "annotate-under-file", "json-folder", "annotate-gif"],
)  # fmt: skip
def test_cli_refuses_bad_outputs_in_one_line_before_writing(
    lin_gallery: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    clip = tmp_path / "clip.mp4"
    shutil.copy(CLIP, clip)
    (tmp_path / "sub").mkdir()
    (tmp_path / "link.mp4").symlink_to(clip)
    (tmp_path / "hard.mp4").hardlink_to(clip)
    (tmp_path / "afile").write_text("keep me")
    before = sha256(clip)
    names = {"clip": clip, "dir": tmp_path}
    proc = faceprint(lin_gallery, str(clip), *(a.format(**names) for a in args))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert message.format(**names) in " ".join(proc.stderr.split())  # rich may wrap the line
    assert sha256(clip) == before and (tmp_path / "afile").read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "clip.mp4", "hard.mp4", "link.mp4", "sub"]


def test_cli_read_only_folder_is_a_one_line_error(lin_gallery: Path) -> None:
    prefix = unprivileged()  # root ignores permission bits: run as nobody
    top = Path(tempfile.mkdtemp(prefix="faceprint-video-"))  # pytest's tmp_path is private to its user
    folder, cache = top / "ro", top / "cache"
    try:
        top.chmod(0o777)  # the gallery's journal goes beside it
        shutil.copy(lin_gallery, top / "g.db")
        (top / "g.db").chmod(0o666)
        cache.mkdir(mode=0o777)
        cache.chmod(0o777)
        folder.mkdir(mode=0o555)
        folder.chmod(0o555)
        env = {**os.environ, "FACEPRINT_GALLERY": str(top / "g.db"), "FACEPRINT_CACHE": str(cache), "HOME": str(cache)}
        for option in ("--crops", "--json", "--annotate"):
            out = folder / ("crops" if option == "--crops" else "out.mkv")
            proc = subprocess.run(
                [*prefix, sys.executable, "-m", "faceprint.cli", "video", str(CLIP), option, str(out)],
                capture_output=True, text=True, env={**env, "COLUMNS": "200"}, timeout=300,
            )  # fmt: skip
            assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
            assert f"{option} {out}: folder {folder} is not writable" in " ".join(proc.stderr.split())
    finally:
        folder.chmod(0o755)
        shutil.rmtree(top)


def test_cli_bad_inputs_fail_clearly(lin_gallery: Path, tmp_path: Path) -> None:
    text = tmp_path / "notes.mp4"
    text.write_text("not a video\n" * 100)
    proc = faceprint(lin_gallery, str(text), "--json", str(tmp_path / "x.json"))
    assert proc.returncode == 1 and f"{text}: not a video" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "x.json").exists()

    cut = truncated_copy(tmp_path)
    out = tmp_path / "partial.json"
    proc = faceprint(lin_gallery, str(cut), "--every", "10", "--json", str(out))
    assert proc.returncode == 1 and str(cut) in proc.stderr and "truncated" in proc.stderr
    assert [r["identity"] for r in json.loads(out.read_text())] == ["lin-manuel-miranda"]  # partial results kept
    assert leftovers(tmp_path) == []


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT")
def test_cli_ctrl_c_on_a_live_source_still_writes_outputs(lin_gallery: Path, tmp_path: Path) -> None:
    out, annotated = tmp_path / "t.json", tmp_path / "a.mp4"
    # TTY_COMPATIBLE: rich shows its status line ("N frames | ...") on the pipe, which tells when
    # frames are being processed (outputs only appear, complete, at the end)
    env = {**os.environ, "FACEPRINT_GALLERY": str(lin_gallery), "TTY_COMPATIBLE": "1", "COLUMNS": "200"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "faceprint.cli", "video", str(CLIP), "--live", "--json", str(out), "--annotate",
         str(annotated)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )  # fmt: skip
    stderr = bytearray()
    processing = threading.Event()

    def watch() -> None:
        assert proc.stderr is not None
        while chunk := os.read(proc.stderr.fileno(), 4096):
            stderr.extend(chunk)
            if re.search(rb"[1-9]\d* frames \|", stderr):
                processing.set()

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    assert processing.wait(120), stderr.decode(errors="replace")
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=120)
    watcher.join(timeout=10)
    text = stderr.decode(errors="replace")
    assert proc.returncode == 0, text  # stopping a live source is the normal way to end it
    assert "stopped (Ctrl-C)" in text and "dropped" in text
    json.loads(out.read_text())  # written, valid (may hold no row yet if stopped very early)
    assert frame_count(annotated)[0] >= 1 and leftovers(tmp_path) == []
