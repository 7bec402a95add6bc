"""Error-versus-discard characteristic (EDC): does quality find the comparisons that fail?

The genuine pairs are ranked by pair quality (the lower of the two faces' quality, as ISO/IEC
29794-1 suggests), the lowest fraction is discarded, and the false non-match rate at a fixed
threshold is measured on the rest. A useful quality makes the curve fall fast: discarding 10% of
the pairs should remove far more than 10% of the false non-matches.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

#: the discard fractions reported
DISCARDS: tuple[float, ...] = (0.0, 0.05, 0.1, 0.2)


def _ranked(scores: np.ndarray, labels: np.ndarray, quality: np.ndarray) -> np.ndarray:
    """The genuine scores, lowest pair quality first (ties keep the list's order)."""
    s = np.asarray(scores, np.float64)
    y = np.asarray(labels, bool)
    q = np.asarray(quality, np.float64)
    if not (s.shape == y.shape == q.shape):
        raise ValueError("scores, labels and quality differ in length")
    if not y.any():
        raise ValueError("no genuine pairs")
    genuine = s[y]
    return genuine[np.argsort(q[y], kind="stable")]


def error_versus_discard(
    scores: np.ndarray, labels: np.ndarray, quality: np.ndarray, threshold: float, discards: Sequence[float] = DISCARDS
) -> list[dict[str, Any]]:
    """One row per discard fraction: ``discard``, ``fnmr`` (genuine pairs kept that score below
    ``threshold``), ``false_non_matches`` and ``kept`` (genuine pairs left), and ``reduction``, the
    share of the false non-match rate removed against discarding nothing."""
    ranked = _ranked(scores, labels, quality)
    n = ranked.size
    base = float(np.mean(ranked < threshold))
    rows = []
    for d in discards:
        kept = ranked[int(round(d * n)) :]
        misses = int(np.sum(kept < threshold))
        fnmr = misses / kept.size if kept.size else 0.0
        rows.append(
            {
                "discard": float(d),
                "fnmr": round(fnmr, 6),
                "false_non_matches": misses,
                "kept": int(kept.size),
                "reduction": round(1.0 - fnmr / base, 4) if base > 0 else 0.0,
            }
        )
    return rows


def edc_curve(
    scores: np.ndarray, labels: np.ndarray, quality: np.ndarray, threshold: float, max_discard: float = 0.3
) -> tuple[np.ndarray, np.ndarray]:
    """(discard fractions, FNMR) at every genuine pair dropped, up to ``max_discard``."""
    ranked = _ranked(scores, labels, quality)
    misses = (ranked < threshold).astype(np.float64)
    # after dropping the k lowest: misses among the rest / how many are left
    left = np.cumsum(misses[::-1])[::-1]
    n = ranked.size
    k = np.arange(int(max_discard * n) + 1)
    return k / n, left[k] / (n - k)


def plot_edc(
    curves: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]],
    threshold: float,
    path: str | Path,
    title: str = "Error versus discard",
) -> None:
    """EDC curves (label -> (scores, labels, quality)), each with its 5/10/20% points, and the line of
    a quality that knows nothing (FNMR flat) for reference (matplotlib, Agg)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.5), dpi=120)
    for label, (scores, labels, quality) in curves.items():
        x, y = edc_curve(scores, labels, quality, threshold)
        rows = error_versus_discard(scores, labels, quality, threshold)
        (line,) = ax.plot(x, y, label=f"{label}: -{100 * rows[2]['reduction']:.0f}% at 10% discarded")
        ax.plot([r["discard"] for r in rows[1:]], [r["fnmr"] for r in rows[1:]], "o", color=line.get_color())
        ax.axhline(rows[0]["fnmr"], color=line.get_color(), lw=0.8, ls=":")
    ax.set_xlabel("fraction of genuine pairs discarded (lowest pair quality first)")
    ax.set_ylabel(f"false non-match rate at threshold {threshold:g}")
    ax.set_xlim(0, 0.3)
    ax.set_ylim(bottom=0)
    ax.set_title(title, fontsize=9)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
