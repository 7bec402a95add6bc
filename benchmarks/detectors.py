"""Face detectors compared on our data: dlib HOG, dlib MMOD (subset) and BlazeFace configs.

    python benchmarks/detectors.py                  # full table (15-25 min on 2 shared cores)
    python benchmarks/detectors.py --quick          # fewer images, no verification (~1 min)
    python benchmarks/detectors.py --speed-only     # the two ms columns only
    python benchmarks/detectors.py --backend opencv # BlazeFace on OpenCV DNN, not LiteRT
    python benchmarks/detectors.py --mmod-groups    # also run MMOD on the group photos (slow)
    python benchmarks/detectors.py --fit-box-map    # refit blazeface.BOX_MAP on pairsDevTrain

Detectors: hog = dlib HOG, upsample 1 (the current default); mmod = dlib's CNN, upsample 1;
bf-* = BlazeFaceDetector with the "full", "back" or "short" model, "-tile" = tile="auto"
(whole image + tiles of half the long side on images of 480 px or more).

Columns:
  lfw miss      images of the first fold of pairs.txt (807 images) where no face was found
  groups        images whose face count is in the expected range / images (29: group_photos/
                but the crowd, all of compreface_sample_images/, face_recognition's 2-face
                images); counts by eye are in EXPECTED below, compreface counts are the
                number of annotated noses
  noses         compreface faces whose annotated nose tip lies in a box / all (46), and
                boxes containing no annotated nose (false positives)
  nofaces FP    faces reported on no_faces/ (14 images, a cat's face among them)
  crowd         faces found on retinaface_crowd_test.jpg (dense crowd; no exact count)
  ms 250        median ms per LFW 250x250 image, detection + 5 landmarks
  ms 720p       median ms per 1280x720 frame of simplefr_Video_2.mp4
  720p faces    faces found over 24 frames spread over that video (HOG as the reference)
  verif acc     LFW pairsDevTest (1,000 pairs) accuracy with dlib ResNet descriptors,
                Euclidean threshold 0.6 (dlib's); a pair with no face counts as an error
  best acc      the same at the best threshold on these pairs (an upper bound)
  cos vs hog    cosine of each DevTest face's descriptor against HOG's alignment of the
                same image: median / 1st percentile / min (the min is an image where HOG
                boxed another face). "-tile" rows repeat the untiled row: no tiles at 250 px

Every detector runs single-threaded (OpenCV and LiteRT set to 1 thread), as the engine
runs one image per worker. Images are downscaled to a 1600 px long side for detection, as
FaceEngine does. MMOD (dlib's CNN, 2.5 s per LFW image, ~40 s per 720p frame here) runs
on a subset only: 21 LFW images, 4 images / 1 frame for the timings.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
try:  # run from a checkout without installing: use the repo's src/
    import faceprint  # noqa: F401
except ImportError:
    sys.path.insert(0, str(REPO / "src"))

from faceprint.detect.base import Detector  # noqa: E402
from faceprint.image import load_image  # noqa: E402
from faceprint.types import Face  # noqa: E402

MAX_SIDE = 1600

# (min, max) faces by eye; a range where a face is cut by the frame or turned away
EXPECTED: dict[str, tuple[int, int]] = {
    "group_photos/deepface_couple.jpg": (2, 2),
    "group_photos/deepface_selfie-many-people.jpg": (4, 7),  # 4 whole, 3 cut by the frame
    "group_photos/faceapijs_bbt1.jpg": (4, 4),
    "group_photos/faceapijs_bbt2.jpg": (3, 4),  # 2 in front, 1 behind, 1 turned away
    "group_photos/faceapijs_bbt3.jpg": (5, 5),
    "group_photos/faceapijs_bbt4.jpg": (6, 6),
    "group_photos/faceapijs_bbt5.jpg": (5, 5),
    "group_photos/facenet_pytorch_multiface.jpg": (6, 6),
    "face_recognition_examples/examples/two_people.jpg": (2, 2),
    # a girl's face, half hidden, at the bottom right besides the two named faces
    "face_recognition_examples/examples/knn_examples/test/obama_and_biden.jpg": (2, 3),
    "face_recognition_examples/examples/knn_examples/test/kit_with_rose.jpg": (2, 2),
}
CROWD = "group_photos/retinaface_crowd_test.jpg"


def data_dir(arg: str | None) -> Path:
    for candidate in (arg, os.environ.get("FACEPRINT_DATA"), REPO.parent / "shared" / "data"):
        if candidate and (Path(candidate) / "lfw").is_dir():
            return Path(candidate)
    sys.exit("data not found: pass --data DIR (holding lfw/) or set FACEPRINT_DATA")


def detector_factories(with_mmod: bool, backend: str = "auto") -> dict[str, Callable[[], Detector]]:
    from faceprint.detect.blazeface import BlazeFaceDetector
    from faceprint.detect.dlib_detectors import HogDetector, MmodDetector

    out: dict[str, Callable[[], Detector]] = {
        "hog": lambda: HogDetector(upsample=1),
        "bf-full-tile": lambda: BlazeFaceDetector("full", tile="auto", backend=backend),
        "bf-full": lambda: BlazeFaceDetector("full", tile=None, backend=backend),
        "bf-back": lambda: BlazeFaceDetector("back", tile=None, backend=backend),
        "bf-back-tile": lambda: BlazeFaceDetector("back", tile="auto", backend=backend),
        "bf-short": lambda: BlazeFaceDetector("short", tile=None, backend=backend),
    }
    if with_mmod:
        out["mmod"] = lambda: MmodDetector(upsample=1)
    return out


def detect_scaled(det: Detector, image: np.ndarray) -> list[Face]:
    """As FaceEngine.detect: detect on a copy with a long side of at most MAX_SIDE."""
    import cv2

    h, w = image.shape[:2]
    scale = min(1.0, MAX_SIDE / max(h, w))
    if scale == 1.0:
        return det.detect(image)
    small = cv2.resize(image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    faces = det.detect(small)
    for f in faces:
        f.box = tuple(int(round(v / scale)) for v in f.box)  # type: ignore[assignment]
        if f.landmarks is not None:
            f.landmarks = f.landmarks / scale
    return faces


def central_face(faces: list[Face], image: np.ndarray) -> Face | None:
    """LFW's subject: the face whose box centre is nearest the image centre."""
    if not faces:
        return None
    h, w = image.shape[:2]
    return min(faces, key=lambda f: abs((f.box[0] + f.box[2]) / 2 - w / 2) + abs((f.box[1] + f.box[3]) / 2 - h / 2))


def lfw_path(data: Path, name: str, number: int) -> Path:
    return data / "lfw" / name / f"{name}_{number:04d}.jpg"


def read_pairs(path: Path) -> list[tuple[str, int, str, int, bool]]:
    pairs = []
    for line in path.read_text().splitlines()[1:]:
        p = line.split()
        if len(p) == 3:
            pairs.append((p[0], int(p[1]), p[0], int(p[2]), True))
        elif len(p) == 4:
            pairs.append((p[0], int(p[1]), p[2], int(p[3]), False))
    return pairs


def pair_images(pairs: list[tuple[str, int, str, int, bool]]) -> list[tuple[str, int]]:
    return sorted({(a, i) for a, i, _, _, _ in pairs} | {(b, j) for _, _, b, j, _ in pairs})


def video_frames(data: Path, count: int) -> list[np.ndarray]:
    import cv2

    cap = cv2.VideoCapture(str(data / "videos" / "simplefr_Video_2.mp4"))
    total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    frames = []
    for index in np.linspace(0, total - 1, count).astype(int):
        cap.set(cv2.CAP_PROP_POS_FRAMES, int(index))
        ok, frame = cap.read()
        if ok:
            frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    cap.release()
    return frames


def timed(dets: dict[str, Detector], images: list[np.ndarray], warmup: bool = True) -> dict[str, float]:
    """Median ms per image for each detector. Round-robin over the detectors image by
    image, so that load from other processes on a shared machine hits all of them alike."""
    times: dict[str, list[float]] = {name: [] for name in dets}
    for det in dets.values():
        if warmup:
            det.detect(images[0])  # the first call allocates
    for im in images:
        for name, det in dets.items():
            t = time.perf_counter()
            det.detect(im)
            times[name].append(time.perf_counter() - t)
    return {name: statistics.median(ts) * 1e3 for name, ts in times.items()}


def nose_hits(faces: list[Face], noses: list[list[int]]) -> tuple[int, int]:
    """(noses inside some box, boxes holding no nose); each box claims at most one nose."""
    free = list(range(len(faces)))
    hits = 0
    for x, y in noses:
        for k in free:
            left, top, right, bottom = faces[k].box
            if left <= x < right and top <= y < bottom:
                free.remove(k)
                hits += 1
                break
    return hits, len(free)


def run(args: argparse.Namespace) -> None:
    import json

    import cv2

    from faceprint.align import face_chips
    from faceprint.embed.dlib_resnet import DlibEmbedder

    cv2.setNumThreads(1)
    data = data_dir(args.data)
    factories = detector_factories(with_mmod=not args.no_mmod, backend=args.backend)
    if args.detectors:
        factories = {k: v for k, v in factories.items() if k in args.detectors.split(",")}
    fold1 = pair_images(read_pairs(data / "lfw" / "pairs.txt")[:600])
    if args.quick:
        fold1 = fold1[:: max(1, len(fold1) // 150)]
    lfw_images = {key: load_image(lfw_path(data, *key)).pixels for key in fold1}
    noses = json.loads((data / "compreface_sample_images" / "annotations.json").read_text())["images"]
    group_files = sorted(EXPECTED) + [f"compreface_sample_images/{name}" for name in sorted(noses)]
    groups = {rel: load_image(data / rel).pixels for rel in group_files + [CROWD]}
    nofaces = {p.name: load_image(p).pixels for p in sorted((data / "no_faces").iterdir())}
    frames = video_frames(data, 24 if not args.quick else 8)
    dev_pairs = read_pairs(data / "lfw" / "pairsDevTest.txt")
    if args.quick or args.no_verify:
        dev_pairs = []
    embedder = DlibEmbedder() if dev_pairs else None

    # descriptors by (image, rounded landmarks): get_face_chip uses only the landmarks,
    # rounded to whole pixels, so detectors that agree share the 73 ms ResNet pass
    chip_cache: dict[tuple[tuple[str, int], bytes], np.ndarray] = {}
    rows: dict[str, dict[str, str]] = {}
    hog_desc: dict[tuple[str, int], np.ndarray] = {}
    dets = {name: make() for name, make in factories.items()}
    fast = {name: det for name, det in dets.items() if name != "mmod"}
    lfw_list = list(lfw_images.values())
    speed_250 = timed(fast, lfw_list[:: max(1, len(lfw_list) // 60)])
    speed_720 = timed(fast, frames)
    if "mmod" in dets:  # 2.5 s per LFW image, ~40 s per 720p frame: a few only
        speed_250.update(timed({"mmod": dets["mmod"]}, lfw_list[:4], warmup=False))
        speed_720.update(timed({"mmod": dets["mmod"]}, frames[:1], warmup=False))
    if args.speed_only:
        print("| detector     | ms 250 | ms 720p |")
        print("|--------------|--------|---------|")
        for name in dets:
            print(f"| {name:<12} | {speed_250[name]:6.1f} | {speed_720[name]:7.1f} |")
        return
    for name, det in dets.items():
        slow = name == "mmod"
        row: dict[str, str] = {}
        t0 = time.perf_counter()
        # LFW fold 1: images with no face
        keys = list(lfw_images)[:: max(1, len(lfw_images) // 20)] if slow else list(lfw_images)
        miss = sum(1 for k in keys if not det.detect(lfw_images[k]))
        row["lfw miss"] = f"{miss}/{len(keys)}"
        # group photos
        if not slow or args.mmod_groups:
            ok = 0
            hit = fp = total = 0
            for rel in group_files:
                faces = detect_scaled(det, groups[rel])
                if rel.startswith("compreface"):
                    want = len(noses[Path(rel).name]["noses"])
                    lo = hi = want
                    h, f = nose_hits(faces, noses[Path(rel).name]["noses"])
                    hit, fp, total = hit + h, fp + f, total + want
                else:
                    lo, hi = EXPECTED[rel]
                ok += lo <= len(faces) <= hi
                if args.verbose:
                    boxes = [f.box for f in faces]
                    print(f"  {name} {rel}: {len(faces)} (expected {lo}-{hi}) {boxes}", file=sys.stderr)
            row["groups"] = f"{ok}/{len(group_files)}"
            row["noses"] = f"{hit}/{total} fp {fp}"
            row["nofaces FP"] = str(sum(len(detect_scaled(det, im)) for im in nofaces.values()))
            row["crowd"] = str(len(detect_scaled(det, groups[CROWD])))
        else:
            row["groups"] = row["noses"] = row["nofaces FP"] = row["crowd"] = "-"
        row["ms 250"] = f"{speed_250[name]:.1f}"
        row["ms 720p"] = f"{speed_720[name]:.1f}"
        row["720p faces"] = str(sum(len(det.detect(f)) for f in frames)) if not slow else "-"
        # verification on pairsDevTest
        # (tiling changes nothing on 250 px images, and "short" is not a candidate)
        if embedder is not None and not slow and "-t" not in name and name != "bf-short":
            desc: dict[tuple[str, int], np.ndarray | None] = {}
            for key in pair_images(dev_pairs):
                im = load_image(lfw_path(data, *key)).pixels
                face = central_face(det.detect(im), im)
                if face is None or face.landmarks is None:
                    desc[key] = None
                    continue
                ck = (key, np.round(face.landmarks).astype(np.int32).tobytes())
                if ck not in chip_cache:
                    chip_cache[ck] = embedder.embed(face_chips(im, [face]))[0]
                desc[key] = chip_cache[ck]
            dists, same = [], []
            failed = 0
            for a, i, b, j, is_same in dev_pairs:
                da, db = desc[(a, i)], desc[(b, j)]
                if da is None or db is None:
                    failed += 1
                    dists.append(np.inf if is_same else -np.inf)  # always wrong
                else:
                    dists.append(float(np.linalg.norm(da - db)))
                same.append(is_same)
            d, s = np.array(dists), np.array(same)
            row["verif acc"] = f"{np.mean((d < 0.6) == s):.3f}" + (f" ({failed} nf)" if failed else "")
            finite = np.sort(d[np.isfinite(d)])
            row["best acc"] = f"{max(np.mean((d < t) == s) for t in finite):.3f}"
            if name == "hog":
                hog_desc = {k: v for k, v in desc.items() if v is not None}
            if hog_desc and name != "hog":
                cos = []
                for k, v in desc.items():
                    if v is not None and k in hog_desc:
                        h = hog_desc[k]
                        cos.append(float(v @ h / np.linalg.norm(v) / np.linalg.norm(h)))
                c = np.array(cos)
                row["cos vs hog"] = f"{np.median(c):.4f}/{np.percentile(c, 1):.4f}/{c.min():.4f}"
        rows[name] = row
        print(f"{name}: done in {time.perf_counter() - t0:.0f} s", file=sys.stderr)

    for name, row in rows.items():  # tiles never run on 250 px LFW images: same numbers
        twin = rows.get(name.removesuffix("-tile"))
        if name.endswith("-tile") and twin is not None:
            for col in ("verif acc", "best acc", "cos vs hog"):
                if col in twin:
                    row[col] = twin[col]
    cols = ["lfw miss", "groups", "noses", "nofaces FP", "crowd", "ms 250", "ms 720p", "720p faces"]
    if dev_pairs:
        cols += ["verif acc", "best acc", "cos vs hog"]
    widths = {c: max(len(c), *(len(r.get(c, "-")) for r in rows.values())) for c in cols}
    head = "| detector     | " + " | ".join(c.ljust(widths[c]) for c in cols) + " |"
    print(head)
    print("|" + "|".join("-" * (len(x) + 2) for x in ["detector    "] + [c.ljust(widths[c]) for c in cols]) + "|")
    for name, r in rows.items():
        print(f"| {name:<12} | " + " | ".join(r.get(c, "-").ljust(widths[c]) for c in cols) + " |")


def fit_box_map(args: argparse.Namespace) -> None:
    """Least-squares fit of blazeface.BOX_MAP: BlazeFace keypoints -> HOG's box, on the
    faces both found in (up to) 1,500 images of pairsDevTrain.txt."""
    import dlib

    from faceprint.detect.blazeface import BlazeFaceDetector

    data = data_dir(args.data)
    keys = pair_images(read_pairs(data / "lfw" / "pairsDevTrain.txt"))
    rng = np.random.default_rng(0)
    if len(keys) > 1500:
        keys = [keys[i] for i in sorted(rng.choice(len(keys), 1500, replace=False))]
    hog = dlib.get_frontal_face_detector()
    for model in ("short", "full", "back"):
        det = BlazeFaceDetector(model, min_score=0.3, tile=None, landmarks="none")
        pts_rows, box_rows = [], []
        for key in keys:
            im = load_image(lfw_path(data, *key)).pixels
            rects, _, _ = hog.run(im, 1, -0.2)
            boxes, points, _ = det.detect_raw(im)
            if not len(rects) or not len(boxes):
                continue
            r = min(rects, key=lambda r: abs(r.center().x - 125) + abs(r.center().y - 125))
            hb = np.array([r.left(), r.top(), r.right(), r.bottom()], float)
            centres = (boxes[:, :2] + boxes[:, 2:]) / 2
            k = int(np.argmin(np.abs(centres - (hb[:2] + hb[2:]) / 2).sum(1)))
            if np.abs(centres[k] - (hb[:2] + hb[2:]) / 2).max() > 0.5 * (hb[2] - hb[0]):
                continue  # not the same face
            pts_rows.append(points[k])
            box_rows.append(hb)
        p, hb = np.array(pts_rows), np.array(box_rows)
        mid = (p[:, 0] + p[:, 1]) / 2
        eyes = p[:, 1] - p[:, 0]
        down = p[:, 3] - mid
        side = (hb[:, 2:] - hb[:, :2]).mean(1)
        k_eye, k_mouth = np.linalg.lstsq(
            np.stack([np.linalg.norm(eyes, axis=1), np.linalg.norm(down, axis=1)], 1), side, rcond=None
        )[0]
        target = (hb[:, :2] + hb[:, 2:]) / 2 - mid  # centre offset from the eye midpoint
        design = np.concatenate([np.stack([down[:, 0], eyes[:, 0]], 1), np.stack([down[:, 1], eyes[:, 1]], 1)])
        a, b = np.linalg.lstsq(design, np.concatenate([target[:, 0], target[:, 1]]), rcond=None)[0]
        print(f'    "{model}": ({k_eye:.3f}, {k_mouth:.3f}, {a:.3f}, {b:.3f}),  # {len(p)} faces')


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", help="folder holding lfw/, group_photos/, ... (default: FACEPRINT_DATA)")
    ap.add_argument("--quick", action="store_true", help="fewer images, no verification")
    ap.add_argument("--speed-only", action="store_true", help="only the ms/image columns")
    ap.add_argument("--no-verify", action="store_true", help="skip the LFW verification columns")
    ap.add_argument("--no-mmod", action="store_true", help="leave dlib's MMOD out")
    ap.add_argument("--mmod-groups", action="store_true", help="run MMOD on the group photos too (minutes)")
    ap.add_argument("--detectors", help="comma-separated subset, e.g. hog,bf-full")
    ap.add_argument("--backend", default="auto", help="BlazeFace runtime: auto, litert or opencv")
    ap.add_argument("--verbose", action="store_true", help="per-image group counts on stderr")
    ap.add_argument("--fit-box-map", action="store_true", help="refit blazeface.BOX_MAP and exit")
    args = ap.parse_args()
    if args.fit_box_map:
        fit_box_map(args)
    else:
        run(args)


if __name__ == "__main__":
    main()
