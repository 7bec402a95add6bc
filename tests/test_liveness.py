"""Liveness cues and fusion (faceprint.liveness.cues/decide), ``faceprint liveness`` and ``POST /v1/liveness``.

The cue tests use synthetic point motion; the CLI runs on a constructed replay clip (made here by
benchmarks/liveness_attacks.py), a few seconds of a real recording and the MiniFASNet sample photos
(those need ../shared/data and skip without it)."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from types import ModuleType

import cv2
import httpx
import numpy as np
import pytest

from faceprint import FaceEngine, Recognizer
from faceprint.gallery import Gallery
from faceprint.liveness.cues import MIN_DEFORMATION_PX, MIN_MOVING, FlowPlanarity, PairFit, fit_pair, summarise
from faceprint.liveness.decide import (
    MOUTH_MIN,
    PASSIVE_DEPTH_MIN,
    PASSIVE_STRONG,
    PLANAR_RATIO,
    SURROUND_FOLLOW,
    Evidence,
    fuse,
)
from faceprint.server import ServerStore, create_app

from .conftest import REPO, faceprint
from .test_server_api import serve


def _rotation_y(degrees: float) -> np.ndarray:
    a = math.radians(degrees)
    return np.array([[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]])


def _project(points: np.ndarray, rotation: np.ndarray, focal: float = 800.0, depth: float = 6.0) -> np.ndarray:
    """Pinhole image (pixels) of 3D points rotated about their centre and set ``depth`` in front."""
    p = points @ rotation.T + np.array([0, 0, depth])
    return focal * p[:, :2] / p[:, 2:3]


def _face_cloud(flat: bool, n: int = 120) -> np.ndarray:
    """A face-sized cloud (units: eye distances) on a plane, or on a head-like bump (nose forward)."""
    rng = np.random.default_rng(3)
    xy = rng.uniform(-1.2, 1.2, (n, 2))
    z = np.zeros(n) if flat else -0.9 * np.exp(-(xy**2).sum(1) / 0.5) + 0.3 * (xy**2).sum(1)
    return np.column_stack([xy, z])


@pytest.mark.parametrize("flat", [True, False])
def test_fit_pair_tells_a_plane_from_a_head(flat: bool) -> None:
    cloud = _face_cloud(flat)
    before, after = _project(cloud, _rotation_y(0)), _project(cloud, _rotation_y(15))
    size = 800 / 6  # one eye distance in pixels at that depth
    residual, deformation = fit_pair(before, after, size)
    fit = PairFit(0, 1, residual, deformation, size)
    assert deformation * size > MIN_DEFORMATION_PX  # a 15 degree turn is motion enough to judge
    if flat:
        assert residual < 1e-6 and fit.ratio < 1e-4  # a homography explains a plane's motion exactly
    else:
        assert fit.ratio > PLANAR_RATIO  # parallax: most of it is left over


def test_summarise_ignores_windows_without_motion() -> None:
    still = [PairFit(0, 1, 0.004, 0.005, 40.0) for _ in range(10)]  # 0.2 px: noise, ratio 0.8
    assert not summarise(still).informative
    turning = still + [PairFit(0, 1, 0.01, 0.1, 40.0) for _ in range(MIN_MOVING)]  # 4 px, ratio 0.1
    p = summarise(turning)
    assert p.informative and p.moving == MIN_MOVING and p.pairs == 10 + MIN_MOVING
    assert p.ratio == pytest.approx(0.1)


@pytest.mark.parametrize("lit", [False, True])
def test_flow_planarity_on_a_moving_textured_card(lit: bool) -> None:
    """Optical flow on a rendered textured card turned in 3D: its windows fit a plane, also when the
    card's brightness and contrast follow its tilt (light falling on it at another angle, auto-exposure),
    which plain Lucas-Kanade reads as non-planar motion."""
    rng = np.random.default_rng(1)
    texture = cv2.GaussianBlur(rng.integers(0, 256, (240, 240), dtype=np.uint8), (0, 0), 1.5)
    texture = cv2.cvtColor(cv2.equalizeHist(texture), cv2.COLOR_GRAY2BGR)
    mesh = np.column_stack([rng.uniform(40, 200, (468, 2)), np.zeros(468)])  # points spread over the card
    mesh[[33, 133]] = [[80, 100, 0], [105, 100, 0]]  # eye corners: a 60 px eye distance
    mesh[[362, 263]] = [[135, 100, 0], [160, 100, 0]]
    flow = FlowPlanarity(gap_s=0.2)
    card = np.array([[0, 0], [240, 0], [240, 240], [0, 240]], np.float64)
    for i in range(30):
        t = i / 25
        yaw = 25 * math.sin(2 * math.pi * 0.7 * t)
        corners3d = np.column_stack([card - 120, np.zeros(4)]) / 120
        image_corners = _project(corners3d, _rotation_y(yaw), 700, 4) + (320, 240)
        h = cv2.getPerspectiveTransform(card.astype(np.float32), image_corners.astype(np.float32))
        # lit: gain 0.55-1.25 and a shift as the card turns towards and away from the light
        gain, shift = (
            (0.9 + 0.35 * math.sin(math.radians(yaw) * 4), 25 * math.cos(math.radians(yaw) * 3)) if lit else (1, 0)
        )
        shaded = np.clip(texture.astype(np.float32) * gain + shift, 0, 255).astype(np.uint8)
        frame = cv2.warpPerspective(shaded, h, (640, 480), borderValue=(90, 90, 90))
        points = cv2.perspectiveTransform(mesh[None, :, :2], h)[0]
        flow.update(7, i, t, frame, points)
    p = flow.result(7)
    assert p.informative, p
    # a plane: the homography explains nearly all of it (about 0.06 lit or not; tracking the lit card's
    # raw brightness gave 0.28)
    assert p.ratio < min(0.15, PLANAR_RATIO)


@pytest.mark.parametrize("card", [True, False])
def test_surroundings_follow_a_card_not_a_head(card: bool) -> None:
    """The ring around the face: on a printed photo it is the photo's own background, which moves with the face
    as one plane; around a face moving over a static room it stays put."""
    rng = np.random.default_rng(2)

    def textured(size: int) -> np.ndarray:
        noise = cv2.GaussianBlur(rng.integers(0, 256, (size, size), dtype=np.uint8), (0, 0), 1.5)
        return cv2.cvtColor(cv2.equalizeHist(noise), cv2.COLOR_GRAY2BGR)

    room = cv2.resize(textured(480), (640, 480))
    photo = textured(250)  # a 250 px photo (as LFW's) with the face (the mesh) in its middle 90 px
    mesh = np.column_stack([rng.uniform(80, 170, (468, 2)), np.zeros(468)])
    mesh[[33, 133]] = [[90, 110, 0], [112, 110, 0]]  # eye corners: a 50 px eye distance
    mesh[[362, 263]] = [[138, 110, 0], [160, 110, 0]]
    corners = np.array([[0, 0], [250, 0], [250, 250], [0, 250]], np.float32)
    flow = FlowPlanarity(gap_s=0.2)
    for i in range(40):
        t = i / 25
        yaw = 20 * math.sin(2 * math.pi * 0.6 * t)
        placed = _project(np.column_stack([corners - 125, np.zeros(4)]) / 125, _rotation_y(yaw), 800, 5)
        placed += (320 + 40 * math.sin(2 * math.pi * 0.5 * t), 240)
        h = cv2.getPerspectiveTransform(corners, placed.astype(np.float32))
        inside = np.zeros((250, 250), np.uint8)
        if card:
            inside[:] = 255  # the whole photo is on the card
        else:
            inside[70:180, 70:180] = 255  # only the face moves; the room shows around it
        shown = cv2.warpPerspective(inside, h, (640, 480)) > 127
        frame = room.copy()
        frame[shown] = cv2.warpPerspective(photo, h, (640, 480))[shown]
        flow.update(3, i, t, frame, cv2.perspectiveTransform(mesh[None, :, :2], h)[0])
    s = flow.surroundings(3)
    assert s.informative, s
    if card:
        assert s.follow > 0.9  # the photo's background moves with the face
    else:
        assert s.follow < 0.2  # the room does not


def _evidence(
    passive: float,
    moving: int = 0,
    ratio: float = float("nan"),
    blinks: int = 0,
    mouth: float = 0.0,
    follow: float | None = None,
):
    from faceprint.liveness.cues import Planarity, Surroundings

    around = None if follow is None else Surroundings(MIN_MOVING, MIN_MOVING, follow)
    return Evidence(passive, Planarity(max(moving, 5), moving, ratio, 3.0 if moving else 0.3), blinks, mouth, around)


def test_fusion_rule() -> None:
    # a flat card that moved is vetoed, however live the passive model finds it, and blinks do not save it
    live, score, checks = fuse(_evidence(0.99, moving=5, ratio=0.2, blinks=1, mouth=0.3))
    assert not live and score < 0.5 and not checks["planarity"].passed and checks["passive"].passed
    # a head that turned (parallax) with a passive score of PASSIVE_DEPTH_MIN is live; parallax with a
    # merely passing score is not enough (tracking noise on a blurred card can pass for parallax)
    live, score, checks = fuse(_evidence(PASSIVE_DEPTH_MIN, moving=5, ratio=0.85))
    assert live and score == pytest.approx(PASSIVE_DEPTH_MIN) and checks["depth"].passed
    live, _, checks = fuse(_evidence(0.8, moving=5, ratio=0.85))
    assert not live and checks["depth"].passed
    # parallax (tracking noise on a blurred card) does not save a face whose surroundings moved with it
    live, _, checks = fuse(_evidence(0.99, moving=5, ratio=0.85, follow=SURROUND_FOLLOW))
    assert not live and not checks["surroundings"].passed and checks["depth"].passed
    assert fuse(_evidence(0.99, moving=5, ratio=0.85, follow=0.1))[0]  # the room stayed put
    # a still face: no planarity evidence either way; it needs a strong passive score or mouth motion
    assert fuse(_evidence(PASSIVE_STRONG + 0.01))[0]
    assert not fuse(_evidence(0.7))[0]
    live, _, checks = fuse(_evidence(0.7, blinks=1))
    assert not live and checks["blink"].passed  # reported, not counted
    assert fuse(_evidence(0.7, mouth=MOUTH_MIN + 0.05))[0]
    # the passive model must agree in every case
    assert not fuse(_evidence(0.3, moving=5, ratio=0.9, blinks=2, mouth=0.3))[0]
    # never sampled (no detector frame): not live
    live, score, checks = fuse(_evidence(float("nan")))
    assert not live and score == 0.0 and checks["passive"].to_dict() == {"passed": False, "value": None}


@cache
def attacks_module() -> ModuleType:
    path = REPO / "benchmarks" / "liveness_attacks.py"
    spec = importlib.util.spec_from_file_location("liveness_attacks", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def _check_schema(body: dict, source: str) -> None:
    assert set(body) == {"input", "live", "tracks"} and body["input"] == source
    for track in body["tracks"]:
        assert set(track) == {"track_id", "start_s", "end_s", "live", "score", "checks"}
        assert isinstance(track["track_id"], int) and isinstance(track["live"], bool)
        assert 0 <= track["start_s"] <= track["end_s"] and 0.0 <= track["score"] <= 1.0
        assert (track["score"] >= 0.5) == track["live"]
        for check in track["checks"].values():
            assert set(check) == {"passed", "value"} and isinstance(check["passed"], bool)
    if body["tracks"]:
        longest = max(body["tracks"], key=lambda t: t["end_s"] - t["start_s"])
        assert body["live"] == longest["live"]
    else:
        assert body["live"] is None


def test_cli_on_a_constructed_photo_replay(tmp_path: Path, data_dir: Path) -> None:
    attacks = attacks_module()
    spec = attacks.AttackSpec(
        name="test", split="tune", kind="print", person="Colin_Powell", photo="lfw/Colin_Powell/Colin_Powell_0001.jpg",
        background="no_faces/skimage_brick.png", seed=5, width=640, height=480, seconds=1.6, face_px=170.0,
        focal=1.0, base_deg=(10.0, 0.0, 0.0), swing_deg=(25.0, 8.0, 3.0), swing_hz=(0.6, 0.5, 0.3), shift=0.05,
        zoom=0.05, shake_deg=0.5, shutter=0.3, noise=3.0, defocus=0.5, border=0.05, gamma=1.0, moire=0.0, glare=0.0,
    )  # fmt: skip
    clip = tmp_path / "replay.mp4"
    attacks.render(spec, data_dir, clip)
    proc = faceprint(tmp_path / "g.db", "liveness", "--json", str(clip), timeout=300)
    assert proc.returncode == 0, proc.stderr
    body = json.loads(proc.stdout)
    _check_schema(body, str(clip))
    assert body["tracks"] and body["live"] is False
    (track,) = [t for t in body["tracks"] if t["end_s"] - t["start_s"] >= 1.0]
    assert set(track["checks"]) == {"passive", "planarity", "surroundings", "depth", "blink", "mouth"}


def test_cli_on_a_real_recording(tmp_path: Path, data_dir: Path) -> None:
    clip = data_dir / "videos" / "face_recognition_short_hamilton_clip.mp4"
    proc = faceprint(tmp_path / "g.db", "liveness", "--json", "--max-frames", "40", str(clip), timeout=300)
    assert proc.returncode == 0, proc.stderr
    body = json.loads(proc.stdout)
    _check_schema(body, str(clip))
    assert body["tracks"] and all(t["end_s"] <= 40 / 29.97 for t in body["tracks"])
    text = faceprint(tmp_path / "g.db", "liveness", "--max-frames", "10", str(clip), timeout=300)
    assert text.returncode == 0 and "track" in text.stdout and "frames/s" in text.stderr


def test_cli_on_photos_and_bad_input(tmp_path: Path, data_dir: Path) -> None:
    sample = data_dir / "antispoof_minifasnet" / "sample"
    for name, live in (("image_T1.jpg", True), ("image_F1.jpg", False)):
        proc = faceprint(tmp_path / "g.db", "liveness", "--json", str(sample / name))
        assert proc.returncode == 0, proc.stderr
        body = json.loads(proc.stdout)
        _check_schema(body, str(sample / name))
        assert body["live"] is live and body["tracks"][0]["start_s"] == body["tracks"][0]["end_s"] == 0
    missing = faceprint(tmp_path / "g.db", "liveness", str(tmp_path / "nope.mp4"))
    assert missing.returncode == 1 and "nope.mp4" in missing.stderr and "Traceback" not in missing.stderr
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video")
    bad = faceprint(tmp_path / "g.db", "liveness", "--json", str(broken))
    assert bad.returncode == 1 and "broken.mp4" in bad.stderr and "Traceback" not in bad.stderr


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, engine: FaceEngine) -> Iterator[tuple[str, str]]:
    path = tmp_path_factory.mktemp("liveness") / "gallery.db"
    rec = Recognizer(Gallery(path), engine)
    store = ServerStore(path)
    read, _ = store.create_key("read", "reader")
    with serve(create_app(rec, store=store, max_upload_bytes=5_000_000)) as url:
        yield url, read


def test_endpoint(service: tuple[str, str], data_dir: Path) -> None:
    url, read = service
    sample = data_dir / "antispoof_minifasnet" / "sample"
    for name, live in (("image_T1.jpg", True), ("image_F2.jpg", False)):
        r = httpx.post(
            f"{url}/v1/liveness", files={"image": (name, (sample / name).read_bytes())}, headers={"X-API-Key": read}
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["live"] is live and body["faces"][0]["live"] is live
        assert set(body["faces"][0]["box"]) == {"left", "top", "right", "bottom"}
    empty = cv2.imencode(".png", np.full((64, 64, 3), 128, np.uint8))[1].tobytes()
    r = httpx.post(f"{url}/v1/liveness", files={"image": ("grey.png", empty)}, headers={"X-API-Key": read})
    assert r.status_code == 200 and r.json()["live"] is None and r.json()["faces"] == []
    bad = httpx.post(f"{url}/v1/liveness", files={"image": ("x.jpg", b"nope")}, headers={"X-API-Key": read})
    assert bad.status_code in (400, 415, 422) and "error" in bad.json()
    assert httpx.post(f"{url}/v1/liveness", files={"image": ("x.jpg", b"nope")}).status_code == 401


def test_identify_carries_live_when_asked(demo_gallery: Path, data_dir: Path) -> None:
    sample = data_dir / "antispoof_minifasnet" / "sample"
    proc = faceprint(
        demo_gallery, "identify", "--json", "--liveness", str(sample / "image_T1.jpg"), str(sample / "image_F2.jpg")
    )
    assert proc.returncode == 0, proc.stderr
    live, spoof = (json.loads(line) for line in proc.stdout.splitlines())
    assert live["faces"][0]["live"] is True and live["faces"][0]["live_score"] > 0.9
    assert spoof["faces"][0]["live"] is False and spoof["faces"][0]["live_score"] < 0.5
    plain = faceprint(demo_gallery, "identify", "--json", str(sample / "image_T1.jpg"))
    assert "live" not in json.loads(plain.stdout)["faces"][0]
