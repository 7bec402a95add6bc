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


#: Default operating points for dlib's ResNet with flip averaging and BlazeFace alignment,
#: measured on LFW View 1 *training* people (peopleDevTrain.txt), who are disjoint from the
#: View 1 test people that the open-set benchmark uses.
#: Identification: 200 enrolled people (2 photos each, centroid scoring) and 400 people never
#: enrolled; the threshold lets 5% of the unknown probes through (FPIR 0.05) and identifies
#: 95.6% of enrolled probes. Reproduce: ``python benchmarks/lfw_open_set.py --calibrate``.
DEFAULT_IDENTIFY = OperatingPoint(
    threshold=0.942, far=0.05, frr=0.044, source="LFW peopleDevTrain, 200 enrolled + 400 unknown, FPIR 5%"
)
#: Verification (1:1): every pair among 1,550 DevTrain photos (~2.7k genuine, 1.19M impostor
#: pairs); the threshold is the 99.9th percentile of impostor scores (FAR 1e-3), TAR 0.935.
DEFAULT_VERIFY = OperatingPoint(threshold=0.929, far=1e-3, frr=0.065, source="LFW peopleDevTrain, all pairs, FAR 1e-3")


def similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarity matrix between unit-length row sets ``a`` (M, D) and ``b`` (N, D)."""
    return np.atleast_2d(a).astype(np.float32) @ np.atleast_2d(b).astype(np.float32).T


def identity_centroids(gallery: TemplateMatrix) -> np.ndarray:
    """(n_identities, D) unit-length mean template of each identity."""
    centroids = np.zeros((len(gallery.names), gallery.vectors.shape[1]), np.float32)
    np.add.at(centroids, gallery.labels, gallery.vectors)
    return centroids / np.maximum(np.linalg.norm(centroids, axis=1, keepdims=True), 1e-12)


def identity_scores(
    queries: np.ndarray, gallery: TemplateMatrix, how: Aggregation = "centroid", centroids: np.ndarray | None = None
) -> np.ndarray:
    """(Q, D) unit queries -> (Q, n_identities) identity scores.

    "centroid" (default) compares with each identity's mean template: on LFW it beat both
    the best single template ("max") and the mean score ("mean") at every operating point
    measured (see ``benchmarks/lfw_open_set.py --compare``).
    """
    n = len(gallery.names)
    if how == "centroid":
        return similarity(queries, identity_centroids(gallery) if centroids is None else centroids)
    scores = similarity(queries, gallery.vectors)
    if how == "max":
        out = np.full((len(queries), n), -np.inf, np.float32)
        np.maximum.at(out.T, gallery.labels, scores.T)
        return out
    if how == "mean":
        sums = np.zeros((len(queries), n), np.float32)
        np.add.at(sums.T, gallery.labels, scores.T)
        return sums / np.maximum(np.bincount(gallery.labels, minlength=n), 1).astype(np.float32)
    raise ValueError(f"unknown aggregation {how!r}")


def rank_identities(
    queries: np.ndarray,
    gallery: TemplateMatrix,
    top_k: int = 5,
    how: Aggregation = "centroid",
    centroids: np.ndarray | None = None,
) -> list[list[Candidate]]:
    """Top-k identities for each query template, best first."""
    if len(gallery.names) == 0:
        return [[] for _ in range(len(queries))]
    per_id = identity_scores(queries, gallery, how, centroids)
    k = min(top_k, len(gallery.names))
    order = np.argsort(-per_id, axis=1)[:, :k]
    return [[Candidate(gallery.names[j], float(per_id[i, j])) for j in order[i]] for i in range(len(queries))]


def decide(candidates: list[Candidate], threshold: float) -> str | None:
    """Open-set decision: the best identity if it clears the threshold, else unknown (None)."""
    if candidates and candidates[0].score >= threshold:
        return candidates[0].identity
    return None
