"""dlib's face-recognition ResNet run on ONNX Runtime, built from the dlib .dat file itself.

The network is converted once (see :func:`convert`) and cached as .onnx under
``faceprint.models.cache_dir()``, keyed by the SHA-256 of the source .dat and by
``CONVERTER_VERSION``. Descriptors match dlib's to float rounding (cosine > 0.9999).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from faceprint.embed.base import CHIP_SIZE
from faceprint.embed.dlib_dat import (
    AddPrev,
    Affine,
    Conv,
    DlibNet,
    FullyConnected,
    Pool,
    Relu,
    Skip,
    Tag,
    parse_dat,
)
from faceprint.embed.dlib_resnet import MODEL_ID
from faceprint.errors import ModelError
from faceprint.models import RESNET_FILE, cache_dir, dlib_model, file_sha256

#: bump whenever the generated graph changes, so stale cache entries are not reused
CONVERTER_VERSION = "1"
INPUT_NAME = "chips"
OUTPUT_NAME = "descriptors"
_OPSET = 17
_IR_VERSION = 8


class _GraphBuilder:
    """Emits ONNX nodes while tracking each value's static (C, H, W) shape."""

    def __init__(self) -> None:
        self.nodes: list = []
        self.inits: list = []
        self.shapes: dict[str, tuple[int, int, int]] = {}
        self._n = 0

    def name(self, prefix: str) -> str:
        self._n += 1
        return f"{prefix}_{self._n}"

    def const(self, prefix: str, array: np.ndarray) -> str:
        from onnx import numpy_helper

        name = self.name(prefix)
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def node(self, op: str, inputs: list[str], shape: tuple[int, int, int] | None, **attrs) -> str:
        from onnx import helper

        out = self.name(op.lower())
        self.nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        if shape is not None:
            self.shapes[out] = shape
        return out


def _out_size(size: int, window: int, stride: int, pad: int) -> int:
    # dlib (like cuDNN) keeps only whole windows: floor division
    return (size + 2 * pad - window) // stride + 1


def _pad_to(g: _GraphBuilder, x: str, shape: tuple[int, int, int]) -> str:
    """Zero-pad x at the high end of channels/rows/cols, as dlib's add_prev does."""
    c, h, w = g.shapes[x]
    if (c, h, w) == shape:
        return x
    pads = np.array([0, 0, 0, 0, 0, shape[0] - c, shape[1] - h, shape[2] - w], np.int64)
    return g.node("Pad", [x, g.const("pads", pads)], shape, mode="constant")


def build_model(net: DlibNet, *, fuse_affine: bool = True, source_sha256: str = ""):
    """The ONNX model (an ``onnx.ModelProto``) of a parsed dlib network.

    Input: (N, rows, cols, 3) uint8 RGB chips. Output: (N, 128) float32 raw descriptors.
    ``fuse_affine`` folds each conv-mode affine layer that directly follows a conv into
    the conv's weights and bias (exact up to float rounding; it saves a pass per layer).
    """
    from onnx import TensorProto, helper

    g = _GraphBuilder()
    inp = net.input
    # NHWC uint8 -> NCHW float planes of (pixel - mean) / 256, like input_rgb_image_sized
    x = g.node("Transpose", [INPUT_NAME], None, perm=[0, 3, 1, 2])
    x = g.node("Cast", [x], None, to=TensorProto.FLOAT)
    mean = np.asarray(inp.mean, np.float32).reshape(1, 3, 1, 1)
    x = g.node("Sub", [x, g.const("mean", mean)], None)
    x = g.node("Mul", [x, g.const("scale", np.asarray(inp.scale, np.float32))], (3, inp.rows, inp.cols))

    tags: dict[int, str] = {}
    layers = net.layers
    i = 0
    while i < len(layers):
        layer = layers[i]
        c, h, w = g.shapes[x]
        if isinstance(layer, Conv):
            out_c, in_c, kh, kw = layer.weight.shape
            if in_c != c:
                raise ModelError(f"conv layer {i}: expects {in_c} channels, gets {c}")
            weight, bias = layer.weight, layer.bias
            nxt = layers[i + 1] if i + 1 < len(layers) else None
            if fuse_affine and isinstance(nxt, Affine) and nxt.conv_mode:
                # conv(x)*g + b == conv_{W*g}(x) + (bias*g + b); fold in float64
                gam = nxt.gamma.astype(np.float64)
                weight = (weight.astype(np.float64) * gam[:, None, None, None]).astype(np.float32)
                bias = (bias.astype(np.float64) * gam + nxt.beta).astype(np.float32)
                i += 1
            (sy, sx), (py, px) = layer.stride, layer.padding
            shape = (out_c, _out_size(h, kh, sy, py), _out_size(w, kw, sx, px))
            x = g.node(
                "Conv",
                [x, g.const("W", weight), g.const("B", bias)],
                shape,
                kernel_shape=[kh, kw],
                strides=[sy, sx],
                pads=[py, px, py, px],
            )
        elif isinstance(layer, Affine):
            if not layer.conv_mode:
                raise ModelError(f"layer {i}: fc-mode affine layers are not supported")
            gam = g.const("gamma", layer.gamma.reshape(1, -1, 1, 1))
            bet = g.const("beta", layer.beta.reshape(1, -1, 1, 1))
            x = g.node("Add", [g.node("Mul", [x, gam], (c, h, w)), bet], (c, h, w))
        elif isinstance(layer, Relu):
            x = g.node("Relu", [x], (c, h, w))
        elif isinstance(layer, Pool):
            if layer.everything:
                if layer.kind != "avg":
                    raise ModelError(f"layer {i}: max_pool_everything is not supported")
                x = g.node("GlobalAveragePool", [x], (c, 1, 1))
            else:
                (kh, kw), (sy, sx), (py, px) = layer.size, layer.stride, layer.padding
                shape = (c, _out_size(h, kh, sy, py), _out_size(w, kw, sx, px))
                attrs: dict = dict(kernel_shape=[kh, kw], strides=[sy, sx], pads=[py, px, py, px])
                if layer.kind == "avg":
                    attrs["count_include_pad"] = 0  # dlib averages over the real pixels only
                x = g.node("AveragePool" if layer.kind == "avg" else "MaxPool", [x], shape, **attrs)
        elif isinstance(layer, Tag):
            tags[layer.id] = x
        elif isinstance(layer, Skip):
            x = tags[layer.tag]
        elif isinstance(layer, AddPrev):
            other = tags[layer.tag]
            shape = tuple(max(a, b) for a, b in zip(g.shapes[x], g.shapes[other], strict=True))
            x = g.node("Add", [_pad_to(g, x, shape), _pad_to(g, other, shape)], shape)
        elif isinstance(layer, FullyConnected):
            if layer.weight.shape[0] != c * h * w:
                raise ModelError(f"fc layer {i}: expects {layer.weight.shape[0]} inputs, gets {c * h * w}")
            # dlib flattens the NCHW sample in memory order, as ONNX Flatten does
            x = g.node("Flatten", [x], None, axis=1)
            x = g.node("MatMul", [x, g.const("fc", layer.weight)], None)
            if layer.bias is not None:
                x = g.node("Add", [x, g.const("fc_b", layer.bias)], None)
        else:  # pragma: no cover - the parser only yields the types above
            raise ModelError(f"layer {i}: unsupported layer {type(layer).__name__}")
        i += 1

    g.nodes.append(helper.make_node("Identity", [x], [OUTPUT_NAME], name=OUTPUT_NAME))
    dim = net.layers[-1].weight.shape[1] if isinstance(net.layers[-1], FullyConnected) else None
    graph = helper.make_graph(
        g.nodes,
        "dlib_face_recognition_resnet_model_v1",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.UINT8, ["N", inp.rows, inp.cols, 3])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["N", dim])],
        g.inits,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", _OPSET)],
        producer_name="faceprint",
        producer_version=CONVERTER_VERSION,
    )
    model.ir_version = _IR_VERSION
    helper.set_model_props(model, {"source_sha256": source_sha256, "converter_version": CONVERTER_VERSION})
    return model


def convert(dat_path: str | Path, onnx_path: str | Path, *, fuse_affine: bool = True) -> Path:
    """Convert dlib's .dat to .onnx; the file appears atomically (safe across processes)."""
    import onnx

    dat_path, onnx_path = Path(dat_path), Path(onnx_path)
    net = parse_dat(dat_path)
    model = build_model(net, fuse_affine=fuse_affine, source_sha256=file_sha256(dat_path))
    onnx.checker.check_model(model)
    onnx_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=onnx_path.name + ".", suffix=".tmp", dir=onnx_path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(model.SerializeToString())
        os.replace(tmp, onnx_path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return onnx_path


def cached_model_path(dat_path: str | Path | None = None) -> Path:
    """Path of the converted model, converting on first use."""
    dat = Path(dat_path) if dat_path is not None else dlib_model(RESNET_FILE)
    sha = file_sha256(dat)
    path = cache_dir() / "onnx" / f"{MODEL_ID}-{sha}-c{CONVERTER_VERSION}.onnx"
    if not path.is_file():
        convert(dat, path)
    return path


def default_providers() -> list:
    """CUDA when onnxruntime-gpu offers it (TF32 off, to stay close to dlib), else CPU."""
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        return [("CUDAExecutionProvider", {"use_tf32": "0"}), "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def _open_session(path: Path, opts, providers: list, *, retry_bare: bool):
    import onnxruntime as ort

    try:
        return ort.InferenceSession(str(path), opts, providers=providers)
    except Exception:
        if not retry_bare or not any(isinstance(p, tuple) for p in providers):
            raise
        # an older onnxruntime-gpu may not know our provider options: retry without them
        bare = [p[0] if isinstance(p, tuple) else p for p in providers]
        return ort.InferenceSession(str(path), opts, providers=bare)


class OnnxEmbedder:
    name = "onnx"
    model_id = MODEL_ID
    dim = 128

    def __init__(
        self,
        threads: int | None = None,
        providers: list[str] | None = None,
        *,
        batch_size: int = 32,
    ) -> None:
        import onnxruntime as ort

        model_path = cached_model_path()
        opts = ort.SessionOptions()
        # one thread per process by default: on small machines several single-threaded
        # workers beat one multi-threaded session
        opts.intra_op_num_threads = max(1, threads or 1)
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        provs = list(providers) if providers is not None else default_providers()
        try:
            self._session = _open_session(model_path, opts, provs, retry_bare=providers is None)
        except Exception:
            # a damaged cache entry (written atomically, but disks fail): rebuild it once
            convert(dlib_model(RESNET_FILE), model_path)
            try:
                self._session = _open_session(model_path, opts, provs, retry_bare=providers is None)
            except Exception as exc:
                raise ModelError(f"{model_path}: cannot load ONNX model: {exc}") from exc
        self.providers: list[str] = self._session.get_providers()
        self.batch_size = max(1, batch_size)
        self.model_path = model_path

    def embed(self, chips: np.ndarray) -> np.ndarray:
        chips = np.asarray(chips)
        if chips.ndim != 4 or chips.shape[1:] != (CHIP_SIZE, CHIP_SIZE, 3):
            raise ValueError(f"chips must be (N, {CHIP_SIZE}, {CHIP_SIZE}, 3), got {chips.shape}")
        if chips.dtype != np.uint8:
            raise ValueError(f"chips must be uint8 RGB, got {chips.dtype}")
        if len(chips) == 0:
            return np.zeros((0, self.dim), np.float32)
        out = [
            self._session.run([OUTPUT_NAME], {INPUT_NAME: np.ascontiguousarray(part)})[0]
            for part in (chips[i : i + self.batch_size] for i in range(0, len(chips), self.batch_size))
        ]
        return np.concatenate(out).astype(np.float32, copy=False)
