"""Open-set identification on LFW through the real product path (Recognizer + a SQLite gallery, or --gallery URL).

The split (issue 2): from the LFW View 1 *test* people (peopleDevTest.txt), 120 people with >= 5
photos are enrolled with 2 photos each and probed with up to 4 others; 300 other people, never
enrolled, are probed once each as unknowns. The decision threshold is the library default, which
was chosen on the View 1 *training* people (peopleDevTrain.txt) -- disjoint people -- with
``--calibrate`` (200 enrolled, 400 unknown; FPIR 5% for identification, FAR 1e-3 for 1:1).

    python benchmarks/lfw_open_set.py                # the test split, default threshold
    python benchmarks/lfw_open_set.py --calibrate    # re-derive the default thresholds
    python benchmarks/lfw_open_set.py --compare      # max / mean / centroid / views scoring side by side
    python benchmarks/lfw_open_set.py --views        # multi-view people (faceprint.match.ViewRule)
    python benchmarks/lfw_open_set.py --calibrate --enrol-photos 4 --sweep-views 0.88:1,0.9:0.5 --seeds 10

``--enrol-photos N`` enrols N photos of each person (people with >= N + 1 photos; the next 4 are
probes), so that a person's photos can be diverse enough to form views. ``--sweep-views`` scores the
same galleries with each ``split_below:blend`` rule and reports DIR at FPIR 5% (the share of enrolled
probes identified at the threshold that lets 5% of unknown probes through), averaged over ``--seeds``
consecutive seeds: how the default view rule was chosen, on DevTrain only.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from faceprint import FaceEngine, Recognizer
from faceprint.evaluate.extract import nearest_centre
from faceprint.gallery import Gallery
from faceprint.image import load_image
from faceprint.match import DEFAULT_IDENTIFY, DEFAULT_VIEWS, ViewRule, gallery_views, identity_scores

REPO = Path(__file__).resolve().parents[1]


def build_split(
    lfw: Path, people_file: str, n_known: int, n_unknown: int, seed: int, enrol_photos: int = 2
) -> tuple[dict[str, list[Path]], list[tuple[str, Path]], list[Path]]:
    """(enrol photos per person, [(person, probe)], unknown probes), seeded."""
    rows = [line.split("\t") for line in (lfw / people_file).read_text().splitlines()[1:] if "\t" in line]
    people = [(name, int(count)) for name, count in rows]
    rng = random.Random(seed)
    many = [p for p in people if p[1] >= max(5, enrol_photos + 1)]
    rng.shuffle(many)
    known = many[:n_known]
    rest = [p for p in people if p not in known]
    rng.shuffle(rest)

    def photo(name: str, i: int) -> Path:
        return lfw / name / f"{name}_{i:04d}.jpg"

    enrol: dict[str, list[Path]] = {}
    probes: list[tuple[str, Path]] = []
    for name, count in known:
        order = list(range(1, count + 1))
        rng.shuffle(order)
        enrol[name] = [photo(name, i) for i in order[:enrol_photos]]
        probes += [(name, photo(name, i)) for i in order[enrol_photos : enrol_photos + 4]]
    unknown = [photo(name, rng.randint(1, count)) for name, count in rest[:n_unknown]]
    return enrol, probes, unknown


def central_template(rec: Recognizer, path: Path) -> np.ndarray | None:
    """Template of the face nearest the image centre (LFW's convention), None if no face."""
    img = load_image(path).pixels
    faces = rec.engine.detect(img)
    if not faces:
        return None
    face = nearest_centre(faces, img.shape[1], img.shape[0])
    return rec.engine.embed(img, [face])[0].embedding


Scoring = tuple[str, str, ViewRule | None]  # (row name, aggregation, view rule)


def scorings(args: argparse.Namespace) -> list[Scoring]:
    """The identity scoring rules to measure, as asked on the command line."""
    rule = ViewRule(
        split_below=DEFAULT_VIEWS.split_below if args.split_below is None else args.split_below,
        blend=DEFAULT_VIEWS.blend if args.blend is None else args.blend,
    )
    if args.sweep_views:
        swept = [tuple(float(x) for x in item.split(":")) for item in args.sweep_views.split(",")]
        return [("centroid", "centroid", None)] + [
            (f"views {sb:g}:{b:g}", "views", ViewRule(split_below=sb, blend=b)) for sb, b in swept
        ]
    if args.compare:
        return [("max", "max", None), ("mean", "mean", None), ("centroid", "centroid", None), ("views", "views", rule)]
    return [("views", "views", rule)] if args.views else [("centroid", "centroid", None)]


def run(args: argparse.Namespace, seed: int) -> dict[str, object]:
    """Enrol one seeded split, embed its probes, and score them with every rule of :func:`scorings`."""
    people_file, n_known, n_unknown = (
        ("peopleDevTrain.txt", 200, 400) if args.calibrate else ("peopleDevTest.txt", 120, 300)
    )
    enrol, probes, unknown = build_split(args.lfw, people_file, n_known, n_unknown, seed, args.enrol_photos)
    gallery = Gallery(args.gallery or Path(tempfile.mkdtemp()) / "gallery.db")
    if args.gallery and gallery.identities():
        sys.exit(f"{args.gallery}: --gallery must be empty (one seed per empty database)")
    rec = Recognizer(
        gallery, FaceEngine(embedder=args.embedder, **({"detector": args.detector} if args.detector else {}))
    )

    t0 = time.perf_counter()
    n_enrol = sum(len(v) for v in enrol.values())
    results_enrol = rec.enroll_many(list(enrol.items()), largest=args.enrol == "largest", workers=args.workers)
    enrol_failures = sum(len(r.errors) for r in results_enrol)
    subject_chosen = sum(len(r.chosen) for r in results_enrol)
    t_enrol = time.perf_counter() - t0

    model = rec.model
    matrix = rec.gallery.matrix(model)
    # a person whose enrol photos all failed is not in the gallery: their probes cannot count
    dropped = [name for name, _ in probes if name not in matrix.names]
    probes = [(name, p) for name, p in probes if name in matrix.names]
    t0 = time.perf_counter()
    probe_t = [central_template(rec, p) for _, p in probes]
    unknown_t = [central_template(rec, p) for p in unknown]
    t_probe = time.perf_counter() - t0
    truth = np.array([matrix.names.index(name) for name, _ in probes])
    dim = matrix.vectors.shape[1]

    def scores(templates: list[np.ndarray | None], how: str, rule: ViewRule | None) -> tuple[np.ndarray, np.ndarray]:
        q = np.stack([t if t is not None else np.zeros(dim, np.float32) for t in templates])
        s = identity_scores(q, matrix, how, views=rule)  # type: ignore[arg-type]
        s[[t is None for t in templates]] = -np.inf  # no face found: nothing can match
        return s.argmax(1), s.max(1)

    results = []
    for name, how, rule in scorings(args):
        top, best = scores(probe_t, how, rule)
        _, ubest = scores(unknown_t, how, rule)
        correct = top == truth
        rank1 = float(correct.mean())
        row: dict[str, float | int | str] = {"scoring": name, "rank1": round(rank1, 4)}
        at_fpir_5pct = float(np.quantile(ubest[np.isfinite(ubest)], 0.95))
        if args.calibrate:
            threshold = at_fpir_5pct
            row["threshold_fpir_5pct"] = round(threshold, 4)
        else:
            threshold = args.threshold if args.threshold is not None else DEFAULT_IDENTIFY.threshold
        row["threshold"] = round(threshold, 4)
        row["identified"] = round(float((correct & (best >= threshold)).mean()), 4)
        row["rejected"] = round(float((ubest < threshold).mean()), 4)
        # DIR at FPIR 5%: identified at the threshold that lets 5% of this split's unknowns through
        row["dir_fpir_5pct"] = round(float((correct & (best >= at_fpir_5pct)).mean()), 4)
        if args.calibrate:  # the default threshold on these (training) people: its FPIR under this scoring
            row["fpir_at_default"] = round(float((ubest >= DEFAULT_IDENTIFY.threshold).mean()), 4)
        if rule is not None:  # how many enrolled people the rule gave more than one view
            row["people_with_views"] = int((np.bincount(gallery_views(matrix, rule).owners) > 1).sum())
        results.append(row)

    verify: dict[str, float] = {}
    if args.calibrate:
        # 1:1 threshold: every pair among all photos of the split (enrolled, probes, unknowns)
        names = [matrix.names[i] for i in matrix.labels] + [n for n, _ in probes]
        names += [p.parent.name for p in unknown]
        vecs = [*matrix.vectors, *probe_t, *unknown_t]
        keep = [i for i, v in enumerate(vecs) if v is not None]
        v = np.stack([vecs[i] for i in keep])
        who = np.array([names[i] for i in keep])
        upper = np.triu_indices(len(v), 1)
        pair_scores = (v @ v.T)[upper]
        same = (who[:, None] == who[None, :])[upper]
        t_verify = float(np.quantile(pair_scores[~same], 1 - 1e-3))
        verify = {
            "threshold_far_1e-3": round(t_verify, 4),
            "tar": round(float((pair_scores[same] >= t_verify).mean()), 4),
            "genuine_pairs": int(same.sum()),
            "impostor_pairs": int((~same).sum()),
        }

    return {
        "split": people_file,
        "seed": seed,
        "enrolled_people": len(enrol),
        "enrol_photos": n_enrol,
        "enrol_mode": args.enrol,
        "enrol_failures": enrol_failures,
        "group_photos_subject_chosen": subject_chosen,
        "probes_of_unenrolled_people_dropped": len(dropped),
        "probes": len(probes),
        "unknown_probes": len(unknown),
        "no_face_probes": sum(t is None for t in probe_t),
        "no_face_unknown": sum(t is None for t in unknown_t),
        "enrol_images_per_s": round(n_enrol / t_enrol, 1),
        "probe_images_per_s": round((len(probes) + len(unknown)) / t_probe, 1),
        "model": model,
        "verify": verify,
        "results": results,
    }


def average(runs: list[dict[str, object]]) -> dict[str, object]:
    """One summary of several seeds: the first run's details, each result row's numbers averaged."""
    out = dict(runs[0]) | {"seed": [r["seed"] for r in runs], "verify": {}}
    rows = [r["results"] for r in runs]
    out["results"] = [
        {k: v if isinstance(v, str) else round(float(np.mean([rs[i][k] for rs in rows])), 4) for k, v in row.items()}
        for i, row in enumerate(rows[0])  # type: ignore[arg-type]
    ]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lfw", type=Path, default=REPO.parent / "shared" / "data" / "lfw")
    ap.add_argument("--calibrate", action="store_true", help="use DevTrain people and print the thresholds")
    ap.add_argument("--compare", action="store_true", help="compare identity scoring rules")
    ap.add_argument("--views", action="store_true", help="score multi-view people (faceprint.match.ViewRule)")
    ap.add_argument("--split-below", type=float, default=None, help="--views: ViewRule.split_below")
    ap.add_argument("--blend", type=float, default=None, help="--views: ViewRule.blend")
    ap.add_argument("--sweep-views", default="", help="split_below:blend,... view rules to compare")
    ap.add_argument("--enrol-photos", type=int, default=2, help="photos enrolled per person")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--seeds", type=int, default=1, help="average over this many seeds from --seed on")
    ap.add_argument("--workers", type=int, default=1, help="enrolment worker processes")
    ap.add_argument("--threshold", type=float, default=None)
    ap.add_argument("--embedder", default="onnx")
    ap.add_argument("--detector", default=None, help="default: the library default")
    ap.add_argument(
        "--enrol",
        choices=("plain", "largest"),
        default="plain",
        help="plain: as `faceprint enroll DIR` does (the subject of a group photo chosen, or the photo refused); "
        "largest: as --largest",
    )
    ap.add_argument(
        "--gallery",
        default=None,
        help="enrol into this empty gallery, e.g. postgresql://... (default: a temp SQLite file)",
    )
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if not args.lfw.is_dir():
        sys.exit(f"LFW not found at {args.lfw} (pass --lfw)")

    runs = [run(args, args.seed + k) for k in range(args.seeds)]
    summary = runs[0] if len(runs) == 1 else average(runs)
    if args.json:
        print(json.dumps(summary))
        return
    for key, value in summary.items():
        if key != "results":
            print(f"{key:>20}: {value}")
    for row in summary["results"]:  # type: ignore[attr-defined]
        print("  ".join(f"{k}={v}" for k, v in row.items()))


if __name__ == "__main__":
    main()
