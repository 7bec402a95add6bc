"""Face-likeness: does a template come from a face at all?

A detector's false positive (a cat's face, a patterned wall, a printed logo) still gets a template, and
that template can even match someone in a gallery. The embedder gives it away, though. Templates of real
faces (dlib's ResNet, unit length) fill a 77-dimensional subspace of the 128, and inside it they lie in a
shell that is very thin along a few directions; crops that are not faces come out displaced along exactly
those directions (towards the mean template: "nobody in particular").

The model is a Gaussian of face templates (mean and principal axes, fitted on LFW View 1 *training*
people), read along its ``m`` least-varying axes inside that subspace: the squared whitened distance
there, turned into the share of training faces that lie at least as far (scored out of fold, by person).
So :func:`face_likeness` is 0.5 for a template as typical as the median face, 0.01 for one further out
than 99% of faces, and goes on falling smoothly (an exponential tail fitted to the last percent) for
what no face does. :data:`FACE_LIKE_MIN` keeps 99.5% of the training faces. The fit chose m = 1: the
single thinnest axis separated training non-faces best (AUROC 0.999 out of fold; more axes add noise).

Measured on disjoint data (``python benchmarks/facelike.py``): 99.6% of LFW View 1 test faces kept,
0.85% of 4,818 non-face crops pass (AUROC 0.999; the cat's face 7e-9), and with a lowered BlazeFace
threshold the gate takes precision on the group and CompreFace photos from 0.68 / 0.54 back to 1.0.
The price: a face hidden behind a hand or dark glasses also looks like nobody (5 of the 13 faces BlazeFace
finds in the dense crowd photo score under the gate), so gate low-threshold hits, not default ones.

``data/facelike.json`` holds aggregate statistics of LFW View 1 training templates only (the mean
template, ``m`` principal axes scaled by their spread, and a table of distance quantiles): no image and
no person's template can be recovered from them. It is a few KB. Refit it (deterministic: the same
templates give the same file) with::

    python benchmarks/facelike.py --fit

which also chooses ``m`` on training data (LFW View 1 training faces against background patches and
low-threshold detector hits from the same training images), and measure it on disjoint data with
``python benchmarks/facelike.py``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources

import numpy as np

#: the parameter file, beside this module in ``faceprint/analyze/data/``
PARAMS_FILE = "facelike.json"
#: the keep rate the gate is set for, on training faces scored out of fold
KEEP = 0.995
#: default gate: face_likeness >= this keeps 99.5% of the LFW View 1 training faces (by construction
#: of the score: the share of training faces at least as atypical)
FACE_LIKE_MIN = round(1.0 - KEEP, 6)
#: principal axes whose variance is below this share of the largest are outside the face subspace
#: (dlib's templates: 77 axes above it; the 78th varies 20x less than the 77th and 7,000x less than
#: the first, and along the last 50 no template, face or not, varies at all)
SUPPORT_REL = 1e-3
#: survival levels of the quantile table: every percent, then the tail down to 0.1%
LEVELS = np.r_[np.linspace(1.0, 0.01, 100), 0.005, 0.002, 0.001]


@dataclass(frozen=True)
class FaceLikeModel:
    """The fitted parameters; :meth:`score` maps templates to face-likeness."""

    mean: np.ndarray  # (d,) mean training template
    axes: np.ndarray  # (d, m) the m least-varying principal axes of the face subspace, / their std
    distances: np.ndarray  # (L,) squared whitened distances, ascending
    log_survival: np.ndarray  # (L,) log share of training faces at least that far, descending from 0
    tail: float  # beyond the table, log survival falls by this much per unit of squared distance
    template_model: str = ""  # the templates it was fitted on (FaceEngine.info.template_model)
    source: str = ""  # what it was fitted on, in words

    def distance2(self, embeddings: np.ndarray) -> np.ndarray:
        """Squared whitened distance from the mean along the minor axes (0 = typical), one per row."""
        x = np.asarray(embeddings, dtype=np.float64)
        if x.ndim == 0 or x.shape[-1] != self.mean.shape[0]:
            raise ValueError(f"expected templates of length {self.mean.shape[0]}, got shape {x.shape}")
        if not np.isfinite(x).all():
            raise ValueError("templates contain NaN or infinite values")
        # the statistics are of unit-length templates: only a template's direction means anything
        x = x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)
        z = (x - self.mean) @ self.axes
        return np.sum(z * z, axis=-1)

    def score_distance2(self, d2: np.ndarray) -> np.ndarray:
        """Squared distances -> face-likeness in [0, 1] (interpolated log survival, exponential tail)."""
        d2 = np.asarray(d2, dtype=np.float64)
        log_s = np.interp(d2, self.distances, self.log_survival)  # below the table: 0, i.e. score 1
        beyond = d2 > self.distances[-1]
        log_s = np.where(beyond, self.log_survival[-1] - self.tail * (d2 - self.distances[-1]), log_s)
        return np.clip(np.exp(log_s), 0.0, 1.0)

    def score(self, embeddings: np.ndarray) -> np.ndarray:
        return self.score_distance2(self.distance2(embeddings))

    def to_json(self) -> str:
        """The parameter file's text: stable key order and float repr, so a refit on the same data
        writes the same bytes."""
        data = {
            "about": "aggregate statistics of LFW View 1 training face templates (faceprint.analyze.facelike)",
            "template_model": self.template_model,
            "source": self.source,
            "mean": self.mean.tolist(),
            "axes": self.axes.T.tolist(),  # one row per axis
            "distances": self.distances.tolist(),
            "log_survival": self.log_survival.tolist(),
            "tail": self.tail,
        }
        return json.dumps(data, indent=1) + "\n"

    @classmethod
    def from_json(cls, text: str) -> FaceLikeModel:
        data = json.loads(text)
        return cls(
            mean=np.asarray(data["mean"], np.float64),
            axes=np.asarray(data["axes"], np.float64).T,
            distances=np.asarray(data["distances"], np.float64),
            log_survival=np.asarray(data["log_survival"], np.float64),
            tail=float(data["tail"]),
            template_model=str(data.get("template_model", "")),
            source=str(data.get("source", "")),
        )


def _minor_axes(templates: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
    """(mean, whitened minor axes (d, m)) of a Gaussian fitted to ``templates``."""
    mean = templates.mean(axis=0)
    variances, vectors = np.linalg.eigh(np.cov(templates, rowvar=False))  # ascending
    inside = variances >= SUPPORT_REL * variances[-1]
    if inside.sum() < m:
        raise ValueError(f"only {int(inside.sum())} axes in the face subspace, {m} asked for")
    first = int(np.argmax(inside))  # the least-varying axis inside the subspace
    chosen = vectors[:, first : first + m]
    # an eigenvector's sign is arbitrary: fix it (largest entry positive) so the file is stable
    signs = np.sign(chosen[np.argmax(np.abs(chosen), axis=0), np.arange(m)])
    return mean, chosen * signs / np.sqrt(variances[first : first + m])


def fit_model(
    templates: np.ndarray, folds: np.ndarray, axes: int, template_model: str = "", source: str = ""
) -> tuple[FaceLikeModel, np.ndarray]:
    """Fit on face templates (n, d); ``folds`` (n,) ints group them by person.

    The axes come from all templates; the distance-to-score table from out-of-fold distances (each
    fold scored by a model fitted without it), so that a new face's score is calibrated like the
    training faces' and is not flattered by having been fitted on. Returns the model and the
    out-of-fold squared distances. Deterministic: the same input gives the same model.
    """
    x = np.asarray(templates, dtype=np.float64)
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    folds = np.asarray(folds)
    oof = np.empty(len(x))
    for fold in np.unique(folds):
        held = folds == fold
        mean, whiten = _minor_axes(x[~held], axes)
        z = (x[held] - mean) @ whiten
        oof[held] = np.sum(z * z, axis=1)
    mean, whiten = _minor_axes(x, axes)
    distances = np.quantile(oof, 1.0 - LEVELS)
    distances[0] = 0.0  # nothing is more typical than the mean itself
    # the tail: log survival linear in the squared distance, through the 1% and 0.1% points
    tail = float(np.log(LEVELS[-4] / LEVELS[-1]) / max(distances[-1] - distances[-4], 1e-12))
    model = FaceLikeModel(
        mean=mean,
        axes=whiten,
        distances=distances,
        log_survival=np.log(LEVELS),
        tail=tail,
        template_model=template_model,
        source=source,
    )
    return model, oof


@cache
def face_like_model() -> FaceLikeModel:
    """The shipped parameters, read once from the package data."""
    text = resources.files(__package__ or "faceprint.analyze").joinpath("data").joinpath(PARAMS_FILE).read_text("utf-8")
    return FaceLikeModel.from_json(text)


def face_likeness(embeddings: np.ndarray) -> np.ndarray:
    """Face-likeness in [0, 1] of templates (n, 128) -> (n,), or of one template (128,) -> ().

    The share of LFW training faces whose template is at least as atypical: 0.5 is a median face,
    higher = more face-like; detector false positives score near 0. Made for faceprint's default
    templates (dlib ResNet, flip-averaged); templates without flip averaging score alike.
    """
    return face_like_model().score(embeddings)


def is_face_like(embeddings: np.ndarray, threshold: float = FACE_LIKE_MIN) -> np.ndarray:
    """True where a template is face-like enough to keep (default: keeps 99.5% of training faces)."""
    return face_likeness(embeddings) >= threshold
