"""Face analysis: its speed, and the two geometric constants it was built with.

    python benchmarks/face_analysis.py --timing          # ms per face, one thread, by stage
    python benchmarks/face_analysis.py --mirror          # head pose of each face and of its mirror image
    python benchmarks/face_analysis.py --fit-roi         # the face mesh's crop (landmarks.ROI_SCALE, ROI_DOWN)
    python benchmarks/face_analysis.py --fit-canonical   # the canonical 3D face (pose.MIDLINE, pose.SIDES)

Both fits use LFW pairsDevTrain.txt images only (the face nearest the centre of each).
"""

from __future__ import annotations

import argparse
import os
import random
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from faceprint import FaceEngine, load_image  # noqa: E402
from faceprint.analyze import FaceAnalyzer, face_crop  # noqa: E402
from faceprint.analyze import landmarks as lm  # noqa: E402
from faceprint.analyze.measures import appearance, geometry  # noqa: E402
from faceprint.analyze.pose import MIDLINE, SIDES, head_pose  # noqa: E402
from faceprint.evaluate.extract import nearest_centre  # noqa: E402
from faceprint.evaluate.lfw import pair_images, parse_pairs  # noqa: E402
from faceprint.types import Face  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
#: adult outer-eye-corner distance the canonical face is scaled to (mm)
OUTER_EYES_MM = 90.0


def devtrain_faces(lfw: Path, n: int, seed: int, engine: FaceEngine) -> list[tuple[np.ndarray, Face]]:
    files = pair_images(lfw, parse_pairs(lfw / "pairsDevTrain.txt"))
    out = []
    for path in random.Random(seed).sample(files, n):
        image = load_image(path).pixels
        faces = engine.detect(image)
        if faces:
            h, w = image.shape[:2]
            out.append((image, engine.embed(image, [nearest_centre(faces, w, h)])[0]))
    return out


def timing(faces: list[tuple[np.ndarray, Face]]) -> None:
    models = lm.LandmarkModels()
    analyzer = FaceAnalyzer()
    quiet = FaceAnalyzer(expression="none", face_like=False)
    for image, face in faces[:5]:  # warm up: models load, caches fill
        analyzer.analyze(image, [face])
        quiet.analyze(image, [face])
    stages: dict[str, list[float]] = {}

    def clock(name: str, fn: object, *args: object) -> object:
        t = time.perf_counter()
        out = fn(*args)  # type: ignore[operator]
        stages.setdefault(name, []).append(1000 * (time.perf_counter() - t))
        return out

    for image, face in faces:
        dense = clock("mesh + 2 irises", models, image, face)
        h, w = image.shape[:2]
        clock("head pose (solvePnP)", head_pose, dense.points, (w, h))  # type: ignore[union-attr]
        clock("appearance + geometry", lambda d: (appearance(d), geometry(d)), dense)
        crop = face_crop(image, face, size=64)
        clock("expression (fer)", analyzer._models()[1].classify, crop)  # type: ignore[union-attr]
        clock("analyze(), no expression", quiet.analyze, image, [face])
        clock("analyze(), everything", analyzer.analyze, image, [face])
    for name, ms in stages.items():
        print(f"{name:28s} median {np.median(ms):5.2f} ms   p90 {np.percentile(ms, 90):5.2f} ms")
    print(f"({len(faces)} LFW faces, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}, one LiteRT thread)")


def mirror(faces: list[tuple[np.ndarray, Face]], engine: FaceEngine) -> None:
    """A mirrored photo must give the opposite yaw and roll and the same pitch."""
    analyzer = FaceAnalyzer(expression="none", face_like=False)
    diffs = []
    for image, face in faces:
        flipped = np.ascontiguousarray(image[:, ::-1])
        found = engine.detect(flipped)
        if not found:
            continue
        h, w = image.shape[:2]
        twin = engine.embed(flipped, [nearest_centre(found, w, h)])
        p = analyzer.analyze(image, [face])[0].analysis.pose  # type: ignore[union-attr]
        q = analyzer.analyze(flipped, twin)[0].analysis.pose  # type: ignore[union-attr]
        diffs.append((abs(p.yaw + q.yaw), abs(p.pitch - q.pitch), abs(p.roll + q.roll), abs(p.yaw), abs(p.pitch)))
    d = np.array(diffs)
    for k, name in enumerate(("yaw", "pitch", "roll")):
        median, p90 = np.median(d[:, k]), np.percentile(d[:, k], 90)
        print(f"{name}: mirror disagrees by {median:.1f} deg (median), {p90:.1f} (p90)")
    print(f"({len(d)} faces; |yaw| median {np.median(d[:, 3]):.1f}, p90 {np.percentile(d[:, 3], 90):.1f} deg; "
          f"|pitch| median {np.median(d[:, 4]):.1f} deg)")  # fmt: skip


def fit_roi(faces: list[tuple[np.ndarray, Face]], rounds: int = 4) -> None:
    """The crop MediaPipe's tracking would take (1.5 x the mesh's extent, centred on it, turned with
    the eye corners 33 -> 263) relative to the face box, iterated to a fixed point: the mesh found in
    one round's crop sets the next round's."""
    models = lm.LandmarkModels()
    for k in range(rounds):
        rows = []
        for image, face in faces:
            p = models(image, face).points[:, :2]
            d = p[263] - p[33]
            a = np.arctan2(d[1], d[0])
            turn = np.array([[np.cos(a), np.sin(a)], [-np.sin(a), np.cos(a)]])  # image -> face frame
            q = p @ turn.T
            lo, hi = q.min(0), q.max(0)
            left, top, right, bottom = face.box
            width = right - left
            box_centre = turn @ np.array([(left + right) / 2, (top + bottom) / 2])
            rows.append((1.5 * max(hi - lo) / width, ((lo + hi) / 2 - box_centre)[1] / width))
        scale, down = np.median(np.array(rows), axis=0)
        print(f"round {k}: ROI_SCALE {scale:.3f}, ROI_DOWN {down:.3f} (now {lm.ROI_SCALE}, {lm.ROI_DOWN})")
        lm.ROI_SCALE, lm.ROI_DOWN = round(float(scale), 2), round(float(down), 2)


def _kabsch(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The rotation r minimising |a r^T - b| (no reflection)."""
    u, _, vt = np.linalg.svd(a.T @ b)
    d = np.sign(np.linalg.det(vt.T @ u.T))
    return vt.T @ np.diag([1.0, 1.0, d]) @ u.T


def _turn_onto_x(v: np.ndarray) -> np.ndarray:
    """The smallest rotation taking direction ``v`` onto +x."""
    v = v / np.linalg.norm(v)
    axis = np.cross(v, [1.0, 0.0, 0.0])
    s, c = np.linalg.norm(axis), v[0]
    if s < 1e-12:
        return np.eye(3)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + k + k @ k * ((1 - c) / s**2)


def fit_canonical(faces: list[tuple[np.ndarray, Face]]) -> None:
    """Generalised Procrustes on the mesh's 3D output, turned to the faces' mean pose, levelled on
    the eye corners and made mirror-symmetric; prints the tables of faceprint.analyze.pose."""
    models = lm.LandmarkModels()
    shapes = []
    for image, face in faces:
        dense = models(image, face)
        if dense.presence > 5:
            s = dense.points - dense.points.mean(0)
            shapes.append(s / np.linalg.norm(s))
    x = np.array(shapes)
    mean = x[0]
    for _ in range(10):
        mean = np.mean([s @ _kabsch(s, mean).T for s in x], axis=0)
        mean /= np.linalg.norm(mean)
    u, _, vt = np.linalg.svd(np.mean([_kabsch(mean, s) for s in x], axis=0))
    mean = mean @ (u @ vt).T  # the faces' average orientation to the camera
    mean = mean @ _turn_onto_x(mean[263] - mean[33]).T
    mirror = mean * [-1, 1, 1]
    twin = ((mirror[:, None, :] - mean[None, :, :]) ** 2).sum(-1).argmin(1)  # each point's mirror image
    for _ in range(5):  # level on all the left-right pairs, not only the eye corners
        lateral = np.mean([mean[twin[i]] - mean[i] for i in range(len(mean)) if mean[i, 0] < 0 and twin[i] != i], 0)
        mean = mean @ _turn_onto_x(lateral).T
        mean[:, 0] -= mean[:, 0].mean()
    sym = (mean + (mean * [-1, 1, 1])[twin]) / 2
    sym *= OUTER_EYES_MM / np.linalg.norm(sym[263] - sym[33])
    print(f"{len(shapes)} faces; the mirror pairing is an involution on {np.mean(twin[twin] == np.arange(468)):.0%}")
    print("MIDLINE = {" + ", ".join(f"{i}: ({sym[i, 1]:.1f}, {sym[i, 2]:.1f})" for i in MIDLINE) + "}")
    print(
        "SIDES = {"
        + ", ".join(f"({a}, {b}): ({-sym[a, 0]:.1f}, {sym[a, 1]:.1f}, {sym[a, 2]:.1f})" for a, b in SIDES)
        + "}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default_data = Path(os.environ.get("FACEPRINT_DATA", REPO.parent / "shared" / "data"))
    parser.add_argument("--data", type=Path, default=default_data)
    parser.add_argument("--timing", action="store_true")
    parser.add_argument("--mirror", action="store_true")
    parser.add_argument("--fit-roi", action="store_true")
    parser.add_argument("--fit-canonical", action="store_true")
    parser.add_argument("--faces", type=int, default=None, help="how many DevTrain faces (200 / 800 for the fits)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    engine = FaceEngine()
    lfw = args.data / "lfw"
    if args.timing:
        timing(devtrain_faces(lfw, args.faces or 200, args.seed, engine))
    if args.mirror:
        mirror(devtrain_faces(lfw, args.faces or 300, args.seed, engine), engine)
    if args.fit_roi:
        fit_roi(devtrain_faces(lfw, args.faces or 200, args.seed, engine))
    if args.fit_canonical:
        fit_canonical(devtrain_faces(lfw, args.faces or 800, args.seed + 1, engine))


if __name__ == "__main__":
    main()
