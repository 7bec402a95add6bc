"""Constructed presentation attacks for the liveness benchmark: printed-photo and screen replays.

    python benchmarks/liveness_attacks.py OUT_DIR                 # 24 print + 12 screen clips per split
    python benchmarks/liveness_attacks.py OUT_DIR --per-split 4   # a quick set

These clips are CONSTRUCTED, not recorded: an LFW photo (``lfw/<Name>/<Name>_0001.jpg``) is
"printed" (ink black level and paper white, gamma, a colour cast, paper grain, an optional white
border) or "shown on a screen" (a black bezel, a blue-white cast, moire from the beat between
the screen's pixel grid and the camera's, rolling refresh bands, a moving glare), and that card
is moved as a rigid plane in 3D in front of a real background photo (``no_faces/``): a smooth
hand-held path of tilt, turn, roll, shift and distance, plus hand shake, rendered through a
pinhole camera with motion blur (the shutter open over part of the frame), sensor noise and
defocus, and written with OpenCV's MPEG-4 (mp4v) codec (its H.264 encoder is not available in
this build). 640x480 or 1280x720, 25 fps, 1-4 s. Every strength is drawn from a range wider than
a real replay would likely show (from a card held almost still to one swung 35 degrees).

People are split by name into a ``tune`` and a ``report`` split (a seeded shuffle of the LFW
people with one photo or more), so no face is in both. Everything is seeded: the same arguments
give the same clips. A ``manifest.json`` lists each clip with its split, kind, person and the
drawn parameters. What this does not cover: real paper, real screens, masks, cut-out photos,
3D-printed or warped (bent) cards, and a person holding the card into view.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
FPS = 25.0
SIZES = ((640, 480), (1280, 720))
KINDS = ("print", "screen")
SPLITS = ("tune", "report")
#: a cat's face would start a track of its own
SKIP_BACKGROUNDS = {"skimage_chelsea.png"}


def data_dir(arg: str | None) -> Path:
    for candidate in (arg, os.environ.get("FACEPRINT_DATA"), REPO.parent / "shared" / "data"):
        if candidate and (Path(candidate) / "lfw").is_dir():
            return Path(candidate)
    sys.exit("no data: give --data DIR (the folder with lfw/ and no_faces/)")


@dataclass
class AttackSpec:
    """What one clip shows and how it moves (all drawn from ``seed``)."""

    name: str
    split: str
    kind: str
    person: str
    photo: str
    background: str
    seed: int
    width: int
    height: int
    seconds: float
    face_px: float  # the face's width in the frame, pixels
    focal: float  # focal length over frame width
    base_deg: tuple[float, float, float]  # mean yaw, pitch, roll of the card
    swing_deg: tuple[float, float, float]  # amplitude of the slow hand-held motion
    swing_hz: tuple[float, float, float]
    shift: float  # amplitude of the slow sideways/up-down motion, in card widths
    zoom: float  # amplitude of the distance change, as a fraction of the distance
    shake_deg: float  # hand shake (4-9 Hz) amplitude
    shutter: float  # fraction of the frame time the shutter is open (motion blur)
    noise: float  # sensor noise sigma (0-255 scale)
    defocus: float  # gaussian blur sigma, pixels
    border: float  # white (print) or black (screen) margin around the photo, fraction of its width
    gamma: float
    moire: float  # screen only: moire contrast
    glare: float  # screen only: glare strength


def people_split(root: Path, seed: int = 15) -> dict[str, list[str]]:
    """LFW people (names) per split: a seeded shuffle, halved."""
    names = sorted(p.name for p in (root / "lfw").iterdir() if p.is_dir())
    rng = np.random.default_rng(seed)
    rng.shuffle(names)
    half = len(names) // 2
    return {"tune": sorted(names[:half]), "report": sorted(names[half:])}


def draw_spec(root: Path, split: str, kind: str, index: int, people: list[str], backgrounds: list[Path]) -> AttackSpec:
    seed = 1000 * SPLITS.index(split) + 100 * KINDS.index(kind) + index
    rng = np.random.default_rng(seed)
    person = people[int(rng.integers(len(people)))]
    width, height = SIZES[int(rng.integers(len(SIZES)))]
    u = rng.uniform
    return AttackSpec(
        name=f"{split}_{kind}_{index:03d}",
        split=split,
        kind=kind,
        person=person,
        photo=f"lfw/{person}/{person}_0001.jpg",
        background=str(backgrounds[int(rng.integers(len(backgrounds)))].relative_to(root)),
        seed=seed,
        width=width,
        height=height,
        seconds=float(np.round(u(1.0, 4.0), 2)),
        face_px=float(u(0.12, 0.35) * height),
        focal=float(u(0.8, 1.6)),
        base_deg=(float(u(-20, 20)), float(u(-15, 15)), float(u(-12, 12))),
        swing_deg=tuple(float(u(0, 1) ** 2 * 35) for _ in range(2)) + (float(u(0, 10)),),  # type: ignore[arg-type]
        swing_hz=(float(u(0.15, 1.0)), float(u(0.15, 1.0)), float(u(0.1, 0.6))),
        shift=float(u(0, 0.25)),
        zoom=float(u(0, 0.2)),
        shake_deg=float(u(0, 2.0)),
        shutter=float(u(0, 0.8)),
        noise=float(u(0, 8)),
        defocus=float(u(0, 1.5)),
        border=float(u(0, 0.15)) if kind == "screen" or rng.random() < 0.6 else 0.0,
        gamma=float(u(0.75, 1.3)),
        moire=float(u(0.03, 0.15)) if kind == "screen" else 0.0,
        glare=float(u(0, 0.5)) if kind == "screen" else 0.0,
    )


def make_card(photo: np.ndarray, spec: AttackSpec, rng: np.random.Generator) -> np.ndarray:
    """The photo as printed on paper or lit on a screen (BGR uint8), upscaled 2x, with its margin."""
    card = cv2.resize(photo, None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC).astype(np.float32) / 255
    card = card**spec.gamma
    if spec.kind == "print":
        black, white = rng.uniform(0.05, 0.16), rng.uniform(0.84, 0.98)
        tint = 1 + rng.uniform(-0.06, 0.06, 3)
        grain = cv2.GaussianBlur(rng.normal(0, 1, card.shape[:2]).astype(np.float32), (0, 0), 1.2)
        card = (black + (white - black) * card) * tint + 0.02 * grain[..., None]
        margin_colour = white * tint
    else:
        card = 0.04 + 0.96 * card * np.array([1.08, 1.0, 0.93])  # screens run cool (BGR: more blue)
        margin_colour = np.full(3, 0.03)
    pad = int(round(spec.border * card.shape[1]))
    if pad:
        card = cv2.copyMakeBorder(card, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=margin_colour.tolist())
    return np.clip(card * 255, 0, 255).astype(np.uint8)


def background_frame(path: Path, width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise SystemExit(f"{path}: cannot read the background")
    scale = max(width / image.shape[1], height / image.shape[0]) * rng.uniform(1.0, 1.4)
    image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
    y0 = int(rng.integers(0, image.shape[0] - height + 1))
    x0 = int(rng.integers(0, image.shape[1] - width + 1))
    return np.ascontiguousarray(image[y0 : y0 + height, x0 : x0 + width])


def _rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    y, p, r = (math.radians(v) for v in (yaw, pitch, roll))
    ry = np.array([[math.cos(y), 0, math.sin(y)], [0, 1, 0], [-math.sin(y), 0, math.cos(y)]])
    rx = np.array([[1, 0, 0], [0, math.cos(p), -math.sin(p)], [0, math.sin(p), math.cos(p)]])
    rz = np.array([[math.cos(r), -math.sin(r), 0], [math.sin(r), math.cos(r), 0], [0, 0, 1]])
    return rz @ rx @ ry


class CardPath:
    """The card's pose over time: a smooth hand-held swing plus hand shake; ``homography(t)`` maps
    card pixels to frame pixels."""

    def __init__(self, spec: AttackSpec, card_w: int, card_h: int, photo_w: int, rng: np.random.Generator) -> None:
        self.spec = spec
        self.card_w, self.card_h = card_w, card_h
        self.f = spec.focal * spec.width
        # the face is about 45% of an LFW photo's width; the card is 1 unit wide
        face_units = 0.45 * photo_w / card_w
        self.z0 = self.f * face_units / spec.face_px
        self.phase = rng.uniform(0, 2 * math.pi, 8)
        self.shake_hz = rng.uniform(4, 9, 3)
        self.shake_phase = rng.uniform(0, 2 * math.pi, 3)
        # keep the card's centre well inside the frame
        self.x0 = rng.uniform(-0.15, 0.15) * spec.width / self.f * self.z0
        self.y0 = rng.uniform(-0.1, 0.1) * spec.height / self.f * self.z0

    def pose(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        s = self.spec
        angles = [
            s.base_deg[k]
            + s.swing_deg[k] * math.sin(2 * math.pi * s.swing_hz[k] * t + self.phase[k])
            + s.shake_deg * math.sin(2 * math.pi * self.shake_hz[k] * t + self.shake_phase[k])
            for k in range(3)
        ]
        rot = _rotation(*angles)
        z = self.z0 * (1 + s.zoom * math.sin(2 * math.pi * 0.3 * t + self.phase[3]))
        x = self.x0 + s.shift * math.sin(2 * math.pi * 0.4 * t + self.phase[4])
        y = self.y0 + 0.6 * s.shift * math.sin(2 * math.pi * 0.35 * t + self.phase[5])
        return rot, np.array([x, y, z])

    def homography(self, t: float) -> np.ndarray:
        rot, trans = self.pose(t)
        k = np.array([[self.f, 0, self.spec.width / 2], [0, self.f, self.spec.height / 2], [0, 0, 1]])
        # card pixel (u, v) -> card plane point ((u - w/2) / w, (v - h/2) / w, 0)
        to_plane = np.array(
            [[1 / self.card_w, 0, -0.5], [0, 1 / self.card_w, -0.5 * self.card_h / self.card_w], [0, 0, 1]]
        )
        return k @ np.column_stack([rot[:, 0], rot[:, 1], trans]) @ to_plane


def render(spec: AttackSpec, root: Path, out: Path) -> int:
    """Write one clip; returns its frame count."""
    rng = np.random.default_rng(spec.seed + 7)
    photo = cv2.imread(str(root / spec.photo), cv2.IMREAD_COLOR)
    if photo is None:
        raise SystemExit(f"{root / spec.photo}: cannot read the photo")
    card = make_card(photo, spec, rng)
    ch, cw = card.shape[:2]
    path = CardPath(spec, cw, ch, photo.shape[1] * 2, rng)
    background = background_frame(root / spec.background, spec.width, spec.height, rng).astype(np.float32)
    size = (spec.width, spec.height)
    # the card with an opaque alpha channel: one warp moves both, and the alpha blends the edges
    rgba = np.dstack([card, np.full((ch, cw), 255, np.uint8)])
    yy, xx = np.mgrid[0 : spec.height, 0 : spec.width].astype(np.float32)
    moire_f = rng.uniform(0.15, 0.45, 2) * rng.choice([-1, 1], 2)
    band_hz, band_period = rng.uniform(1, 6), rng.uniform(0.3, 1.0) * spec.height
    glare_xy = rng.uniform(0.2, 0.8, 2)
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), FPS, size)
    if not writer.isOpened():
        raise SystemExit(f"{out}: OpenCV cannot write mp4v video here")
    n = int(round(spec.seconds * FPS))
    subframes = 1 if spec.shutter < 0.05 else 4
    # sensor noise: a few frames of it, drawn once and rolled (drawing 2.7 M normals a frame is slow)
    noise_bank = rng.normal(0, spec.noise, (4, spec.height, spec.width, 3)).astype(np.float32)
    corners = np.array([[0, 0], [cw, 0], [cw, ch], [0, ch]], np.float32).reshape(-1, 1, 2)
    for i in range(n):
        t = i / FPS
        times = [t + (k / max(subframes - 1, 1)) * spec.shutter / FPS for k in range(subframes)]
        # the shutter is open from t to t + shutter / fps: average the card's positions over it,
        # warping only into the box the card covers
        hs = [path.homography(tk) for tk in times]
        spots = np.concatenate([cv2.perspectiveTransform(corners, h) for h in hs]).reshape(-1, 2)
        x0, y0 = np.clip(np.floor(spots.min(0)).astype(int) - 2, 0, None)
        x1, y1 = np.minimum(np.ceil(spots.max(0)).astype(int) + 2, (spec.width, spec.height))
        frame = background.copy()
        if x1 > x0 and y1 > y0:
            shift = np.array([[1, 0, -x0], [0, 1, -y0], [0, 0, 1]], np.float64)
            box = (int(x1 - x0), int(y1 - y0))
            acc = np.zeros((box[1], box[0], 4), np.float32)
            for h in hs:
                acc += cv2.warpPerspective(rgba, shift @ h, box, flags=cv2.INTER_LINEAR)
            acc /= subframes
            warped, mask = acc[..., :3], acc[..., 3:] / 255
            if spec.kind == "screen":
                # the screen's pixel grid beats with the sensor's: fine stripes over the screen only,
                # fixed to the sensor; refresh bands roll down; a glare moves across
                ys, xs = yy[y0:y1, x0:x1], xx[y0:y1, x0:x1]
                phase = 2 * math.pi * (moire_f[0] * xs + moire_f[1] * ys) + 0.7 * t
                light = (1 + spec.moire * np.sin(phase)) * (
                    1 + 0.5 * spec.moire * np.sin(2 * math.pi * (ys / band_period + band_hz * t))
                )
                gx, gy = glare_xy * (spec.width, spec.height) + 40 * math.sin(t) * np.array([1, 0.5])
                glow = np.exp(-(((xs - gx) ** 2 + (ys - gy) ** 2) / (2 * (0.12 * spec.width) ** 2)))
                warped = warped * light[..., None] + 255 * spec.glare * glow[..., None] * mask
            frame[y0:y1, x0:x1] = warped + frame[y0:y1, x0:x1] * (1 - mask)
        if spec.defocus > 0.3:
            frame = cv2.GaussianBlur(frame, (0, 0), spec.defocus)
        frame += np.roll(noise_bank[i % len(noise_bank)], int(rng.integers(0, spec.width)), axis=1)
        writer.write(np.clip(frame, 0, 255).astype(np.uint8))
    writer.release()
    return n


def build(root: Path, out_dir: Path, per_split: int, screens_per_split: int) -> list[dict[str, object]]:
    out_dir.mkdir(parents=True, exist_ok=True)
    splits = people_split(root)
    backgrounds = sorted(p for p in (root / "no_faces").iterdir() if p.name not in SKIP_BACKGROUNDS)
    manifest = []
    for split in SPLITS:
        for kind, count in (("print", per_split), ("screen", screens_per_split)):
            for index in range(count):
                spec = draw_spec(root, split, kind, index, splits[split], backgrounds)
                clip = out_dir / f"{spec.name}.mp4"
                frames = render(spec, root, clip)
                manifest.append({"clip": clip.name, "frames": frames, **asdict(spec)})
                print(f"{clip.name}: {spec.person}, {spec.width}x{spec.height}, {spec.seconds:.1f} s", file=sys.stderr)
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return manifest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, help="folder for the clips and manifest.json")
    parser.add_argument("--data", help="data folder (default: $FACEPRINT_DATA or ../shared/data)")
    parser.add_argument("--per-split", type=int, default=24, help="printed-photo clips per split")
    parser.add_argument("--screens-per-split", type=int, default=None, help="screen clips per split (default: half)")
    args = parser.parse_args()
    screens = args.screens_per_split if args.screens_per_split is not None else args.per_split // 2
    manifest = build(data_dir(args.data), args.out, args.per_split, screens)
    print(f"{len(manifest)} clips in {args.out}")


if __name__ == "__main__":
    main()
