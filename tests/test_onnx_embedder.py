"""The ONNX backend reproduces dlib's face-recognition ResNet, from dlib's own .dat file."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest

from faceprint.embed import dlib_dat, onnx_resnet
from faceprint.embed.base import CHIP_PADDING, CHIP_SIZE, Embedder
from faceprint.embed.dlib_dat import Conv, DatFormatError, FullyConnected, parse_dat
from faceprint.errors import ModelError
from faceprint.models import RESNET_FILE, SHAPE5_FILE, dlib_model

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}
MIN_COSINE = 0.9999
LFW_SAMPLE = 24  # images, spread over the identities


def _data_dir() -> Path | None:
    """The shared evaluation data: $FACEPRINT_DATA, else ../shared/data next to the repo."""
    for candidate in (os.environ.get("FACEPRINT_DATA"), REPO.parent / "shared" / "data"):
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    return None


def _fixture_images() -> list[Path]:
    if not FIXTURES.is_dir():
        return []
    return sorted(p for p in FIXTURES.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)


def _lfw_images() -> list[Path]:
    """One image each of LFW_SAMPLE identities spread over the shared LFW set."""
    data = _data_dir()
    lfw = data / "lfw" if data else None
    if not lfw or not lfw.is_dir():
        return []
    people = sorted(p for p in lfw.iterdir() if p.is_dir())
    step = max(1, len(people) // LFW_SAMPLE)
    return [img for person in people[::step][:LFW_SAMPLE] for img in sorted(person.glob("*.jpg"))[:1]]


def _chips(images: list[Path]) -> np.ndarray:
    dlib = pytest.importorskip("dlib")
    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(str(dlib_model(SHAPE5_FILE)))
    chips = []
    for path in images:
        try:
            img = dlib.load_rgb_image(str(path))
        except RuntimeError:
            continue  # not an image dlib can read (fixtures may hold other files)
        for rect in detector(img, 1):
            shape = predictor(img, rect)
            chips.append(dlib.get_face_chip(img, shape, size=CHIP_SIZE, padding=CHIP_PADDING))
    return np.stack(chips) if chips else np.zeros((0, CHIP_SIZE, CHIP_SIZE, 3), np.uint8)


@pytest.fixture(scope="module")
def onnx_cache(tmp_path_factory: pytest.TempPathFactory):
    """A private cache dir, so tests neither depend on nor write the user's cache."""
    with pytest.MonkeyPatch.context() as mp:
        path = tmp_path_factory.mktemp("faceprint-cache")
        mp.setenv("FACEPRINT_CACHE", str(path))
        yield path


@pytest.fixture(scope="module")
def embedder(onnx_cache: Path) -> onnx_resnet.OnnxEmbedder:
    return onnx_resnet.OnnxEmbedder(threads=1)


@pytest.fixture(scope="module")
def real_chips() -> np.ndarray:
    """Faces from tests/fixtures/, or from the shared LFW set when the fixtures have none."""
    chips = _chips(_fixture_images())
    if len(chips) == 0:
        chips = _chips(_lfw_images())
    if len(chips) == 0:
        pytest.skip(
            f"no face images: {FIXTURES} holds no faces and the shared data set was not found "
            "(set FACEPRINT_DATA or put it at ../shared/data next to the repo)"
        )
    return chips


def test_matches_dlib_on_real_faces(embedder: onnx_resnet.OnnxEmbedder, real_chips: np.ndarray) -> None:
    from faceprint.embed.dlib_resnet import DlibEmbedder

    ref = DlibEmbedder().embed(real_chips)
    got = embedder.embed(real_chips)
    assert got.shape == ref.shape == (len(real_chips), 128)
    assert got.dtype == np.float32
    cos = (got * ref).sum(1) / (np.linalg.norm(got, axis=1) * np.linalg.norm(ref, axis=1))
    worst = int(np.argmin(cos))
    assert cos.min() >= MIN_COSINE, f"face {worst}: cosine {cos[worst]:.7f} vs dlib"
    # raw, not normalised, descriptors: the magnitudes must match too
    np.testing.assert_allclose(got, ref, atol=1e-4)


def test_batch_and_single_agree(embedder: onnx_resnet.OnnxEmbedder, real_chips: np.ndarray) -> None:
    chips = real_chips[:5]
    batch = embedder.embed(chips)
    single = np.concatenate([embedder.embed(c[None]) for c in chips])
    np.testing.assert_allclose(batch, single, atol=1e-5)


def test_protocol_and_input_checks(embedder: onnx_resnet.OnnxEmbedder) -> None:
    assert isinstance(embedder, Embedder)
    assert (embedder.name, embedder.dim) == ("onnx", 128)
    assert embedder.model_id == "dlib_face_recognition_resnet_model_v1"
    assert embedder.embed(np.zeros((0, CHIP_SIZE, CHIP_SIZE, 3), np.uint8)).shape == (0, 128)
    with pytest.raises(ValueError, match="150"):
        embedder.embed(np.zeros((1, 100, 100, 3), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        embedder.embed(np.zeros((1, CHIP_SIZE, CHIP_SIZE, 3), np.float32))


def test_cache_is_reused(onnx_cache: Path, embedder: onnx_resnet.OnnxEmbedder, monkeypatch) -> None:
    path = embedder.model_path
    assert path.is_file() and path.is_relative_to(onnx_cache)
    assert onnx_resnet.CONVERTER_VERSION in path.name
    stamp = path.stat().st_mtime_ns

    def no_convert(*args, **kwargs):
        raise AssertionError("converted again although the cache holds the model")

    monkeypatch.setattr(onnx_resnet, "convert", no_convert)
    again = onnx_resnet.OnnxEmbedder()
    assert again.model_path == path
    assert path.stat().st_mtime_ns == stamp


def test_damaged_cache_entry_is_rebuilt(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("FACEPRINT_CACHE", str(tmp_path))
    path = onnx_resnet.cached_model_path()
    path.write_bytes(b"not an onnx model")
    emb = onnx_resnet.OnnxEmbedder()
    assert emb.model_path == path and path.stat().st_size > 1_000_000
    assert emb.embed(np.full((1, CHIP_SIZE, CHIP_SIZE, 3), 128, np.uint8)).shape == (1, 128)


def test_parser_reads_the_network() -> None:
    net = parse_dat(dlib_model(RESNET_FILE))
    assert (net.input.rows, net.input.cols) == (150, 150)
    np.testing.assert_allclose(net.input.mean, (122.782, 117.001, 104.298), atol=1e-4)
    convs = [layer for layer in net.layers if isinstance(layer, Conv)]
    assert len(convs) == 29
    assert convs[0].weight.shape == (32, 3, 7, 7) and convs[0].stride == (2, 2) and convs[0].padding == (0, 0)
    fc = net.layers[-1]
    assert isinstance(fc, FullyConnected) and fc.weight.shape == (256, 128) and fc.bias is None


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda data: data[: len(data) // 3], id="truncated"),
        pytest.param(lambda data: data[:-7], id="tail-cut"),
        pytest.param(lambda data: data + b"\x00", id="trailing-bytes"),
        pytest.param(lambda data: bytes(np.random.default_rng(0).integers(0, 256, 4096, np.uint8)), id="garbage"),
        pytest.param(lambda data: b"", id="empty"),
    ],
)
def test_parser_rejects_bad_files(tmp_path: Path, make) -> None:
    bad = tmp_path / "bad.dat"
    bad.write_bytes(make(dlib_model(RESNET_FILE).read_bytes()))
    with pytest.raises(DatFormatError, match=re.escape(f"{bad}: not a valid dlib")):
        parse_dat(bad)
    # the converter surfaces the same clean error and leaves nothing behind
    with pytest.raises(ModelError):
        onnx_resnet.convert(bad, tmp_path / "out.onnx")
    assert not list(tmp_path.glob("out.onnx*"))


def test_parser_rejects_another_network(tmp_path: Path) -> None:
    # dlib's 5-landmark shape predictor is a real dlib file but not this network
    with pytest.raises(DatFormatError):
        parse_dat(dlib_model(SHAPE5_FILE))
    with pytest.raises(DatFormatError, match="cannot read"):
        parse_dat(tmp_path / "missing.dat")
    assert issubclass(dlib_dat.DatFormatError, ModelError)
