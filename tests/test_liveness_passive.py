"""Passive liveness (faceprint.liveness.passive): the shipped MiniFASNet ONNX models, the patch cut, bad
input, and the scores on the authors' sample photos (needs ../shared/data; skips without it)."""

from __future__ import annotations

import importlib.util
import io
import pickle
import sys
from functools import cache
from pathlib import Path
from types import ModuleType

import cv2
import numpy as np
import onnx
import pytest

from faceprint.errors import ModelError
from faceprint.liveness import PassiveLiveness, crop_patch, patch_box
from faceprint.liveness.passive import DATA_DIR, MODELS
from faceprint.types import Face

from .conftest import REPO

# live score (class 1, mean of the two softmax outputs) from the authors' own PyTorch pipeline and detector,
# recorded in ../shared/data/README.md
AUTHORS_SCORES = {"image_T1.jpg": 0.996, "image_F1.jpg": 0.028, "image_F2.jpg": 0.062}


@pytest.fixture(scope="module")
def liveness() -> PassiveLiveness:
    return PassiveLiveness()


@cache
def converter() -> ModuleType:
    spec = importlib.util.spec_from_file_location("convert_minifasnet", REPO / "tools" / "convert_minifasnet.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def test_shipped_models_load_and_give_probabilities(liveness: PassiveLiveness) -> None:
    for name, _ in MODELS:
        model = onnx.load(DATA_DIR / name)
        onnx.checker.check_model(model)
        dims = [d.dim_param or d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
        assert dims == ["N", 3, 80, 80]
        assert "Apache-2.0" in {p.key: p.value for p in model.metadata_props}["license"]
    assert "b6d5f04ad78778917853b25c778acef6d5626d15" in (DATA_DIR / "LICENSE-MiniFASNet").read_text()
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (120, 100, 3), dtype=np.uint8) for _ in range(3)]
    scores = liveness.score_many([(image, (30, 40, 70, 90)) for image in images])
    assert scores.shape == (3,) and np.all((scores >= 0) & (scores <= 1))
    assert liveness.score_many([]).shape == (0,)


def test_score_many_in_small_batches_equals_one_at_a_time(liveness: PassiveLiveness) -> None:
    rng = np.random.default_rng(2)
    items = [(rng.integers(0, 256, (90, 90, 3), dtype=np.uint8), (20, 20, 60 + i, 70)) for i in range(5)]
    singles = [liveness.score(image, box) for image, box in items]
    batched = PassiveLiveness(batch_size=2).score_many(iter(items))  # a generator, over 3 batches
    np.testing.assert_allclose(batched, singles, atol=1e-6)


def test_patch_box_grows_about_the_centre_and_stays_inside() -> None:
    # room to grow: 100x100 -> 270x270 about the centre (250, 250)
    assert patch_box(1000, 800, (200, 200, 300, 300), 2.7) == (115, 115, 385, 385)
    # near the top-left corner: shifted inside, same size
    x0, y0, x1, y1 = patch_box(1000, 800, (0, 10, 100, 110), 2.7)
    assert (x0, y0) == (0, 0) and (x1, y1) == (270, 270)
    # near the bottom-right corner
    assert patch_box(1000, 800, (900, 700, 1000, 800), 2.7)[2:] == (999, 799)
    # image too small for the full enlargement: the patch is as large as the image allows
    x0, y0, x1, y1 = patch_box(480, 640, (125, 160, 310, 345), 4.0)
    assert x0 == 0 and x1 == 479 and abs((y1 - y0) - 479) <= 1  # the corners are truncated to int


def test_crop_patch_is_80x80_in_the_same_channel_order() -> None:
    image = np.zeros((200, 200, 3), dtype=np.uint8)
    image[..., 0] = 255  # channel 0 only
    patch = crop_patch(image, Face(box=(80, 80, 120, 120), score=1.0), 2.7)
    assert patch.shape == (80, 80, 3) and patch[..., 0].min() == 255 and patch[..., 1:].max() == 0


@pytest.mark.parametrize(
    ("box", "message"),
    [
        ((50, 50, 50, 90), "empty"),
        ((60, 50, 40, 90), "empty"),
        ((200, 10, 260, 70), "outside the 100x120 image"),
        ((-80, -80, -10, -10), "outside the 100x120 image"),
    ],
)
def test_bad_boxes_are_refused_clearly(liveness: PassiveLiveness, box: tuple[int, int, int, int], message: str) -> None:
    image = np.zeros((120, 100, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match=message):
        liveness.score(image, box)


def test_bad_images_are_refused_and_edge_boxes_scored(liveness: PassiveLiveness) -> None:
    with pytest.raises(ValueError, match="uint8 colour image"):
        liveness.score(np.zeros((120, 100), dtype=np.uint8), (10, 10, 50, 50))
    with pytest.raises(ValueError, match="uint8 colour image"):
        liveness.score(np.zeros((120, 100, 3), dtype=np.float32), (10, 10, 50, 50))
    # a box partly outside the image (a face at the frame's edge) is scored: the patch moves inside
    image = np.full((120, 100, 3), 128, dtype=np.uint8)
    assert 0 <= liveness.score(image, (-20, 80, 40, 150)) <= 1
    # a box larger than the image, and a one-pixel image
    assert 0 <= liveness.score(image, (-50, -50, 200, 200)) <= 1
    assert 0 <= liveness.score(np.zeros((1, 1, 3), dtype=np.uint8), (0, 0, 1, 1)) <= 1


def test_missing_model_file_is_a_model_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr("faceprint.liveness.passive.DATA_DIR", tmp_path)
    with pytest.raises(ModelError, match="minifasnet_v2_2.7.onnx"):
        PassiveLiveness()


def test_sample_photos_with_blazeface_boxes(liveness: PassiveLiveness, data_dir: Path) -> None:
    from faceprint.detect import get_detector

    try:
        detector = get_detector("blazeface")
    except ModelError as exc:
        pytest.skip(str(exc))
    items = []
    for name, reference in AUTHORS_SCORES.items():
        bgr = cv2.imread(str(data_dir / "antispoof_minifasnet" / "sample" / name))
        faces = detector.detect(np.ascontiguousarray(bgr[:, :, ::-1]))
        assert len(faces) == 1, name
        score = liveness.score(bgr, faces[0])
        if name.startswith("image_T"):
            assert score > 0.9, (name, score)
        else:
            assert score < 0.2, (name, score)
        # the conversion is faithful: BlazeFace's box gives the authors' own score to within 0.01
        assert abs(score - reference) < 0.01, (name, score, reference)
        assert liveness.score(np.ascontiguousarray(bgr[:, :, ::-1]), faces[0].box, rgb=True) == pytest.approx(score)
        items.append((bgr, faces[0]))
    singles = [liveness.score(image, face) for image, face in items]
    np.testing.assert_allclose(liveness.score_many(items), singles, atol=1e-6)


def test_converter_reproduces_the_shipped_models(data_dir: Path, tmp_path: Path) -> None:
    tool = converter()
    import onnxruntime as ort

    x = np.random.default_rng(1).uniform(0, 255, (4, 3, 80, 80)).astype(np.float32)
    for checkpoint, onnx_name in tool.MODELS.items():
        tool.convert(data_dir / "antispoof_minifasnet" / checkpoint, tmp_path / onnx_name)
        fresh = ort.InferenceSession(str(tmp_path / onnx_name), providers=["CPUExecutionProvider"])
        shipped = ort.InferenceSession(str(DATA_DIR / onnx_name), providers=["CPUExecutionProvider"])
        np.testing.assert_allclose(fresh.run(None, {"input": x})[0], shipped.run(None, {"input": x})[0], atol=1e-6)


@pytest.mark.parametrize("at", [0, 3])
def test_checkpoint_reader_runs_no_code(tmp_path: Path, at: int) -> None:
    """A pickle calling os.system, as the file's first pickle or in place of the state dict, is refused."""
    tool = converter()
    stream = io.BytesIO()
    for i, header in enumerate((tool.LEGACY_MAGIC, 1001, {})):
        stream.write(b"cos\nsystem\n(S'echo pwned'\ntR." if i == at else pickle.dumps(header, protocol=2))
    if at == 3:
        stream.write(b"cos\nsystem\n(S'echo pwned'\ntR.")
    path = tmp_path / "evil.pth"
    path.write_bytes(stream.getvalue())
    with pytest.raises(pickle.UnpicklingError, match="unexpected global os.system"):
        tool.load_state_dict(path)
