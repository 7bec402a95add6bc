"""Verification and identification metrics, pure numpy.

Conventions: a score is a similarity (higher = more alike); a pair is *accepted* when
``score >= threshold``. Labels are booleans, True for a genuine (same-person) pair.
The ROC is the exact empirical step curve: one point per distinct score, no interpolation
(except for the EER, where FAR and FRR cross between two points).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


def _scores_labels(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(labels, dtype=bool).ravel()
    if s.shape != y.shape:
        raise ValueError(f"scores and labels differ in length ({s.size} vs {y.size})")
    if np.isnan(s).any():
        raise ValueError("scores contain NaN")
    return s, y


def _need_both(y: np.ndarray) -> None:
    if not y.any() or y.all():
        raise ValueError("need at least one genuine and one impostor score")


@dataclass(frozen=True)
class Roc:
    """Empirical ROC: at ``thresholds[i]`` (descending), accept rate of impostors ``far[i]``
    and of genuine pairs ``tar[i]``. Point 0 is (0, 0) at threshold +inf."""

    thresholds: np.ndarray
    far: np.ndarray
    tar: np.ndarray

    @property
    def frr(self) -> np.ndarray:
        return 1.0 - self.tar


def roc_curve(scores: np.ndarray, labels: np.ndarray) -> Roc:
    """One ROC point per distinct score, plus (0, 0) at +inf."""
    s, y = _scores_labels(scores, labels)
    _need_both(y)
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    # last index of each run of equal scores: ties are accepted together
    ends = np.r_[np.flatnonzero(np.diff(s) != 0), s.size - 1]
    tp = np.cumsum(y)[ends]
    fp = np.cumsum(~y)[ends]
    thresholds = np.r_[np.inf, s[ends]]
    return Roc(thresholds, np.r_[0.0, fp / (~y).sum()], np.r_[0.0, tp / y.sum()])


def auc(roc: Roc) -> float:
    """Area under the ROC (trapezoids; equals P(genuine > impostor) with ties counted half)."""
    return float(np.sum(np.diff(roc.far) * (roc.tar[1:] + roc.tar[:-1]) / 2.0))


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    return auc(roc_curve(scores, labels))


def tar_at_far(scores: np.ndarray, labels: np.ndarray, far: float) -> tuple[float, float]:
    """(TAR, threshold) at the lowest threshold whose measured FAR is <= ``far``.

    With N impostors at most floor(far * N) of them are accepted; the threshold is a score
    that occurs in the data (or +inf if even the top impostor score ties a needed genuine one).
    """
    roc = roc_curve(scores, labels)
    ok = np.flatnonzero(roc.far <= far + 1e-12)
    i = int(ok[-1])  # far is non-decreasing: the last admissible point has the highest TAR
    return float(roc.tar[i]), float(roc.thresholds[i])


def threshold_at_far(impostor_scores: np.ndarray, far: float) -> float:
    """A threshold accepting at most floor(far * N) of these impostor scores, for calibration
    from impostors alone: midway between the highest score that must be rejected and the
    next higher impostor score (just above it when there is none)."""
    s = np.sort(np.asarray(impostor_scores, dtype=np.float64).ravel())[::-1]
    if s.size == 0:
        raise ValueError("no impostor scores")
    allowed = int(math.floor(far * s.size + 1e-9))
    if allowed >= s.size:
        return float(s[-1])
    # accepting >= t lets in every score >= t; the (allowed+1)-th highest must stay out
    barrier = s[allowed]
    above = s[:allowed]
    above = above[above > barrier]
    # midway: an unseen impostor score in the gap is as likely to fall either side
    return float((barrier + above.min()) / 2.0) if above.size else float(np.nextafter(barrier, np.inf))


def eer(scores: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """(equal error rate, threshold): where FAR and FRR cross, linearly interpolated between
    the two ROC points that straddle the crossing."""
    roc = roc_curve(scores, labels)
    d = roc.far - roc.frr  # -1 at +inf, rising to +1
    i = int(np.argmax(d >= 0))
    if d[i] == 0 or i == 0:
        return float(roc.far[i]), float(roc.thresholds[i])
    a = -d[i - 1] / (d[i] - d[i - 1])
    rate = roc.far[i - 1] + a * (roc.far[i] - roc.far[i - 1])
    t_hi, t_lo = roc.thresholds[i - 1], roc.thresholds[i]
    threshold = t_lo if not np.isfinite(t_hi) else t_hi + a * (t_lo - t_hi)
    return float(rate), float(threshold)


def accuracy(scores: np.ndarray, labels: np.ndarray, threshold: float) -> float:
    s, y = _scores_labels(scores, labels)
    return float(np.mean((s >= threshold) == y))


def best_threshold(scores: np.ndarray, labels: np.ndarray) -> float:
    """The threshold with the highest accuracy on these pairs.

    Candidates are the midpoints between consecutive distinct scores (and one below/above
    all); when several give the best accuracy, the middle one of them is taken.
    """
    s, y = _scores_labels(scores, labels)
    if s.size == 0:
        raise ValueError("no scores")
    order = np.argsort(s, kind="mergesort")
    s, y = s[order], y[order]
    # candidate k accepts s[k:] (k = 0..n); valid only where s[k-1] < s[k]
    imp_below = np.r_[0, np.cumsum(~y)]  # impostors rejected
    gen_above = y.sum() - np.r_[0, np.cumsum(y)]  # genuine accepted
    correct = imp_below + gen_above
    valid = np.r_[True, s[1:] > s[:-1], True]
    correct = np.where(valid, correct, -1)
    best = np.flatnonzero(correct == correct.max())
    k = int(best[(len(best) - 1) // 2])
    if k == 0:
        return float(s[0] - 1.0)
    if k == s.size:
        return float(s[-1] + 1.0)
    return float((s[k - 1] + s[k]) / 2.0)


@dataclass(frozen=True)
class KFoldResult:
    accuracies: np.ndarray  # per test fold
    thresholds: np.ndarray  # chosen on the other folds

    @property
    def mean(self) -> float:
        return float(self.accuracies.mean())

    @property
    def std(self) -> float:
        # population std over folds, as the LFW results page and most papers report it
        return float(self.accuracies.std())


def kfold_accuracy(
    scores: np.ndarray, labels: np.ndarray, folds: np.ndarray, valid: np.ndarray | None = None
) -> KFoldResult:
    """Accuracy with the threshold chosen on the training folds only, for each test fold.

    ``valid`` marks pairs that could be scored at all; the others are left out of threshold
    selection and counted as errors in their test fold (no answer is a wrong answer).
    """
    s = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(labels, dtype=bool).ravel()
    f = np.asarray(folds).ravel()
    ok = np.ones_like(y) if valid is None else np.asarray(valid, dtype=bool).ravel()
    if not (s.size == y.size == f.size == ok.size):
        raise ValueError("scores, labels, folds and valid must have the same length")
    ids = np.unique(f)
    if ids.size < 2:
        raise ValueError("k-fold accuracy needs at least 2 folds")
    accs, ths = [], []
    for k in ids:
        test = f == k
        train = ~test & ok
        t = best_threshold(s[train], y[train])
        right = ((s[test] >= t) == y[test]) & ok[test]
        accs.append(right.mean())
        ths.append(t)
    return KFoldResult(np.array(accs), np.array(ths))


def assign_folds(labels: np.ndarray, n_folds: int = 10) -> np.ndarray:
    """Deterministic, stratified folds by position: the i-th of n genuine pairs goes to fold
    i * n_folds // n, and likewise for impostors (for pair lists that come as one set)."""
    y = np.asarray(labels, dtype=bool).ravel()
    folds = np.zeros(y.size, np.int64)
    for cls in (True, False):
        idx = np.flatnonzero(y == cls)
        folds[idx] = np.arange(idx.size) * n_folds // max(idx.size, 1)
    return folds


# ------------------------------------------------------------------------- identification
def ranks(score_matrix: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """1-based rank of the true identity for each probe (ties count against the probe);
    0 where the truth is -1 (not in the gallery)."""
    m = np.asarray(score_matrix, dtype=np.float64)
    t = np.asarray(truth).ravel()
    out = np.zeros(t.size, np.int64)
    known = t >= 0
    true_scores = m[np.flatnonzero(known), t[known]]
    out[known] = (m[known] >= true_scores[:, None]).sum(axis=1)
    return out


def cmc(score_matrix: np.ndarray, truth: np.ndarray, max_rank: int | None = None) -> np.ndarray:
    """Cumulative match characteristic: ``cmc[r-1]`` = fraction of probes whose true identity
    is within the top r (closed set: every probe's identity is enrolled)."""
    m = np.atleast_2d(np.asarray(score_matrix))
    r = ranks(m, truth)
    if (r == 0).any():
        raise ValueError("CMC is closed-set: every probe's identity must be in the gallery")
    n = max_rank or m.shape[1]
    return np.array([(r <= k).mean() for k in range(1, n + 1)])


@dataclass(frozen=True)
class OpenSetCurve:
    """Open-set DET: at ``thresholds[i]`` (descending), the false-positive identification rate
    (unknown probes whose best score is >= t) and the detection-and-identification rate
    (known probes ranked first *and* scoring >= t); FNIR = 1 - DIR."""

    thresholds: np.ndarray
    fpir: np.ndarray
    dir: np.ndarray

    @property
    def fnir(self) -> np.ndarray:
        return 1.0 - self.dir


def open_set_curve(known_scores: np.ndarray, truth: np.ndarray, unknown_scores: np.ndarray) -> OpenSetCurve:
    """``known_scores`` (P, N) for probes of enrolled people with ``truth`` (P,) indices,
    ``unknown_scores`` (U, N) for probes of people never enrolled."""
    known = np.atleast_2d(np.asarray(known_scores, dtype=np.float64))
    unknown = np.atleast_2d(np.asarray(unknown_scores, dtype=np.float64))
    t = np.asarray(truth).ravel()
    if known.shape[0] == 0 or unknown.shape[0] == 0:
        raise ValueError("open-set rates need both known and unknown probes")
    top1 = ranks(known, t) == 1
    best_known = known.max(axis=1)
    # a known probe counts as identified at t when ranked first and its (= top) score >= t
    hit_scores = np.sort(np.where(top1, best_known, -np.inf))[::-1]
    imp = np.sort(unknown.max(axis=1))[::-1]
    thresholds = np.r_[np.inf, np.unique(np.r_[hit_scores[np.isfinite(hit_scores)], imp[np.isfinite(imp)]])[::-1]]
    fpir = np.searchsorted(-imp, -thresholds, side="right") / imp.size
    dir_ = np.searchsorted(-hit_scores, -thresholds, side="right") / hit_scores.size
    return OpenSetCurve(thresholds, fpir, dir_)


def dir_at_fpir(
    known_scores: np.ndarray, truth: np.ndarray, unknown_scores: np.ndarray, fpir: float
) -> tuple[float, float]:
    """(DIR, threshold) at the lowest threshold whose measured FPIR is <= ``fpir``."""
    curve = open_set_curve(known_scores, truth, unknown_scores)
    i = int(np.flatnonzero(curve.fpir <= fpir + 1e-12)[-1])
    return float(curve.dir[i]), float(curve.thresholds[i])


def min_impostors(rate: float, factor: float = 10.0) -> int:
    """How many impostor trials a false-accept rate needs to be measured at all (~10/rate)."""
    return math.ceil(factor / rate - 1e-9)
