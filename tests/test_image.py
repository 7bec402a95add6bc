"""Image loading: formats, orientation, and every kind of bad file."""

from __future__ import annotations

import io
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from faceprint import FaceEngine
from faceprint.errors import ImageError, ImageTooLargeError
from faceprint.image import PixelBudget, decode_image, load_image

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


# ------------------------------------------------------------------ formats faceprint reads
def test_only_supported_formats_reach_a_decoder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An EPS file under a .jpg name must not reach Pillow's EPS plugin, which runs Ghostscript."""
    from PIL import EpsImagePlugin

    ran: list[object] = []

    def ghostscript(*args: object, **kwargs: object) -> None:
        ran.append(args)
        raise OSError("Ghostscript would run here")

    monkeypatch.setattr(EpsImagePlugin, "Ghostscript", ghostscript)
    eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 64 64\n%%EndComments\n0 0 moveto 64 64 lineto stroke\n%%EOF\n"
    assert Image.open(io.BytesIO(eps)).format == "EPS"  # what Pillow alone would make of it
    f = tmp_path / "photo.jpg"
    f.write_bytes(eps)
    with pytest.raises(ImageError, match=r"photo.jpg: not an image file \(or not one of JPEG, PNG"):
        load_image(f)
    assert ran == []
    # every suffix faceprint lists still decodes
    small = Image.open(FACE).convert("RGB").resize((64, 48))
    for fmt in ("JPEG", "PNG", "BMP", "WEBP", "TIFF", "GIF", "PPM"):
        assert decode_image(_save(small, fmt), fmt).pixels.shape == (48, 64, 3), fmt
    assert decode_image(_save(small.convert("L"), "PPM"), "grey.pgm").pixels.shape == (48, 64, 3)


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")  # Pillow's, for the server log
def test_bomb_message_quotes_only_faceprints_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FACEPRINT_MAX_PIXELS", "1000000")
    for side in (1100, 1500):  # over the limit; over twice the limit (where Pillow itself refuses)
        with pytest.raises(ImageTooLargeError) as caught:
            decode_image(_save(Image.new("L", (side, side)), "PNG"), "bomb.png")
        message = str(caught.value)
        assert f"{side * side:,} pixels" in message and "over the limit of 1,000,000 pixels" in message, message
        assert "2,000,000" not in message and "2000000" not in message and "DOS" not in message, message


# ------------------------------------------------------------------- reduced decoding
def test_large_images_are_kept_reduced_with_boxes_in_file_pixels(face_rgb: Image.Image, engine: FaceEngine) -> None:
    big = face_rgb.resize((face_rgb.width * 3, face_rgb.height * 3), Image.Resampling.BICUBIC)  # 4440x2496
    full = decode_image(_save(big, "PNG"), "big.png")
    assert full.original_size is None and full.size == big.size and full.scale == (1.0, 1.0)
    (reference,) = engine.analyze(full.pixels)
    # halved by a box filter; the JPEG decoder itself halves the last one (then it is halved again)
    for fmt, max_side, side in (("PNG", 3200, 2220), ("JPEG", 3200, 2220), ("JPEG", 2000, 1110)):
        loaded = decode_image(_save(big, fmt), f"big.{fmt}", max_side=max_side)
        assert loaded.size == big.size and loaded.pixels.shape[1] == side
        (face,) = loaded.faces_to_original(engine.analyze(loaded.pixels))
        assert max(abs(a - b) for a, b in zip(face.box, reference.box)) <= 12, (face.box, reference.box)
        assert np.abs(face.landmarks - reference.landmarks).max() <= 12  # type: ignore[operator]
        assert float(face.embedding @ reference.embedding) > 0.99  # type: ignore[operator]
        assert loaded.box_from_original(reference.box) == pytest.approx(
            [v * loaded.pixels.shape[1] / big.width for v in reference.box], abs=1
        )
    # small images, and EXIF-rotated ones, keep their upright size
    rotated = decode_image(_save(big.transpose(Image.Transpose.ROTATE_90), "JPEG", exif=_rotated_exif()), "r.jpg")
    assert rotated.size == big.size
    rotated = decode_image(
        _save(big.transpose(Image.Transpose.ROTATE_90), "JPEG", exif=_rotated_exif()), "r.jpg", max_side=1000
    )
    assert rotated.size == big.size and rotated.pixels.shape[1] > rotated.pixels.shape[0]


def _rotated_exif() -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = 6
    return exif


@pytest.mark.parametrize("mode", ["RGBA", "P", "I;16", "F"])
def test_reduced_decoding_converts_every_mode_alike(face_rgb: Image.Image, mode: str) -> None:
    """Band-by-band conversion gives the picture a whole-image conversion gives (no seams)."""
    img = face_rgb.resize((2958, 1662))  # reduced 3 times, to 986x554
    if mode == "I;16":
        img = Image.fromarray(np.asarray(img.convert("L"), dtype=np.uint16) * 257)
    elif mode == "F":
        img = Image.fromarray(np.asarray(img.convert("L"), dtype=np.float32) * 3 - 100)
    else:
        img = img.convert(mode)
    fmt = "TIFF" if mode in ("I;16", "F") else "PNG"
    reduced = decode_image(_save(img, fmt), "x", max_side=1000).pixels.astype(int)
    whole = decode_image(_save(img, fmt), "x").pixels.astype(int)
    expected = whole.reshape(whole.shape[0] // 3, 3, whole.shape[1] // 3, 3, 3).mean(axis=(1, 3))
    assert reduced.shape == expected.shape
    assert np.abs(reduced - expected).mean() < 1.5


def test_decoding_a_huge_image_keeps_one_full_size_copy(tmp_path: Path) -> None:
    """An 8000x8000 PNG (64 Mpx: 256 MB as Pillow holds RGB) decoded for the service peaks at about
    that one copy, not at the 600+ MB of decode + conversion + array copies (fresh process)."""
    f = tmp_path / "huge.png"
    Image.new("RGB", (8000, 8000), (90, 120, 150)).save(f, compress_level=1)
    script = (
        "import re, sys; from pathlib import Path\n"
        "from faceprint.image import decode_image\n"
        "hwm = lambda: int(re.search(r'VmHWM:\\s+(\\d+)', Path('/proc/self/status').read_text())[1]) // 1024\n"
        "data = Path(sys.argv[1]).read_bytes(); before = hwm()\n"
        "loaded = decode_image(data, 'huge.png', max_side=3200)\n"
        "print(hwm() - before, loaded.pixels.shape, loaded.size)\n"
    )
    out = subprocess.run([sys.executable, "-c", script, str(f)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    grown, shape = out.stdout.split(" ", 1)
    assert shape.strip() == "(2667, 2667, 3) (8000, 8000)"
    assert int(grown) < 256 + 80, out.stdout  # MiB: the decoded copy + the reduced one and the array


# ----------------------------------------------------------------------------- budget
def test_pixel_budget_bounds_what_is_held_at_once() -> None:
    budget = PixelBudget(100)
    held, peak, order = [0], [0], []
    lock = threading.Lock()

    def job(k: int, pixels: int) -> None:
        with budget.hold(pixels):
            with lock:
                held[0] += min(pixels, 100)
                peak[0] = max(peak[0], held[0])
                order.append(k)
            time.sleep(0.02)
            with lock:
                held[0] -= min(pixels, 100)

    threads = [threading.Thread(target=job, args=(k, p)) for k, p in enumerate([60, 30, 50, 250, 10, 40, 90])]
    for t in threads:
        t.start()
        time.sleep(0.002)  # arrival order
    for t in threads:
        t.join(timeout=30)
    assert peak[0] <= 100 and sorted(order) == list(range(7))
    assert budget.free == budget.total
    # one image larger than the whole budget runs, alone, rather than waiting forever
    with budget.hold(10**9):
        assert budget.free == 0
