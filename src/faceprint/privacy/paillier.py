"""Paillier baseline for encrypted identification (python-paillier, ``phe``): what CKKS is measured against.

The client encrypts each template value as a fixed-point integer (one Paillier ciphertext each); the
gallery side raises them to its own fixed-point values and multiplies (an encrypted dot product per
row, one ciphertext per row back); the client decrypts. Negative values use the ciphertext's
inverse, computed once per query, so every exponent is a small positive integer (``FRACTION_BITS``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from faceprint.errors import ModelError

KEY_BITS = 2048
FRACTION_BITS = 24  # values are rounded to 2^-24: a score's error stays below 128 * 2^-24 (8e-6)


def _phe() -> tuple[object, object]:
    try:
        from phe import paillier, util
    except ImportError as exc:
        raise ModelError(f"the Paillier baseline needs phe: install faceprint[privacy] ({exc})") from None
    return paillier, util


def _fixed(values: np.ndarray) -> list[int]:
    return [int(v) for v in np.rint(np.asarray(values, np.float64) * (1 << FRACTION_BITS))]


class PaillierClient:
    """Holds the private key: encrypts probes, decrypts scores."""

    def __init__(self, key_bits: int = KEY_BITS) -> None:
        paillier, _ = _phe()
        self.public_key, self._private_key = paillier.generate_paillier_keypair(n_length=key_bits)  # type: ignore[attr-defined]

    @property
    def ciphertext_bytes(self) -> int:
        """Bytes of one ciphertext (an integer modulo n^2)."""
        return (self.public_key.nsquare.bit_length() + 7) // 8

    def encrypt(self, probe: np.ndarray) -> list[int]:
        n = self.public_key.n
        return [self.public_key.raw_encrypt(v % n) for v in _fixed(probe)]

    def decrypt(self, scores: Sequence[int]) -> np.ndarray:
        n = self.public_key.n
        plain = [self._private_key.raw_decrypt(c) for c in scores]
        signed = [p - n if p > n // 2 else p for p in plain]
        return np.asarray(signed, np.float64) / float(1 << (2 * FRACTION_BITS))


def paillier_scores(public_key: object, probe: Sequence[int], vectors: np.ndarray) -> list[int]:
    """The gallery side: an encrypted dot product of the probe with every row of ``vectors``."""
    _, util = _phe()
    nsquare = public_key.nsquare  # type: ignore[attr-defined]
    inverses = [util.invert(c, nsquare) for c in probe]  # type: ignore[attr-defined]
    powmod, mulmod = util.powmod, util.mulmod  # type: ignore[attr-defined]
    out = []
    for row in np.asarray(vectors):
        acc = 1
        for c, inv, v in zip(probe, inverses, _fixed(row)):
            if v:
                acc = mulmod(acc, powmod(c if v > 0 else inv, abs(v), nsquare), nsquare)
        out.append(int(acc))
    return out


__all__ = ["FRACTION_BITS", "KEY_BITS", "PaillierClient", "paillier_scores"]
