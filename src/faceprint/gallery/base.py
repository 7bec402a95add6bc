"""The storage interface every gallery backend implements (SQLite here, a server DB later)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ParamSpec, Protocol, TypeVar

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


P = ParamSpec("P")
R = TypeVar("R")


def error_guard(
    catch: type[Exception], convert: Callable[[Any, Exception], Exception]
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """A decorator for store methods: a driver error (``catch``) becomes ``convert(store, error)``, a
    message that names the gallery and the cause."""

    def guarded(method: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(method)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return method(*args, **kwargs)
            except catch as exc:
                raise convert(args[0], exc) from exc

        return wrapper

    return guarded


def group_centroids(ids: np.ndarray, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(each identity once, its unit mean template) from templates grouped by identity id (rows of one
    identity together), the same arithmetic in every store so that their indexes agree to the bit."""
    if not len(ids):
        return ids, vectors
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    sums = np.add.reduceat(vectors, starts, axis=0)
    return ids[starts], sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)


def changes_since(
    since: int, version: int, read_log: Callable[[int, int], list[tuple[int, int]]]
) -> tuple[int, set[int]] | None:
    """What ``changed_identities(since)`` answers, from the current ``version`` and the change log's
    (version, identity id) rows in (since, version]: None unless the log covers every version since."""
    if since == version:
        return version, set()
    if since > version:
        return None  # the store was replaced by an older one
    rows = read_log(since, version)
    if len({r[0] for r in rows}) != version - since:
        return None
    return version, {int(r[1]) for r in rows}


class GalleryStore(Protocol):
    """Persistent identities and templates. Every method is atomic: it either happens whole or
    not at all."""

    def add_identity(self, name: str, metadata: dict[str, Any] | None = None) -> Identity: ...

    def get_identity(self, name: str) -> Identity: ...

    def identities(self) -> list[Identity]: ...

    def rename_identity(self, old: str, new: str) -> None: ...

    def remove_identity(self, name: str) -> int: ...

    def purge(self) -> None:
        """Erase from the storage what removed identities and templates left behind (free pages, logs)."""
        ...

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
