"""Convert the two MiniFASNet anti-spoofing checkpoints to the ONNX files faceprint ships (run once).

Provenance: ``2.7_80x80_MiniFASNetV2.pth`` and ``4_0_0_80x80_MiniFASNetV1SE.pth`` from
minivision-ai/Silent-Face-Anti-Spoofing @ b6d5f04ad78778917853b25c778acef6d5626d15,
``resources/anti_spoof_models/`` (Apache-2.0), copied byte for byte into ``../shared/data/antispoof_minifasnet``.
The network is rebuilt here from the published architecture (MiniFASNet: a pruned MobileFaceNet, see
``src/model_lib/MiniFASNet.py`` there) without PyTorch:

* the checkpoints use PyTorch's legacy (pre-1.6, non-zip) format: a run of pickles followed by the raw
  tensor storages. A restricted unpickler maps torch's few rebuild functions to numpy and refuses any
  other global, so reading a checkpoint cannot run code;
* every BatchNorm is folded into the convolution or linear layer before it (inference only), the dropout
  is dropped, and a Softmax ends the graph: output ``probs`` (N, 3), class 1 = live face;
* the layer order, kernel sizes and strides are the published ones; channel counts and depthwise groups
  come from the checkpoint's own weight shapes, so V1SE and V2 (different pruning) share one builder.

Input ``input``: (N, 3, 80, 80) float32, **BGR, 0-255, not divided by 255** (the authors' ToTensor was
changed not to scale), the face box enlarged by the file's scale (2.7 or 4.0) and resized to 80x80.

Usage::

    python tools/convert_minifasnet.py [--src ../shared/data/antispoof_minifasnet] [--dst src/faceprint/liveness/data]
"""

from __future__ import annotations

import argparse
import pickle
import struct
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

REPO = Path(__file__).resolve().parents[1]
SOURCE_COMMIT = "b6d5f04ad78778917853b25c778acef6d5626d15"
#: checkpoint file -> shipped ONNX file (the prefix of the checkpoint's name is its crop scale)
MODELS = {
    "2.7_80x80_MiniFASNetV2.pth": "minifasnet_v2_2.7.onnx",
    "4_0_0_80x80_MiniFASNetV1SE.pth": "minifasnet_v1se_4.0.onnx",
}
INPUT_SIZE = 80
BN_EPS = 1e-5  # PyTorch's BatchNorm default; the checkpoints store no eps
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
}


# --- reading a legacy PyTorch checkpoint without torch -------------------------------------------------
@dataclass
class _Storage:
    key: str
    dtype: type


@dataclass
class _TensorRef:
    storage: _Storage
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]


def _rebuild_tensor(storage: _Storage, offset: int, shape: tuple, stride: tuple, *_: Any) -> _TensorRef:
    # the storages' bytes follow the pickle, so a tensor can only be a reference until they are read
    return _TensorRef(storage, offset, tuple(shape), tuple(stride))


class _CheckpointUnpickler(pickle.Unpickler):
    def __init__(self, fh: BinaryIO) -> None:
        super().__init__(fh)
        self.storages: dict[str, type] = {}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if (module, name) == ("collections", "OrderedDict"):
            return OrderedDict
        if module == "torch" and name in _DTYPES:
            return name
        raise pickle.UnpicklingError(f"unexpected global {module}.{name} in checkpoint")

    def persistent_load(self, pid: Any) -> _Storage:
        kind, storage_type, key, _location, _numel, view = pid
        if kind != "storage" or view is not None:
            raise pickle.UnpicklingError(f"unsupported persistent id {pid!r}")
        self.storages[str(key)] = _DTYPES[storage_type]
        return _Storage(str(key), _DTYPES[storage_type])


def load_state_dict(path: Path) -> dict[str, np.ndarray]:
    """The checkpoint's tensors as numpy arrays, ``module.`` prefix (from DataParallel) removed."""
    with open(path, "rb") as fh:
        # every pickle in the file goes through the restricted unpickler, headers included
        if _CheckpointUnpickler(fh).load() != LEGACY_MAGIC:
            raise ValueError(f"{path}: not a legacy PyTorch checkpoint")
        _CheckpointUnpickler(fh).load()  # protocol version
        _CheckpointUnpickler(fh).load()  # sys info (endianness, type sizes)
        unpickler = _CheckpointUnpickler(fh)
        refs = unpickler.load()
        keys = _CheckpointUnpickler(fh).load()
        buffers = {key: _read_storage(fh, unpickler.storages[key]) for key in keys}
    out: dict[str, np.ndarray] = {}
    for name, ref in refs.items():
        data = np.frombuffer(buffers[ref.storage.key], dtype=ref.storage.dtype)
        last = ref.offset + sum((n - 1) * st for n, st in zip(ref.shape, ref.stride))
        if ref.offset < 0 or last >= len(data) or min(ref.stride, default=0) < 0:
            raise ValueError(f"{path}: tensor {name} lies outside its storage")
        array = np.lib.stride_tricks.as_strided(
            data[ref.offset :], shape=ref.shape, strides=tuple(st * data.itemsize for st in ref.stride)
        )
        out[name.removeprefix("module.")] = np.array(array)
    return out


def _read_storage(fh: BinaryIO, dtype: type) -> bytes:
    """One storage: its element count (int64, little-endian), then the raw elements."""
    (numel,) = struct.unpack("<q", fh.read(8))
    size = numel * np.dtype(dtype).itemsize
    data = fh.read(size)
    if len(data) != size:
        raise ValueError("checkpoint truncated")
    return data


# --- building the ONNX graph ---------------------------------------------------------------------------
class GraphBuilder:
    def __init__(self, weights: dict[str, np.ndarray]) -> None:
        self.w = weights
        self.used: set[str] = set()
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []

    def take(self, name: str) -> np.ndarray:
        self.used.add(name)
        return self.w[name]

    def has(self, prefix: str) -> bool:
        return any(k.startswith(prefix + ".") for k in self.w)

    def const(self, name: str, value: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(value, dtype=np.float32), name))
        return name

    def bn_scale_shift(self, prefix: str) -> tuple[np.ndarray, np.ndarray]:
        if f"{prefix}.num_batches_tracked" in self.w:  # a training counter, not a weight
            self.take(f"{prefix}.num_batches_tracked")
        gamma, beta = self.take(f"{prefix}.weight"), self.take(f"{prefix}.bias")
        mean, var = self.take(f"{prefix}.running_mean"), self.take(f"{prefix}.running_var")
        scale = gamma / np.sqrt(var + BN_EPS)
        return scale, beta - mean * scale

    def conv_bn(self, x: str, conv: str, bn: str, *, stride: int = 1, channels_in: int) -> tuple[str, int]:
        """Convolution (no bias) with the BatchNorm after it folded in. Padding keeps 3x3 'same'."""
        weight = self.take(f"{conv}.weight").astype(np.float64)
        out_c, per_group, kh, kw = weight.shape
        groups = channels_in // per_group
        scale, shift = self.bn_scale_shift(bn)
        pad = 1 if kh == 3 else 0
        w = self.const(f"{conv}.w", weight * scale[:, None, None, None])
        b = self.const(f"{conv}.b", shift)
        y = f"{conv}.out"
        self.nodes.append(
            helper.make_node(
                "Conv", [x, w, b], [y], kernel_shape=[kh, kw], strides=[stride, stride], pads=[pad] * 4, group=groups
            )
        )
        return y, out_c

    def conv_block(self, x: str, prefix: str, *, stride: int = 1, channels_in: int) -> tuple[str, int]:
        y, c = self.conv_bn(x, f"{prefix}.conv", f"{prefix}.bn", stride=stride, channels_in=channels_in)
        slope = self.const(f"{prefix}.prelu.slope", self.take(f"{prefix}.prelu.weight").reshape(-1, 1, 1))
        out = f"{prefix}.prelu.out"
        self.nodes.append(helper.make_node("PRelu", [y, slope], [out]))
        return out, c

    def squeeze_excite(self, x: str, prefix: str, channels: int) -> str:
        pooled = f"{prefix}.pool"
        self.nodes.append(helper.make_node("GlobalAveragePool", [x], [pooled]))
        # the published code names the layers fc1/bn1/fc2/bn2; accept an se_ prefix too (other releases)
        p = f"{prefix}.se_" if f"{prefix}.se_fc1.weight" in self.w else f"{prefix}."
        h, c = self.conv_bn(pooled, f"{p}fc1", f"{p}bn1", channels_in=channels)
        self.nodes.append(helper.make_node("Relu", [h], [f"{prefix}.se_relu"]))
        g, _ = self.conv_bn(f"{prefix}.se_relu", f"{p}fc2", f"{p}bn2", channels_in=c)
        self.nodes.append(helper.make_node("Sigmoid", [g], [f"{prefix}.se_gate"]))
        self.nodes.append(helper.make_node("Mul", [x, f"{prefix}.se_gate"], [f"{prefix}.se_out"]))
        return f"{prefix}.se_out"

    def depth_wise(self, x: str, prefix: str, *, stride: int, residual: bool, channels_in: int) -> tuple[str, int]:
        """Expand 1x1, depthwise 3x3, linear 1x1 projection; SE on the projection where the checkpoint has it."""
        y, c = self.conv_block(x, f"{prefix}.conv", channels_in=channels_in)
        y, c = self.conv_block(y, f"{prefix}.conv_dw", stride=stride, channels_in=c)
        y, c = self.conv_bn(y, f"{prefix}.project.conv", f"{prefix}.project.bn", channels_in=c)
        if self.has(f"{prefix}.se_module"):
            y = self.squeeze_excite(y, f"{prefix}.se_module", c)
        if residual:
            out = f"{prefix}.add"
            self.nodes.append(helper.make_node("Add", [x, y], [out]))
            y = out
        return y, c

    def residual_stage(self, x: str, prefix: str, channels_in: int) -> tuple[str, int]:
        i, c = 0, channels_in
        while self.has(f"{prefix}.model.{i}"):
            x, c = self.depth_wise(x, f"{prefix}.model.{i}", stride=1, residual=True, channels_in=c)
            i += 1
        if i == 0:
            raise ValueError(f"checkpoint has no blocks under {prefix}")
        return x, c

    def build(self, name: str) -> onnx.ModelProto:
        x, c = self.conv_block("input", "conv1", stride=2, channels_in=3)
        x, c = self.conv_block(x, "conv2_dw", channels_in=c)
        x, c = self.depth_wise(x, "conv_23", stride=2, residual=False, channels_in=c)
        x, c = self.residual_stage(x, "conv_3", c)
        x, c = self.depth_wise(x, "conv_34", stride=2, residual=False, channels_in=c)
        x, c = self.residual_stage(x, "conv_4", c)
        x, c = self.depth_wise(x, "conv_45", stride=2, residual=False, channels_in=c)
        x, c = self.residual_stage(x, "conv_5", c)
        x, c = self.conv_block(x, "conv_6_sep", channels_in=c)
        # a 5x5 depthwise conv over the 5x5 map (80 / 16): (N, 512, 1, 1)
        x, c = self.conv_bn(x, "conv_6_dw.conv", "conv_6_dw.bn", channels_in=c)
        self.nodes.append(helper.make_node("Flatten", [x], ["flat"], axis=1))
        # linear (no bias) then BatchNorm1d, folded into one Gemm; dropout is identity at inference
        scale, shift = self.bn_scale_shift("bn")
        linear = self.const("embed.w", self.take("linear.weight").astype(np.float64) * scale[:, None])
        self.nodes.append(helper.make_node("Gemm", ["flat", linear, self.const("embed.b", shift)], ["embed"], transB=1))
        prob = self.const("prob.w", self.take("prob.weight").T)
        self.nodes.append(helper.make_node("MatMul", ["embed", prob], ["logits"]))
        self.nodes.append(helper.make_node("Softmax", ["logits"], ["probs"], axis=1))
        left = sorted(set(self.w) - self.used)
        if left:
            raise ValueError(f"checkpoint tensors not used by the graph: {left}")
        n_classes = self.w["prob.weight"].shape[0]
        graph = helper.make_graph(
            self.nodes,
            name,
            [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, INPUT_SIZE, INPUT_SIZE])],
            [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["N", n_classes])],
            self.inits,
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="faceprint")
        model.ir_version = 8  # readable by onnxruntime releases well before the pinned one
        onnx.checker.check_model(model)
        return model


def convert(src: Path, dst: Path) -> None:
    weights = load_state_dict(src)
    model = GraphBuilder(weights).build(src.stem)
    helper.set_model_props(
        model,
        {
            "source": f"minivision-ai/Silent-Face-Anti-Spoofing@{SOURCE_COMMIT}:resources/anti_spoof_models/{src.name}",
            "license": "Apache-2.0",
            "input": "BGR 0-255 (not scaled), 80x80 crop of the face box enlarged by the file's scale",
            "output": "softmax over 3 classes; class 1 = live face",
        },
    )
    dst.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, dst)
    print(f"{src.name} -> {dst} ({sum(v.size for v in weights.values()):,} parameters and buffers)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--src", type=Path, default=REPO.parent / "shared" / "data" / "antispoof_minifasnet")
    parser.add_argument("--dst", type=Path, default=REPO / "src" / "faceprint" / "liveness" / "data")
    args = parser.parse_args()
    for checkpoint, onnx_name in MODELS.items():
        convert(args.src / checkpoint, args.dst / onnx_name)


if __name__ == "__main__":
    main()
