"""Files written about identified photos: a copy with boxes and names drawn, and one crop per face.

Every file is written through :mod:`faceprint.fileio` (complete or not at all) and never over an
input: the front end checks the folders with :func:`faceprint.fileio.check_outputs` first, and each
file is checked again here, since an output folder may hold the inputs themselves.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

from faceprint.draw import crop_face, draw_faces
from faceprint.errors import OutputError
from faceprint.fileio import AtomicPath
from faceprint.image import load_image
from faceprint.types import Match

#: formats Pillow writes that keep the input's suffix; anything else is written as JPEG
KEEP_SUFFIX = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
UNKNOWN = "unknown"


def match_label(match: Match) -> str:
    return f"{match.identity or UNKNOWN} {match.score:.2f}"


class PhotoOutputs:
    """Writes, for each identified photo, ``annotate_dir/<file name>`` (boxes and labels) and
    ``crops_dir/<identity or unknown>/<file stem>-face<k>.jpg``. Two inputs with the same file
    name get ``-2``, ``-3`` ... suffixes rather than overwriting each other."""

    def __init__(self, annotate_dir: Path | None = None, crops_dir: Path | None = None) -> None:
        self.annotate_dir = annotate_dir
        self.crops_dir = crops_dir
        self._taken: set[str] = set()
        for folder in (annotate_dir, crops_dir):
            if folder is not None:
                folder.mkdir(parents=True, exist_ok=True)

    @property
    def enabled(self) -> bool:
        return self.annotate_dir is not None or self.crops_dir is not None

    def write(self, source: str, matches: list[Match]) -> None:
        """The outputs of one photo (read again from ``source``); raises OutputError or ImageError."""
        if not self.enabled:
            return
        pixels = load_image(source).pixels
        stem = self._unique_stem(Path(source))
        if self.annotate_dir is not None:
            suffix = Path(source).suffix.lower()
            target = self.annotate_dir / (stem + (suffix if suffix in KEEP_SUFFIX else ".jpg"))
            drawn = draw_faces(pixels, [m.face.box for m in matches], [match_label(m) for m in matches])
            self._save(drawn, target, source)
        if self.crops_dir is not None:
            for k, match in enumerate(matches, 1):
                folder = self.crops_dir / (match.identity or UNKNOWN)
                folder.mkdir(exist_ok=True)
                self._save(crop_face(pixels, match.face.box), folder / f"{stem}-face{k}.jpg", source)

    def _unique_stem(self, path: Path) -> str:
        stem, n = path.stem, 1
        while (stem if n == 1 else f"{stem}-{n}") in self._taken:
            n += 1
        chosen = stem if n == 1 else f"{stem}-{n}"
        self._taken.add(chosen)
        return chosen

    @staticmethod
    def _save(pixels: np.ndarray, target: Path, source: str) -> None:
        if target.exists() and os.path.samefile(target, source):
            raise OutputError(f"{target}: is the input {source}; not overwriting it")
        image = Image.fromarray(pixels)
        with AtomicPath(target) as tmp:
            # the temporary name keeps the suffix, so Pillow picks the format from it
            image.save(tmp, quality=92) if tmp.suffix.lower() in (".jpg", ".jpeg", ".webp") else image.save(tmp)
