"""1:N identification on folder-per-identity data (``ROOT/<identity>/<images>``).

The split is seeded and reported: identities with enough photos are shuffled, a fraction
is held out as *unknown* (never enrolled: their photos are impostor probes), and each
remaining identity enrols ``enrol`` photos and is probed with up to ``probes`` others.
Scoring is the product's: one template per photo, identity score = cosine with the mean
template (``faceprint.match.identity_scores``, centroid).
"""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from faceprint.errors import FaceprintError
from faceprint.evaluate import metrics
from faceprint.evaluate.extract import ImageTemplate, TemplateExtractor, compute_templates
from faceprint.gallery.base import TemplateMatrix
from faceprint.image import iter_image_files
from faceprint.match import identity_scores

FPIRS = (1e-2, 1e-1)


@dataclass
class Split:
    seed: int
    enrol: dict[str, list[Path]]  # known identity -> enrolment photos
    probes: list[tuple[str, Path]]  # (known identity, probe photo)
    unknown: list[tuple[str, Path]]  # (held-out identity, probe photo)
    skipped_identities: int  # too few photos to take part
    identities: int = 0  # in the data set
    enrol_per_identity: int = 0

    @property
    def files(self) -> list[Path]:
        out = [p for photos in self.enrol.values() for p in photos]
        return out + [p for _, p in self.probes] + [p for _, p in self.unknown]

    def digest(self) -> str:
        """A short fingerprint of the split, to tell two runs used the same one."""
        h = hashlib.sha256()
        for name, photos in sorted(self.enrol.items()):
            h.update(f"E{name}:{','.join(p.name for p in photos)};".encode())
        for tag, rows in (("P", self.probes), ("U", self.unknown)):
            for name, p in rows:
                h.update(f"{tag}{name}:{p.name};".encode())
        return h.hexdigest()[:12]


def list_identities(root: str | Path) -> dict[str, list[Path]]:
    """``{identity: sorted image files}`` for each sub-folder of ``root``."""
    root = Path(root)
    if not root.is_dir():
        raise FaceprintError(f"{root}: not a folder")
    people = {d.name: iter_image_files([d]) for d in sorted(root.iterdir()) if d.is_dir()}
    people = {k: v for k, v in people.items() if v}
    if not people:
        raise FaceprintError(f"{root}: no identity folders with images (expected {root}/<identity>/<images>)")
    return people


def make_split(
    people: dict[str, list[Path]],
    enrol: int = 2,
    probes: int = 4,
    unknown_fraction: float = 0.3,
    seed: int = 0,
    min_photos: int | None = None,
) -> Split:
    """Seeded gallery/probe split with held-out unknown identities.

    Identities with fewer than ``min_photos`` (default ``enrol + 1``) photos are skipped.
    """
    if enrol < 1 or probes < 1:
        raise ValueError("enrol and probes must be at least 1")
    if not 0.0 <= unknown_fraction < 1.0:
        raise ValueError("unknown fraction must be in [0, 1)")
    need = max(min_photos or 0, enrol + 1)
    rng = random.Random(seed)
    eligible = sorted(n for n, photos in people.items() if len(photos) >= need)
    rng.shuffle(eligible)
    n_unknown = round(unknown_fraction * len(eligible))
    split = Split(seed, {}, [], [], len(people) - len(eligible), len(people), enrol)
    for i, name in enumerate(eligible):
        photos = list(people[name])
        rng.shuffle(photos)
        if i < n_unknown:
            split.unknown += [(name, p) for p in photos[:probes]]
        else:
            split.enrol[name] = photos[:enrol]
            split.probes += [(name, p) for p in photos[enrol : enrol + probes]]
    if not split.enrol:
        raise FaceprintError(f"no identity has the {need} photos needed to enrol {enrol} and probe at least 1")
    return split


@dataclass
class IdentificationReport:
    summary: dict[str, Any]
    known_scores: np.ndarray  # (probes, identities)
    truth: np.ndarray
    unknown_scores: np.ndarray  # (unknown probes, identities)
    names: list[str]


def score_split(
    split: Split, templates: dict[Path, ImageTemplate]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str], int]:
    """(known probe scores, truth, unknown probe scores, identity names, identities that got no
    enrolment template). A probe without a template scores -inf everywhere (never identified,
    never a false positive); an identity without templates scores -inf for every probe."""
    names = sorted(split.enrol)
    rows, labels = [], []
    for j, name in enumerate(names):
        for p in split.enrol[name]:
            t = templates[p].embedding
            if t is not None:
                rows.append(t)
                labels.append(j)
    dim = rows[0].size if rows else 128
    present = sorted(set(labels))
    matrix = TemplateMatrix(
        ids=np.arange(len(rows), dtype=np.int64),
        labels=np.array([present.index(j) for j in labels], dtype=np.int32),
        names=[names[j] for j in present],
        vectors=np.stack(rows).astype(np.float32) if rows else np.zeros((0, dim), np.float32),
    )

    def score(probes: list[tuple[str, Path]]) -> np.ndarray:
        out = np.full((len(probes), len(names)), -np.inf)
        vecs = [templates[p].embedding for _, p in probes]
        ok = [i for i, v in enumerate(vecs) if v is not None]
        if ok and present:
            s = identity_scores(np.stack([vecs[i] for i in ok]), matrix, "centroid")
            out[np.ix_(ok, present)] = s
        return out

    truth = np.array([names.index(n) for n, _ in split.probes], dtype=np.int64)
    return score(split.probes), truth, score(split.unknown), names, len(names) - len(present)


def evaluate_identification(
    root: str | Path,
    split: Split,
    extractor: TemplateExtractor,
    cache: Any = None,
    workers: int = 1,
    on_progress: Callable[[int], None] | None = None,
) -> IdentificationReport:
    """Closed-set rank-1/rank-5 and open-set DIR at FPIR 1e-2 / 1e-1 on a split of ``root``
    (from :func:`make_split` over :func:`list_identities`)."""
    t0 = time.perf_counter()
    templates, stats = compute_templates(split.files, extractor, cache, workers, on_progress)
    known, truth, unknown, names, empty = score_split(split, templates)
    ranks_ = metrics.ranks(known, truth)
    summary: dict[str, Any] = {
        "root": str(root),
        "seed": split.seed,
        "split": split.digest(),
        "identities": split.identities,
        "enrolled_identities": len(names),
        "enrol_per_identity": split.enrol_per_identity,
        "enrolled_without_template": empty,
        "unknown_identities": len({n for n, _ in split.unknown}),
        "skipped_identities": split.skipped_identities,
        "probes": len(split.probes),
        "unknown_probes": len(split.unknown),
        "rank1": round(float((ranks_ == 1).mean()), 6),
        "rank5": round(float((ranks_ <= 5).mean()), 6),
    }
    if len(split.unknown):
        for fpir in FPIRS:
            key = f"{fpir:.0e}".replace("e-0", "e-")
            rate, th = metrics.dir_at_fpir(known, truth, unknown, fpir)
            summary[f"dir_at_fpir_{key}"] = round(rate, 6)
            summary[f"threshold_at_fpir_{key}"] = round(th, 6) if np.isfinite(th) else None
            if len(split.unknown) < metrics.min_impostors(fpir):
                summary.setdefault("warnings", []).append(
                    f"only {len(split.unknown)} unknown probes: FPIR {fpir:g} needs about "
                    f"{metrics.min_impostors(fpir)} to be measured (DIR there is a rough estimate)"
                )
    else:
        summary.setdefault("warnings", []).append("no unknown probes (unknown fraction 0): open-set rates skipped")
    summary.update(stats.as_dict())
    summary.update(
        {
            **extractor.describe(),
            "wall_s": round(time.perf_counter() - t0, 2),
        }
    )
    return IdentificationReport(summary, known, truth, unknown, names)


def plot_det_cmc(report: IdentificationReport, path: str | Path, max_rank: int = 20) -> None:
    """Open-set DET (FNIR vs FPIR, log axes) beside the closed-set CMC (matplotlib, Agg)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = report.summary
    fig, (det, cmc_ax) = plt.subplots(1, 2, figsize=(10, 4.2), dpi=120)
    if report.unknown_scores.shape[0]:
        curve = metrics.open_set_curve(report.known_scores, report.truth, report.unknown_scores)
        floor = 0.5 / report.unknown_scores.shape[0]
        det.step(np.maximum(curve.fpir, floor), np.maximum(curve.fnir, 1e-4), where="post")
        for fpir in FPIRS:
            key = f"{fpir:.0e}".replace("e-0", "e-")
            if fpir < floor or not np.isfinite(s[f"dir_at_fpir_{key}"]):
                continue  # off the axis: too few unknown probes to measure it
            det.plot([fpir], [max(1 - s[f"dir_at_fpir_{key}"], 1e-4)], "o",
                     label=f"DIR {s[f'dir_at_fpir_{key}']:.3f} @ FPIR {fpir:g}")  # fmt: skip
        det.set_xscale("log")
        det.set_yscale("log")
        det.set_xlim(floor, 1)
        det.legend(fontsize=8)
    det.set_xlabel("false positive identification rate (unknown probes)")
    det.set_ylabel("false negative identification rate")
    det.set_title(f"open-set DET: {s['probes']} known, {s['unknown_probes']} unknown probes", fontsize=9)
    det.grid(True, which="both", alpha=0.3)
    n = min(max_rank, report.known_scores.shape[1])
    curve_cmc = metrics.cmc(report.known_scores, report.truth, n)
    cmc_ax.plot(np.arange(1, n + 1), curve_cmc, "o-", ms=3)
    cmc_ax.set_xlabel("rank")
    cmc_ax.set_ylabel("identification rate")
    cmc_ax.set_title(f"closed-set CMC: {s['enrolled_identities']} enrolled (rank-1 {s['rank1']:.4f})", fontsize=9)
    cmc_ax.grid(True, alpha=0.3)
    fig.suptitle(f"{s['model']} on {Path(s['root']).name}, seed {s['seed']}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
