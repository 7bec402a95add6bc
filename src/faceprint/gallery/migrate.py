"""Copy a gallery from one store to another (SQLite <-> PostgreSQL), then prove the copy whole.

Identities are copied one at a time, each with all of its templates in one transaction, so an
interrupted copy leaves whole people behind and running it again is refused rather than merged
(the destination must be empty). The proof reads both stores back: the number of identities, the
templates of each identity and model, the settings, and a SHA-256 over every template's identity,
model, source file hash, box and embedding bits, in a canonical order (template ids differ between
stores, so they are left out).
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from faceprint.errors import GalleryError
from faceprint.gallery.base import GalleryStore, Template
from faceprint.gallery.crypto import HEADER_SETTING

#: Settings each store keeps for itself (its format, change counter and encryption header, whose salt
#: is its own): never copied.
STORE_SETTINGS = frozenset({"version", "schema_version", HEADER_SETTING})


@dataclass
class Summary:
    """What one store holds, in the terms the copy is checked by."""

    identities: int = 0
    templates: dict[str, int] = field(default_factory=dict)  # model -> templates
    per_identity: dict[str, int] = field(default_factory=dict)  # name -> templates
    settings: dict[str, Any] = field(default_factory=dict)
    checksum: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "identities": self.identities,
            "templates": self.templates,
            "settings": sorted(self.settings),
            "checksum": self.checksum,
        }


@dataclass
class MigrationReport:
    source: Summary
    destination: Summary
    copied_identities: int
    copied_templates: int

    @property
    def problems(self) -> list[str]:
        """What differs between the two stores (empty: a faithful copy)."""
        src, dst = self.source, self.destination
        found = []
        if src.identities != dst.identities:
            found.append(f"identities: {src.identities} in the source, {dst.identities} in the destination")
        if src.templates != dst.templates:
            found.append(f"templates per model: {src.templates} in the source, {dst.templates} in the destination")
        differing = sorted(
            n
            for n in src.per_identity.keys() | dst.per_identity.keys()
            if src.per_identity.get(n) != dst.per_identity.get(n)
        )
        if differing:
            found.append(f"{len(differing)} identities hold other templates, e.g. {differing[0]!r}")
        if src.settings != dst.settings:
            keys = src.settings.keys() | dst.settings.keys()
            found.append(f"settings differ: {sorted(k for k in keys if src.settings.get(k) != dst.settings.get(k))}")
        if src.checksum != dst.checksum:
            found.append("the template checksums differ")
        return found


def store_settings(store: GalleryStore) -> dict[str, Any]:
    """The gallery's own settings (calibrated thresholds and the like), without the store's."""
    every: dict[str, Any] = store.settings()  # type: ignore[attr-defined]
    return {k: v for k, v in every.items() if k not in STORE_SETTINGS}


def _template_key(t: Template) -> tuple[str, str, tuple[int, ...]]:
    return (t.model, t.file_sha256, tuple(int(v) for v in t.box))


def summarise(store: GalleryStore, progress: Callable[[int], None] | None = None) -> Summary:
    """Counts, settings and the template checksum of ``store``, read one identity at a time."""
    digest = hashlib.sha256()
    out = Summary(settings=store_settings(store))
    models: Counter[str] = Counter()
    for ident in sorted(store.identities(), key=lambda i: i.name):
        own = sorted(store.templates(ident.name), key=_template_key)
        out.per_identity[ident.name] = len(own)
        digest.update(json.dumps(["identity", ident.name, ident.metadata], sort_keys=True).encode())
        for t in own:
            models[t.model] += 1
            digest.update(json.dumps([t.model, t.file_sha256, list(_template_key(t)[2])]).encode())
            digest.update(np.ascontiguousarray(t.embedding, dtype="<f4").tobytes())
        if progress:
            progress(1)
    out.identities = len(out.per_identity)
    out.templates = dict(sorted(models.items()))
    out.checksum = digest.hexdigest()
    return out


def ensure_empty(destination: GalleryStore) -> None:
    """A copy never merges into a gallery that already holds people."""
    if destination.identities():
        raise GalleryError(
            f"{getattr(destination, 'path', destination)} already holds people: migrate into an empty gallery"
        )


def copy_gallery(
    source: GalleryStore, destination: GalleryStore, progress: Callable[[int], None] | None = None
) -> tuple[int, int]:
    """Copy every identity (metadata and templates) and setting of ``source`` into the empty
    ``destination``. Returns (identities, templates) copied."""
    ensure_empty(destination)
    for key, value in store_settings(source).items():
        destination.set_setting(key, value)
    people = templates = 0
    for ident in source.identities():
        destination.add_identity(ident.name, ident.metadata)
        own = source.templates(ident.name)
        templates += len(destination.add_templates(ident.name, own, create=False))
        people += 1
        if progress:
            progress(1)
    return people, templates


def migrate(
    source: GalleryStore, destination: GalleryStore, progress: Callable[[int], None] | None = None
) -> MigrationReport:
    """Copy ``source`` into the empty ``destination`` and compare both read back."""
    people, templates = copy_gallery(source, destination, progress)
    return MigrationReport(summarise(source, progress), summarise(destination, progress), people, templates)
