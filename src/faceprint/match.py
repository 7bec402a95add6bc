"""Scores, identity-level aggregation and open-set decisions.

Scores are cosine similarities of unit-length templates (higher = more similar, in [-1, 1]).
An identity's score for a probe aggregates the scores of its templates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from faceprint.gallery.base import TemplateMatrix
from faceprint.types import Candidate

Aggregation = Literal["max", "mean", "centroid"]


@dataclass(frozen=True)
class OperatingPoint:
    """A decision threshold and the error rates it was measured at."""

    threshold: float
    far: float | None = None  # false-accept rate (1:1) or false-positive identification rate
    frr: float | None = None
    source: str = ""


#: Measured on LFW View 1 *training* people (peopleDevTrain.txt), disjoint from every
#: test split used here; reproduce with ``benchmarks/calibrate_default.py``.
DEFAULT_IDENTIFY = OperatingPoint(threshold=0.0, source="placeholder")
DEFAULT_VERIFY = OperatingPoint(threshold=0.0, source="placeholder")


def similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarity matrix between unit-length row sets ``a`` (M, D) and ``b`` (N, D)."""
    return np.atleast_2d(a).astype(np.float32) @ np.atleast_2d(b).astype(np.float32).T


def identity_scores(
    scores: np.ndarray,
    labels: np.ndarray,
    n_identities: int,
    how: Aggregation = "max",
    vectors: np.ndarray | None = None,
    queries: np.ndarray | None = None,
) -> np.ndarray:
    """(Q, N) template scores -> (Q, n_identities) identity scores."""
    q = scores.shape[0]
    if how == "max":
        out = np.full((q, n_identities), -np.inf, np.float32)
        np.maximum.at(out.T, labels, scores.T)
        return out
    if how == "mean":
        sums = np.zeros((q, n_identities), np.float32)
        np.add.at(sums.T, labels, scores.T)
        counts = np.bincount(labels, minlength=n_identities).astype(np.float32)
        return sums / np.maximum(counts, 1)
    if how == "centroid":
        if vectors is None or queries is None:
            raise ValueError("centroid aggregation needs the template vectors and the queries")
        centroids = np.zeros((n_identities, vectors.shape[1]), np.float32)
        np.add.at(centroids, labels, vectors)
        centroids /= np.maximum(np.linalg.norm(centroids, axis=1, keepdims=True), 1e-12)
        return similarity(queries, centroids)
    raise ValueError(f"unknown aggregation {how!r}")


def rank_identities(
    queries: np.ndarray, gallery: TemplateMatrix, top_k: int = 5, how: Aggregation = "max"
) -> list[list[Candidate]]:
    """Top-k identities for each query template, best first."""
    if len(gallery.names) == 0:
        return [[] for _ in range(len(queries))]
    scores = similarity(queries, gallery.vectors)
    per_id = identity_scores(scores, gallery.labels, len(gallery.names), how, gallery.vectors, queries)
    k = min(top_k, len(gallery.names))
    order = np.argsort(-per_id, axis=1)[:, :k]
    return [[Candidate(gallery.names[j], float(per_id[i, j])) for j in order[i]] for i in range(len(queries))]


def decide(candidates: list[Candidate], threshold: float) -> str | None:
    """Open-set decision: the best identity if it clears the threshold, else unknown (None)."""
    if candidates and candidates[0].score >= threshold:
        return candidates[0].identity
    return None
