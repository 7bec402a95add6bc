"""Face quality, fitted and validated with the error-versus-discard characteristic (EDC).

Every LFW image of a pairs file gets its template and its quality measures (the evaluation's own
extractor and cache: a re-run only reads the cache). Then:

    python benchmarks/quality_edc.py --fit     # fit the combination on pairsDevTrain.txt: prints MODEL
    python benchmarks/quality_edc.py           # EDC on DevTrain, DevTest and View 2, single signals too,
                                               # and what each quality_gate threshold refuses
    python benchmarks/quality_edc.py --plot edc.png

The fit uses pairsDevTrain.txt images only: the file's genuine pairs and every other pair of images
of one person among them, labelled "fails" when the cosine is below the default verification
threshold (0.929). DevTest (disjoint people) and View 2 (pairs.txt) only measure.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
from collections import Counter, defaultdict
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from faceprint.analyze import analysis_of  # noqa: E402
from faceprint.analyze.quality import MODEL, QualityModel, fit_model, quality_gate, quality_score  # noqa: E402
from faceprint.evaluate.cache import EmbeddingCache  # noqa: E402
from faceprint.evaluate.edc import error_versus_discard, plot_edc  # noqa: E402
from faceprint.evaluate.extract import ImageTemplate, TemplateExtractor, compute_templates  # noqa: E402
from faceprint.evaluate.lfw import PairList, image_path, pair_images, pair_scores, parse_pairs  # noqa: E402
from faceprint.match import DEFAULT_VERIFY  # noqa: E402
from faceprint.pipeline import EngineSpec  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
THRESHOLD = DEFAULT_VERIFY.threshold
SPLITS = {"DevTrain": "pairsDevTrain.txt", "DevTest": "pairsDevTest.txt", "View 2": "pairs.txt"}
GATES = (0.01, 0.02, 0.05, 0.1, 0.2)


def templates_of(lfw: Path, pairs: PairList, workers: int) -> dict[Path, ImageTemplate]:
    extractor = TemplateExtractor(EngineSpec(), quality=True)
    files = pair_images(lfw, pairs)
    done = 0

    def progress(n: int) -> None:
        nonlocal done
        done += n
        if done == len(files) or done % 500 < n:
            print(f"{pairs.path.name}: {done}/{len(files)} images", file=sys.stderr, flush=True)

    templates, _ = compute_templates(files, extractor, EmbeddingCache(), workers, progress)
    return templates


def fit(lfw: Path, workers: int) -> QualityModel:
    pairs = parse_pairs(lfw / SPLITS["DevTrain"])
    templates = templates_of(lfw, pairs, workers)
    measures = {str(p): t.measures for p, t in templates.items() if t.measures is not None}
    by_person: dict[str, list[Path]] = defaultdict(list)
    for path in templates:
        by_person[path.parent.name].append(path)
    genuine = {
        tuple(sorted(str(x) for x in ab)) for files in by_person.values() for ab in itertools.combinations(files, 2)
    }
    genuine = sorted(g for g in genuine if g[0] in measures and g[1] in measures)
    embedding = {str(p): t.embedding for p, t in templates.items()}
    failed = [float(np.dot(embedding[a], embedding[b])) < THRESHOLD for a, b in genuine]  # type: ignore[arg-type]
    model = fit_model(measures, genuine, failed)
    print(f"fitted on {len(measures)} DevTrain faces, {len(genuine)} genuine pairs, {sum(failed)} fail at {THRESHOLD}")
    print("MODEL = QualityModel(")
    print("    features=tuple(FEATURES),")
    for name in ("mean", "scale", "weights", "levels"):
        print(f"    {name}=({', '.join(f'{v:g}' for v in getattr(model, name))}),")
    print(")")
    return model


def single_signals(templates: dict[Path, ImageTemplate]) -> dict[str, dict[Path, float]]:
    """The reference signals alone: the detector's score, the face's width, the flip agreement."""
    out: dict[str, dict[Path, float]] = {"detector score": {}, "face width": {}, "flip agreement": {}, "quality": {}}
    for path, t in templates.items():
        m = t.measures or {}
        out["detector score"][path] = m.get("detection_score", -1.0)
        out["face width"][path] = float(t.box[2] - t.box[0]) if t.box else 0.0
        out["flip agreement"][path] = m.get("flip_agreement", 0.0)
        out["quality"][path] = quality_score(m) if m else 0.0
    return out


def pair_min(lfw: Path, pairs: PairList, per_image: dict[Path, float]) -> np.ndarray:
    return np.array([min(per_image[image_path(lfw, *p.a)], per_image[image_path(lfw, *p.b)]) for p in pairs.pairs])


def gate_table(lfw: Path, pairs: PairList, templates: dict[Path, ImageTemplate], scores: np.ndarray) -> list[dict]:
    """For each min_quality of quality_gate: faces refused (and why), and the FNMR of the genuine pairs
    whose two faces both pass."""
    analyses = {p: analysis_of(t.measures) for p, t in templates.items() if t.measures is not None}
    labels = pairs.labels
    rows = []
    for gate in (0.0, *GATES):
        verdict = {p: quality_gate(a, gate) for p, a in analyses.items()}
        ok = np.array(
            [verdict[image_path(lfw, *p.a)] is None and verdict[image_path(lfw, *p.b)] is None for p in pairs.pairs]
        )
        kept = scores[labels & ok]
        reasons = Counter(v.split(" (")[0] for v in verdict.values() if v is not None)
        rows.append(
            {
                "min_quality": gate,
                "faces_refused": round(sum(reasons.values()) / len(verdict), 4),
                "reasons": dict(reasons.most_common()),
                "genuine_pairs_kept": int(kept.size),
                "fnmr": round(float(np.mean(kept < THRESHOLD)), 5),
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--data", type=Path, default=Path(os.environ.get("FACEPRINT_DATA", REPO.parent / "shared" / "data"))
    )
    parser.add_argument("--fit", action="store_true", help="fit the quality combination on pairsDevTrain.txt")
    parser.add_argument("--splits", nargs="+", default=list(SPLITS), choices=list(SPLITS))
    parser.add_argument("--plot", type=Path, help="write the EDC curves of the splits to this PNG")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    lfw = args.data / "lfw"
    if args.fit:
        fit(lfw, args.workers)
        return
    report: dict[str, object] = {"threshold": THRESHOLD, "model": MODEL.__dict__}
    curves = {}
    for split in args.splits:
        pairs = parse_pairs(lfw / SPLITS[split])
        templates = templates_of(lfw, pairs, args.workers)
        scores, _ = pair_scores(lfw, pairs, templates)
        labels = pairs.labels
        figures = {}
        for name, per_image in single_signals(templates).items():
            rows = error_versus_discard(scores, labels, pair_min(lfw, pairs, per_image), THRESHOLD)
            figures[name] = rows
            cut = ", ".join(
                f"{100 * r['discard']:g}%: {100 * r['fnmr']:.2f}% (-{100 * r['reduction']:.0f}%)" for r in rows[1:]
            )
            print(f"{split:8s} {name:15s} FNMR {100 * rows[0]['fnmr']:.2f}% ({rows[0]['false_non_matches']}); {cut}")
        curves[split] = (scores, labels, pair_min(lfw, pairs, single_signals(templates)["quality"]))
        gates = gate_table(lfw, pairs, templates, scores)
        for g in gates:
            print(f"{split:8s} gate {g['min_quality']:.2f}: {100 * g['faces_refused']:.1f}% of faces refused, "
                  f"FNMR {100 * g['fnmr']:.2f}% on {g['genuine_pairs_kept']} pairs; {g['reasons']}")  # fmt: skip
        report[split] = {"edc": figures, "gates": gates}
    if args.plot:
        plot_edc(curves, THRESHOLD, args.plot, title="Face quality on LFW: error versus discard (fitted on DevTrain)")
        print(f"plot: {args.plot}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
