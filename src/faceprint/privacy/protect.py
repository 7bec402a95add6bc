"""Protected templates (ISO/IEC 24745): a gallery that stores every template multiplied by a secret
random orthogonal matrix.

The matrix is derived from a 32-byte key (``FACEPRINT_PROTECT_KEY`` or the file
``FACEPRINT_PROTECT_KEY_FILE`` names, the same formats as the encryption keys); probes are multiplied
by the same matrix before they are matched. An orthogonal map keeps every inner product, so scores,
thresholds and decisions within the gallery are exactly those of unprotected templates (to float32
rounding), while the same face enrolled in two galleries under two keys gives templates whose
cosine is near 0: the galleries cannot be linked by comparing templates (``benchmarks/unlinkability.py``
measures it). A new key renews every template (re-enrol into a new gallery).

The key is never stored: the gallery records only the scheme and a fingerprint of the key (a keyed
hash, which tells a wrong key apart but does not give the key back), as the setting :data:`SETTING`.

What it does not do: the matrix is linear and the key is all that hides it, so anyone with the key
(or with enough pairs of raw and protected templates of the same faces to solve for it) can undo it;
and the scores *between* the templates of one gallery are those of the raw templates, so two whole
galleries of many people could be aligned by their score structure. It stops direct comparison of
templates across galleries and makes a leaked gallery useless against another system's templates.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
from dataclasses import replace
from typing import Any, Protocol

import numpy as np

from faceprint.errors import ProtectionKeyError
from faceprint.gallery.base import Template
from faceprint.settings import PROTECT_KEY_ENV, PROTECT_KEY_FILE_ENV

#: the gallery setting that marks a protected gallery: {"scheme": SCHEME, "fingerprint": hex}
SETTING = "protection"
SCHEME = "orthogonal-v1"
_SALT = b"faceprint/protect/orthogonal-v1"
KEY_HINT = f"{PROTECT_KEY_ENV} or {PROTECT_KEY_FILE_ENV}"


class SettingsStore(Protocol):
    path: Any

    def get_setting(self, key: str) -> Any | None: ...

    def set_setting(self, key: str, value: Any) -> None: ...

    def models(self) -> list[str]: ...


def _prk(key: bytes) -> bytes:
    """HKDF-Extract (RFC 5869, SHA-256): a pseudorandom key from which everything else is derived."""
    return hmac.new(_SALT, key, hashlib.sha256).digest()


def key_fingerprint(key: bytes) -> str:
    """What a gallery records to recognise its key: 16 hex digits of a keyed hash (not the key)."""
    return hmac.new(_prk(key), b"fingerprint", hashlib.sha256).hexdigest()[:16]


def orthogonal_matrix(key: bytes, dim: int) -> np.ndarray:
    """The key's (dim, dim) orthogonal matrix, uniformly distributed (Haar) over the orthogonal group:
    the Q of the QR factorisation of a Gaussian matrix, with R's diagonal made positive. The Gaussian
    numbers come from SHAKE-256 of the HKDF key (HKDF-Expand stops at 8 KiB; a 128-d matrix needs
    128 KiB) by Box-Muller, so the matrix depends only on the key, not on numpy's random generators."""
    stream = hashlib.shake_256(_prk(key) + b"matrix" + dim.to_bytes(4, "big")).digest(8 * dim * dim)
    uniform = (np.frombuffer(stream, ">u8") >> np.uint64(11)).astype(np.float64) * 2.0**-53  # [0, 1)
    u1, u2 = 1.0 - uniform[0::2], uniform[1::2]  # u1 in (0, 1]: log is finite
    radius = np.sqrt(-2.0 * np.log(u1))
    gauss = np.concatenate([radius * np.cos(2 * np.pi * u2), radius * np.sin(2 * np.pi * u2)])
    q, r = np.linalg.qr(gauss.reshape(dim, dim))
    return q * np.sign(np.diag(r))


class TemplateProtection:
    """The transform of one key: :meth:`apply` to templates before they are stored or matched,
    :meth:`revert` to get raw templates back (the enrolment's subject choice compares new faces with
    a person's stored ones)."""

    def __init__(self, key: bytes) -> None:
        self._key = key
        self.fingerprint = key_fingerprint(key)
        self._matrices: dict[int, np.ndarray] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:  # never the key
        return f"TemplateProtection(fingerprint={self.fingerprint!r})"

    def matrix(self, dim: int) -> np.ndarray:
        with self._lock:
            if dim not in self._matrices:
                self._matrices[dim] = orthogonal_matrix(self._key, dim)
            return self._matrices[dim]

    def apply(self, vectors: np.ndarray) -> np.ndarray:
        """Protected templates: each row (or the one vector) times the matrix, as float32."""
        x = np.asarray(vectors, np.float64)
        return (x @ self.matrix(x.shape[-1]).T).astype(np.float32)

    def revert(self, vectors: np.ndarray) -> np.ndarray:
        """The raw templates of protected ones (the matrix's inverse is its transpose)."""
        x = np.asarray(vectors, np.float64)
        return (x @ self.matrix(x.shape[-1])).astype(np.float32)

    def templates(self, templates: list[Template]) -> list[Template]:
        return [replace(t, embedding=self.apply(t.embedding)) for t in templates]


def gallery_protection(store: SettingsStore, key: bytes | None) -> TemplateProtection | None:
    """The protection of the gallery in ``store`` with ``key`` (None: an unprotected gallery). Raises
    ProtectionKeyError when the gallery is protected and the key is missing or another, or when a key
    is given for an unprotected gallery (its templates would not be protected, and scores would be
    noise)."""
    recorded = store.get_setting(SETTING)
    if recorded is None:
        if key is not None:
            raise ProtectionKeyError(
                f"{store.path}: a protection key is set ({KEY_HINT}) but the gallery's templates are not "
                "protected: unset it, or start a protected gallery with `faceprint gallery protect`"
            )
        return None
    if not isinstance(recorded, dict) or recorded.get("scheme") != SCHEME:
        raise ProtectionKeyError(f"{store.path}: templates protected by an unknown scheme ({recorded!r})")
    if key is None:
        raise ProtectionKeyError(f"{store.path}: the gallery stores protected templates: set its key in {KEY_HINT}")
    protection = TemplateProtection(key)
    if not hmac.compare_digest(protection.fingerprint, str(recorded.get("fingerprint"))):
        raise ProtectionKeyError(
            f"{store.path}: the protection key is not this gallery's (fingerprint {protection.fingerprint}, "
            f"the gallery's is {recorded.get('fingerprint')})"
        )
    return protection


def protect_gallery(store: SettingsStore, key: bytes) -> bool:
    """Make the (empty) gallery in ``store`` protected with ``key``: True when done now, False when it
    already was with this key. Refused for a gallery that holds templates (they are not protected; enrol
    them again into a new protected gallery) or that is protected with another key."""
    fingerprint = key_fingerprint(key)
    recorded = store.get_setting(SETTING)
    if recorded is not None:
        gallery_protection(store, key)  # raises for another key or scheme
        return False
    if store.models():
        raise ProtectionKeyError(
            f"{store.path}: the gallery already holds unprotected templates; protection starts with an empty "
            "gallery (protect a new one, then enrol the photos again)"
        )
    store.set_setting(SETTING, {"scheme": SCHEME, "fingerprint": fingerprint})
    return True


def unlinkability(mated: np.ndarray, non_mated: np.ndarray, bins: int | None = None, omega: float = 1.0) -> float:
    """Global unlinkability D<->sys of Gomez-Barrero et al., "General Framework to Evaluate Unlinkability
    in Biometric Template Protection Systems" (IEEE TIFS 13(6), 2018): 0 when comparing two templates
    tells nothing about whether they are of the same person (fully unlinkable), 1 when it always tells.

    ``mated``: scores between templates of the same person in two systems; ``non_mated``: of different
    people; ``omega``: the prior ratio P(mated) / P(non-mated). Each score's local linkability is
    D<->(s) = P(mated | s) - P(non-mated | s) where positive, else 0, with the likelihoods estimated by
    histograms (``bins``: the paper's choice, len(mated) / 10 up to 100); D<->sys is its mean over the
    mated scores (the integral of the histogram densities, not a trapezoid over bin centres)."""
    mated = np.asarray(mated, np.float64).ravel()
    non_mated = np.asarray(non_mated, np.float64).ravel()
    if not len(mated) or not len(non_mated):
        raise ValueError("unlinkability needs mated and non-mated scores")
    bins = bins or max(1, min(len(mated) // 10, 100))
    edges = np.linspace(min(mated.min(), non_mated.min()), max(mated.max(), non_mated.max()), bins + 1)
    p_mated = np.histogram(mated, edges, density=True)[0]
    p_non = np.histogram(non_mated, edges, density=True)[0]
    # 2 * w LR / (1 + w LR) - 1 with LR = p_mated / p_non, written without the division by p_non = 0
    weighted = omega * p_mated
    local = np.where(weighted > p_non, (weighted - p_non) / np.maximum(weighted + p_non, 1e-300), 0.0)
    return float(np.sum(local * p_mated * np.diff(edges)))
