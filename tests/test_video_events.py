"""Facial events in video: blinks, speaking, micro-movements, the CLI's --events and the service route."""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from faceprint import FaceEngine, Gallery, Recognizer
from faceprint.analyze.landmarks import LandmarkModels
from faceprint.types import Face
from faceprint.video.events import (
    REGION_NAMES,
    RegionMotion,
    detect_speaking,
    spot_micro_movements,
    transient_score,
)
from faceprint.video.series import FaceEvent, FaceSeries, detect_blinks

from .conftest import FIXTURES, REPO, faceprint

CLIP = FIXTURES / "video" / "hamilton_120-199.mp4"  # 80 frames of Lin-Manuel Miranda, 640x360
LIN = FIXTURES / "video" / "lin-manuel-miranda.png"
FPS = 25.0


@pytest.fixture(scope="module")
def lin_gallery(tmp_path_factory: pytest.TempPathFactory, engine: FaceEngine) -> Path:
    path = tmp_path_factory.mktemp("events") / "gallery.db"
    rec = Recognizer(Gallery(path), engine)
    assert not rec.enroll("lin-manuel-miranda", [LIN]).errors
    rec.gallery.close()
    return path


def synthetic_series(n: int, eye_open: np.ndarray | None = None, lip_gap: np.ndarray | None = None) -> FaceSeries:
    """A still, frontal face 60 px between the eyes whose lids and lips do what they are told."""
    points = np.zeros((n, 468, 3), np.float32)
    points[:, [33, 133], 0] = [[70, 110]]  # the subject's right eye corners
    points[:, [362, 263], 0] = [[130, 170]]
    points[:, :, 1] = 100
    points[:, 13, :2] = [120, 160]  # inner upper lip
    points[:, 14, :2] = [120, 160]
    if lip_gap is not None:
        points[:, 14, 1] += lip_gap * 60
    openness = np.full((n, 2), 0.3, np.float32) if eye_open is None else np.repeat(eye_open[:, None], 2, 1)
    return FaceSeries(
        track_id=7,
        fps=FPS,
        frames=np.arange(n),
        times=np.arange(n) / FPS,
        boxes=np.tile([50, 50, 190, 210], (n, 1)),
        points=points,
        eyes=np.zeros((n, 2, 16, 2), np.float32),
        eye_open=openness,
        mouth_open=np.zeros(n, np.float32),
        pose=np.zeros((n, 3), np.float32),
        presence=np.full(n, 20.0, np.float32),
        valid=np.ones(n, bool),
        detected=np.ones(n, bool),
    )


def test_blinks_on_a_synthetic_series() -> None:
    eye = np.full(150, 0.3)
    eye[40:45] = [0.2, 0.08, 0.04, 0.1, 0.22]  # a blink, 5 frames
    eye[100:140] = 0.05  # eyes kept shut for 1.6 s: not a blink
    blinks = detect_blinks(synthetic_series(150, eye_open=eye))
    assert len(blinks) == 1
    b = blinks[0]
    assert b.type == "blink" and b.region == "eyes" and b.track_id == 7
    assert 39 / FPS <= b.onset_s < b.apex_s < b.offset_s <= 46 / FPS
    assert b.apex_s == pytest.approx(42 / FPS)
    assert b.intensity > 0.8


def test_speaking_on_a_synthetic_series() -> None:
    n = 250  # 10 s
    t = np.arange(n) / FPS
    gap = np.full(n, 0.02)
    talk = (t >= 3) & (t < 6)
    gap[talk] += 0.08 * (1 + np.sin(2 * np.pi * 3 * t[talk])) / 2  # the lips open and close 3 times a second
    gap[200:] = 0.25  # a mouth held open (a yawn) is not speech
    events = detect_speaking(synthetic_series(n, lip_gap=gap))
    assert len(events) == 1, events
    e = events[0]
    assert e.type == "speaking" and e.region == "mouth"
    assert 2.6 <= e.onset_s <= 3.4 and 5.6 <= e.offset_s <= 6.4
    assert detect_speaking(synthetic_series(n, lip_gap=np.full(n, 0.02))) == []


def _warp_brows(image: np.ndarray, points: np.ndarray, amount: float) -> np.ndarray:
    """Raise both brows by ``amount`` px with a smooth local warp (as benchmarks/dynamics_synth.py)."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        import dynamics_synth
    finally:
        sys.path.pop(0)
    return dynamics_synth.warp(image.copy(), points, "brow_raise", amount)


@pytest.fixture(scope="module")
def still_face() -> tuple[np.ndarray, object, Face]:
    """A real frame of the fixture clip, its face mesh and the detected face."""
    cap = cv2.VideoCapture(str(CLIP))
    ok, frame = cap.read()
    cap.release()
    assert ok
    rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
    faces = FaceEngine().detector.detect(rgb)
    assert faces
    face = max(faces, key=lambda f: f.box[2] - f.box[0])
    dense = LandmarkModels()(rgb, Face(box=face.box, score=1.0, landmarks=face.landmarks))
    return frame, dense, face


def test_micro_movement_spotted_on_an_inserted_warp(still_face: tuple[np.ndarray, object, Face]) -> None:
    frame, dense, _ = still_face
    points = dense.points  # type: ignore[attr-defined]
    width = float(np.ptp(points[:, 0]))
    rng = np.random.default_rng(0)
    motion = RegionMotion(FPS)
    onset, apex, offset = 30, 34, 39  # 0.36 s
    for i in range(70):
        if onset < i < offset:
            u = (i - onset) / (apex - onset) if i <= apex else (offset - i) / (offset - apex)
            image = _warp_brows(frame, points, 0.025 * width * (1 - np.cos(np.pi * u)) / 2)
        else:
            image = frame
        noisy = np.clip(image.astype(np.int16) + rng.integers(-2, 3, image.shape), 0, 255).astype(np.uint8)
        motion.add(noisy, 1, i, i / FPS, dense)  # type: ignore[arg-type]
    series = motion.series()[1]
    assert series.scores.shape[1] == len(REGION_NAMES)
    spots = spot_micro_movements(series, FPS)
    assert len(spots) == 1, spots
    s = spots[0]
    assert s.type == "micro" and s.region == "brows"
    inter = min(s.offset_s, offset / FPS) - max(s.onset_s, onset / FPS)
    union = max(s.offset_s, offset / FPS) - min(s.onset_s, onset / FPS)
    assert inter / union >= 0.5
    assert abs(s.apex_s - apex / FPS) <= 2 / FPS
    # the same frames with nothing inserted: nothing spotted
    still = RegionMotion(FPS)
    for i in range(70):
        noisy = np.clip(frame.astype(np.int16) + rng.integers(-2, 3, frame.shape), 0, 255).astype(np.uint8)
        still.add(noisy, 1, i, i / FPS, dense)  # type: ignore[arg-type]
    assert spot_micro_movements(still.series()[1], FPS) == []


def test_transient_score_keeps_what_comes_and_goes() -> None:
    """(sides, before/after, xy) flows: a brow up and back scores, a brow raised and held (a
    step) or drifting steadily does not."""
    up = np.array([0.0, 0.03])
    transient = np.stack([np.stack([up, up]), np.full((2, 2), np.nan)])  # one side measured
    step = np.stack([np.stack([up, np.zeros(2)])] * 2)
    drift = np.stack([np.stack([up, -up])] * 2)
    scores = transient_score(np.stack([transient, step, drift]))
    assert scores[0] == pytest.approx(0.03)
    assert scores[1] == pytest.approx(0.0) and scores[2] == pytest.approx(0.0)


def _sway(i: int, n: int, centre: tuple[float, float]) -> np.ndarray:
    """A head swaying as a whole: a smooth shift of up to 14 px and a turn of up to 6 degrees."""
    u = 2 * np.pi * i / n
    m = cv2.getRotationMatrix2D(centre, 6.0 * np.sin(u), 1.0 + 0.03 * np.sin(2 * u))
    m[:, 2] += [14.0 * np.sin(u), 8.0 * np.sin(2 * u)]
    return m


def test_micro_movement_spotter_separates_a_warp_from_head_motion(
    still_face: tuple[np.ndarray, object, Face],
) -> None:
    """The whole frame moved smoothly (detection moved along, the mesh read again on every frame):
    no spot; the same motion with a brow raise on top: one spot, on the brows, where it was put."""
    frame, dense, face = still_face
    points = dense.points  # type: ignore[attr-defined]
    width = float(np.ptp(points[:, 0]))
    models = LandmarkModels()
    x0, y0, x1, y1 = face.box
    centre = ((x0 + x1) / 2, (y0 + y1) / 2)
    marks = np.asarray(face.landmarks, np.float64)
    n, onset, apex, offset = 70, 30, 35, 40  # 0.4 s

    def run(amount: float) -> list[FaceEvent]:
        motion = RegionMotion(FPS)
        for i in range(n):
            image = frame
            if amount and onset < i < offset:
                u = (i - onset) / (apex - onset) if i <= apex else (offset - i) / (offset - apex)
                image = _warp_brows(frame, points, amount * width * (1 - np.cos(np.pi * u)) / 2)
            m = _sway(i, n, centre)
            moved = cv2.warpAffine(image, m, image.shape[1::-1], borderMode=cv2.BORDER_REPLICATE)
            c = np.array(centre) @ m[:, :2].T + m[:, 2]
            moved_box = (int(c[0] - (x1 - x0) / 2), int(c[1] - (y1 - y0) / 2), int(c[0] + (x1 - x0) / 2))
            moved_box += (int(c[1] + (y1 - y0) / 2),)
            rgb = cv2.cvtColor(moved, cv2.COLOR_BGR2RGB)
            mesh = models(rgb, Face(box=moved_box, score=1.0, landmarks=marks @ m[:, :2].T + m[:, 2]))
            motion.add(moved, 1, i, i / FPS, mesh)
        return spot_micro_movements(motion.series()[1], FPS)

    assert run(0.0) == []
    spots = run(0.02)
    assert len(spots) == 1, spots
    s = spots[0]
    assert s.region == "brows" and abs(s.apex_s - apex / FPS) <= 2 / FPS
    inter = min(s.offset_s, offset / FPS) - max(s.onset_s, onset / FPS)
    union = max(s.offset_s, offset / FPS) - min(s.onset_s, onset / FPS)
    assert inter / union >= 0.5


def test_event_rows_have_the_issue_fields() -> None:
    row = FaceEvent(3, "blink", 1.0, 1.1, 1.2, "eyes", 0.9).to_dict()
    assert list(row)[:7] == ["track_id", "type", "onset_s", "apex_s", "offset_s", "region", "intensity"]
    assert row["label"] is None


def test_cli_video_events_json_csv_and_plot(tmp_path: Path, lin_gallery: Path) -> None:
    out, events_csv, plot = tmp_path / "t.json", tmp_path / "events.csv", tmp_path / "events.png"
    r = faceprint(
        lin_gallery,
        "video",
        str(CLIP),
        "--events",
        "--json",
        str(out),
        "--events-csv",
        str(events_csv),
        "--plot",
        str(plot),
        "--max-frames",
        "60",
    )
    assert r.returncode == 0, r.stderr
    doc = json.loads(out.read_text())
    assert set(doc) == {"appearances", "events"}
    assert [a["identity"] for a in doc["appearances"]] == ["lin-manuel-miranda"]
    tracks = {t for a in doc["appearances"] for t in [a["track_id"]]}
    for e in doc["events"]:
        assert set(e) == {"track_id", "type", "onset_s", "apex_s", "offset_s", "region", "intensity", "label"}
        assert e["type"] in {"blink", "speaking", "expression", "micro"}
        assert e["onset_s"] <= e["apex_s"] <= e["offset_s"]
        assert e["track_id"] in tracks
    # Miranda sings through these frames: his lips move
    assert any(e["type"] == "speaking" for e in doc["events"]), doc["events"]
    rows = list(csv.DictReader(io.StringIO(events_csv.read_text())))
    assert len(rows) == len(doc["events"]) and (not rows or list(rows[0]) == list(FaceEvent.FIELDS))
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "facial event(s)" in r.stderr


def test_cli_video_without_events_keeps_the_json_array(tmp_path: Path, lin_gallery: Path) -> None:
    out = tmp_path / "t.json"
    r = faceprint(lin_gallery, "video", str(CLIP), "--json", str(out), "--max-frames", "10")
    assert r.returncode == 0, r.stderr
    assert isinstance(json.loads(out.read_text()), list)


def test_cli_plot_must_be_png(tmp_path: Path, lin_gallery: Path) -> None:
    r = faceprint(lin_gallery, "video", str(CLIP), "--plot", str(tmp_path / "p.jpg"))
    assert r.returncode == 2
    assert "--plot writes a PNG" in r.stderr and "Traceback" not in r.stderr


def test_library_events_are_drawn_on_the_annotated_copy(
    tmp_path: Path, lin_gallery: Path, engine: FaceEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    import faceprint.video.output as output
    from faceprint.video import recognize_video

    drawn: list[str] = []
    real = output.draw_faces

    def spy(pixels, boxes, labels=None, *args, **kwargs):  # type: ignore[no-untyped-def]
        drawn.extend(label for label in labels or [] if label)
        return real(pixels, boxes, labels, *args, **kwargs)

    monkeypatch.setattr(output, "draw_faces", spy)
    rec = Recognizer(Gallery(lin_gallery), engine)
    result = recognize_video(CLIP, rec, events=("speaking",), max_frames=60, annotate=tmp_path / "a.mp4")
    assert result.events and {e.type for e in result.events} == {"speaking"}
    assert result.annotated and (tmp_path / "a.mp4").stat().st_size > 0
    assert any(label.endswith("[speaking]") for label in drawn), drawn[:5]
    assert recognize_video(CLIP, rec, max_frames=5).events == []


def test_service_video_events(tmp_path: Path, engine: FaceEngine) -> None:
    import httpx

    from faceprint.server import ServerStore, create_app

    from .test_server_api import serve

    path = tmp_path / "gallery.db"
    rec = Recognizer(Gallery(path), engine)
    store = ServerStore(path)
    key, _ = store.create_key("read", "reader")

    with serve(create_app(rec, store=store)) as url, httpx.Client(base_url=url, timeout=120) as client:
        headers = {"X-API-Key": key}
        files = {"video": (CLIP.name, CLIP.read_bytes(), "video/mp4")}
        r = client.post(
            "/v1/video/events", files=files, params={"max_frames": 60, "kinds": ["speaking", "blink"]}, headers=headers
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["frames"] == 60 and body["appearances"]
        assert {e["type"] for e in body["events"]} <= {"speaking", "blink"}
        assert any(e["type"] == "speaking" for e in body["events"])
        bad = {"video": ("notes.mp4", b"not a video at all", "video/mp4")}
        r = client.post("/v1/video/events", files=bad, headers=headers)
        assert r.status_code == 400 and r.json()["error"]["code"] == "bad_video", r.text
        assert "/tmp" not in r.text
        r = client.post("/v1/video/events", files=files)
        assert r.status_code == 401
