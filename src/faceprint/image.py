"""Load any common image file as an upright 8-bit RGB array, or say clearly why not."""

from __future__ import annotations

import hashlib
import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from faceprint.errors import ImageError, ImageTooLargeError

#: refuse images above this many pixels (decompression bombs); override with FACEPRINT_MAX_PIXELS
DEFAULT_MAX_PIXELS = 64_000_000
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif", ".pgm", ".ppm"}


def max_pixels() -> int:
    return int(os.environ.get("FACEPRINT_MAX_PIXELS", DEFAULT_MAX_PIXELS))


@dataclass
class LoadedImage:
    pixels: np.ndarray  # (H, W, 3) uint8 RGB, EXIF orientation applied
    sha256: str
    source: str


def _to_rgb8(img: Image.Image) -> Image.Image:
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit or 32-bit grey: scale to 8 bits by the actual range of the type
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if img.mode.startswith("I;16") or arr.max() > 255 else 255.0
        return Image.fromarray(np.clip(arr * (255.0 / top), 0, 255).astype(np.uint8), "L").convert("RGB")
    if img.mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        scaled = (arr - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(arr)
        return Image.fromarray(scaled.astype(np.uint8), "L").convert("RGB")
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        # composite on white: transparent pixels are usually white backgrounds in face photos
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def _too_large(source: str, detail: str, limit: int) -> ImageTooLargeError:
    return ImageTooLargeError(
        f"{source}: image is too large ({detail}), over the limit of {limit:,} pixels "
        "(set FACEPRINT_MAX_PIXELS to raise it)"
    )


def decode_image(data: bytes, source: str = "<bytes>") -> LoadedImage:
    """Decode image bytes; raises :class:`ImageError` naming ``source`` on any problem."""
    if not data:
        raise ImageError(f"{source}: empty file")
    limit = max_pixels()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            # Pillow's own guard stays on (it also covers frames we never look at); ours is
            # checked from the header, before any pixel is decoded
            Image.MAX_IMAGE_PIXELS = limit
            img = Image.open(io.BytesIO(data))
            width, height = img.size
            if width * height > limit:
                raise _too_large(source, f"{width}x{height} = {width * height:,} pixels", limit)
            img.load()
            img = ImageOps.exif_transpose(img) or img
            rgb = _to_rgb8(img)
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise _too_large(source, str(exc), limit) from exc
    except UnidentifiedImageError as exc:
        raise ImageError(f"{source}: not an image file (or an unsupported format)") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageError(f"{source}: cannot decode image: {exc}") from exc
    pixels = np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8))
    if pixels.ndim != 3 or pixels.shape[0] < 8 or pixels.shape[1] < 8:
        raise ImageError(f"{source}: image too small ({pixels.shape[1]}x{pixels.shape[0]})")
    return LoadedImage(pixels=pixels, sha256=hashlib.sha256(data).hexdigest(), source=source)


def load_image(path: str | os.PathLike[str]) -> LoadedImage:
    """Read and decode an image file; raises :class:`ImageError` naming the file."""
    p = Path(path)
    if not p.exists():
        raise ImageError(f"{p}: no such file")
    if p.is_dir():
        raise ImageError(f"{p}: is a directory, not an image")
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise ImageError(f"{p}: cannot read: {exc.strerror or exc}") from exc
    return decode_image(data, str(p))


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


def iter_image_files(paths: list[Path]) -> list[Path]:
    """Expand folders (recursively, sorted) into image files; files are kept as given."""
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            out.extend(sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES))
        else:
            out.append(p)
    return out
