"""LFW-style pair lists and the View 2 verification protocol.

A pairs file starts with a header, either ``folds pairs-per-class`` (pairs.txt: ``10 300``)
or a single count (pairsDevTest.txt: ``500``, one set). Each set then lists its same-person
pairs (``name i j``) followed by its different-person pairs (``name1 i name2 j``); image
``i`` of ``name`` is ``name/name_%04d.jpg``. Accuracy is the standard 10-fold protocol: the
threshold is chosen on 9 folds and tested on the 10th (a one-set file is split into 10
stratified folds by position). Every pair counts: images without a detected face get a
fallback template (see :mod:`faceprint.evaluate.extract`), never dropped.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from faceprint.errors import FaceprintError
from faceprint.evaluate import metrics
from faceprint.evaluate.extract import ExtractStats, ImageTemplate, TemplateExtractor, compute_templates

#: folds used when the pairs file is a single set
DEFAULT_FOLDS = 10
FARS = (1e-2, 1e-3)


class PairsFormatError(FaceprintError):
    """A pairs file that does not follow the LFW format (the message names file and line)."""


@dataclass(frozen=True)
class Pair:
    a: tuple[str, int]  # (name, image number)
    b: tuple[str, int]
    same: bool
    fold: int
    line: int


@dataclass
class PairList:
    path: Path
    pairs: list[Pair]
    sets: int  # sets in the file (10 for View 2, 1 for View 1 files)
    per_class: int  # same (and different) pairs per set

    @property
    def labels(self) -> np.ndarray:
        return np.array([p.same for p in self.pairs], dtype=bool)

    @property
    def folds(self) -> np.ndarray:
        if self.sets > 1:
            return np.array([p.fold for p in self.pairs], dtype=np.int64)
        return metrics.assign_folds(self.labels, DEFAULT_FOLDS)

    def limit(self, n: int) -> PairList:
        """About ``n`` pairs, the first ones of each class in each set (for quick checks)."""
        if n >= len(self.pairs):
            return self
        per = max(1, n // (2 * self.sets))
        taken: list[Pair] = []
        counts: dict[tuple[int, bool], int] = {}
        for p in self.pairs:
            key = (p.fold, p.same)
            if counts.get(key, 0) < per:
                counts[key] = counts.get(key, 0) + 1
                taken.append(p)
        return PairList(self.path, taken, self.sets, per)


def image_path(root: Path, name: str, number: int) -> Path:
    return root / name / f"{name}_{number:04d}.jpg"


def _int(token: str, path: Path, line: int, what: str) -> int:
    try:
        value = int(token)
    except ValueError:
        raise PairsFormatError(f"{path}:{line}: {what} must be an integer, got {token!r}") from None
    if value < 1:
        raise PairsFormatError(f"{path}:{line}: {what} must be positive, got {value}")
    return value


def parse_pairs(path: str | Path) -> PairList:
    """Read an LFW pairs file; raises :class:`PairsFormatError` naming the file and line."""
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise PairsFormatError(f"{path}: cannot read: {exc.strerror or exc}") from None
    numbered = [(i + 1, line.split()) for i, line in enumerate(lines) if line.strip()]
    if not numbered:
        raise PairsFormatError(f"{path}: empty pairs file")
    head_line, head = numbered[0]
    if len(head) == 2:
        sets = _int(head[0], path, head_line, "header: number of sets")
        per_class = _int(head[1], path, head_line, "header: pairs per class")
    elif len(head) == 1:
        sets, per_class = 1, _int(head[0], path, head_line, "header: pairs per class")
    else:
        raise PairsFormatError(
            f"{path}:{head_line}: header must be 'sets pairs-per-class' or 'pairs-per-class', got {' '.join(head)!r}"
        )
    body = numbered[1:]
    expected = sets * 2 * per_class
    pairs: list[Pair] = []
    for k, (line, tokens) in enumerate(body):
        if k >= expected:
            raise PairsFormatError(
                f"{path}:{line}: more pairs than the header announces ({sets} set(s) x 2 x {per_class} = {expected})"
            )
        # within each set the first per_class lines are same pairs, the rest different pairs
        want_same = (k % (2 * per_class)) < per_class
        if len(tokens) == 3 and want_same:
            name, i, j = tokens
            pair = Pair((name, _int(i, path, line, "image number")), (name, _int(j, path, line, "image number")),
                        True, k // (2 * per_class), line)  # fmt: skip
        elif len(tokens) == 4 and not want_same:
            n1, i, n2, j = tokens
            pair = Pair((n1, _int(i, path, line, "image number")), (n2, _int(j, path, line, "image number")),
                        False, k // (2 * per_class), line)  # fmt: skip
        else:
            kind = "same-person 'name i j'" if want_same else "different-person 'name1 i name2 j'"
            raise PairsFormatError(f"{path}:{line}: expected a {kind} pair, got {' '.join(tokens)!r}")
        pairs.append(pair)
    if len(pairs) != expected:
        raise PairsFormatError(
            f"{path}: {len(pairs)} pairs, but the header announces {sets} set(s) x 2 x {per_class} = {expected}"
        )
    return PairList(path, pairs, sets, per_class)


def pair_images(root: Path, pairs: PairList) -> list[Path]:
    """The distinct image files the pairs use (in first-use order); every one must exist."""
    seen: dict[Path, int] = {}
    for p in pairs.pairs:
        for name, number in (p.a, p.b):
            seen.setdefault(image_path(root, name, number), p.line)
    missing = [(f, line) for f, line in seen.items() if not f.is_file()]
    if missing:
        f, line = missing[0]
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise FaceprintError(f"{f}: image not found (used by {pairs.path}:{line}){more}")
    return list(seen)


def pair_scores(root: Path, pairs: PairList, templates: dict[Path, ImageTemplate]) -> tuple[np.ndarray, np.ndarray]:
    """(cosine score per pair, mask of pairs where both images have a template)."""
    dim = next((t.embedding.size for t in templates.values() if t.embedding is not None), 128)
    zero = np.zeros(dim, np.float32)

    def vec(name: str, number: int) -> np.ndarray | None:
        return templates[image_path(root, name, number)].embedding

    a = [vec(*p.a) for p in pairs.pairs]
    b = [vec(*p.b) for p in pairs.pairs]
    valid = np.array([x is not None and y is not None for x, y in zip(a, b)])
    va = np.stack([x if x is not None else zero for x in a])
    vb = np.stack([y if y is not None else zero for y in b])
    scores = np.einsum("ij,ij->i", va, vb).astype(np.float64)
    scores[~valid] = -1.0  # no template: the lowest cosine, and counted as an error by kfold
    return scores, valid


def all_pair_scores(files: list[Path], templates: dict[Path, ImageTemplate]) -> tuple[np.ndarray, np.ndarray]:
    """Cosine scores of every pair among ``files`` split into (genuine, impostor); images
    without a template score -1 against everything."""
    names = np.array([f.parent.name for f in files])
    dim = next((t.embedding.size for t in templates.values() if t.embedding is not None), 128)
    vecs = np.stack([templates[f].embedding if templates[f].embedding is not None else np.zeros(dim) for f in files])
    has = np.array([templates[f].embedding is not None for f in files])
    genuine, impostor = [], []
    for i in range(0, len(files), 512):  # row blocks keep memory at 512 x N
        s = vecs[i : i + 512] @ vecs.T
        s[~has[i : i + 512]] = -1.0
        s[:, ~has] = -1.0
        rows = np.arange(i, min(i + 512, len(files)))
        upper = np.arange(len(files))[None, :] > rows[:, None]
        same = names[rows][:, None] == names[None, :]
        genuine.append(s[upper & same])
        impostor.append(s[upper & ~same].astype(np.float32))
    return np.concatenate(genuine), np.concatenate(impostor)


def pair_quality(root: Path, pairs: PairList, templates: dict[Path, ImageTemplate]) -> np.ndarray:
    """Each pair's quality: the lower of its two faces' (0 for an image without quality measures)."""
    from faceprint.analyze.quality import quality_score

    cache: dict[Path, float] = {}

    def quality(name: str, number: int) -> float:
        path = image_path(root, name, number)
        if path not in cache:
            measures = templates[path].measures
            cache[path] = 0.0 if measures is None else quality_score(measures)
        return cache[path]

    return np.array([min(quality(*p.a), quality(*p.b)) for p in pairs.pairs])


@dataclass
class VerificationReport:
    """Everything measured on one pair list (``summary`` is the JSON object); ``quality`` is each
    pair's quality when the extractor measured it."""

    summary: dict[str, Any]
    scores: np.ndarray
    labels: np.ndarray
    roc: metrics.Roc
    quality: np.ndarray | None = None


def verification_summary(
    scores: np.ndarray, labels: np.ndarray, folds: np.ndarray, valid: np.ndarray | None = None
) -> dict[str, Any]:
    """The protocol's figures for scored pairs: k-fold accuracy, AUC, TAR@FAR, EER.

    AUC, TAR@FAR and EER are over all pairs pooled (thresholds swept over the whole list).
    """
    kf = metrics.kfold_accuracy(scores, labels, folds, valid)
    out: dict[str, Any] = {
        "pairs": int(labels.size),
        "genuine_pairs": int(labels.sum()),
        "impostor_pairs": int((~labels).sum()),
        "folds": int(np.unique(folds).size),
        "accuracy_mean": round(kf.mean, 6),
        "accuracy_std": round(kf.std, 6),
        "fold_accuracies": [round(float(a), 6) for a in kf.accuracies],
        "fold_thresholds": [round(float(t), 6) for t in kf.thresholds],
        "auc": round(metrics.roc_auc(scores, labels), 6),
    }
    for far in FARS:
        tar, th = metrics.tar_at_far(scores, labels, far)
        key = f"{far:.0e}".replace("e-0", "e-")
        out[f"tar_at_far_{key}"] = round(tar, 6)
        out[f"threshold_at_far_{key}"] = round(th, 6) if np.isfinite(th) else None
        if (~labels).sum() < metrics.min_impostors(far):
            out.setdefault("warnings", []).append(
                f"only {(~labels).sum()} impostor pairs: FAR {far:g} is measured on fewer than "
                f"{metrics.min_impostors(far)} (TAR at that FAR is a rough estimate)"
            )
    rate, th = metrics.eer(scores, labels)
    out["eer"] = round(rate, 6)
    out["eer_threshold"] = round(th, 6)
    return out


def evaluate_pairs(
    root: str | Path,
    pairs: PairList,
    extractor: TemplateExtractor,
    cache: Any = None,
    workers: int = 1,
    on_progress: Callable[[int], None] | None = None,
) -> VerificationReport:
    """Run the protocol on ``pairs`` over images under ``root``."""
    root = Path(root)
    t0 = time.perf_counter()
    files = pair_images(root, pairs)
    templates, stats = compute_templates(files, extractor, cache, workers, on_progress)
    scores, valid = pair_scores(root, pairs, templates)
    labels = pairs.labels
    summary = verification_summary(scores, labels, pairs.folds, valid)
    summary.update(_extract_summary(stats))
    summary["unscored_pairs"] = int((~valid).sum())
    quality = None
    if extractor.quality:
        from faceprint.evaluate.edc import error_versus_discard
        from faceprint.match import DEFAULT_VERIFY

        quality = pair_quality(root, pairs, templates)
        summary["edc_threshold"] = DEFAULT_VERIFY.threshold
        summary["edc"] = error_versus_discard(scores, labels, quality, DEFAULT_VERIFY.threshold)
    summary.update(
        {
            "pairs_file": str(pairs.path),
            **extractor.describe(),
            "wall_s": round(time.perf_counter() - t0, 2),
        }
    )
    return VerificationReport(summary, scores, labels, metrics.roc_curve(scores, labels), quality)


def _extract_summary(stats: ExtractStats) -> dict[str, Any]:
    return stats.as_dict()


def plot_report_edc(report: VerificationReport, path: str | Path) -> None:
    """The report's error-versus-discard curve (needs the extractor to have measured quality)."""
    from faceprint.evaluate.edc import plot_edc

    if report.quality is None:
        raise ValueError("this report has no quality to plot an EDC from")
    s = report.summary
    name = Path(s["pairs_file"]).name
    plot_edc(
        {name: (report.scores, report.labels, report.quality)},
        s["edc_threshold"],
        path,
        title=f"Error versus discard, {name}: {s['genuine_pairs']} genuine pairs, FNMR at {s['edc_threshold']:g}",
    )


def plot_roc(report: VerificationReport, path: str | Path, title: str = "LFW verification") -> list[str]:
    """ROC with a log FAR axis and the TAR@FAR operating points marked (matplotlib, Agg); returns
    the legend's entries."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    roc, s = report.roc, report.summary
    fig, ax = plt.subplots(figsize=(6, 4.5), dpi=120)
    floor = 0.5 / max(s["impostor_pairs"], 1)  # FAR 0 cannot sit on a log axis
    ax.step(np.maximum(roc.far, floor), roc.tar, where="post", label=f"{s['model']} (AUC {s['auc']:.4f})")
    for far in FARS:
        key = f"{far:.0e}".replace("e-0", "e-")
        if far < floor or not np.isfinite(s[f"tar_at_far_{key}"]):
            continue  # an operating point below what the impostor pairs can resolve is off the axis
        ax.plot([far], [s[f"tar_at_far_{key}"]], "o", label=f"TAR {s[f'tar_at_far_{key}']:.3f} @ FAR {far:g}")
    ax.set_xscale("log")
    ax.set_xlim(floor, 1)
    ax.set_xlabel("false accept rate")
    ax.set_ylabel("true accept rate")
    acc = f"accuracy {100 * s['accuracy_mean']:.2f}% ± {100 * s['accuracy_std']:.2f}"
    ax.set_title(f"{title}: {s['pairs']} pairs, {acc}", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    legend = ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return [t.get_text() for t in legend.get_texts()]
