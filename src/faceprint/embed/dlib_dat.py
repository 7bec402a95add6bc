"""Reader for dlib's binary serialisation of ``dlib_face_recognition_resnet_model_v1.dat``.

The file is what ``dlib::serialize(net, out)`` writes for the ``anet_type`` of dlib's
face recognition example, i.e. ``loss_metric<fc_no_bias<128, avg_pool_everything<...>>>``.
Written from the description of the format in dlib's headers (serialize.h, dnn/core.h,
dnn/layers.h, dnn/input.h, dnn/tensor.h); no dlib code is used.

Format facts the reader relies on:

* integers: one control byte (low nibble = number of payload bytes, bit 7 = negative)
  followed by the magnitude, little endian;
* strings: an integer length, then the bytes; bools: the ASCII characters '0'/'1';
* float/double scalars: integer mantissa and integer exponent (value = m * 2**e);
* tensors (version 2): version, num_samples, k, nr, nc, then raw little-endian float32;
* alias tensors (views into a layer's ``params`` tensor): version, then 4 dims;
* a network is nested: each ``add_layer`` writes its version, then its whole sub-network,
  then its own layer details and bookkeeping. So the file starts with a run of version
  numbers from the top of the net down to the input layer (2 = computational layer,
  1 = tag or skip layer, 3 = the bottom layer that owns the input layer), followed by the
  layer details from the bottom of the net up.

Tag and skip layers store no id, so the topology (which tag each ``add_prev``/``skip``
refers to) is taken from the known architecture below and checked against the file.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from faceprint.errors import ModelError


class DatFormatError(ModelError):
    """The .dat file is truncated, corrupt, or not the expected dlib network."""


# --------------------------------------------------------------------------- layers


@dataclass(frozen=True)
class InputRGB:
    """``input_rgb_image_sized<N>``: plane = (pixel - mean[c]) / 256, planes in R, G, B order."""

    mean: tuple[float, float, float]
    scale: float
    rows: int
    cols: int


@dataclass(frozen=True, eq=False)
class Conv:
    weight: np.ndarray  # (out, in, kh, kw) float32, cross-correlation like cuDNN
    bias: np.ndarray  # (out,) float32
    stride: tuple[int, int]  # (y, x)
    padding: tuple[int, int]  # (y, x), same amount on both sides


@dataclass(frozen=True, eq=False)
class Affine:
    """Inference form of batch norm: y = x * gamma[c] + beta[c] (conv mode)."""

    gamma: np.ndarray
    beta: np.ndarray
    conv_mode: bool


@dataclass(frozen=True)
class Relu:
    pass


@dataclass(frozen=True)
class Pool:
    kind: str  # "avg" or "max"
    size: tuple[int, int]  # (0, 0) means the whole input map
    stride: tuple[int, int]
    padding: tuple[int, int]

    @property
    def everything(self) -> bool:
        return self.size == (0, 0)


@dataclass(frozen=True, eq=False)
class FullyConnected:
    weight: np.ndarray  # (num_inputs, num_outputs): y = flatten_nchw(x) @ weight
    bias: np.ndarray | None


@dataclass(frozen=True)
class AddPrev:
    """Sum of the current output and the output of tag ``tag``; dlib zero-pads the smaller
    tensor (channels, rows, cols at the high end) to the larger of the two shapes."""

    tag: int


@dataclass(frozen=True)
class Tag:
    id: int


@dataclass(frozen=True)
class Skip:
    """Makes the output of tag ``tag`` the current output."""

    tag: int


Layer = Conv | Affine | Relu | Pool | FullyConnected | AddPrev | Tag | Skip


@dataclass(frozen=True)
class LossMetric:
    margin: float
    distance_threshold: float


@dataclass
class DlibNet:
    """A parsed network: the input layer, then the layers bottom-up, then the loss."""

    input: InputRGB
    layers: list[Layer] = field(default_factory=list)
    loss: LossMetric | None = None


# ----------------------------------------------------------- the expected architecture

# Tokens, top of the net first, as in dlib's dnn_face_recognition_ex.cpp:
#   fc_no_bias<128, avg_pool_everything<level0<level1<level2<level3<level4<
#   max_pool<3,3,2,2, relu<affine<con<32,7,7,2,2, input_rgb_image_sized<150>>>>>>>>>>>>
# block<N,stride>  = affine<con<N,3,3,1,1, relu<affine<con<N,3,3,stride,stride, SUB>>>>>
# ares<N>          = relu<add_prev1<block<N,1, tag1<SUB>>>>
# ares_down<N>     = relu<add_prev2<avg_pool<2,2,2,2, skip1<tag2<block<N,2, tag1<SUB>>>>>>>


def _block() -> list[str]:
    return ["affine", "con", "relu", "affine", "con"]


def _ares() -> list[str]:
    return ["relu", "add_prev1", *_block(), "tag1"]


def _ares_down() -> list[str]:
    return ["relu", "add_prev2", "avg_pool", "skip1", "tag2", *_block(), "tag1"]


def resnet_v1_layout() -> list[str]:
    """Layer tokens of dlib_face_recognition_resnet_model_v1, top of the net first."""
    levels = (
        [_ares_down()]  # level0: 256
        + [_ares(), _ares(), _ares_down()]  # level1: 256
        + [_ares(), _ares(), _ares_down()]  # level2: 128
        + [_ares(), _ares(), _ares(), _ares_down()]  # level3: 64
        + [_ares(), _ares(), _ares()]  # level4: 32
    )
    tokens = ["fc_no_bias", "avg_pool"]
    for level in levels:
        tokens += level
    return tokens + ["max_pool", "relu", "affine", "con"]


# The layer-details version string each token must carry in the file.
_DETAIL_NAMES = {
    "con": "con_4",
    "affine": "affine_",
    "relu": "relu_",
    "avg_pool": "avg_pool_2",
    "max_pool": "max_pool_2",
    "fc_no_bias": "fc_2",
    "add_prev1": "add_prev_",
    "add_prev2": "add_prev_",
}


# ------------------------------------------------------------------------ the reader


class _Reader:
    """A cursor over the file's bytes with dlib's primitive decoders."""

    def __init__(self, data: bytes, path: str) -> None:
        self.data = data
        self.pos = 0
        self.path = path

    def fail(self, what: str) -> DatFormatError:
        return DatFormatError(
            f"{self.path}: not a valid dlib face-recognition ResNet file: {what} "
            f"(at byte {self.pos} of {len(self.data)})"
        )

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise self.fail(f"file truncated: needed {n} more bytes")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def int(self) -> int:
        control = self.take(1)[0]
        size = control & 0x0F
        if control & 0x70 or size > 8:
            raise self.fail(f"bad integer control byte 0x{control:02x}")
        value = int.from_bytes(self.take(size), "little")
        return -value if control & 0x80 else value

    def str(self, max_len: int = 256) -> str:
        n = self.int()
        if not 0 <= n <= max_len:
            raise self.fail(f"implausible string length {n}")
        try:
            return self.take(n).decode("ascii")
        except UnicodeDecodeError:
            raise self.fail("string is not ASCII") from None

    def bool(self) -> bool:
        ch = self.take(1)
        if ch not in (b"0", b"1"):
            raise self.fail(f"bad bool byte {ch!r}")
        return ch == b"1"

    def float(self) -> float:
        mantissa = self.int()
        exponent = self.int()
        # dlib marks non-finite values with reserved exponents (>= 32000)
        if exponent >= 32000:
            return {32000: math.inf, 32001: -math.inf}.get(exponent, math.nan)
        return math.ldexp(mantissa, exponent)

    def tensor(self) -> np.ndarray:
        version = self.int()
        if version != 2:
            raise self.fail(f"unsupported tensor serialisation version {version}")
        dims = tuple(self.int() for _ in range(4))
        if any(d < 0 for d in dims):
            raise self.fail(f"negative tensor dimension {dims}")
        count = math.prod(dims)
        raw = self.take(4 * count)
        return np.frombuffer(raw, dtype="<f4").astype(np.float32).reshape(dims)

    def alias_tensor(self) -> tuple[int, int, int, int]:
        version = self.int()
        if version != 1:
            raise self.fail(f"unsupported alias_tensor version {version}")
        return (self.int(), self.int(), self.int(), self.int())

    def expect(self, name: str) -> None:
        got = self.str()
        if got != name:
            raise self.fail(f"expected layer {name!r}, found {got!r}")


def _read_pool(r: _Reader, kind: str) -> Pool:
    nr, nc, sy, sx, py, px = (r.int() for _ in range(6))
    return Pool(kind, (nr, nc), (sy, sx), (py, px))


def _read_con(r: _Reader) -> Conv:
    params = r.tensor().reshape(-1)
    num_filters, nr, nc, sy, sx, py, px = (r.int() for _ in range(7))
    filt = r.alias_tensor()
    bias = r.alias_tensor()
    for _ in range(4):  # learning-rate and weight-decay multipliers: training only
        r.float()
    nfilt = math.prod(filt)
    if filt[0] != num_filters or filt[2:] != (nr, nc) or math.prod(bias) != num_filters:
        raise r.fail(f"con_ shapes disagree: filters {filt}, biases {bias}, n={num_filters}")
    if params.size != nfilt + num_filters:
        raise r.fail(f"con_ has {params.size} parameters, expected {nfilt + num_filters}")
    return Conv(
        weight=params[:nfilt].reshape(filt).copy(),
        bias=params[nfilt:].copy(),
        stride=(sy, sx),
        padding=(py, px),
    )


def _read_affine(r: _Reader) -> Affine:
    params = r.tensor().reshape(-1)
    gamma = r.alias_tensor()
    beta = r.alias_tensor()
    mode = r.int()
    n = math.prod(gamma)
    if gamma != beta or params.size != 2 * n:
        raise r.fail(f"affine_ shapes disagree: gamma {gamma}, beta {beta}, {params.size} params")
    if mode not in (0, 1):
        raise r.fail(f"unknown affine_ mode {mode}")
    return Affine(gamma=params[:n].copy(), beta=params[n:].copy(), conv_mode=mode == 0)


def _read_fc(r: _Reader, want_bias: bool) -> FullyConnected:
    num_outputs = r.int()
    num_inputs = r.int()
    params = r.tensor().reshape(-1)
    weights = r.alias_tensor()
    r.alias_tensor()  # biases view: empty without a bias, the data is in params
    bias_mode = r.int()  # 0 = has bias, 1 = no bias
    for _ in range(4):
        r.float()
    if bias_mode != (0 if want_bias else 1):
        raise r.fail(f"fc_ bias mode {bias_mode} does not match the expected layer")
    if math.prod(weights) != num_inputs * num_outputs:
        raise r.fail(f"fc_ weight shape {weights} does not match {num_inputs}x{num_outputs}")
    nw = num_inputs * num_outputs
    expected = nw + (num_outputs if want_bias else 0)
    if params.size != expected:
        raise r.fail(f"fc_ has {params.size} parameters, expected {expected}")
    bias = params[nw:].copy() if want_bias else None
    return FullyConnected(weight=params[:nw].reshape(num_inputs, num_outputs).copy(), bias=bias)


def _read_details(r: _Reader, token: str) -> Layer:
    r.expect(_DETAIL_NAMES[token])
    if token == "con":
        return _read_con(r)
    if token == "affine":
        return _read_affine(r)
    if token == "relu":
        return Relu()
    if token == "avg_pool":
        return _read_pool(r, "avg")
    if token == "max_pool":
        return _read_pool(r, "max")
    if token == "fc_no_bias":
        return _read_fc(r, want_bias=False)
    if token.startswith("add_prev"):
        return AddPrev(int(token.removeprefix("add_prev")))
    raise AssertionError(token)  # pragma: no cover - _DETAIL_NAMES covers every token


def _read_layer_bookkeeping(r: _Reader, bottom: bool) -> None:
    """The training state add_layer writes after the details; empty for a cleaned net."""
    for _ in range(3):  # setup called, gradient stale, output/gradient getters disabled
        r.bool()
    for _ in range(3):  # x_grad, cached_output, and params_grad (or grad_final at the bottom)
        r.tensor()
    if bottom:
        r.int()  # sample expansion factor


def parse_dat(path: str | Path, layout: list[str] | None = None) -> DlibNet:
    """Parse a dlib face-recognition ResNet .dat file into layers (bottom-up).

    ``layout`` is the expected list of layer tokens, top first (default: the
    dlib_face_recognition_resnet_model_v1 architecture). Raises DatFormatError when the
    file is truncated, corrupt, or holds a different network.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DatFormatError(f"{path}: cannot read model file: {exc.strerror}") from exc
    r = _Reader(data, str(path))
    tokens = resnet_v1_layout() if layout is None else layout

    version = r.int()
    if version != 1:
        raise r.fail(f"not a dlib network file (loss layer version {version})")
    r.expect("loss_metric_2")
    loss = LossMetric(margin=r.float(), distance_threshold=r.float())

    # The run of layer versions, top-down: 2 = add_layer, 1 = tag/skip, 3 = bottom layer.
    for i, token in enumerate(tokens):
        is_tag = token.startswith(("tag", "skip"))
        bottom = i == len(tokens) - 1
        want = 1 if is_tag else (3 if bottom else 2)
        got = r.int()
        if got != want:
            raise r.fail(f"layer {i} ({token}) has version {got}, expected {want}")

    r.expect("input_rgb_image_sized")
    mean = (r.float(), r.float(), r.float())
    rows, cols = r.int(), r.int()
    # dlib's input layer divides by 256 (a constant of the layer, not stored in the file)
    net = DlibNet(input=InputRGB(mean=mean, scale=1.0 / 256.0, rows=rows, cols=cols), loss=loss)

    # Details come bottom-up: tags and skips have none, their ids come from the layout.
    for i, token in enumerate(reversed(tokens)):
        if token.startswith("tag"):
            net.layers.append(Tag(int(token.removeprefix("tag"))))
        elif token.startswith("skip"):
            net.layers.append(Skip(int(token.removeprefix("skip"))))
        else:
            net.layers.append(_read_details(r, token))
            _read_layer_bookkeeping(r, bottom=i == 0)

    if r.pos != len(data):
        raise r.fail(f"{len(data) - r.pos} unexpected trailing bytes")
    return net
