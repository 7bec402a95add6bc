"""What the model is and is not invariant to: ``faceprint audit attributes`` on LFW DevTest, as tables.

    python benchmarks/audit_attributes.py                 # all of DevTest (1,000 pairs, 1,708 photos)
    python benchmarks/audit_attributes.py --limit 100     # a quick look
    python benchmarks/audit_attributes.py --report r.json # tables from a saved `faceprint audit attributes --json`

It runs the command's own code (:func:`faceprint.audit.attributes.audit_attributes`, the evaluation's
template cache: a re-run only reads it), prints the README's markdown tables, and checks each attribute
against what physics says: where a stronger change destroys more of the image (blur, JPEG, noise,
resolution, occlusion, rotation) the shift must grow and TAR must not rise; a violation is printed and
makes the exit status 1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

from faceprint.audit.attributes import TAR_KEY, audit_attributes  # noqa: E402
from faceprint.audit.transforms import conditions  # noqa: E402
from faceprint.evaluate.cache import EmbeddingCache  # noqa: E402
from faceprint.evaluate.extract import TemplateExtractor  # noqa: E402
from faceprint.evaluate.lfw import parse_pairs  # noqa: E402
from faceprint.pipeline import EngineSpec  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
#: attributes whose strengths destroy more of the image as they grow (listed mildest first)
DEGRADING = ("blur", "jpeg", "noise", "resolution", "occlusion_eyes", "occlusion_mouth", "rotation")
#: slack for "does not rise": one genuine trial in a thousand either way is noise
TAR_SLACK = 0.002


def physics_violations(report: dict[str, Any]) -> list[str]:
    problems = []
    for name in DEGRADING:
        rows = report["attributes"].get(name, [])
        for prev, row in zip(rows, rows[1:]):
            if row["shift"] <= prev["shift"]:
                problems.append(
                    f"{name}: shift {prev['shift']} at {prev['strength']:g} >= {row['shift']} at {row['strength']:g}"
                )
            if row[TAR_KEY] > prev[TAR_KEY] + TAR_SLACK:
                problems.append(
                    f"{name}: TAR {prev[TAR_KEY]} at {prev['strength']:g} < {row[TAR_KEY]} at {row['strength']:g}"
                )
    return problems


def print_tables(report: dict[str, Any]) -> None:
    base, sub = report["baseline"], report["subspace"]
    print(
        f"{report['pairs_file']}: {report['pairs']} pairs, {report['images']} photos; untouched TAR @ FAR 1e-3 "
        f"{base[TAR_KEY]:.4f} at threshold {base['threshold']:.4f} ({base['impostor_trials']:,} impostor pairs); "
        f"between-person distance {base['between_identity_distance']:.4f}; subspace k={sub['k']} from "
        f"{sub['identities']} people; alignment yardsticks: same person {base['alignment_same_person']:.3f}, "
        f"different people {base['alignment_different_people']:.3f}, isotropic {sub['chance_alignment']:.3f}"
    )
    print("\n| attribute | strength | shift | alignment | TAR @ FAR 1e-3 | FAR |")
    print("|---|---|---|---|---|---|")
    print(f"| untouched | | 0 | | {base[TAR_KEY]:.3f} | 0.001 |")
    for name, rows in report["attributes"].items():
        unit = report["units"].get(name, "")
        for r in rows:
            print(
                f"| {name} ({unit}) | {r['strength']:g} | {r['shift']:.3f} | {r['alignment']:.3f} | "
                f"{r[TAR_KEY]:.3f} | {r['far']:.4f} |"
            )
    print("\n| factor | bin | pairs | accuracy | TAR @ FAR 1e-3 |")
    print("|---|---|---|---|---|")
    for factor, rows in report["conditions"].items():
        for r in rows:
            if "bin" in r:
                acc = "" if r["accuracy"] is None else f"{100 * r['accuracy']:.1f}%"
                tar = "" if r[TAR_KEY] is None else f"{r[TAR_KEY]:.3f}"
                print(f"| {factor} | {r['bin']} | {r['pairs']} | {acc} | {tar} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lfw", type=Path, default=REPO.parent / "shared" / "data" / "lfw")
    parser.add_argument("--limit", type=int, help="about this many pairs of DevTest and of DevTrain")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--report", type=Path, help="print the tables of this saved JSON report instead")
    args = parser.parse_args()
    if args.report:
        report = json.loads(args.report.read_text())
    else:
        pairs, basis = parse_pairs(args.lfw / "pairsDevTest.txt"), parse_pairs(args.lfw / "pairsDevTrain.txt")
        if args.limit:
            pairs, basis = pairs.limit(args.limit), basis.limit(args.limit)

        def progress(stage: str, done: int, total: int) -> None:
            if done == total or done % 200 == 0:
                print(f"{stage}: {done}/{total} photos", file=sys.stderr, flush=True)

        extractor = TemplateExtractor(EngineSpec(), quality=True)
        report = audit_attributes(
            args.lfw, pairs, basis, extractor, conditions(), EmbeddingCache(), args.workers, on_progress=progress
        )
    print_tables(report)
    problems = physics_violations(report)
    print(
        "\nphysics check: "
        + ("every degrading attribute moves templates further and costs TAR" if not problems else "VIOLATED")
    )
    for p in problems:
        print(f"  {p}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
