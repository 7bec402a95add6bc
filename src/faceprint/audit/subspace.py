"""The directions that separate identities, and how much of a template change lies along them.

Given unit templates ``X`` (n, d) with identity labels, the between-identity scatter is
``S_b = sum_c n_c (m_c - m)(m_c - m)^T`` over the identities' means ``m_c``, and the within-identity
scatter ``S_w = sum_c sum_{x in c} (x - m_c)(x - m_c)^T``. The *identity directions* are the top-k
generalised eigenvectors of ``S_b v = lambda S_w v`` (Fisher's LDA: most spread between people per
unit of spread within a person; ``S_w`` gets a ridge of 1e-3 of its mean eigenvalue so that it is
invertible), and :class:`IdentitySubspace` holds an orthonormal basis ``Q`` (d, k) of their span.

The *alignment* of template changes ``d_i = e(T(x_i)) - e(x_i)`` is the share of their energy in
that span::

    alignment = sum_i ||Q^T d_i||^2 / sum_i ||d_i||^2

1 means the attribute moves templates only along directions that tell people apart (it changes
who the face looks like); 0 means only along directions people share (a nuisance the model can
absorb). A change with no preferred direction scores ``k / d`` (:attr:`IdentitySubspace.chance`), but
templates do not fill their ``d`` dimensions evenly (the dlib model's spread between people lives in
about 80 of its 128), so the useful yardsticks are measured ones: how aligned the difference between
two photos of one person is, and between two people (see :mod:`faceprint.audit.attributes`).
The subspace is estimated on other people than those it is applied to (LFW DevTrain for DevTest).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: identity directions kept, chosen on LFW DevTrain alone: with the subspace of half its people, the
#: other half's same-person differences put 15% of their energy in 16 directions and different-person
#: differences 27% (k=8: 6% and 16%; k=32: 35% and 46%); the 16th direction's Fisher ratio is still 10
DEFAULT_K = 16
RIDGE = 1e-3


@dataclass(frozen=True)
class IdentitySubspace:
    basis: np.ndarray  # (d, k), orthonormal columns
    ratios: np.ndarray  # (k,) Fisher ratios (between / within variance) of the directions
    identities: int
    templates: int

    @property
    def dim(self) -> int:
        return int(self.basis.shape[0])

    @property
    def k(self) -> int:
        return int(self.basis.shape[1])

    @property
    def chance(self) -> float:
        """The alignment of changes with no preferred direction."""
        return self.k / self.dim

    def alignment(self, shifts: np.ndarray) -> float:
        """Share of the energy of ``shifts`` (n, d) lying in the subspace (NaN if they are all zero)."""
        d = np.atleast_2d(np.asarray(shifts, np.float64))
        total = float(np.sum(d * d))
        if total <= 0:
            return float("nan")
        inside = d @ self.basis
        return float(np.sum(inside * inside) / total)


def identity_subspace(templates: np.ndarray, labels: np.ndarray | list[str], k: int = DEFAULT_K) -> IdentitySubspace:
    """The top-``k`` Fisher directions of these templates (k is capped at identities - 1)."""
    x = np.asarray(templates, np.float64)
    y = np.asarray(labels)
    if x.ndim != 2 or len(x) != len(y):
        raise ValueError("templates must be (n, d) with one label per row")
    names, inverse = np.unique(y, return_inverse=True)
    if len(names) < 2:
        raise ValueError("the identity subspace needs at least 2 identities")
    d = x.shape[1]
    mean = x.mean(axis=0)
    counts = np.bincount(inverse).astype(np.float64)
    means = np.zeros((len(names), d))
    np.add.at(means, inverse, x)
    means /= counts[:, None]
    between = (means - mean).T * counts @ (means - mean)
    within_dev = x - means[inverse]
    within = within_dev.T @ within_dev
    within += RIDGE * max(np.trace(within) / d, 1e-12) * np.eye(d)
    # S_b v = l S_w v  <=>  (L^-1 S_b L^-T) u = l u with v = L^-T u, for S_w = L L^T
    chol = np.linalg.cholesky(within)
    inv = np.linalg.inv(chol)
    values, vectors = np.linalg.eigh(inv @ between @ inv.T)
    order = np.argsort(values)[::-1][: max(1, min(k, len(names) - 1))]
    directions = inv.T @ vectors[:, order]
    basis, _ = np.linalg.qr(directions)
    # Fisher ratio per direction, as variances per template (S_b and S_w are sums over templates)
    return IdentitySubspace(basis, values[order], len(names), len(x))
