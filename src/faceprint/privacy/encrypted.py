"""Identification on encrypted templates: the gallery side scores a probe it cannot read.

The client holds the secret key. It encrypts its probe template with CKKS (Microsoft SEAL, through
the ``tenseal.sealapi`` bindings of the TenSEAL wheel) and sends the ciphertexts with the bare
encryption parameters, which hold no key at all. The gallery side multiplies them by its own
(plaintext) scoring vectors and sums, which needs no key either, and returns ciphertexts of the
scores; only the client can decrypt them, rank the identities and decide.

Layout (``fold`` = k coordinates per ciphertext, G = slots / k identities per block): probe
ciphertext c holds coordinate ``c*k + g`` repeated over slots ``g*G .. g*G+G-1``; the gallery's
plaintext for (block b, ciphertext c) holds ``V[b*G + i, c*k + g]`` in slot ``g*G + i``. The sum over c
of their products leaves k partial dot products per row, which the client adds up after decrypting.
So a query costs ``ceil(D/k)`` ciphertexts up and ``ceil(rows*k/slots)`` down, and
``ceil(D/k) * blocks`` plaintext multiplications (about 128 * rows / 2048) with no rotation, no
relinearisation and so no evaluation keys; :func:`choose_fold` picks the k that sends the fewest bytes.

Encryption is symmetric (SEAL's seeded ciphertexts: half the upload of public-key ones). One 60-bit
data prime holds the product of a probe at scale 2^30 and a gallery at scale 2^26, four bits below
the prime: every partial score is a partial dot product of unit vectors (at most 1), so it cannot
wrap. Scores come back within about 1e-6 of the plaintext ones.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import os
import tempfile
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from faceprint.errors import FaceprintError, ModelError
from faceprint.match import IdentityViews, decide, gallery_views, identity_centroids, top_identities
from faceprint.types import Face, Match

if TYPE_CHECKING:
    from faceprint.gallery import Gallery

SCHEME = "ckks-seal-fold-v1"
POLY_DEGREE = 4096  # 2,048 slots; SEAL allows 109 coefficient bits at 128-bit security
COEFF_BITS = (60, 49)  # the data prime, then SEAL's special prime (key switching: only encrypted_gallery relinearises)
PROBE_SCALE_BITS = 30
HEADROOM_BITS = 4  # the product's scale stays this far below the data prime
#: the parameters a server accepts: bounds on the work one query can ask for
MAX_POLY_DEGREE = 16384
MAX_COEFF_PRIMES = 4
#: encoded gallery plaintexts kept between queries (100k identities at fold 1 take about 205 MB);
#: a larger gallery is encoded again for every query (about 0.13 ms per 2,048 values)
DEFAULT_CACHE_BYTES = 256 * 2**20


class BadEncryptedQuery(FaceprintError):
    """Parameters or ciphertexts that cannot be used (malformed, insecure, or of another layout)."""

    code = "bad_request"


def seal() -> Any:
    """The SEAL bindings, or a one-line error naming the extra to install."""
    try:
        import tenseal.sealapi as sealapi
    except ImportError as exc:
        raise ModelError(
            f"encrypted identification needs TenSEAL: install faceprint[privacy] (pip install 'faceprint[privacy]'; "
            f"{exc})"
        ) from None
    return sealapi


# ------------------------------------------------------------------------------------ bytes
# SEAL's bindings save and load through file paths: a scratch file per call (in memory where /dev/shm exists)
_SCRATCH = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None


def _save(obj: Any) -> bytes:
    fd, path = tempfile.mkstemp(dir=_SCRATCH, prefix="faceprint-ckks-")
    os.close(fd)
    try:
        obj.save(path)
        return Path(path).read_bytes()
    finally:
        os.unlink(path)


def _load(load: Callable[[str], None], data: bytes) -> None:
    fd, path = tempfile.mkstemp(dir=_SCRATCH, prefix="faceprint-ckks-")
    try:
        os.write(fd, data)
        os.close(fd)
        load(path)
    finally:
        os.unlink(path)


# ----------------------------------------------------------------------------------- layout
def choose_fold(rows: int, dim: int, slots: int) -> int:
    """Coordinates per probe ciphertext (a power of two) that sends the fewest bytes for ``rows``
    scoring vectors: an uploaded ciphertext is seeded (one polynomial), a result has two."""
    folds = [1 << p for p in range(0, int(math.log2(min(dim, slots))) + 1)]
    return min(folds, key=lambda k: (math.ceil(dim / k) + 2 * math.ceil(max(rows, 1) * k / slots), k))


@dataclass(frozen=True)
class Layout:
    """How ``rows`` vectors of ``dim`` coordinates are packed into ciphertexts of ``slots`` slots."""

    rows: int
    dim: int
    fold: int
    slots: int

    def __post_init__(self) -> None:
        if self.fold < 1 or self.fold & (self.fold - 1) or self.fold > min(self.slots, 1 << 16):
            raise BadEncryptedQuery(f"fold must be a power of two up to {self.slots}, got {self.fold}")

    @property
    def group(self) -> int:
        """Rows per result ciphertext."""
        return self.slots // self.fold

    @property
    def probe_ciphertexts(self) -> int:
        return math.ceil(self.dim / self.fold)

    @property
    def blocks(self) -> int:
        """Result ciphertexts."""
        return math.ceil(self.rows / self.group)


# ----------------------------------------------------------------------------------- client
class EncryptedClient:
    """The side that holds the secret key: encrypts probes, decrypts and ranks scores.

    A fresh key is made for every client unless ``secret_key`` (bytes of :meth:`export_secret_key`)
    is given; nothing it sends (:meth:`public_context`, the probe ciphertexts) contains it."""

    def __init__(
        self,
        poly_degree: int = POLY_DEGREE,
        coeff_bits: Sequence[int] = COEFF_BITS,
        scale_bits: int = PROBE_SCALE_BITS,
        secret_key: bytes | None = None,
    ) -> None:
        s = seal()
        parms = s.EncryptionParameters(s.SCHEME_TYPE.CKKS)
        parms.set_poly_modulus_degree(poly_degree)
        parms.set_coeff_modulus(s.CoeffModulus.Create(poly_degree, list(coeff_bits)))
        self._parms = parms
        self._context = _secure_context(parms)
        if secret_key is None:
            self._secret = s.KeyGenerator(self._context).secret_key()
        else:
            self._secret = s.SecretKey()
            try:
                _load(lambda path: self._secret.load(self._context, path), secret_key)
            except (RuntimeError, ValueError) as exc:
                raise FaceprintError(f"the secret key does not fit these encryption parameters: {exc}") from None
        self._encryptor = s.Encryptor(self._context, self._secret)
        self._decryptor = s.Decryptor(self._context, self._secret)
        self._encoder = s.CKKSEncoder(self._context)
        self.scale = 2.0**scale_bits
        self.scale_bits = scale_bits
        self.poly_degree = poly_degree
        self.coeff_bits = tuple(coeff_bits)
        self.slots: int = self._encoder.slot_count()

    @property
    def context(self) -> Any:
        """The SEAL context (parameters only)."""
        return self._context

    def export_secret_key(self) -> bytes:
        """The secret key's bytes, for the key holder to keep: never to be sent anywhere."""
        return _save(self._secret)

    def relin_keys(self) -> bytes:
        """Relinearisation keys (public evaluation material; seeded, half size): only for a gallery
        side that multiplies ciphertexts by ciphertexts (:mod:`faceprint.privacy.encrypted_gallery`)."""
        return _save(seal().KeyGenerator(self._context, self._secret).create_relin_keys())

    def encrypt_values(self, values: np.ndarray, scale: float) -> bytes:
        """One ciphertext (seeded, symmetric) of up to ``slots`` values at ``scale``."""
        plain = seal().Plaintext()
        self._encoder.encode(np.asarray(values, np.float64).tolist(), scale, plain)
        return _save(self._encryptor.encrypt_symmetric(plain))  # seeded: half the bytes

    def public_context(self) -> bytes:
        """The encryption parameters (no public, secret or evaluation key): all the gallery side needs."""
        return _save(self._parms)

    def layout(self, rows: int, dim: int) -> Layout:
        return Layout(rows, dim, choose_fold(rows, dim, self.slots), self.slots)

    def encrypt(self, probe: np.ndarray, layout: Layout) -> list[bytes]:
        """The probe template (unit length, ``layout.dim`` values) as ``layout.probe_ciphertexts`` ciphertexts."""
        probe = np.asarray(probe, np.float64).ravel()
        if probe.shape != (layout.dim,):
            raise FaceprintError(f"the probe has {probe.size} values, the gallery's templates {layout.dim}")
        padded = np.zeros(layout.probe_ciphertexts * layout.fold)
        padded[: layout.dim] = probe
        parts = padded.reshape(-1, layout.fold)
        return [self.encrypt_values(np.repeat(part, layout.group), self.scale) for part in parts]

    def decrypt(self, results: Sequence[bytes], layout: Layout) -> np.ndarray:
        """(rows,) scores from the gallery side's result ciphertexts."""
        if len(results) != layout.blocks:
            raise FaceprintError(f"expected {layout.blocks} result ciphertexts, got {len(results)}")
        s = seal()
        scores = []
        for data in results:
            cipher, plain = s.Ciphertext(), s.Plaintext()
            try:
                _load(lambda path, c=cipher: c.load(self._context, path), data)
            except (RuntimeError, ValueError) as exc:
                raise FaceprintError(f"the gallery side sent an unreadable result: {exc}") from None
            self._decryptor.decrypt(cipher, plain)
            scores.append(np.asarray(self._encoder.decode_double(plain)).reshape(layout.fold, layout.group).sum(0))
        return np.concatenate(scores)[: layout.rows] if scores else np.zeros(0)


def _secure_context(parms: Any) -> Any:
    s = seal()
    context = s.SEALContext(parms, True, s.SEC_LEVEL_TYPE.TC128)
    if not context.parameters_set():
        raise BadEncryptedQuery(f"encryption parameters refused: {context.parameters_error_message()}")
    return context


# ------------------------------------------------------------------------------ gallery side
def gallery_scale_bits(context: Any, probe_bits: float) -> int:
    """The gallery factor's scale (bits) for a probe at 2^probe_bits: the product must stay
    HEADROOM_BITS below half the data modulus."""
    primes = context.first_context_data().parms().coeff_modulus()
    bits = math.floor(sum(p.bit_count() for p in primes) - 1 - HEADROOM_BITS - probe_bits)
    if bits < 10 or probe_bits < 10:
        raise BadEncryptedQuery(f"probe scale 2^{probe_bits:.0f} leaves no room in the data modulus")
    return bits


def block_values(vectors: np.ndarray, b: int, layout: Layout) -> np.ndarray:
    """(probe ciphertexts, slots): the gallery values that meet each probe ciphertext in result block ``b``."""
    padded = np.zeros((layout.group, layout.probe_ciphertexts * layout.fold))
    rows = vectors[b * layout.group : (b + 1) * layout.group]
    padded[: len(rows), : layout.dim] = rows
    # (G, C*k) -> (C, k*G): plaintext c holds V[i, c*k + g] at slot g*G + i
    parts = padded.reshape(layout.group, layout.probe_ciphertexts, layout.fold).transpose(1, 2, 0)
    return parts.reshape(layout.probe_ciphertexts, -1)


@dataclass(frozen=True)
class ScoringRows:
    """What the gallery side scores: one row per identity (centroid, mean) or several (views, every
    template for "max"), rows of an identity contiguous; an identity's score is its best row's, as
    in plaintext search."""

    names: list[str]
    views: IdentityViews

    @property
    def vectors(self) -> np.ndarray:
        return self.views.vectors


def scoring_rows(gallery: Gallery, model: str) -> ScoringRows:
    """The rows that reproduce ``gallery``'s identity scores (its aggregation) for ``model``."""
    matrix = gallery.matrix(model)
    n = len(matrix.names)
    if gallery.aggregation == "centroid":
        views = IdentityViews(np.arange(n), identity_centroids(matrix))
    elif gallery.aggregation == "views":
        views = gallery_views(matrix, gallery.views)
    elif gallery.aggregation == "max":
        order = np.argsort(matrix.labels, kind="stable")
        views = IdentityViews(matrix.labels[order], matrix.vectors[order])
    else:  # "mean": the mean score is the score of the (not renormalised) mean template
        sums = np.zeros((n, matrix.vectors.shape[1]), np.float64)
        np.add.at(sums, matrix.labels, matrix.vectors)
        views = IdentityViews(np.arange(n), sums / np.maximum(np.bincount(matrix.labels, minlength=n), 1)[:, None])
    return ScoringRows(list(matrix.names), views)


class EncryptedScorer:
    """The gallery side of one set of scoring vectors: ``evaluate`` turns an encrypted probe into
    encrypted scores, holding no key. Encoded plaintexts are kept for the last parameters and fold
    used while they fit in ``cache_bytes``; thread-safe."""

    def __init__(self, vectors: np.ndarray, cache_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        self.vectors = np.ascontiguousarray(vectors, np.float64)
        self.cache_bytes = cache_bytes
        self._lock = threading.Lock()
        self._packed: tuple[tuple[bytes, int, float], list[list[Any]]] | None = None
        self._contexts: dict[bytes, Any] = {}

    @property
    def rows(self) -> int:
        return len(self.vectors)

    @property
    def dim(self) -> int:
        return self.vectors.shape[1] if self.vectors.ndim == 2 else 0

    def _context(self, public_context: bytes) -> Any:
        digest = hashlib.sha256(public_context).digest()
        with self._lock:
            context = self._contexts.get(digest)
        if context is not None:
            return context
        s = seal()
        parms = s.EncryptionParameters(s.SCHEME_TYPE.CKKS)
        try:
            _load(parms.load, public_context)
        except (RuntimeError, ValueError) as exc:
            raise BadEncryptedQuery(f"unreadable encryption parameters: {exc}") from None
        if parms.scheme() != s.SCHEME_TYPE.CKKS:
            raise BadEncryptedQuery("encryption parameters are not CKKS")
        degree, primes = parms.poly_modulus_degree(), len(parms.coeff_modulus())
        if degree > MAX_POLY_DEGREE or primes > MAX_COEFF_PRIMES:
            raise BadEncryptedQuery(
                f"encryption parameters too large: degree {degree} (at most {MAX_POLY_DEGREE}), "
                f"{primes} primes (at most {MAX_COEFF_PRIMES})"
            )
        context = _secure_context(parms)
        with self._lock:
            if len(self._contexts) >= 4:
                self._contexts.clear()
            self._contexts[digest] = context
        return context

    def evaluate(self, public_context: bytes, probe: Sequence[bytes], fold: int) -> list[bytes]:
        """Encrypted scores of every row (``Layout.blocks`` ciphertexts) for an encrypted probe."""
        s = seal()
        context = self._context(public_context)
        encoder, evaluator = s.CKKSEncoder(context), s.Evaluator(context)
        layout = Layout(self.rows, self.dim, fold, encoder.slot_count())
        if len(probe) != layout.probe_ciphertexts:
            raise BadEncryptedQuery(
                f"expected {layout.probe_ciphertexts} probe ciphertexts for {self.dim} values at fold {fold}, "
                f"got {len(probe)}"
            )
        ciphers = [self._ciphertext(context, data, i) for i, data in enumerate(probe)]
        level = context.first_parms_id()
        if any(c.size() != 2 or c.parms_id() != level or c.scale != ciphers[0].scale for c in ciphers):
            raise BadEncryptedQuery("probe ciphertexts must be fresh, at the first level and of one scale")
        probe_bits = math.log2(ciphers[0].scale)
        scale_bits = gallery_scale_bits(context, probe_bits)
        scale, words = 2.0**scale_bits, len(context.first_context_data().parms().coeff_modulus())
        plains = self._plaintexts(public_context, layout, encoder, level, scale, words)
        out, term = [], s.Ciphertext()
        for b in range(layout.blocks):
            block = plains[b] if plains is not None else self._encode_block(b, layout, encoder, level, scale)
            acc = s.Ciphertext()
            evaluator.multiply_plain(ciphers[0], block[0], acc)
            for cipher, plain in zip(ciphers[1:], block[1:]):
                evaluator.multiply_plain(cipher, plain, term)
                evaluator.add_inplace(acc, term)
            out.append(_save(acc))
        return out

    def _ciphertext(self, context: Any, data: bytes, index: int) -> Any:
        cipher = seal().Ciphertext()
        try:
            _load(lambda path: cipher.load(context, path), data)
        except (RuntimeError, ValueError) as exc:
            raise BadEncryptedQuery(f"probe ciphertext {index}: unreadable ({exc})") from None
        return cipher

    def _encode_block(self, b: int, layout: Layout, encoder: Any, level: Any, scale: float) -> list[Any]:
        s = seal()
        block = []
        for part in block_values(self.vectors, b, layout):
            plain = s.Plaintext()
            encoder.encode(part.tolist(), level, scale, plain)
            block.append(plain)
        return block

    def _plaintexts(
        self, public_context: bytes, layout: Layout, encoder: Any, level: Any, scale: float, primes: int
    ) -> list[list[Any]] | None:
        """Every block's plaintexts, kept for the next query when they fit the cache; None: too large,
        encode block by block."""
        size = layout.blocks * layout.probe_ciphertexts * 2 * layout.slots * primes * 8  # a word per coefficient, prime
        if size > self.cache_bytes:
            return None
        key = (hashlib.sha256(public_context).digest(), layout.fold, scale)
        with self._lock:
            if self._packed is not None and self._packed[0] == key:
                return self._packed[1]
        packed = [self._encode_block(b, layout, encoder, level, scale) for b in range(layout.blocks)]
        with self._lock:
            self._packed = (key, packed)
        return packed


class GallerySide:
    """The gallery side over a :class:`~faceprint.gallery.Gallery`: its scoring rows for ``model``,
    re-read when the store changes."""

    def __init__(self, gallery: Gallery, model: str, cache_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        self.gallery = gallery
        self.model = model
        self.cache_bytes = cache_bytes
        self._lock = threading.Lock()
        self._current: tuple[int, ScoringRows, EncryptedScorer] | None = None

    def current(self) -> tuple[ScoringRows, EncryptedScorer]:
        version = self.gallery.store.version()
        with self._lock:
            if self._current is None or self._current[0] != version:
                rows = scoring_rows(self.gallery, self.model)
                self._current = (version, rows, EncryptedScorer(rows.vectors, self.cache_bytes))
            return self._current[1], self._current[2]


# ----------------------------------------------------------------------------------- queries
@dataclass(frozen=True)
class GalleryInfo:
    """What a client needs before encrypting: the template model, rows and dimension to lay out."""

    model: str
    rows: int
    dim: int
    identities: int
    threshold: float
    fold: int | None = None  # set where the gallery side's layout is fixed (an encrypted gallery)


@dataclass(frozen=True)
class EncryptedAnswer:
    """The gallery side's answer: encrypted row scores, and which identity each row belongs to."""

    names: list[str]
    owners: list[int]  # per row, an index into names; rows of an identity contiguous
    rows: int
    dim: int
    fold: int
    results: list[bytes]


class Remote:
    """The interface of a gallery side (in this process: :class:`LocalRemote`; over HTTP:
    :class:`HttpRemote`)."""

    def info(self) -> GalleryInfo:
        raise NotImplementedError

    def query(self, public_context: bytes, probe: Sequence[bytes], fold: int) -> EncryptedAnswer:
        raise NotImplementedError


class LocalRemote(Remote):
    """Both halves in one process: the gallery side is a :class:`GallerySide`."""

    def __init__(self, side: GallerySide, threshold: float) -> None:
        self.side = side
        self.threshold = threshold

    def info(self) -> GalleryInfo:
        rows, scorer = self.side.current()
        return GalleryInfo(self.side.model, scorer.rows, scorer.dim, len(rows.names), self.threshold)

    def query(self, public_context: bytes, probe: Sequence[bytes], fold: int) -> EncryptedAnswer:
        return answer(self.side, public_context, probe, fold)


class HttpRemote(Remote):
    """The gallery side of a faceprint service (``GET``/``POST /v1/identify/encrypted``); ``model``: the
    template model of the probes this client sends."""

    def __init__(self, url: str, model: str, api_key: str | None = None, timeout: float = 300.0) -> None:
        if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
            raise FaceprintError(f"{url}: give the service's http:// or https:// URL")
        self.url = url.rstrip("/") + "/v1/identify/encrypted"
        self.model = model
        self.api_key = api_key
        self.timeout = timeout

    def _call(self, body: dict[str, Any] | None = None) -> dict[str, Any]:
        headers = {"Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(self.url, data=data, headers=headers, method="GET" if body is None else "POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            try:
                message = json.loads(exc.read())["error"]["message"]
            except (ValueError, KeyError, TypeError):
                message = exc.reason
            raise FaceprintError(f"{self.url}: the service answered {exc.code}: {message}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise FaceprintError(f"cannot reach {self.url}: {getattr(exc, 'reason', exc)}") from None
        except ValueError:
            raise FaceprintError(f"{self.url}: the answer is not JSON (is this a faceprint service?)") from None

    def info(self) -> GalleryInfo:
        got = self._call()
        try:
            return GalleryInfo(
                got["model"], int(got["rows"]), int(got["dim"]), int(got["identities"]), got["threshold"]
            )
        except (KeyError, TypeError, ValueError):
            raise FaceprintError(f"{self.url}: unexpected answer (is this a faceprint service?)") from None

    def query(self, public_context: bytes, probe: Sequence[bytes], fold: int) -> EncryptedAnswer:
        body = {"model": self.model, "context": _b64(public_context), "fold": fold, "probe": [_b64(p) for p in probe]}
        got = self._call(body)
        try:
            scores = [base64.b64decode(text, validate=True) for text in got["scores"]]
            return EncryptedAnswer(got["names"], got["owners"], got["rows"], got["dim"], got["fold"], scores)
        except (KeyError, TypeError, ValueError, binascii.Error):
            raise FaceprintError(f"{self.url}: unexpected answer (is this a faceprint service?)") from None


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def answer(side: GallerySide, public_context: bytes, probe: Sequence[bytes], fold: int) -> EncryptedAnswer:
    """Evaluate an encrypted probe against the gallery side's current rows."""
    rows, scorer = side.current()
    if scorer.rows == 0:
        return EncryptedAnswer([], [], 0, scorer.dim, fold, [])
    results = scorer.evaluate(public_context, probe, fold)
    # owners are label indexes (0..n-1, names order) for every aggregation
    return EncryptedAnswer(rows.names, rows.views.owners.tolist(), scorer.rows, scorer.dim, fold, results)


class EncryptedIdentifier:
    """Identify faces through a gallery side that sees neither the templates nor the scores."""

    def __init__(self, remote: Remote, client: EncryptedClient | None = None) -> None:
        self.remote = remote
        self.client = client or EncryptedClient()
        self._info: GalleryInfo | None = None

    @property
    def info(self) -> GalleryInfo:
        if self._info is None:
            self._info = self.remote.info()
        return self._info

    def scores(self, probe: np.ndarray) -> tuple[list[str], np.ndarray]:
        """(names, identity scores) of one probe template, decrypted here."""
        info = self.info
        dim = info.dim or len(probe)
        fixed = Layout(info.rows, dim, info.fold, self.client.slots) if info.fold else None
        layout = fixed or self.client.layout(info.rows, dim)
        got = self.remote.query(self.client.public_context(), self.client.encrypt(probe, layout), layout.fold)
        if got.rows == 0:
            return [], np.zeros(0)
        row_scores = self.client.decrypt(got.results, Layout(got.rows, got.dim, got.fold, self.client.slots))
        owners = np.asarray(got.owners)
        if len(owners) != got.rows or (len(owners) and (owners.min() < 0 or owners.max() >= len(got.names))):
            raise FaceprintError("the gallery side's answer does not match its rows")
        per_id = np.full(len(got.names), -np.inf)
        np.maximum.at(per_id, owners, row_scores)
        return got.names, per_id

    def identify_faces(self, faces: list[Face], top_k: int = 5, threshold: float | None = None) -> list[Match]:
        """As :meth:`faceprint.Recognizer.identify_faces`, each face's template encrypted."""
        threshold = self.info.threshold if threshold is None else threshold
        matches = []
        for face in faces:
            names, per_id = self.scores(face.embedding)  # type: ignore[arg-type]
            (candidates,) = top_identities(per_id[None].astype(np.float32), names, top_k) if names else ([],)
            score = candidates[0].score if candidates else -1.0
            matches.append(Match(face=face, identity=decide(candidates, threshold), score=score, candidates=candidates))
        return matches


__all__ = [
    "SCHEME",
    "BadEncryptedQuery",
    "EncryptedAnswer",
    "EncryptedClient",
    "EncryptedIdentifier",
    "EncryptedScorer",
    "GalleryInfo",
    "GallerySide",
    "HttpRemote",
    "Layout",
    "LocalRemote",
    "Remote",
    "ScoringRows",
    "answer",
    "block_values",
    "choose_fold",
    "gallery_scale_bits",
    "scoring_rows",
]
