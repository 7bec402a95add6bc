"""Passive liveness (MiniFASNet): scores on the authors' sample photos with faceprint's detectors' boxes,
and the time per face with one thread.

    python benchmarks/liveness_passive.py              # sample scores + speed
    python benchmarks/liveness_passive.py --lfw 300    # + live scores of 300 evenly spread LFW photos
    python benchmarks/liveness_passive.py --json

The samples are ``antispoof_minifasnet/sample/`` in the shared data (image_T1 live, image_F1/F2 spoofs);
the authors' own pipeline scored them 0.996 / 0.028 / 0.062. Speed: median ms per face of
``PassiveLiveness.score`` (crop + both models) over repeated calls, and per face of ``score_many`` at
batch 32, with ``intra_op_num_threads=1``. LFW photos are real faces, but news photos rescaled to
250x250: a different domain from a camera in front of a person, so their scores show how the model
treats such photos, not its error rate at a door.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
try:  # run from a checkout without installing: use the repo's src/
    import faceprint  # noqa: F401
except ImportError:
    sys.path.insert(0, str(REPO / "src"))

from faceprint.detect import Detector, get_detector  # noqa: E402
from faceprint.liveness import PassiveLiveness  # noqa: E402
from faceprint.types import Face  # noqa: E402

SAMPLES = {"image_T1.jpg": 0.996, "image_F1.jpg": 0.028, "image_F2.jpg": 0.062}


def data_dir(arg: str | None) -> Path:
    for candidate in (arg, os.environ.get("FACEPRINT_DATA"), REPO.parent / "shared" / "data"):
        if candidate and (Path(candidate) / "antispoof_minifasnet").is_dir():
            return Path(candidate)
    sys.exit("shared data not found: pass --data DIR (holding antispoof_minifasnet/) or set FACEPRINT_DATA")


def largest_face(detector: Detector, bgr: np.ndarray) -> Face | None:
    faces = detector.detect(np.ascontiguousarray(bgr[:, :, ::-1]))
    return max(faces, key=lambda f: f.width * f.height) if faces else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", help="shared data folder (default: $FACEPRINT_DATA or ../shared/data)")
    parser.add_argument("--lfw", type=int, default=0, help="also score N evenly spread LFW photos")
    parser.add_argument("--repeat", type=int, default=300, help="timed calls for the speed figure")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    root = data_dir(args.data)
    liveness = PassiveLiveness(threads=1)
    result: dict[str, object] = {"samples": {}}

    samples = {name: cv2.imread(str(root / "antispoof_minifasnet" / "sample" / name)) for name in SAMPLES}
    print(f"{'image':14} {'authors':>8}  {'detector':10} {'box (l, t, r, b)':24} {'live':>6}")
    for det in ("blazeface", "hog"):
        detector = get_detector(det)
        for name, bgr in samples.items():
            face = largest_face(detector, bgr)
            score = liveness.score(bgr, face) if face else float("nan")
            result["samples"].setdefault(name, {})[det] = {"box": face and face.box, "live": round(score, 4)}
            print(f"{name:14} {SAMPLES[name]:8.3f}  {det:10} {str(face and face.box):24} {score:6.3f}")

    bgr, face = samples["image_T1.jpg"], largest_face(get_detector("blazeface"), samples["image_T1.jpg"])
    for _ in range(20):  # warm-up
        liveness.score(bgr, face)
    times = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        liveness.score(bgr, face)
        times.append((time.perf_counter() - start) * 1000)
    batch = [(bgr, face)] * 32
    batch_times = []
    for _ in range(max(3, args.repeat // 32)):
        start = time.perf_counter()
        liveness.score_many(batch)
        batch_times.append((time.perf_counter() - start) * 1000 / len(batch))
    speed = {"ms_per_face": statistics.median(times), "ms_per_face_batch32": statistics.median(batch_times)}
    result["speed_1_thread"] = speed
    one, batched = speed["ms_per_face"], speed["ms_per_face_batch32"]
    print(f"\nms per face, 1 thread: {one:.2f} (one call), {batched:.2f} (batch 32)")

    if args.lfw:
        files = sorted((root / "lfw").glob("*/*.jpg"))
        picks = [files[i] for i in np.linspace(0, len(files) - 1, args.lfw).round().astype(int)]
        detector = get_detector("blazeface")
        scores = []
        for path in picks:
            image = cv2.imread(str(path))
            face = largest_face(detector, image)
            if face is not None:
                scores.append(liveness.score(image, face))
        s = np.array(scores)
        lfw = {
            "faces": len(s),
            "median_live": float(np.median(s)),
            "share_below_0.5": float(np.mean(s < 0.5)),
            "share_below_0.9": float(np.mean(s < 0.9)),
        }
        result["lfw"] = lfw
        print(
            f"\nLFW, {lfw['faces']} faces (BlazeFace): median live score {lfw['median_live']:.3f}, "
            f"{lfw['share_below_0.5']:.1%} below 0.5, {lfw['share_below_0.9']:.1%} below 0.9"
        )
    if args.json:
        print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
