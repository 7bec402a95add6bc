"""Clips for the liveness challenge tests: segments of the real recordings that perform an action,
and a constructed printed-photo replay (benchmarks/liveness_attacks.py), as frames or as .y4m
files for Chromium's fake camera. Everything is made at test time from ../shared/data.

The segments were found by running faceprint.video.series (yaw and eye closure per track) over the
clips; times are seconds into the file, boxes the face's box in the file's pixels around then.
"""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
SIMPLEFR = "videos/simplefr_Video_2.mp4"
HAMILTON = "videos/face_recognition_short_hamilton_clip.mp4"


@dataclass(frozen=True)
class Segment:
    clip: str
    start_s: float
    end_s: float
    box: tuple[int, int, int, int]  # the face, (left, top, right, bottom), in the clip's pixels
    what: str


#: a person turns their head from their left (yaw +34) to their right (yaw -10) in about a second
TURN_RIGHT = Segment(SIMPLEFR, 8.80, 10.30, (573, 132, 775, 333), "head turn to the right, 44 degrees")
#: Lin-Manuel Miranda on stage turns to his right (yaw +12 to -28), his face moving across the frame
HAMILTON_TURN = Segment(HAMILTON, 5.30, 7.00, (228, 41, 319, 132), "turn right on stage, yaw +12 to -28")
#: another person, head turned aside (yaw about -43), blinks once (14.85-15.06 s)
BLINK = Segment(SIMPLEFR, 14.15, 15.25, (729, 113, 890, 274), "one blink, eyes shut about 0.2 s")


def read_segment(data_dir: Path, seg: Segment) -> tuple[list[np.ndarray], float]:
    """The segment's frames (BGR) and the clip's frame rate."""
    cap = cv2.VideoCapture(str(data_dir / seg.clip))
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    cap.set(cv2.CAP_PROP_POS_FRAMES, max(0, int(seg.start_s * fps) - 1))
    frames = []
    while True:
        index = int(cap.get(cv2.CAP_PROP_POS_FRAMES))
        ok, frame = cap.read()
        if not ok or index / fps > seg.end_s:
            break
        if index / fps >= seg.start_s:
            frames.append(frame)
    cap.release()
    return frames, fps


def frame_on_face(
    frames: list[np.ndarray], box: tuple[int, int, int, int], size: tuple[int, int] = (640, 480), face_px: int = 200
) -> list[np.ndarray]:
    """Each frame cut and scaled so that ``box`` becomes ``face_px`` wide at the centre of a ``size``
    frame (the edge repeated where the cut leaves the frame): what a webcam a person sits at sees."""
    w, h = size
    scale = face_px / (box[2] - box[0])
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    m = np.array([[scale, 0, w / 2 - scale * cx], [0, scale, h / 2 - scale * cy]], np.float64)
    return [cv2.warpAffine(f, m, size, flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE) for f in frames]


def palindrome(frames: list[np.ndarray]) -> list[np.ndarray]:
    """Forward then back: looped (as Chromium's fake camera loops its file), the video has no jump,
    so the loop point cannot look like an action or a face swap."""
    return frames + frames[-2:0:-1]


def write_y4m(path: Path, frames: list[np.ndarray], fps: float) -> Path:
    """YUV4MPEG2: a text header, then per frame "FRAME" and its I420 planes (BGR frames, even sizes)."""
    h, w = frames[0].shape[:2]
    num, den = (24000, 1001) if abs(fps - 23.976) < 0.01 else (int(round(fps)), 1)
    with path.open("wb") as out:
        out.write(f"YUV4MPEG2 W{w} H{h} F{num}:{den} Ip A1:1 C420jpeg\n".encode())
        for frame in frames:
            out.write(b"FRAME\n" + cv2.cvtColor(frame, cv2.COLOR_BGR2YUV_I420).tobytes())
    return path


def _attacks() -> ModuleType:
    name = "liveness_attacks"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / "liveness_attacks.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up while the class is made
        spec.loader.exec_module(module)
    return sys.modules[name]


def card_replay(
    data_dir: Path,
    tmp: Path,
    person: str = "George_W_Bush",
    yaw_swing: float = 35.0,
    seconds: float = 4.0,
    seed: int = 5,
    background: str = "no_faces/skimage_brick.png",
) -> tuple[list[np.ndarray], float]:
    """A printed LFW photo held up and turned about its vertical axis by +-``yaw_swing`` degrees
    (the attacker "turning the head"), with the benchmark's print look, hand shake, blur and noise,
    640x480 at 25 fps: rendered by benchmarks/liveness_attacks.py, read back as frames. ``seed``
    draws the print's look and noise."""
    la = _attacks()
    spec = la.AttackSpec(
        name="card",
        split="report",
        kind="print",
        person=person,
        photo=f"lfw/{person}/{person}_0001.jpg",
        background=background,
        seed=seed,
        width=640,
        height=480,
        seconds=seconds,
        face_px=0.3 * 480,
        focal=1.2,
        base_deg=(0.0, 0.0, 0.0),
        swing_deg=(yaw_swing, 5.0, 3.0),
        swing_hz=(0.5, 0.3, 0.2),
        shift=0.05,
        zoom=0.05,
        shake_deg=0.5,
        shutter=0.3,
        noise=3.0,
        defocus=0.5,
        border=0.05,
        gamma=1.0,
        moire=0.0,
        glare=0.0,
    )
    clip = tmp / "card.mp4"
    la.render(spec, data_dir, clip)
    cap = cv2.VideoCapture(str(clip))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    return frames, la.FPS
