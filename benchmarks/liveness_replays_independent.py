"""Independent printed-photo replay clips for checking `faceprint liveness` (constructed data).

Every clip this script writes is CONSTRUCTED: a real LFW photo (people whose names start with N-Z) is
rendered as a printed card (print tone curve with lifted blacks and dimmed whites, gamma, colour cast,
desaturation, dot gain, paper grain, sometimes a paper-white margin), then moved as a hand-held card in
front of a real background image (``no_faces/``): a smooth time-varying 3D pose of a plane (yaw and
pitch up to +-30 deg, roll, translation, approach), high-frequency hand shake, lighting that follows the
card's normal, motion blur from sub-frame rendering, sensor noise, an optional JPEG pass and mp4v
compression. Sub-types:

- ``moving``: large smooth motion, the way an attacker waves a photo at a camera;
- ``still``: the card held nearly still (tiny motion and shake only);
- ``bent``: the paper bent as a cylinder (real paper bends), with the bend flexing over time.

It was written without reading ``benchmarks/liveness_attacks.py`` or the liveness code, to test whether
the liveness decision generalises to replays built by someone else. It does not cover real paper, real
printers, real cameras, screens, masks or cut-out photos. Sizes: 640x480 and 1280x720, 25 or 30 fps,
1.5-4 s, face widths about 80-300 px. Seeds are fixed, so the same arguments give the same clips.

    .venv/bin/python benchmarks/liveness_replays_independent.py --out /tmp/indep_replays --n 30
    .venv/bin/python benchmarks/liveness_replays_independent.py --out /tmp/indep_replays --n 30 --skip-render \\
        --evaluate --reference --bona-fide

The default seed's 30 clips are the report set. Tune on clips of another seed, e.g. ``--n 24 --seed 4242``
(the set ``benchmarks/liveness.py --tune --independent DIR`` fitted the fusion thresholds on).

``--evaluate`` prints APCER of ``faceprint liveness --json`` over the attack tracks of >= 1 s (overall and by
sub-type), ``--reference`` MiniFASNet alone as its authors run it (mean live score over 12 evenly spread frames
above 0.5), ``--bona-fide`` BPCER over the real recordings' tracks of >= 2 s.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
# The deep-funneled LFW face spans roughly this fraction of the 250 px image width.
FACE_FRAC = 0.44
SUBTYPES = ("moving", "still", "bent")


@dataclass
class ClipSpec:
    """Everything that defines one clip; written to the manifest so a clip can be explained."""

    name: str
    subtype: str
    photo: str
    background: str
    width: int
    height: int
    fps: int
    seconds: float
    face_px: float
    margin: float
    yaw_peak: float
    pitch_peak: float
    roll_peak: float
    shake_deg: float
    shake_px: float
    bend_deg: float
    bend_axis: str
    jpeg_quality: int | None
    noise_sigma: float
    exposure: float
    seed: list[int] = field(default_factory=list)


def _lfw_people(lfw: Path) -> list[Path]:
    return sorted(p for p in lfw.iterdir() if p.is_dir() and "N" <= p.name[:1].upper() <= "Z")


def _backgrounds(no_faces: Path) -> list[Path]:
    return sorted(p for p in no_faces.iterdir() if p.suffix.lower() in {".png", ".jpg", ".jpeg"})


def print_card(photo: np.ndarray, rng: np.random.Generator, margin: float) -> np.ndarray:
    """Photo -> how it looks on paper: compressed tonal range, gamma, cast, desaturation, dot gain."""
    img = cv2.resize(photo, (photo.shape[1] * 2, photo.shape[0] * 2), interpolation=cv2.INTER_CUBIC)
    x = img.astype(np.float32) / 255.0
    gray = x.mean(axis=2, keepdims=True)
    x = x + rng.uniform(0.0, 0.3) * (gray - x)  # inkjet/laser prints lose saturation
    black, white = rng.uniform(0.05, 0.16), rng.uniform(0.84, 0.97)
    x = black + (white - black) * np.clip(x, 0, 1) ** rng.uniform(0.8, 1.25)
    cast = rng.uniform(0.93, 1.05, size=3).astype(np.float32)
    x = x * cast
    x = cv2.GaussianBlur(x, (0, 0), rng.uniform(0.6, 1.3))  # dot gain
    x = x + rng.normal(0.0, rng.uniform(0.004, 0.015), size=x.shape[:2])[..., None].astype(np.float32)
    if margin > 0:
        pad = int(round(margin * x.shape[1]))
        paper = (white * cast).reshape(1, 1, 3)
        out = np.empty((x.shape[0] + 2 * pad, x.shape[1] + 2 * pad, 3), np.float32)
        out[:] = paper
        out[pad : pad + x.shape[0], pad : pad + x.shape[1]] = x
        x = out
    return np.clip(x * 255.0, 0, 255).astype(np.uint8)


def _rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    y, p, r = np.radians([yaw, pitch, roll])
    ry = np.array([[math.cos(y), 0, math.sin(y)], [0, 1, 0], [-math.sin(y), 0, math.cos(y)]])
    rx = np.array([[1, 0, 0], [0, math.cos(p), -math.sin(p)], [0, math.sin(p), math.cos(p)]])
    rz = np.array([[math.cos(r), -math.sin(r), 0], [math.sin(r), math.cos(r), 0], [0, 0, 1]])
    return rz @ ry @ rx


class Trajectory:
    """Smooth pose (a few slow sinusoids) plus hand shake (several fast ones) for one clip."""

    def __init__(self, spec: ClipSpec, rng: np.random.Generator) -> None:
        self.spec = spec
        still = spec.subtype == "still"

        def slow(peak: float) -> list[tuple[float, float, float]]:
            w = rng.dirichlet([2.0, 2.0])
            lo, hi = (0.05, 0.3) if still else (0.15, 0.9)
            return [(peak * wk, rng.uniform(lo, hi), rng.uniform(0, 2 * math.pi)) for wk in w]

        def fast(peak: float) -> list[tuple[float, float, float]]:
            w = rng.dirichlet([1.0, 1.0, 1.0])
            return [(peak * wk, rng.uniform(4.0, 12.0), rng.uniform(0, 2 * math.pi)) for wk in w]

        frame_w, frame_h = spec.width, spec.height
        self.base = {
            "yaw": rng.uniform(-6, 6) if not still else rng.uniform(-10, 10),
            "pitch": rng.uniform(-6, 6) if not still else rng.uniform(-10, 10),
            "roll": rng.uniform(-8, 8),
            "x": rng.uniform(-0.12, 0.12) * frame_w,
            "y": rng.uniform(-0.08, 0.08) * frame_h,
        }
        move = 0.02 if still else rng.uniform(0.08, 0.22)
        self.slow = {
            "yaw": slow(spec.yaw_peak),
            "pitch": slow(spec.pitch_peak),
            "roll": slow(spec.roll_peak),
            "x": slow(move * frame_w),
            "y": slow(move * 0.7 * frame_h),
            "scale": slow(0.01 if still else rng.uniform(0.08, 0.25)),
            "bend": slow(0.25 * spec.bend_deg),
        }
        self.fast = {
            "yaw": fast(spec.shake_deg),
            "pitch": fast(spec.shake_deg),
            "roll": fast(spec.shake_deg * 0.6),
            "x": fast(spec.shake_px),
            "y": fast(spec.shake_px),
        }

    @staticmethod
    def _sum(terms: list[tuple[float, float, float]], t: float) -> float:
        return sum(a * math.sin(2 * math.pi * f * t + ph) for a, f, ph in terms)

    def pose(self, t: float) -> dict[str, float]:
        out = {}
        for key in ("yaw", "pitch", "roll", "x", "y"):
            out[key] = self.base[key] + self._sum(self.slow[key], t) + self._sum(self.fast[key], t)
        out["yaw"] = float(np.clip(out["yaw"], -30, 30))
        out["pitch"] = float(np.clip(out["pitch"], -30, 30))
        out["scale"] = 1.0 + self._sum(self.slow["scale"], t)
        out["bend"] = max(0.0, self.spec.bend_deg + self._sum(self.slow["bend"], t))
        return out


class CardRenderer:
    """Projects a (possibly bent) card through a pinhole camera onto the background."""

    def __init__(self, card: np.ndarray, spec: ClipSpec, light: np.ndarray) -> None:
        self.card = card
        self.spec = spec
        self.light = light
        self.focal = 0.9 * spec.width
        h, w = card.shape[:2]
        # World unit = width of the photo itself (without margin): face_px at depth z0 when frontal.
        self.photo_w_px = w / (1 + 2 * spec.margin)
        self.z0 = self.focal * FACE_FRAC / spec.face_px
        self.strips = 14 if spec.subtype == "bent" else 1
        self.alpha_src = np.full((h, w), 255, np.uint8)

    def _surface(self, u: np.ndarray, v: np.ndarray, bend_deg: float) -> np.ndarray:
        """Texture pixel coords -> 3D points on the card in its own frame (a cylinder when bent)."""
        h, w = self.card.shape[:2]
        x = (u - w / 2) / self.photo_w_px
        y = (v - h / 2) / self.photo_w_px
        along, across = (x, y) if self.spec.bend_axis == "vertical" else (y, x)
        span = w / self.photo_w_px
        if bend_deg > 0.5:
            radius = span / math.radians(bend_deg)
            a = radius * np.sin(along / radius)
            z = radius * (1 - np.cos(along / radius))  # edges curl toward the camera
        else:
            a, z = along, np.zeros_like(along)
        px, py = (a, across) if self.spec.bend_axis == "vertical" else (across, a)
        return np.stack([px, py, -z], axis=-1)

    def render(self, pose: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
        """Returns the card layer (float BGR) and its alpha (float 0..1) at this pose."""
        sw, sh = self.spec.width, self.spec.height
        h, w = self.card.shape[:2]
        rot = _rotation(pose["yaw"], pose["pitch"], pose["roll"])
        z = self.z0 / pose["scale"]
        trans = np.array([pose["x"] * z / self.focal, pose["y"] * z / self.focal, z])
        layer = np.zeros((sh, sw, 3), np.float32)
        alpha = np.zeros((sh, sw), np.float32)
        vertical = self.spec.bend_axis == "vertical"
        n = self.strips
        edges = np.linspace(0, w if vertical else h, n + 1)
        for i in range(n):
            a0, a1 = edges[i], edges[i + 1]
            if vertical:
                quad = np.array([[a0, 0], [a1, 0], [a1, h], [a0, h]], np.float64)
            else:
                quad = np.array([[0, a0], [w, a0], [w, a1], [0, a1]], np.float64)
            pts = self._surface(quad[:, 0], quad[:, 1], pose["bend"]) @ rot.T + trans
            img = np.stack(
                [self.focal * pts[:, 0] / pts[:, 2] + sw / 2, self.focal * pts[:, 1] / pts[:, 2] + sh / 2], axis=1
            )
            normal = np.cross(pts[1] - pts[0], pts[3] - pts[0])
            normal = normal / (np.linalg.norm(normal) + 1e-9)
            gain = 0.78 + 0.32 * abs(float(normal @ self.light))
            hmat = cv2.getPerspectiveTransform(quad.astype(np.float32), img.astype(np.float32))
            # 1 px overlap between strips avoids seams in the alpha.
            lo, hi = int(math.floor(a0)), int(math.ceil(a1)) + (1 if i < n - 1 else 0)
            src = np.zeros_like(self.card)
            msk = np.zeros_like(self.alpha_src)
            if vertical:
                src[:, lo:hi], msk[:, lo:hi] = self.card[:, lo:hi], 255
            else:
                src[lo:hi], msk[lo:hi] = self.card[lo:hi], 255
            warped = cv2.warpPerspective(src, hmat, (sw, sh), flags=cv2.INTER_LINEAR)
            wa = cv2.warpPerspective(msk, hmat, (sw, sh), flags=cv2.INTER_LINEAR).astype(np.float32) / 255.0
            take = wa > alpha
            layer[take] = warped[take].astype(np.float32) * gain
            alpha = np.maximum(alpha, wa)
        return layer, alpha


def _background(path: Path, spec: ClipSpec, rng: np.random.Generator) -> np.ndarray:
    bg = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bg is None:
        raise SystemExit(f"error: {path}: cannot read background image")
    zoom = rng.uniform(1.05, 1.4) * max(spec.width / bg.shape[1], spec.height / bg.shape[0])
    bg = cv2.resize(
        bg, (int(math.ceil(bg.shape[1] * zoom)), int(math.ceil(bg.shape[0] * zoom))), interpolation=cv2.INTER_LINEAR
    )
    y0 = int(rng.integers(0, bg.shape[0] - spec.height + 1))
    x0 = int(rng.integers(0, bg.shape[1] - spec.width + 1))
    bg = bg[y0 : y0 + spec.height, x0 : x0 + spec.width]
    # The card is in focus, the room behind it usually is not.
    return cv2.GaussianBlur(bg, (0, 0), rng.uniform(0.5, 2.5)).astype(np.float32)


def make_spec(index: int, subtype: str, seed: int, people: list[Path], bgs: list[Path]) -> ClipSpec:
    rng = np.random.default_rng([seed, index])
    person = people[int(rng.integers(len(people)))]
    photos = sorted(person.glob("*.jpg"))
    photo = photos[int(rng.integers(len(photos)))]
    big = bool(rng.random() < 0.5)
    width, height = (1280, 720) if big else (640, 480)
    face_px = rng.uniform(120, 300) if big else rng.uniform(80, 170)
    still = subtype == "still"
    return ClipSpec(
        name=f"replay_{index:02d}_{subtype}",
        subtype=subtype,
        photo=str(photo),
        background=str(bgs[int(rng.integers(len(bgs)))]),
        width=width,
        height=height,
        fps=int(rng.choice([25, 30])),
        seconds=float(rng.uniform(1.5, 4.0)),
        face_px=float(face_px),
        margin=float(rng.uniform(0.04, 0.12)) if rng.random() < 0.5 else 0.0,
        yaw_peak=float(
            rng.uniform(0.5, 2.0) if still else rng.uniform(8, 30) if subtype == "moving" else rng.uniform(4, 18)
        ),
        pitch_peak=float(rng.uniform(0.5, 2.0) if still else rng.uniform(5, 25)),
        roll_peak=float(rng.uniform(0.3, 1.5) if still else rng.uniform(3, 12)),
        shake_deg=float(rng.uniform(0.1, 0.4) if still else rng.uniform(0.3, 1.2)),
        shake_px=float(rng.uniform(0.3, 1.2) if still else rng.uniform(1.0, 4.0)),
        bend_deg=float(rng.uniform(20, 60)) if subtype == "bent" else 0.0,
        bend_axis=str(rng.choice(["vertical", "horizontal"])),
        jpeg_quality=int(rng.integers(55, 91)) if rng.random() < 0.6 else None,
        noise_sigma=float(rng.uniform(1.5, 6.0)),
        exposure=float(rng.uniform(0.25, 0.8)),
        seed=[seed, index],
    )


def render_clip(spec: ClipSpec, out: Path) -> Path:
    rng = np.random.default_rng([*spec.seed, 1])
    photo = cv2.imread(spec.photo, cv2.IMREAD_COLOR)
    if photo is None:
        raise SystemExit(f"error: {spec.photo}: cannot read LFW photo")
    card = print_card(photo, rng, spec.margin)
    bg = _background(Path(spec.background), spec, rng)
    light = rng.normal(size=3)
    light[2] = -abs(light[2]) - 1.0  # light from the camera's side of the card
    light /= np.linalg.norm(light)
    traj = Trajectory(spec, rng)
    renderer = CardRenderer(card, spec, light)
    path = out / f"{spec.name}.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), spec.fps, (spec.width, spec.height))
    if not writer.isOpened():
        raise SystemExit(f"error: {path}: cv2.VideoWriter (mp4v) cannot open it")
    subs = 3  # sub-frame renders across the exposure give motion blur along the true motion
    for k in range(int(round(spec.seconds * spec.fps))):
        t0 = k / spec.fps
        acc = np.zeros_like(bg)
        for s in range(subs):
            t = t0 + spec.exposure / spec.fps * (s / (subs - 1) - 0.5)
            layer, alpha = renderer.render(traj.pose(t))
            acc += bg * (1 - alpha[..., None]) + layer * alpha[..., None]
        frame = acc / subs
        frame += rng.normal(0.0, spec.noise_sigma, size=frame.shape[:2])[..., None]  # luma noise
        frame += rng.normal(0.0, spec.noise_sigma * 0.5, size=frame.shape)  # chroma noise
        frame8 = np.clip(frame, 0, 255).astype(np.uint8)
        if spec.jpeg_quality is not None:  # webcams that stream MJPEG
            ok, buf = cv2.imencode(".jpg", frame8, [cv2.IMWRITE_JPEG_QUALITY, spec.jpeg_quality])
            frame8 = cv2.imdecode(buf, cv2.IMREAD_COLOR) if ok else frame8
        writer.write(frame8)
    writer.release()
    return path


def generate(out: Path, n: int, seed: int) -> list[ClipSpec]:
    people = _lfw_people(DATA / "lfw")
    bgs = _backgrounds(DATA / "no_faces")
    out.mkdir(parents=True, exist_ok=True)
    # About half moving, a quarter still, a quarter bent.
    kinds = [SUBTYPES[0] if i % 4 in (0, 2) else SUBTYPES[1] if i % 4 == 1 else SUBTYPES[2] for i in range(n)]
    specs = [make_spec(i, kind, seed, people, bgs) for i, kind in enumerate(kinds)]
    for spec in specs:
        render_clip(spec, out)
        print(
            f"wrote {spec.name}.mp4  {spec.width}x{spec.height}@{spec.fps} {spec.seconds:.1f}s "
            f"face~{spec.face_px:.0f}px {Path(spec.photo).parent.name}",
            flush=True,
        )
    (out / "manifest.json").write_text(json.dumps([asdict(s) for s in specs], indent=1))
    return specs


def run_cli(clip: Path) -> dict:
    exe = Path(sys.executable).with_name("faceprint")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([str(exe), "liveness", "--json", str(clip)], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1:] or [f"exit {proc.returncode}"], "tracks": []}
    return json.loads(proc.stdout)


def evaluate(out: Path, specs: list[ClipSpec], min_s: float) -> None:
    """Per-track decisions of `faceprint liveness --json` on the clips; APCER overall and by sub-type."""
    rows = []
    for spec in specs:
        res = run_cli(out / f"{spec.name}.mp4")
        (out / f"{spec.name}.liveness.json").write_text(json.dumps(res, indent=1))
        long = [t for t in res.get("tracks", []) if t["end_s"] - t["start_s"] >= min_s]
        for t in long:
            rows.append((spec.subtype, spec.name, t))
        acc = [t for t in long if t["live"]]
        print(
            f"{spec.name}: {len(long)} track(s) >= {min_s}s, accepted {len(acc)}"
            + (f"  error={res['error']}" if "error" in res else ""),
            flush=True,
        )
        for t in acc:
            checks = {k: (v["passed"], round(v["value"], 3)) for k, v in t["checks"].items()}
            print(f"   ACCEPTED track {t['track_id']} score={t['score']:.3f} checks={checks}")
    print(f"\n| sub-type | attack tracks >= {min_s} s | accepted | APCER |\n|---|---|---|---|")
    for kind in (*SUBTYPES, "all"):
        sel = [r for r in rows if kind in ("all", r[0])]
        acc = sum(1 for r in sel if r[2]["live"])
        print(f"| {kind} | {len(sel)} | {acc} | {acc / len(sel) if sel else float('nan'):.3f} |")


def reference(out: Path, specs: list[ClipSpec], frames: int = 12) -> None:
    """MiniFASNet alone, as its authors and deepface run it: mean live score of the largest face over
    ``frames`` frames spread evenly through the clip; the clip is accepted when the mean is above 0.5."""
    from faceprint.engine import FaceEngine
    from faceprint.liveness.passive import PassiveLiveness

    engine, model = FaceEngine(), PassiveLiveness()
    accepted = 0
    for spec in specs:
        cap = cv2.VideoCapture(str(out / f"{spec.name}.mp4"))
        total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        want = set(np.linspace(0, total - 1, frames).round().astype(int).tolist())
        scores = []
        for k in range(total):
            ok, frame = cap.read()
            if not ok:
                break
            if k in want:
                faces = engine.detect(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
                if faces:
                    scores.append(model.score(frame, faces[0]))
        cap.release()
        mean = float(np.mean(scores)) if scores else float("nan")
        accepted += bool(mean > 0.5)
        print(
            f"{spec.name}: faces in {len(scores)}/{len(want)} frames, mean live {mean:.3f}"
            + ("  ACCEPTED" if mean > 0.5 else ""),
            flush=True,
        )
    print(f"\nMiniFASNet alone (12-frame mean > 0.5): accepted {accepted}/{len(specs)} replay clips")


def bona_fide(out: Path, clips: list[Path], min_s: float) -> None:
    """BPCER of `faceprint liveness --json` over the real recordings' tracks of >= ``min_s`` seconds."""
    total = rejected = 0
    for clip in clips:
        res = run_cli(clip)
        (out / f"{clip.stem}.liveness.json").write_text(json.dumps(res, indent=1))
        for t in res.get("tracks", []):
            if t["end_s"] - t["start_s"] < min_s:
                continue
            total += 1
            rejected += not t["live"]
            checks = {
                k: (v["passed"], None if v["value"] is None else round(v["value"], 3)) for k, v in t["checks"].items()
            }
            print(
                f"{clip.name} track {t['track_id']} {t['start_s']:.1f}-{t['end_s']:.1f}s live={t['live']} "
                f"score={t['score']:.3f} checks={checks}",
                flush=True,
            )
    print(
        f"\nbona fide tracks >= {min_s} s: {total}, rejected {rejected}, "
        f"BPCER {rejected / total if total else float('nan'):.3f}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True, help="folder for the clips (not the repo)")
    ap.add_argument("--n", type=int, default=30)
    ap.add_argument("--seed", type=int, default=20261129)
    ap.add_argument("--evaluate", action="store_true", help="run `faceprint liveness --json` on every clip")
    ap.add_argument("--min-track-s", type=float, default=1.0)
    ap.add_argument("--skip-render", action="store_true", help="reuse clips already in --out")
    ap.add_argument("--reference", action="store_true", help="also score the clips with MiniFASNet alone")
    ap.add_argument(
        "--bona-fide",
        action="store_true",
        help="also run the real recordings (Hamilton, SimpleFR) and print BPCER over tracks >= 2 s",
    )
    args = ap.parse_args()
    if args.skip_render:
        specs = [ClipSpec(**d) for d in json.loads((args.out / "manifest.json").read_text())][: args.n]
    else:
        specs = generate(args.out, args.n, args.seed)
    if args.evaluate:
        evaluate(args.out, specs, args.min_track_s)
    if args.reference:
        reference(args.out, specs)
    if args.bona_fide:
        videos = DATA / "videos"
        bona_fide(args.out, [videos / "face_recognition_short_hamilton_clip.mp4", videos / "simplefr_Video_2.mp4"], 2.0)


if __name__ == "__main__":
    main()
