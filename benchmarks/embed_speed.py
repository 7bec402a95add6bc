"""Embedding speed of the dlib and ONNX backends on real LFW chips, and their agreement.

    python benchmarks/embed_speed.py                 # speed table
    python benchmarks/embed_speed.py --check 500     # + equality over 500 LFW images
    python benchmarks/embed_speed.py --json          # machine-readable results too

Speed: ms per face (median over repeated calls, and the best call) at batch 1 and 32, for
1 and 2 intra-op threads, and for 2 processes x 1 thread (aggregate throughput). dlib's
ResNet (dlib-bin, no BLAS) is single-threaded, so it is measured with 1 thread only.
Check: every face HOG finds in N evenly spread LFW images, max |diff| and min cosine of the
ONNX descriptors against dlib's; exits 1 when a face falls below --min-cosine.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
try:  # run from a checkout without installing: use the repo's src/
    import faceprint  # noqa: F401
except ImportError:
    sys.path.insert(0, str(REPO / "src"))


def data_dir(arg: str | None) -> Path:
    for candidate in (arg, os.environ.get("FACEPRINT_DATA"), REPO.parent / "shared" / "data"):
        if candidate and (Path(candidate) / "lfw").is_dir():
            return Path(candidate)
    sys.exit("LFW not found: pass --data DIR (holding lfw/) or set FACEPRINT_DATA")


def lfw_images(root: Path, n: int) -> list[Path]:
    """n images evenly spread over the sorted LFW file list (deterministic)."""
    files = sorted((root / "lfw").glob("*/*.jpg"))
    if n >= len(files):
        return files
    idx = np.linspace(0, len(files) - 1, n).round().astype(int)
    return [files[i] for i in idx]


def make_chips(images: list[Path]) -> np.ndarray:
    """HOG detection + 5-landmark alignment, exactly like dlib.get_face_chip(size=150, padding=0.25)."""
    import dlib

    from faceprint.embed.base import CHIP_PADDING, CHIP_SIZE
    from faceprint.models import SHAPE5_FILE, dlib_model

    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(str(dlib_model(SHAPE5_FILE)))
    chips = []
    for path in images:
        img = dlib.load_rgb_image(str(path))
        for rect in detector(img, 1):
            chips.append(dlib.get_face_chip(img, predictor(img, rect), size=CHIP_SIZE, padding=CHIP_PADDING))
    return np.stack(chips)


def make_embedder(backend: str, threads: int):
    if backend == "dlib":
        from faceprint.embed.dlib_resnet import DlibEmbedder

        return DlibEmbedder()
    from faceprint.embed.onnx_resnet import OnnxEmbedder

    return OnnxEmbedder(threads=threads)


def time_calls(embed, chips: np.ndarray, batch: int, seconds: float) -> list[float]:
    """ms per face of each call, cycling through the chips, for about ``seconds``."""
    parts = [chips[i : i + batch] for i in range(0, len(chips) - batch + 1, batch)]
    embed(parts[0])  # warm-up: first call allocates and plans
    per_face: list[float] = []
    start = time.perf_counter()
    while time.perf_counter() - start < seconds or len(per_face) < 3:
        part = parts[len(per_face) % len(parts)]
        t = time.perf_counter()
        embed(part)
        per_face.append((time.perf_counter() - t) * 1000 / batch)
    return per_face


def _worker(backend: str, chips: np.ndarray, batch: int, seconds: float, barrier, queue) -> None:
    emb = make_embedder(backend, threads=1)
    emb.embed(chips[:batch])
    barrier.wait()  # start together so the two processes really overlap
    faces = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        emb.embed(chips[:batch])
        faces += batch
    queue.put((faces, time.perf_counter() - start))


def time_processes(backend: str, chips: np.ndarray, batch: int, seconds: float, procs: int) -> float:
    """Aggregate ms per face of ``procs`` single-threaded worker processes."""
    ctx = mp.get_context("spawn")
    barrier, queue = ctx.Barrier(procs), ctx.Queue()
    workers = [
        ctx.Process(target=_worker, args=(backend, chips[: max(batch, 1)], batch, seconds, barrier, queue))
        for _ in range(procs)
    ]
    for w in workers:
        w.start()
    results = [queue.get() for _ in workers]
    for w in workers:
        w.join()
    faces = sum(f for f, _ in results)
    wall = max(t for _, t in results)
    return wall * 1000 / faces


def speed(chips: np.ndarray, seconds: float, backends: list[str]) -> list[dict]:
    rows = []
    configs = [("dlib", 1)] if "dlib" in backends else []
    configs += [("onnx", 1), ("onnx", 2)] if "onnx" in backends else []
    for backend, threads in configs:
        emb = make_embedder(backend, threads)
        for batch in (1, 32):
            ms = time_calls(emb.embed, chips, batch, seconds)
            rows.append(
                dict(
                    backend=backend,
                    layout=f"1 proc x {threads} thr",
                    batch=batch,
                    ms_per_face=statistics.median(ms),
                    best_ms_per_face=min(ms),
                )
            )
        del emb
    if "onnx" in backends:
        ms = time_processes("onnx", chips, 32, seconds, procs=2)
        rows.append(dict(backend="onnx", layout="2 proc x 1 thr", batch=32, ms_per_face=ms, best_ms_per_face=None))
    return rows


def check(chips: np.ndarray, n_images: int, min_cosine: float) -> dict:
    from faceprint.embed.dlib_resnet import DlibEmbedder
    from faceprint.embed.onnx_resnet import OnnxEmbedder

    ref = DlibEmbedder().embed(chips)
    got = OnnxEmbedder(threads=1).embed(chips)
    cos = (got * ref).sum(1) / (np.linalg.norm(got, axis=1) * np.linalg.norm(ref, axis=1))
    return dict(
        images=n_images,
        faces=len(chips),
        max_abs_diff=float(np.abs(got - ref).max()),
        max_rel_norm_diff=float((np.linalg.norm(got - ref, axis=1) / np.linalg.norm(ref, axis=1)).max()),
        min_cosine=float(cos.min()),
        mean_cosine=float(cos.mean()),
        faces_below=int((cos < min_cosine).sum()),
        min_cosine_required=min_cosine,
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", help="folder holding lfw/ (default: $FACEPRINT_DATA or ../shared/data)")
    ap.add_argument("--images", type=int, default=48, help="LFW images to cut speed chips from (default 48)")
    ap.add_argument("--seconds", type=float, default=3.0, help="time per measurement (default 3)")
    ap.add_argument("--backends", default="dlib,onnx", help="comma list of backends to time (default dlib,onnx)")
    ap.add_argument("--check", type=int, default=0, metavar="N", help="compare onnx with dlib on N LFW images")
    ap.add_argument("--min-cosine", type=float, default=0.9999)
    ap.add_argument("--no-speed", action="store_true", help="only run --check")
    ap.add_argument("--json", action="store_true", help="also print the results as JSON")
    args = ap.parse_args(argv)

    import onnxruntime as ort

    root = data_dir(args.data)
    result: dict = dict(
        onnxruntime=ort.__version__,
        cpu_count=os.cpu_count(),
        load_avg_1min=os.getloadavg()[0],
    )
    if not args.no_speed:
        chips = make_chips(lfw_images(root, args.images))
        if len(chips) < 32:
            chips = np.concatenate([chips] * (32 // len(chips) + 1))
        rows = speed(chips, args.seconds, [b.strip() for b in args.backends.split(",")])
        result["speed"] = rows
        print(
            f"\nms per face on {len(chips)} real LFW chips (onnxruntime {ort.__version__}, "
            f"{os.cpu_count()} CPUs, load avg {result['load_avg_1min']:.2f} at start)"
        )
        print(f"{'backend':<8} {'layout':<16} {'batch':>5} {'median ms/face':>15} {'best ms/face':>13} {'faces/s':>8}")
        for r in rows:
            best = f"{r['best_ms_per_face']:.2f}" if r["best_ms_per_face"] is not None else "-"
            print(
                f"{r['backend']:<8} {r['layout']:<16} {r['batch']:>5} {r['ms_per_face']:>15.2f} "
                f"{best:>13} {1000 / r['ms_per_face']:>8.1f}"
            )
    status = 0
    if args.check:
        images = lfw_images(root, args.check)
        chips = make_chips(images)
        res = check(chips, len(images), args.min_cosine)
        result["check"] = res
        print(f"\nonnx vs dlib on every HOG face of {res['images']} LFW images ({res['faces']} faces)")
        print(f"  max |diff|            {res['max_abs_diff']:.3e}")
        print(f"  max |diff|/|ref|      {res['max_rel_norm_diff']:.3e}")
        print(f"  min cosine            {res['min_cosine']:.9f}")
        print(f"  mean cosine           {res['mean_cosine']:.9f}")
        print(f"  faces below {args.min_cosine}  {res['faces_below']}")
        status = 1 if res["faces_below"] else 0
    if args.json:
        print(json.dumps(result, indent=2))
    return status


if __name__ == "__main__":
    sys.exit(main())
