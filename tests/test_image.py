"""Image loading: formats, orientation, and every kind of bad file."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from faceprint import FaceEngine
from faceprint.errors import ImageError, ImageTooLargeError
from faceprint.image import decode_image, load_image

from .conftest import DEMO, FIXTURES

FACE = DEMO / "photos" / "obama1.jpg"


def _save(img: Image.Image, fmt: str, **kwargs: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kwargs)
    return buf.getvalue()


@pytest.fixture(scope="module")
def face_rgb() -> Image.Image:
    return Image.open(FACE).convert("RGB")


@pytest.mark.parametrize(
    ("mode", "fmt"),
    [("RGB", "JPEG"), ("RGB", "PNG"), ("RGBA", "PNG"), ("L", "PNG"), ("I;16", "PNG"), ("RGB", "BMP"), ("RGB", "WEBP")],
)
def test_formats_decode_to_rgb8_and_keep_the_face(
    face_rgb: Image.Image, engine: FaceEngine, mode: str, fmt: str
) -> None:
    img = face_rgb
    if mode == "I;16":
        grey = np.asarray(face_rgb.convert("L"), dtype=np.uint16) * 257  # full 16-bit range
        img = Image.fromarray(grey)
        assert img.mode == "I;16"
    elif mode != "RGB":
        img = face_rgb.convert(mode)
    loaded = decode_image(_save(img, fmt), f"face.{fmt.lower()}")
    assert loaded.pixels.dtype == np.uint8
    assert loaded.pixels.shape == (face_rgb.height, face_rgb.width, 3)
    assert len(engine.detect(loaded.pixels)) == 1
    if mode == "I;16":  # scaled, not clipped: mid-greys stay mid-grey
        assert 60 < loaded.pixels.mean() < 200


def test_rgba_fixture_with_transparency(engine: FaceEngine) -> None:
    loaded = load_image(FIXTURES / "32bit.png")
    assert loaded.pixels.shape[2] == 3
    assert len(engine.detect(loaded.pixels)) == 1


def test_exif_orientation_is_honoured(face_rgb: Image.Image, engine: FaceEngine) -> None:
    # store the pixels rotated and let the EXIF tag say how to turn them upright
    rotated = face_rgb.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation 6: the viewer turns it 90 degrees clockwise
    upright = decode_image(_save(rotated, "JPEG", exif=exif), "rotated.jpg")
    assert upright.pixels.shape[:2] == (face_rgb.height, face_rgb.width)
    assert len(engine.detect(upright.pixels)) == 1
    # HOG is frontal-only: finding the face there only when the tag is applied proves it mattered
    hog = FaceEngine(detector="hog", embedder=engine.embedder)
    assert len(hog.detect(upright.pixels)) == 1
    plain = decode_image(_save(rotated, "JPEG"), "rotated-no-exif.jpg")
    assert len(hog.detect(plain.pixels)) == 0


def test_missing_file() -> None:
    with pytest.raises(ImageError, match="nope.jpg: no such file"):
        load_image("nope.jpg")


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="is a directory"):
        load_image(tmp_path)


def test_empty_file(tmp_path: Path) -> None:
    f = tmp_path / "empty.jpg"
    f.write_bytes(b"")
    with pytest.raises(ImageError, match="empty.jpg: empty file"):
        load_image(f)


def test_truncated_file(tmp_path: Path) -> None:
    f = tmp_path / "cut.jpg"
    f.write_bytes(FACE.read_bytes()[:5000])
    with pytest.raises(ImageError, match="cut.jpg: cannot decode"):
        load_image(f)


def test_not_an_image(tmp_path: Path) -> None:
    f = tmp_path / "notes.jpg"
    f.write_text("these are not pixels\n" * 50)
    with pytest.raises(ImageError, match="notes.jpg: not an image"):
        load_image(f)


def test_decompression_bomb_is_refused_before_decoding(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # a small file that claims a huge canvas: refused from the header, without allocating it
    bomb = tmp_path / "bomb.png"
    Image.new("L", (12_000, 12_000)).save(bomb, optimize=True)
    assert bomb.stat().st_size < 1_000_000
    with pytest.raises(ImageTooLargeError, match=r"bomb.png: image is too large .*over the limit"):
        load_image(bomb)
    monkeypatch.setenv("FACEPRINT_MAX_PIXELS", str(200 * 200))
    with pytest.raises(ImageTooLargeError, match="over the limit of 40,000"):
        load_image(FACE)
