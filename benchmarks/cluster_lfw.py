"""Face clustering on LFW: faceprint (``faceprint.cluster``) vs the recipe users copy today
(face_recognition encodings + ``dlib.chinese_whispers_clustering(encodings, 0.5)``).

The set: people with several photos (up to ``--max-per-person`` each) plus people with exactly one
LFW photo (``--singles``, a share of ``--photos``), drawn with ``--seed``. Test sets come from the
LFW View 1 *test* people (peopleDevTest.txt), who are disjoint from the *training* people
(peopleDevTrain.txt) that ``--calibrate`` draws its sets from to choose the method and threshold.

Both sides cluster *every* face their detector finds in every photo (as a user would); each photo
is then scored by its face nearest the centre (LFW's convention). A photo where no face was found
counts as a group of its own. Scores: BCubed and pairwise precision / recall / F1.

The recipe is run without the face_recognition package, with the same dlib calls it makes:
HOG detector upsampled once, 5-point landmarks, ResNet descriptor with 1 jitter. Faces of both
sides are cached by file content under ``~/.cache/faceprint/bench/``.

    python benchmarks/cluster_lfw.py                          # test people, ~1,000 photos, seed 0
    python benchmarks/cluster_lfw.py --seeds 5 --json         # 5 test sets, one JSON object
    python benchmarks/cluster_lfw.py --calibrate              # choose method and threshold (DevTrain)
    python benchmarks/cluster_lfw.py --product-path           # also through cluster_images()
    python benchmarks/cluster_lfw.py --timing                 # 10k and 100k faces, 1 and 2 threads
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import resource
import sys
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from faceprint.cluster import (
    DEFAULT_K,
    DEFAULT_SLACK,
    DEFAULT_THRESHOLD,
    METHODS,
    FaceRecord,
    cluster_images,
    cluster_templates,
    clustering_scores,
    knn_graph,
)
from faceprint.evaluate.extract import nearest_centre
from faceprint.models import SHAPE5_FILE, cache_dir, dlib_model
from faceprint.pipeline import EngineSpec, analyze_image, parallel_map
from faceprint.types import Face

REPO = Path(__file__).resolve().parents[1]
RECIPE_THRESHOLD = 0.5  # the L2 distance users pass to dlib.chinese_whispers_clustering
METRICS = ("bcubed_precision", "bcubed_recall", "bcubed_f", "pairwise_precision", "pairwise_recall", "pairwise_f")
CALIBRATION_THRESHOLDS = [round(0.930 + 0.0025 * i, 4) for i in range(11)]  # 0.930 ... 0.955
CALIBRATION_SLACKS = (0.0, 0.005, 0.01, 0.0125, 0.015, 0.02, 0.025)

# one image's faces: boxes (m, 4) int32 [left, top, right, bottom] and templates (m, 128) float32
Faces = tuple[np.ndarray, np.ndarray]


# --------------------------------------------------------------------------- the sets
def draw_set(
    lfw: Path, people_file: str, photos: int, singles: float, max_per_person: int, seed: int
) -> list[tuple[Path, str]]:
    """(photo, person) pairs: ``singles * photos`` people with one LFW photo, the rest from people
    with several (up to ``max_per_person`` of theirs each), all drawn with ``seed``."""
    rows = [line.split("\t") for line in (lfw / people_file).read_text().splitlines()[1:] if "\t" in line]
    people = [(name, int(count)) for name, count in rows]
    rng = random.Random(seed)
    ones = [name for name, count in people if count == 1]
    many = [(name, count) for name, count in people if count >= 2]
    rng.shuffle(ones)
    rng.shuffle(many)
    n_single = min(round(photos * singles), len(ones))
    chosen = [(lfw / name / f"{name}_0001.jpg", name) for name in ones[:n_single]]
    for name, count in many:
        room = photos - len(chosen)
        if room <= 0:
            break
        for i in sorted(rng.sample(range(1, count + 1), min(count, max_per_person, room))):
            chosen.append((lfw / name / f"{name}_{i:04d}.jpg", name))
    rng.shuffle(chosen)  # input order is part of the test: no method may rely on it
    return chosen


# --------------------------------------------------------------------------- faces, cached
def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class FaceCache:
    """Every face of every image for one pipeline, by image content, in one npz file."""

    def __init__(self, name: str) -> None:
        self.path = cache_dir() / "bench" / f"{name}.npz"
        self.faces: dict[str, Faces] = self._read()

    def _read(self) -> dict[str, Faces]:
        if not self.path.is_file():
            return {}
        with np.load(self.path) as z:
            counts, boxes, vectors = z["counts"], z["boxes"], z["vectors"]
            ends = np.cumsum(counts)
            return {sha: (boxes[e - c : e], vectors[e - c : e]) for sha, e, c in zip(z["shas"].tolist(), ends, counts)}

    def save(self) -> None:
        self.faces = {**self._read(), **self.faces}  # keep what another run stored meanwhile
        shas = sorted(self.faces)
        boxes = [self.faces[s][0] for s in shas]
        vectors = [self.faces[s][1] for s in shas]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(f".{os.getpid()}.tmp.npz")
        np.savez(
            tmp,
            shas=np.array(shas),
            counts=np.array([len(b) for b in boxes], np.int64),
            boxes=np.concatenate(boxes).astype(np.int32) if shas else np.empty((0, 4), np.int32),
            vectors=np.concatenate(vectors).astype(np.float32) if shas else np.empty((0, 128), np.float32),
        )
        os.replace(tmp, self.path)  # readers never see half a file

    def get(self, paths: Sequence[Path], compute: Callable[[list[Path]], list[Faces]], label: str) -> list[Faces]:
        """Faces of every path, computing (and storing) the ones not cached yet."""
        shas = [_sha(p) for p in paths]
        todo = {s: p for s, p in zip(shas, paths) if s not in self.faces}
        if todo:
            t0 = time.perf_counter()
            print(f"{label}: computing faces of {len(todo)} images ...", file=sys.stderr, flush=True)
            for sha, faces in zip(todo, compute(list(todo.values()))):
                self.faces[sha] = faces
            self.save()
            print(f"{label}: {len(todo) / (time.perf_counter() - t0):.1f} images/s", file=sys.stderr, flush=True)
        return [self.faces[s] for s in shas]


class FaceprintEncoder:
    """Every face of an image through faceprint's default engine (what ``cluster_images`` sees)."""

    def __init__(self, spec: EngineSpec) -> None:
        self._engine = spec.build()

    def __call__(self, path: str) -> Faces:
        res = analyze_image(self._engine, path)
        if res.error:
            print(f"{path}: {res.error}", file=sys.stderr)
        boxes = np.array([f.box for f in res.faces], np.int32).reshape(-1, 4)
        return boxes, np.array([f.embedding for f in res.faces], np.float32).reshape(-1, 128)


class RecipeEncoder:
    """face_recognition's ``face_encodings(load_image_file(f))`` with dlib directly: HOG at
    upsample 1, the 5-point ("small") landmark model, the ResNet descriptor with 1 jitter."""

    def __init__(self) -> None:
        import dlib

        from faceprint.models import RESNET_FILE

        self._detector = dlib.get_frontal_face_detector()
        self._shape = dlib.shape_predictor(str(dlib_model(SHAPE5_FILE)))
        self._net = dlib.face_recognition_model_v1(str(dlib_model(RESNET_FILE)))

    def __call__(self, path: str) -> Faces:
        from PIL import Image

        with Image.open(path) as im:  # load_image_file: PIL, RGB, no EXIF rotation
            img = np.asarray(im.convert("RGB"))
        rects = self._detector(img, 1)
        boxes = np.array([(r.left(), r.top(), r.right(), r.bottom()) for r in rects], np.int32).reshape(-1, 4)
        vectors = [np.asarray(self._net.compute_face_descriptor(img, self._shape(img, r), 1)) for r in rects]
        return boxes, np.array(vectors, np.float32).reshape(-1, 128)


def _map(make: Callable[[], Callable[[str], Faces]], paths: list[Path], workers: int) -> list[Faces]:
    items = [str(p) for p in paths]
    if workers > 1 and len(items) > 1:
        return list(parallel_map(make, items, workers))
    fn = make()
    return [fn(p) for p in items]


def faceprint_faces(paths: Sequence[Path], workers: int) -> list[Faces]:
    spec = EngineSpec()
    cache = FaceCache(f"cluster_faceprint_{spec.template_model}_{spec.detector}")
    return cache.get(paths, lambda todo: _map(partial(FaceprintEncoder, spec), todo, workers), "faceprint")


def recipe_faces(paths: Sequence[Path], workers: int) -> list[Faces]:
    cache = FaceCache("cluster_recipe_hog1_shape5_jitter1")
    return cache.get(paths, lambda todo: _map(RecipeEncoder, todo, workers), "dlib recipe")


# --------------------------------------------------------------------------- scoring
def centre_face(boxes: Sequence[Sequence[int]]) -> int:
    """Index of the box nearest the photo's centre (LFW photos are 250 x 250), -1 if none."""
    found = [Face(box=tuple(int(v) for v in b), score=0.0) for b in boxes]  # type: ignore[misc]
    return found.index(nearest_centre(found, 250, 250)) if found else -1


def stack_faces(faces: Sequence[Faces]) -> tuple[np.ndarray, np.ndarray]:
    """All faces as one matrix, and for each photo the row of its face nearest the centre (-1: none)."""
    centre = np.full(len(faces), -1, np.int64)
    offset = 0
    for n, (boxes, _) in enumerate(faces):
        if len(boxes):
            centre[n] = offset + centre_face(boxes)
        offset += len(boxes)
    vectors = [v for _, v in faces]
    return (np.concatenate(vectors) if vectors else np.empty((0, 128), np.float32)), centre


def photo_labels(face_labels: Sequence[int] | np.ndarray, centre: np.ndarray) -> np.ndarray:
    """Each photo's predicted group: its centre face's group, or -1 (a group of its own)."""
    labels = np.asarray(face_labels, np.int64)
    return np.where(centre >= 0, labels[np.maximum(centre, 0)] if len(labels) else -1, -1)


def recipe_clusters(vectors: np.ndarray) -> np.ndarray:
    import dlib

    return np.asarray(dlib.chinese_whispers_clustering([dlib.vector(v.tolist()) for v in vectors], RECIPE_THRESHOLD))


def _rounded(scores: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 4) for k, v in scores.items()}


def _table(rows: dict[str, dict[str, float]], title: str) -> None:
    print(title)
    heads = [
        m.replace("bcubed", "BCubed").replace("_precision", " P").replace("_recall", " R").replace("_f", " F")
        for m in METRICS
    ]
    print(f"{'':32s}" + "".join(f"{h:>14s}" for h in heads))
    for name, scores in rows.items():
        print(f"{name:32s}" + "".join(f"{scores[m]:14.4f}" for m in METRICS))


def product_path(paths: Sequence[Path], args: argparse.Namespace) -> np.ndarray:
    """Each photo's group from :func:`cluster_images` (no cache): its centre face's cluster."""
    from faceprint.engine import FaceEngine

    got = cluster_images(paths, FaceEngine(), args.workers, args.threshold, k=args.k, slack=args.slack)
    by_image: dict[str, list[FaceRecord]] = {}
    for rec in got.faces:
        by_image.setdefault(rec.image, []).append(rec)
    labels = []
    for p in paths:
        recs = by_image.get(str(p), [])
        best = centre_face([r.box for r in recs])
        labels.append(-1 if best < 0 or recs[best].cluster is None else recs[best].cluster)
    return np.array(labels, np.int64)


# --------------------------------------------------------------------------- modes
def run_test(args: argparse.Namespace) -> dict[str, Any]:
    per_seed: list[dict[str, Any]] = []
    for seed in range(args.seed, args.seed + args.seeds):
        chosen = draw_set(args.lfw, "peopleDevTest.txt", args.photos, args.singles, args.max_per_person, seed)
        paths, truth = [p for p, _ in chosen], [who for _, who in chosen]
        fp_x, fp_centre = stack_faces(faceprint_faces(paths, args.workers))
        rc_x, rc_centre = stack_faces(recipe_faces(paths, args.workers))
        t0 = time.perf_counter()
        fp = cluster_templates(fp_x, args.threshold, k=args.k, method=args.method, slack=args.slack, threads=1)
        t_fp = time.perf_counter() - t0
        t0 = time.perf_counter()
        rc = recipe_clusters(rc_x)
        t_rc = time.perf_counter() - t0
        rows = {
            f"faceprint {args.method} {args.threshold:g}/{args.slack:g}": clustering_scores(
                photo_labels(fp.labels, fp_centre), truth
            ),
            "dlib recipe (CW, L2 0.5)": clustering_scores(photo_labels(rc, rc_centre), truth),
        }
        if args.product_path:  # the library's own path from the image files: must score the same
            rows["faceprint via cluster_images"] = clustering_scores(product_path(paths, args), truth)
        summary = {
            "seed": seed,
            "photos": len(paths),
            "people": len(set(truth)),
            "people_with_one_photo": sum(truth.count(who) == 1 for who in set(truth)),
            "faces": {"faceprint": len(fp_x), "dlib_recipe": len(rc_x)},
            "photos_without_face": {"faceprint": int((fp_centre < 0).sum()), "dlib_recipe": int((rc_centre < 0).sum())},
            "groups": {"faceprint": fp.n_clusters, "dlib_recipe": len(set(rc.tolist()))},
            "cluster_s": {"faceprint": round(t_fp, 3), "dlib_recipe": round(t_rc, 3)},
            "scores": {name: _rounded(s) for name, s in rows.items()},
        }
        per_seed.append(summary)
        if not args.json:
            print(
                f"seed {seed}: {summary['photos']} photos of {summary['people']} people "
                f"({summary['people_with_one_photo']} with one photo); faces {summary['faces']}; "
                f"photos without a face {summary['photos_without_face']}"
            )
            _table(rows, "")
            print()
    names = list(per_seed[0]["scores"])
    mean = {n: {m: round(float(np.mean([s["scores"][n][m] for s in per_seed])), 4) for m in METRICS} for n in names}
    if not args.json and len(per_seed) > 1:
        _table(mean, f"mean over {len(per_seed)} test sets")
    return {"test_people": "peopleDevTest.txt", "sets": per_seed, "mean": mean}


def run_calibrate(args: argparse.Namespace) -> dict[str, Any]:
    """Every method x threshold (x slack, for the two that use it) on ``--seeds`` DevTrain sets;
    the objective is the mean of BCubed F and pairwise F, averaged over the sets."""
    sets = []
    for seed in range(args.seed, args.seed + args.seeds):
        chosen = draw_set(args.lfw, "peopleDevTrain.txt", args.photos, args.singles, args.max_per_person, seed)
        x, centre = stack_faces(faceprint_faces([p for p, _ in chosen], args.workers))
        sets.append((x, centre, [who for _, who in chosen]))

    def score(method: str, threshold: float, slack: float) -> dict[str, float]:
        runs = []
        for x, centre, truth in sets:
            res = cluster_templates(x, threshold, k=args.k, method=method, slack=slack, threads=1)  # type: ignore[arg-type]
            runs.append(clustering_scores(photo_labels(res.labels, centre), truth))
        mean = {m: float(np.mean([r[m] for r in runs])) for m in METRICS}
        mean["objective"] = (mean["bcubed_f"] + mean["pairwise_f"]) / 2
        return mean

    grid: dict[str, dict[tuple[float, float], dict[str, float]]] = {}
    for method in METHODS:
        slacks = CALIBRATION_SLACKS if method in ("average", "centroid") else (0.0,)
        grid[method] = {(t, s): score(method, t, s) for s in slacks for t in CALIBRATION_THRESHOLDS}
    best = {m: max(cells, key=lambda key: cells[key]["objective"]) for m, cells in grid.items()}
    winner = max(best, key=lambda m: grid[m][best[m]]["objective"])
    if not args.json:
        print(f"calibration: {len(sets)} sets of ~{args.photos} photos from peopleDevTrain.txt, k={args.k}")
        print("objective = (BCubed F + pairwise F) / 2, mean over the sets")
        for method, cells in grid.items():
            slacks = sorted({s for _, s in cells})
            print(f"\n{method}: threshold x slack" if len(slacks) > 1 else f"\n{method}: threshold")
            print(f"{'':>10s}" + "".join(f"{s:>9.4f}" for s in slacks))
            for t in CALIBRATION_THRESHOLDS:
                print(f"{t:10.4f}" + "".join(f"{cells[(t, s)]['objective']:9.4f}" for s in slacks))
        print()
        for m, (t, s) in best.items():
            print(f"best {m}: threshold {t:.4f}, slack {s:.4f}: " + json.dumps(_rounded(grid[m][(t, s)])))
        t, s = best[winner]
        print(f"chosen: method {winner}, threshold {t:.4f}, slack {s:.4f}")
    return {
        "calibration_people": "peopleDevTrain.txt",
        "sets": len(sets),
        "best": {m: {"threshold": t, "slack": s, **_rounded(grid[m][(t, s)])} for m, (t, s) in best.items()},
        "chosen": {"method": winner, "threshold": best[winner][0], "slack": best[winner][1]},
    }


def timing_templates(lfw: Path, n: int, seed: int, workers: int) -> tuple[np.ndarray, str]:
    """``n`` templates for timing: real LFW templates (all people, one per photo) when there are
    enough, else real templates each copied with Gaussian noise of norm ~0.2 (cosine ~0.98 to the
    source, ~0.96 between two copies: like more photos of the same person)."""
    from faceprint.evaluate.cache import EmbeddingCache
    from faceprint.evaluate.extract import TemplateExtractor, compute_templates

    rows = [line.split("\t") for line in (lfw / "people.txt").read_text().splitlines() if "\t" in line]
    paths = sorted({lfw / name / f"{name}_{i:04d}.jpg" for name, count in rows for i in range(1, int(count) + 1)})
    extractor = TemplateExtractor(EngineSpec(), fallback="none")
    templates, _ = compute_templates(paths, extractor, EmbeddingCache(), workers)
    real = np.stack([t.embedding for t in templates.values() if t.embedding is not None])
    rng = np.random.default_rng(seed)
    if n <= len(real):
        return real[rng.choice(len(real), n, replace=False)], f"{n} real LFW templates (sampled)"
    base = real[rng.integers(0, len(real), n)]
    noisy = base + rng.normal(scale=0.2 / np.sqrt(base.shape[1]), size=base.shape).astype(np.float32)
    noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
    return noisy, f"{n} synthetic: {len(real)} real LFW templates, each copied with noise (cosine ~0.98 to it)"


def run_timing(args: argparse.Namespace) -> dict[str, Any]:
    """Wall time of the kNN search alone, then of the whole of ``cluster_templates``."""
    results = []
    for n in args.sizes:
        x, what = timing_templates(args.lfw, n, args.seed, args.workers)
        for threads in args.threads:
            t0 = time.perf_counter()
            knn_graph(x, args.k, threads)
            t_knn = time.perf_counter() - t0
            t0 = time.perf_counter()
            res = cluster_templates(x, args.threshold, k=args.k, method=args.method, slack=args.slack, threads=threads)
            wall = time.perf_counter() - t0
            row = {
                "faces": n,
                "templates": what,
                "threads": threads,
                "seconds": round(wall, 2),
                "knn_search_s": round(t_knn, 2),
                "groups": res.n_clusters,
                "largest": int(res.sizes[0]) if len(res.sizes) else 0,
                "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                "load_average_1min": round(os.getloadavg()[0], 2),
            }
            results.append(row)
            if not args.json:
                print(json.dumps(row), flush=True)
    return {"timing": results, "method": args.method, "threshold": args.threshold, "slack": args.slack, "k": args.k}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lfw", type=Path, default=REPO.parent / "shared" / "data" / "lfw")
    ap.add_argument("--calibrate", action="store_true", help="choose method and threshold on DevTrain people")
    ap.add_argument("--timing", action="store_true", help="time cluster_templates on 10k and 100k faces")
    ap.add_argument("--product-path", action="store_true", help="also run cluster_images() on the image files")
    ap.add_argument("--photos", type=int, default=1000, help="photos per set (default 1000)")
    ap.add_argument("--singles", type=float, default=0.4, help="share of photos from one-photo people")
    ap.add_argument("--max-per-person", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--seeds", type=int, default=None, help="sets to draw (default 1; --calibrate: 10)")
    ap.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD)
    ap.add_argument("--slack", type=float, default=DEFAULT_SLACK)
    ap.add_argument("--method", choices=METHODS, default="average")
    ap.add_argument("--k", type=int, default=DEFAULT_K)
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--workers", type=int, default=1, help="processes computing faces not cached yet")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args()
    if not args.lfw.is_dir():
        sys.exit(f"LFW not found at {args.lfw} (pass --lfw)")
    if args.seeds is None:
        args.seeds = 10 if args.calibrate else 1
    if args.timing:
        out = run_timing(args)
    elif args.calibrate:
        out = run_calibrate(args)
    else:
        out = run_test(args)
    if args.json:
        print(json.dumps(out))


if __name__ == "__main__":
    main()
