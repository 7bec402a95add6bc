"""Identification against a gallery stored encrypted: the gallery side holds only ciphertexts.

The second mode of :mod:`faceprint.privacy.encrypted`. There the gallery side scores an encrypted
probe against its own plaintext templates; here the organisation that enrols people (the key
holder) encrypts its scoring vectors under its own CKKS key and hands the gallery side only
:class:`EncryptedGallery`: the encryption parameters, relinearisation keys (public evaluation
material) and the ciphertexts. No secret key, no template, no name: the names and which row is
whose stay with the :class:`KeyHolder`, beside the secret key.

A query is the key holder's encrypted probe in the plaintext mode's layout (:class:`Layout`, fold k):
the gallery's ciphertext (block b, c) holds exactly the values that mode encodes as plaintext
(:func:`block_values`), so each block's score ciphertext is the sum over c of probe[c] x gallery[b, c],
now ciphertext by ciphertext. The dot product's 128 terms are spread over ciphertexts, so summing
them is additions; the k partial sums within a ciphertext are added by the key holder after
decrypting, as in the plaintext mode: no rotation, so no Galois keys. Each block's sum is
relinearised once (not each product), which keeps the answer at two polynomials per ciphertext.

Parameters: the plaintext mode's N = 4096 (2,048 slots; one 60-bit data prime and SEAL's 49-bit special
prime: 109 bits, 128-bit security). Multiplicative depth 1 needs no rescaling when the product's
scale fits the data prime: probe at 2^28 x gallery at 2^27 leaves the plaintext mode's 4 bits of
headroom, and the special prime is what relinearisation needs. Balanced scales (rather than 2^30 x 2^25)
keep the gallery ciphertexts' fresh noise small: scores come within 1e-5 of plaintext.
N = 8192 would allow larger scales (more precision, not needed: the bar is 0.002) at four times the
storage and work per identity.
"""

from __future__ import annotations

import json
import math
import os
import secrets
import struct
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from faceprint.errors import FaceprintError
from faceprint.fileio import atomic_write
from faceprint.privacy.encrypted import (
    BadEncryptedQuery,
    EncryptedAnswer,
    EncryptedClient,
    EncryptedIdentifier,
    GalleryInfo,
    Layout,
    Remote,
    _load,
    _save,
    block_values,
    gallery_scale_bits,
    scoring_rows,
    seal,
)

if TYPE_CHECKING:
    from faceprint.gallery import Gallery

SCHEME = "ckks-seal-encrypted-gallery-v1"
PROBE_SCALE_BITS = 28  # x the gallery's 2^27: the 2^55 product keeps 4 bits of headroom in the 60-bit prime
_GALLERY_MAGIC = b"FPENCGAL"
_KEY_MAGIC = b"FPENCKEY"


def key_holder_client(secret_key: bytes | None = None) -> EncryptedClient:
    """A client with this mode's scales (a fresh key unless ``secret_key``)."""
    return EncryptedClient(scale_bits=PROBE_SCALE_BITS, secret_key=secret_key)


# ------------------------------------------------------------------------------------ files
def _write(
    path: str | os.PathLike[str], magic: bytes, header: dict[str, Any], blobs: Sequence[bytes], secret: bool = False
) -> None:
    """magic, header length, JSON header (with every blob's length), the blobs. A ``secret`` file is
    created owner-only and never overwrites one (a key lost that way loses the gallery)."""
    head = json.dumps({**header, "blobs": [len(b) for b in blobs]}).encode()
    if not secret:
        with atomic_write(path, "wb") as f:
            f.write(magic + struct.pack("<I", len(head)) + head)
            f.writelines(blobs)
        return
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise FaceprintError(f"{path}: already exists: a key file is never overwritten") from None
    except OSError as exc:
        raise FaceprintError(f"{path}: cannot create the key file ({exc.strerror})") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(magic + struct.pack("<I", len(head)) + head)
            f.writelines(blobs)
    except BaseException:
        os.unlink(path)  # no half-written key file
        raise


def _read(path: str | os.PathLike[str], magic: bytes, what: str) -> tuple[dict[str, Any], list[bytes]]:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise FaceprintError(f"{path}: cannot read the {what}: {exc.strerror or exc}") from None
    try:
        if data[: len(magic)] != magic:
            raise ValueError(f"not a faceprint {what}")
        (size,) = struct.unpack_from("<I", data, len(magic))
        start = len(magic) + 4
        header = json.loads(data[start : start + size])
        offset, blobs = start + size, []
        for n in header["blobs"]:
            if offset + n > len(data):
                raise ValueError("truncated")
            blobs.append(data[offset : offset + n])
            offset += n
        if header.get("scheme") != SCHEME:
            raise ValueError(f"scheme {header.get('scheme')!r}, this faceprint reads {SCHEME!r}")
    except (ValueError, KeyError, TypeError, struct.error) as exc:
        raise FaceprintError(f"{path}: not a readable {what} ({exc})") from None
    return header, blobs


# ------------------------------------------------------------------------------ gallery side
@dataclass
class EncryptedGallery:
    """What the gallery side stores: ciphertexts of every scoring row under the key holder's key.

    ``ciphertexts[b * C + c]`` is block b's ciphertext c (C = ``layout.probe_ciphertexts``). Holds no
    secret key; :meth:`score` needs none. Loaded SEAL objects are kept after the first query
    (about twice the stored bytes: SEAL expands the seeded half of each ciphertext); thread-safe."""

    gallery_id: str  # pairs it with its KeyHolder
    model: str
    layout: Layout
    probe_scale_bits: int
    parameters: bytes  # SEAL encryption parameters: no key
    relin_keys: bytes
    ciphertexts: list[bytes]
    _loaded: tuple[Any, Any, list[Any]] | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def build(cls, client: EncryptedClient, vectors: np.ndarray, model: str = "") -> EncryptedGallery:
        """Key holder's side: encrypt ``vectors`` (rows x dim scoring vectors) under ``client``'s key."""
        vectors = np.asarray(vectors, np.float64)
        if vectors.ndim != 2:
            raise FaceprintError(f"expected a (rows, dim) matrix of templates, got shape {vectors.shape}")
        layout = client.layout(*vectors.shape)
        scale = 2.0 ** gallery_scale_bits(client.context, client.scale_bits)
        ciphertexts = [
            client.encrypt_values(part, scale)
            for b in range(layout.blocks)
            for part in block_values(vectors, b, layout)
        ]
        return cls(
            secrets.token_hex(16),
            model,
            layout,
            client.scale_bits,
            client.public_context(),
            client.relin_keys(),
            ciphertexts,
        )

    @property
    def nbytes(self) -> int:
        """Bytes stored: parameters, relinearisation keys and ciphertexts."""
        return len(self.parameters) + len(self.relin_keys) + sum(map(len, self.ciphertexts))

    def save(self, path: str | os.PathLike[str]) -> None:
        header = {
            "scheme": SCHEME,
            "gallery_id": self.gallery_id,
            "model": self.model,
            "rows": self.layout.rows,
            "dim": self.layout.dim,
            "fold": self.layout.fold,
            "slots": self.layout.slots,
            "probe_scale_bits": self.probe_scale_bits,
        }
        _write(path, _GALLERY_MAGIC, header, [self.parameters, self.relin_keys, *self.ciphertexts])

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> EncryptedGallery:
        header, blobs = _read(path, _GALLERY_MAGIC, "encrypted gallery")
        try:
            layout = Layout(int(header["rows"]), int(header["dim"]), int(header["fold"]), int(header["slots"]))
            stored = cls(
                str(header["gallery_id"]),
                str(header["model"]),
                layout,
                int(header["probe_scale_bits"]),
                blobs[0],
                blobs[1],
                blobs[2:],
            )
        except (KeyError, TypeError, ValueError, IndexError, BadEncryptedQuery) as exc:
            raise FaceprintError(f"{path}: not a readable encrypted gallery ({exc})") from None
        if len(stored.ciphertexts) != layout.blocks * layout.probe_ciphertexts:
            raise FaceprintError(
                f"{path}: holds {len(stored.ciphertexts)} ciphertexts, its layout needs "
                f"{layout.blocks * layout.probe_ciphertexts}"
            )
        return stored

    def _objects(self) -> tuple[Any, Any, list[Any]]:
        """(context, relinearisation keys, ciphertexts) as SEAL objects, loaded once."""
        with self._lock:
            if self._loaded is None:
                try:
                    self._loaded = self._load_objects()
                except (RuntimeError, ValueError) as exc:
                    raise FaceprintError(f"the encrypted gallery is damaged: {exc}") from None
            return self._loaded

    def _load_objects(self) -> tuple[Any, Any, list[Any]]:
        s = seal()
        parms = s.EncryptionParameters(s.SCHEME_TYPE.CKKS)
        _load(parms.load, self.parameters)
        context = s.SEALContext(parms, True, s.SEC_LEVEL_TYPE.TC128)
        if not context.parameters_set():
            raise ValueError(f"its parameters are refused: {context.parameters_error_message()}")
        relin = s.RelinKeys()
        _load(lambda path: relin.load(context, path), self.relin_keys)
        ciphers = []
        for data in self.ciphertexts:
            cipher = s.Ciphertext()
            _load(lambda path, c=cipher: c.load(context, path), data)
            ciphers.append(cipher)
        return context, relin, ciphers

    def score(self, probe: Sequence[bytes]) -> list[bytes]:
        """Encrypted scores (``layout.blocks`` ciphertexts, decrypted as in the plaintext mode) of
        every row for the key holder's encrypted probe."""
        s = seal()
        context, relin, stored = self._objects()
        layout = self.layout
        if len(probe) != layout.probe_ciphertexts:
            raise BadEncryptedQuery(
                f"expected {layout.probe_ciphertexts} probe ciphertexts for {layout.dim} values at fold "
                f"{layout.fold}, got {len(probe)}"
            )
        ciphers = []
        for i, data in enumerate(probe):
            cipher = s.Ciphertext()
            try:
                _load(lambda path, c=cipher: c.load(context, path), data)
            except (RuntimeError, ValueError) as exc:
                raise BadEncryptedQuery(
                    f"probe ciphertext {i}: unreadable under the gallery's parameters ({exc})"
                ) from None
            ciphers.append(cipher)
        level = context.first_parms_id()
        scale = 2.0**self.probe_scale_bits
        if any(c.size() != 2 or c.parms_id() != level or not math.isclose(c.scale, scale) for c in ciphers):
            raise BadEncryptedQuery(
                f"probe ciphertexts must be fresh, at the first level and at scale 2^{self.probe_scale_bits}"
            )
        evaluator = s.Evaluator(context)
        width = layout.probe_ciphertexts
        out, term = [], s.Ciphertext()
        for b in range(layout.blocks):
            acc = s.Ciphertext()
            evaluator.multiply(ciphers[0], stored[b * width], acc)
            for c in range(1, width):
                evaluator.multiply(ciphers[c], stored[b * width + c], term)
                evaluator.add_inplace(acc, term)
            evaluator.relinearize_inplace(acc, relin)  # once per block: the sum of size-3 products
            out.append(_save(acc))
        return out


# -------------------------------------------------------------------------------- key holder
@dataclass
class KeyHolder:
    """The organisation's side: the secret key, and what the gallery side is not told (the names,
    each row's identity, the decision threshold)."""

    client: EncryptedClient
    gallery_id: str
    names: list[str]
    owners: np.ndarray  # per row, an index into names; rows of an identity contiguous
    threshold: float

    @classmethod
    def export(
        cls, gallery: Gallery, model: str, threshold: float, client: EncryptedClient | None = None
    ) -> tuple[KeyHolder, EncryptedGallery]:
        """Encrypt ``gallery``'s scoring rows for ``model`` (its aggregation, as plaintext search):
        the key holder to keep and the encrypted gallery to hand over."""
        rows = scoring_rows(gallery, model)
        return cls.from_rows(rows.vectors, rows.names, rows.views.owners, model, threshold, client)

    @classmethod
    def from_rows(
        cls,
        vectors: np.ndarray,
        names: Sequence[str],
        owners: np.ndarray | Sequence[int],
        model: str,
        threshold: float,
        client: EncryptedClient | None = None,
    ) -> tuple[KeyHolder, EncryptedGallery]:
        if len(vectors) == 0:
            raise FaceprintError(f"the gallery holds no templates of model {model or '?'}: nothing to encrypt")
        owners = np.asarray(owners, np.int64)
        if len(owners) != len(vectors) or (len(owners) and (owners.min() < 0 or owners.max() >= len(names))):
            raise FaceprintError("every row needs the index of its name")
        client = client or key_holder_client()
        stored = EncryptedGallery.build(client, vectors, model)
        return cls(client, stored.gallery_id, list(names), owners, threshold), stored

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the key file (a new file, owner-only): it decrypts every answer, keep it secret."""
        header = {
            "scheme": SCHEME,
            "gallery_id": self.gallery_id,
            "poly_degree": self.client.poly_degree,
            "coeff_bits": list(self.client.coeff_bits),
            "scale_bits": self.client.scale_bits,
            "names": self.names,
            "owners": self.owners.tolist(),
            "threshold": self.threshold,
        }
        _write(path, _KEY_MAGIC, header, [self.client.export_secret_key()], secret=True)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> KeyHolder:
        header, blobs = _read(path, _KEY_MAGIC, "encrypted-gallery key file")
        try:
            client = EncryptedClient(
                int(header["poly_degree"]), [int(b) for b in header["coeff_bits"]], int(header["scale_bits"]), blobs[0]
            )
            return cls(
                client,
                str(header["gallery_id"]),
                [str(n) for n in header["names"]],
                np.asarray(header["owners"], np.int64),
                float(header["threshold"]),
            )
        except (KeyError, TypeError, ValueError, IndexError, FaceprintError) as exc:
            raise FaceprintError(f"{path}: not a readable encrypted-gallery key file ({exc})") from None

    def identifier(self, gallery: EncryptedGallery) -> EncryptedIdentifier:
        """Identify faces (:meth:`EncryptedIdentifier.identify_faces`) against ``gallery``."""
        return EncryptedIdentifier(EncryptedGalleryRemote(self, gallery), self.client)


class EncryptedGalleryRemote(Remote):
    """The gallery side as the key holder's :class:`EncryptedIdentifier` sees it: the answer gets the
    names and owners here, from the key holder, never from the gallery side."""

    def __init__(self, holder: KeyHolder, gallery: EncryptedGallery) -> None:
        if holder.gallery_id != gallery.gallery_id:
            raise FaceprintError(
                f"this key file is for encrypted gallery {holder.gallery_id}, not {gallery.gallery_id}: "
                "export them together"
            )
        if len(holder.owners) != gallery.layout.rows:
            raise FaceprintError(
                f"the key file names {len(holder.owners)} rows, the gallery holds {gallery.layout.rows}"
            )
        self.holder = holder
        self.gallery = gallery

    def info(self) -> GalleryInfo:
        layout = self.gallery.layout
        return GalleryInfo(
            self.gallery.model, layout.rows, layout.dim, len(self.holder.names), self.holder.threshold, layout.fold
        )

    def query(self, public_context: bytes, probe: Sequence[bytes], fold: int) -> EncryptedAnswer:
        layout = self.gallery.layout
        if public_context != self.gallery.parameters:
            raise BadEncryptedQuery("the probe is encrypted under other parameters than the gallery")
        if fold != layout.fold:
            raise BadEncryptedQuery(f"the gallery is laid out at fold {layout.fold}, the probe at {fold}")
        results = self.gallery.score(probe)
        return EncryptedAnswer(self.holder.names, self.holder.owners.tolist(), layout.rows, layout.dim, fold, results)


__all__ = ["PROBE_SCALE_BITS", "SCHEME", "EncryptedGallery", "EncryptedGalleryRemote", "KeyHolder", "key_holder_client"]
