"""Embedders behind one interface; ``get_embedder(name)`` builds one by name."""

from __future__ import annotations

from faceprint.embed.base import CHIP_PADDING, CHIP_SIZE, Embedder

EMBEDDERS = ("dlib",)
DEFAULT_EMBEDDER = "dlib"


def get_embedder(name: str = DEFAULT_EMBEDDER) -> Embedder:
    if name == "dlib":
        from faceprint.embed.dlib_resnet import DlibEmbedder

        return DlibEmbedder()
    raise ValueError(f"unknown embedder {name!r}; choose from {', '.join(EMBEDDERS)}")


__all__ = ["CHIP_PADDING", "CHIP_SIZE", "DEFAULT_EMBEDDER", "EMBEDDERS", "Embedder", "get_embedder"]
