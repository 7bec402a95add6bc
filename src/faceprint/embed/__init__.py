"""Embedders behind one interface; ``get_embedder(name)`` builds one by name."""

from __future__ import annotations

from faceprint.embed.base import CHIP_PADDING, CHIP_SIZE, Embedder

EMBEDDERS = ("onnx", "dlib")
#: the ONNX port reproduces dlib's descriptors (cosine >= 0.9999) about 10x faster
DEFAULT_EMBEDDER = "onnx"


def get_embedder(name: str = DEFAULT_EMBEDDER) -> Embedder:
    """Build an embedder: "onnx" (dlib's ResNet on ONNX Runtime) or "dlib" (the reference)."""
    if name == "onnx":
        from faceprint.embed.onnx_resnet import OnnxEmbedder

        return OnnxEmbedder()
    if name == "dlib":
        from faceprint.embed.dlib_resnet import DlibEmbedder

        return DlibEmbedder()
    raise ValueError(f"unknown embedder {name!r}; choose from {', '.join(EMBEDDERS)}")


__all__ = ["CHIP_PADDING", "CHIP_SIZE", "DEFAULT_EMBEDDER", "EMBEDDERS", "Embedder", "get_embedder"]
