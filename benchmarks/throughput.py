"""Detect + align + embed throughput: faceprint vs face_recognition on the same LFW images.

    python benchmarks/throughput.py [--n 1000] [--fr-n 300] [--workers 2]

faceprint runs its pipeline (worker processes, one thread each). face_recognition 1.3.0
(``pip install --no-deps face_recognition==1.3.0``) runs ``face_encodings(load_image_file(p))``
-- HOG at upsample 1, one 128-d encoding per face -- in one process (its library default) and in
a process pool of the same size (what its ``--cpus`` CLI option does), on the first ``--fr-n``
of the same images. Both use dlib's HOG detector by default; faceprint also averages each face
with its mirror image, so it embeds every face twice.
"""

from __future__ import annotations

import argparse
import os
import time
from multiprocessing import get_context
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def lfw_images(root: Path, n: int) -> list[Path]:
    people = sorted(p for p in root.iterdir() if p.is_dir())
    files: list[Path] = []
    for person in people:  # name order, every photo: a fixed, reproducible sample
        files.extend(sorted(person.glob("*.jpg")))
        if len(files) >= n:
            break
    return files[:n]


def _fr_one(path: str) -> int:
    import face_recognition

    return len(face_recognition.face_encodings(face_recognition.load_image_file(path)))


def _init_single_thread() -> None:
    os.environ["OMP_NUM_THREADS"] = "1"


def run_face_recognition(files: list[Path], workers: int) -> tuple[float, int]:
    t0 = time.perf_counter()
    if workers == 1:
        faces = sum(_fr_one(str(p)) for p in files)
    else:
        with get_context("spawn").Pool(workers, initializer=_init_single_thread) as pool:
            faces = sum(pool.map(_fr_one, [str(p) for p in files], chunksize=4))
    return time.perf_counter() - t0, faces


def run_faceprint(files: list[Path], workers: int) -> tuple[float, int, int]:
    from faceprint import FaceEngine
    from faceprint.pipeline import EngineSpec, analyze_images

    engine = FaceEngine()
    t0 = time.perf_counter()
    faces = errors = 0
    for result in analyze_images(files, engine, EngineSpec.of(engine), "all", workers):
        faces += len(result.faces)
        errors += result.error is not None
    return time.perf_counter() - t0, faces, errors


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lfw", type=Path, default=REPO.parent / "shared" / "data" / "lfw")
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--fr-n", type=int, default=300, help="images for face_recognition (it is slow)")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = ap.parse_args()
    files = lfw_images(args.lfw, args.n)

    t, faces, errors = run_faceprint(files, args.workers)
    fp_rate = len(files) / t
    print(
        f"faceprint          {args.workers} proc : {len(files)} images, {faces} faces in {t:6.1f} s = "
        f"{fp_rate:6.1f} images/s, {faces / t:6.1f} faces/s ({errors} errors)"
    )
    try:
        import face_recognition  # noqa: F401
    except ImportError:
        print("face_recognition not installed: pip install --no-deps face_recognition==1.3.0")
        return
    for workers in sorted({1, args.workers}):
        t, faces = run_face_recognition(files[: args.fr_n], workers)
        rate = args.fr_n / t
        print(
            f"face_recognition   {workers} proc : {args.fr_n} images, {faces} faces in {t:6.1f} s = "
            f"{rate:6.1f} images/s, {faces / t:6.1f} faces/s; faceprint is {fp_rate / rate:.1f}x"
        )
    print(f"cores: {os.cpu_count()}")


if __name__ == "__main__":
    main()
