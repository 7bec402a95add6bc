"""Load any common image file as an upright 8-bit RGB array, or say clearly why not.

Decoding is the memory-hungry step of every front end: a small PNG can unpack to 64 million
pixels. So only the formats faceprint supports reach a decoder, the size is checked from the header
first, a :class:`PixelBudget` can bound the pixels decoded at once across threads, and ``max_side``
keeps only a reduced copy (converted band by band: never more than one full-size copy in memory).
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import ctypes.util
import hashlib
import io
import math
import os
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from faceprint.errors import ImageError, ImageTooLargeError
from faceprint.types import Face

#: refuse images above this many pixels (decompression bombs); override with FACEPRINT_MAX_PIXELS
DEFAULT_MAX_PIXELS = 64_000_000
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif", ".pgm", ".ppm"}
#: the Pillow decoders allowed to see a file (those of IMAGE_SUFFIXES; PPM reads .pgm too, JPEG
#: also opens phones' MPO files). Anything else is refused unread: Pillow's EPS plugin would run
#: Ghostscript on the upload, and the exotic decoders are attack surface faceprint has no use for.
FORMATS = ("JPEG", "PNG", "BMP", "WEBP", "TIFF", "GIF", "PPM")
FORMAT_NAMES = "JPEG, PNG, BMP, WebP, TIFF, GIF, PGM/PPM"
#: pixels converted to RGB at once when reducing: bounds the working copy whatever the mode
BAND_PIXELS = 1_000_000
#: after decoding this many pixels, hand the freed memory back to the OS (see trim_memory)
TRIM_AFTER_PIXELS = 4_000_000
_ORIENTATION = 0x0112
#: EXIF orientation -> the transpose that makes the picture upright (the EXIF 2.3 table)
_UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def max_pixels() -> int:
    """The pixel cap, from $FACEPRINT_MAX_PIXELS (validated in faceprint.settings)."""
    from faceprint.settings import max_pixels as setting

    return setting()


class PixelBudget:
    """How many pixels may be decoded at once by all threads together (memory is what a decoder
    needs, and it grows with pixels, not with requests). Waiters are served in arrival order, so
    a large image is not starved by a stream of small ones; one larger than the whole budget
    waits until it can run alone."""

    def __init__(self, pixels: int) -> None:
        if pixels < 1:
            raise ValueError("a pixel budget must be positive")
        self.total = pixels
        self.free = pixels
        self._cond = threading.Condition()
        self._queue: collections.deque[object] = collections.deque()

    @contextlib.contextmanager
    def hold(self, pixels: int) -> Iterator[None]:
        need = min(max(pixels, 0), self.total)
        ticket = object()
        with self._cond:
            self._queue.append(ticket)
            try:
                self._cond.wait_for(lambda: self._queue[0] is ticket and self.free >= need)
            finally:
                self._queue.remove(ticket)
                self._cond.notify_all()
            self.free -= need
        try:
            yield
        finally:
            with self._cond:
                self.free += need
                self._cond.notify_all()


def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        lib = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return lib if lib is not None and hasattr(lib, "malloc_trim") and hasattr(lib, "mallopt") else None


_LIBC = _libc()  # glibc; None elsewhere (musl, macOS), where both calls below do nothing
_M_MMAP_THRESHOLD = -3


def trim_memory() -> None:
    """Return freed heap memory to the OS (glibc keeps it in its arenas otherwise: after a burst of
    large decodes a process would stay gigabytes large)."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


def map_large_allocations(threshold: int = 1 << 20) -> None:
    """Serve allocations of ``threshold`` bytes and more with their own mmap, given back to the OS
    when freed. glibc raises this threshold itself after the first large free (up to 32 MB), after
    which Pillow's 16 MB blocks come from arenas that never shrink; fixing it stops that.
    Process-wide: called by long-running services, not by the library on import."""
    if _LIBC is not None:
        _LIBC.mallopt(_M_MMAP_THRESHOLD, threshold)


@dataclass
class LoadedImage:
    pixels: np.ndarray  # (H, W, 3) uint8 RGB, EXIF orientation applied; maybe reduced, see original_size
    sha256: str
    source: str
    #: (width, height) of the upright image as stored in the file, when ``pixels`` is a reduced copy
    original_size: tuple[int, int] | None = None

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the upright picture, in the file's own pixels."""
        h, w = self.pixels.shape[:2]
        return self.original_size or (w, h)

    @property
    def scale(self) -> tuple[float, float]:
        """File pixels per ``pixels`` pixel, across and down (1.0 unless reduced)."""
        h, w = self.pixels.shape[:2]
        width, height = self.size
        return width / w, height / h

    def box_to_original(self, box: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
        """A box in ``pixels`` -> the same box in the file's pixels."""
        sx, sy = self.scale
        width, height = self.size
        left, top, right, bottom = box
        return (
            min(max(round(left * sx), 0), width),
            min(max(round(top * sy), 0), height),
            min(max(round(right * sx), 0), width),
            min(max(round(bottom * sy), 0), height),
        )

    def box_from_original(self, box: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
        """A box in the file's pixels (as the gallery stores them) -> the same box in ``pixels``."""
        sx, sy = self.scale
        left, top, right, bottom = box
        return round(left / sx), round(top / sy), round(right / sx), round(bottom / sy)

    def faces_to_original(self, faces: list[Face]) -> list[Face]:
        """Move the faces' boxes and landmarks (found in ``pixels``) to the file's pixels, in place."""
        if self.original_size is None:
            return faces
        sx, sy = self.scale
        for face in faces:
            face.box = self.box_to_original(face.box)
            if face.landmarks is not None:
                face.landmarks = np.asarray(face.landmarks, dtype=np.float64) * (sx, sy)
        return faces


def _to_rgb8(img: Image.Image, extrema: tuple[float, float] | None = None) -> Image.Image:
    """Any mode -> 8-bit RGB. ``extrema``: the whole image's (min, max) for 32-bit modes, when
    ``img`` is one band of it (every band must be scaled alike)."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit or 32-bit grey: scale to 8 bits by the actual range of the type
        arr = np.asarray(img, dtype=np.float32)
        hi = extrema[1] if extrema else float(arr.max(initial=0))
        top = 65535.0 if img.mode.startswith("I;16") or hi > 255 else 255.0
        return Image.fromarray(np.clip(arr * (255.0 / top), 0, 255).astype(np.uint8), "L").convert("RGB")
    if img.mode == "F":
        arr = np.asarray(img, dtype=np.float32)
        lo, hi = extrema or (float(arr.min(initial=0)), float(arr.max(initial=0)))
        scaled = (arr - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(arr)
        return Image.fromarray(np.clip(scaled, 0, 255).astype(np.uint8), "L").convert("RGB")
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        # composite on white: transparent pixels are usually white backgrounds in face photos
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def _reduced_rgb(img: Image.Image, factor: int) -> Image.Image:
    """A loaded image -> RGB, ``factor`` times smaller (box filter). Converted band by band, so
    the only full-size copy is the decoded one, whatever its mode."""
    if img.mode in ("RGB", "L"):  # the common modes reduce as they are: no conversion copy
        small = img.reduce(factor) if factor > 1 else img
        return small if small.mode == "RGB" else small.convert("RGB")
    w, h = img.size
    extrema = img.getextrema() if img.mode in ("I", "F") else None
    rows = factor * max(1, BAND_PIXELS // (w * factor))  # whole output rows per band: no seams
    out = Image.new("RGB", (-(-w // factor), -(-h // factor)))
    for top in range(0, h, rows):
        band = _to_rgb8(img.crop((0, top, w, min(h, top + rows))), extrema)  # type: ignore[arg-type]
        out.paste(band.reduce(factor) if factor > 1 else band, (0, top // factor))
    return out


def _too_large(source: str, limit: int, detail: str = "") -> ImageTooLargeError:
    return ImageTooLargeError(
        f"{source}: image is too large{f' ({detail})' if detail else ''}, over the limit of {limit:,} pixels "
        "(set FACEPRINT_MAX_PIXELS to raise it)"
    )


def decode_image(
    data: bytes, source: str = "<bytes>", *, max_side: int | None = None, budget: PixelBudget | None = None
) -> LoadedImage:
    """Decode image bytes; raises :class:`ImageError` naming ``source`` on any problem.

    ``max_side``: keep a copy reduced by a whole factor so that its long side is at most this
    (between half of it and it; JPEGs are decoded reduced outright); ``original_size`` then says
    what the file holds. ``budget``: wait until the pixels to decode fit in it.
    """
    if not data:
        raise ImageError(f"{source}: empty file")
    limit = max_pixels()
    try:
        # Pillow's own guard stays on (a bomb it sees first is refused below, in faceprint's
        # words); ours is checked from the header, before any pixel is decoded
        Image.MAX_IMAGE_PIXELS = limit
        img = Image.open(io.BytesIO(data), formats=FORMATS)
        width, height = img.size
        if width * height > limit:
            raise _too_large(source, limit, f"{width}x{height} = {width * height:,} pixels")
        if width < 8 or height < 8:
            raise ImageError(f"{source}: image too small ({width}x{height})")
        if max_side and max(width, height) > max_side:
            ratio = max_side / max(width, height)
            img.draft(None, (math.ceil(width * ratio), math.ceil(height * ratio)))  # JPEG: 1/2, 1/4, 1/8
        decoded = img.size[0] * img.size[1]
        with budget.hold(decoded) if budget is not None else contextlib.nullcontext():
            img.load()
            orientation = img.getexif().get(_ORIENTATION, 1)
            factor = math.ceil(max(img.size) / max_side) if max_side else 1
            rgb = _reduced_rgb(img, factor)
            del img  # the full-size copy goes before the array is made
            if orientation in _UPRIGHT:
                rgb = rgb.transpose(_UPRIGHT[orientation])
            pixels = np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8))
            del rgb
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # Pillow's message also quotes its own limit (twice ours): keep only the image's size
        found = re.search(r"\((\d+) pixels\)", str(exc))
        raise _too_large(source, limit, f"{int(found[1]):,} pixels" if found else "") from exc
    except UnidentifiedImageError as exc:
        raise ImageError(f"{source}: not an image file (or not one of {FORMAT_NAMES})") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageError(f"{source}: cannot decode image: {exc}") from exc
    if decoded >= TRIM_AFTER_PIXELS:
        trim_memory()
    upright = (height, width) if orientation in (5, 6, 7, 8) else (width, height)
    reduced = upright != (pixels.shape[1], pixels.shape[0])
    return LoadedImage(pixels, hashlib.sha256(data).hexdigest(), source, upright if reduced else None)


def load_image(
    path: str | os.PathLike[str], *, max_side: int | None = None, budget: PixelBudget | None = None
) -> LoadedImage:
    """Read and decode an image file (as :func:`decode_image`); raises :class:`ImageError` naming it."""
    p = Path(path)
    if not p.exists():
        raise ImageError(f"{p}: no such file")
    if p.is_dir():
        raise ImageError(f"{p}: is a directory, not an image")
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise ImageError(f"{p}: cannot read: {exc.strerror or exc}") from exc
    return decode_image(data, str(p), max_side=max_side, budget=budget)


@dataclass(frozen=True)
class ImageReader:
    """decode_image and load_image with one service's limits: keep at most ``max_side`` pixels on
    the long side, and decode within one ``budget`` shared by every thread."""

    max_side: int | None = None
    budget: PixelBudget | None = None

    def decode(self, data: bytes, source: str) -> LoadedImage:
        return decode_image(data, source, max_side=self.max_side, budget=self.budget)

    def load(self, path: str | os.PathLike[str]) -> LoadedImage:
        return load_image(path, max_side=self.max_side, budget=self.budget)


ImageInput = str | os.PathLike[str] | bytes | np.ndarray | LoadedImage


def as_image(source: ImageInput, name: str | None = None) -> LoadedImage:
    """Anything image-like -> an upright RGB :class:`LoadedImage`."""
    if isinstance(source, LoadedImage):
        return source
    if isinstance(source, bytes):
        return decode_image(source, name or "<upload>")
    if isinstance(source, np.ndarray):
        arr = source
        if arr.ndim == 2:
            arr = np.repeat(arr[:, :, None], 3, axis=2)
        if arr.ndim != 3 or arr.shape[2] not in (3, 4) or arr.dtype != np.uint8:
            raise ImageError(f"{name or '<array>'}: expected an (H, W, 3) uint8 RGB array, got {arr.dtype} {arr.shape}")
        arr = np.ascontiguousarray(arr[:, :, :3])
        return LoadedImage(arr, hashlib.sha256(arr.tobytes()).hexdigest(), name or "<array>")
    return load_image(source)


def content_sha256(source: ImageInput) -> str | None:
    """SHA-256 of an input's content (the file's bytes), or None if it cannot be read."""
    if isinstance(source, (LoadedImage, np.ndarray)):
        try:
            return as_image(source).sha256
        except ImageError:
            return None
    if isinstance(source, bytes):
        return hashlib.sha256(source).hexdigest()
    try:
        return hashlib.sha256(Path(source).read_bytes()).hexdigest()
    except OSError:
        return None


def _walk_images(root: Path) -> list[Path]:
    """Image files below ``root``, sorted, following symlinked folders (each real folder once, so a
    link loop ends)."""
    found: list[Path] = []
    seen: set[str] = set()
    for folder, dirs, files in os.walk(root, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen:
            dirs.clear()
            continue
        seen.add(real)
        found.extend(Path(folder, f) for f in files if Path(f).suffix.lower() in IMAGE_SUFFIXES)
    return sorted(f for f in found if f.is_file())


def find_images(paths: list[Path]) -> tuple[list[Path], list[tuple[str, str]]]:
    """Expand folders (recursively, sorted, symlinks followed) into image files; files are kept as
    given (a missing one is reported when it is read). Also returns (folder, message) for each
    folder that holds no image."""
    out: list[Path] = []
    empty: list[tuple[str, str]] = []
    for p in paths:
        if p.is_dir():
            found = _walk_images(p)
            if not found:
                kinds = ", ".join(sorted(IMAGE_SUFFIXES))
                empty.append((str(p), f"{p}: no images found (looked for {kinds})"))
            out.extend(found)
        else:
            out.append(p)
    return out, empty


def iter_image_files(paths: list[Path]) -> list[Path]:
    """:func:`find_images` without the report of empty folders."""
    return find_images(paths)[0]
