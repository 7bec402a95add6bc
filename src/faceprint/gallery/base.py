"""The storage interface every gallery backend implements (SQLite here, a server DB later)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import numpy as np


@dataclass
class Identity:
    name: str
    metadata: dict[str, Any] = field(default_factory=dict)
    templates: int = 0
    created_at: datetime | None = None


@dataclass
class Template:
    """One enrolled face: its unit-length embedding and where it came from."""

    embedding: np.ndarray
    model: str
    source: str
    file_sha256: str
    box: tuple[int, int, int, int]
    quality: float | None = None
    id: int | None = None
    identity: str | None = None
    created_at: datetime | None = None


@dataclass
class TemplateMatrix:
    """All templates of one model as a matrix, for search: row i belongs to ``names[labels[i]]``."""

    ids: np.ndarray  # (N,) int64 template ids
    labels: np.ndarray  # (N,) int32 index into names
    names: list[str]
    vectors: np.ndarray  # (N, D) float32, unit rows


class GalleryStore(Protocol):
    """Persistent identities and templates. Every method is atomic: it either happens whole or
    not at all."""

    def add_identity(self, name: str, metadata: dict[str, Any] | None = None) -> Identity: ...

    def get_identity(self, name: str) -> Identity: ...

    def identities(self) -> list[Identity]: ...

    def rename_identity(self, old: str, new: str) -> None: ...

    def remove_identity(self, name: str) -> int: ...

    def add_templates(self, name: str, templates: list[Template], create: bool = True) -> list[int]:
        """Store templates for ``name`` (created if missing and ``create``); a template whose
        (identity, file hash, box, model) is already stored is skipped. Returns the new ids."""
        ...

    def has_source(self, name: str, file_sha256: str, model: str) -> bool: ...

    def templates(self, name: str | None = None) -> list[Template]: ...

    def matrix(self, model: str) -> TemplateMatrix: ...

    def models(self) -> list[str]: ...

    def get_setting(self, key: str) -> Any | None: ...

    def set_setting(self, key: str, value: Any) -> None: ...

    def version(self) -> int:
        """A counter that changes whenever templates change (for caches and indexes)."""
        ...

    def close(self) -> None: ...
