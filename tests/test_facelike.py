"""Face-likeness of templates (faceprint.analyze.facelike): the shipped model on real crops, and the fit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from faceprint import FaceEngine
from faceprint.analyze.facelike import (
    FACE_LIKE_MIN,
    FaceLikeModel,
    face_like_model,
    face_likeness,
    fit_model,
    is_face_like,
)
from faceprint.detect import get_detector
from faceprint.detect.dlib_detectors import Landmarker5
from faceprint.image import load_image
from faceprint.pipeline import EngineSpec
from faceprint.types import Face

FIXTURES = Path(__file__).parent / "fixtures"


def test_parameter_file_loads() -> None:
    model = face_like_model()
    assert model is face_like_model()  # read once
    assert model.mean.shape == (128,) and model.axes.shape[0] == 128 and 1 <= model.axes.shape[1] <= 12
    assert model.template_model == EngineSpec().template_model
    assert np.all(np.diff(model.distances) > 0) and model.distances[0] == 0.0
    assert model.log_survival[0] == 0.0 and np.all(np.diff(model.log_survival) < 0) and model.tail > 0
    assert model.score_distance2(np.array([0.0, 1e9])).tolist() == [1.0, 0.0]
    # the mean of many unit templates is shorter than 1; as a template (its direction) it is nobody in
    # particular, which is where crops that are not faces land too
    assert 0.8 < np.linalg.norm(model.mean) < 1.0
    assert face_likeness(model.mean) < FACE_LIKE_MIN


def test_scores_lie_in_unit_interval_with_the_input_shape() -> None:
    rng = np.random.default_rng(0)
    mean = face_like_model().mean
    templates = np.concatenate([rng.normal(size=(50, 128)), mean + 0.05 * rng.normal(size=(50, 128)), [-mean]])
    scores = face_likeness(templates)
    assert scores.shape == (101,) and np.all((scores >= 0) & (scores <= 1))
    assert face_likeness(templates[0]).shape == ()
    assert face_likeness(np.zeros((0, 128))).shape == (0,)
    flags = is_face_like(templates)
    assert flags.dtype == bool and np.array_equal(flags, scores >= FACE_LIKE_MIN)
    # only a template's direction counts
    assert face_likeness(3 * templates[:5]) == pytest.approx(scores[:5])


def test_bad_templates_are_refused() -> None:
    with pytest.raises(ValueError, match="length 128"):
        face_likeness(np.zeros((2, 64)))
    with pytest.raises(ValueError, match="NaN"):
        face_likeness(np.full(128, np.nan))


@pytest.fixture(scope="module")
def lfw_templates(engine: FaceEngine) -> np.ndarray:
    """One template per LFW fixture photo (10 people x 3, original LFW framing)."""
    out = []
    for path in sorted((FIXTURES / "lfw").glob("*/*.jpg")):
        faces = engine.analyze(load_image(path).pixels)
        out.append(faces[0].embedding)
    return np.stack(out)


def test_real_faces_score_as_faces(lfw_templates: np.ndarray) -> None:
    scores = face_likeness(lfw_templates)
    assert len(scores) == 30
    assert is_face_like(lfw_templates).all(), scores.round(4)
    assert np.median(scores) > 0.2  # LFW DevTest faces: median about 0.5


def _crops(engine: FaceEngine, pixels: np.ndarray, boxes: list[tuple[int, int, int, int]]) -> np.ndarray:
    """Templates of boxes aligned the way a detector's false positive is: dlib's 5 points on the box."""
    landmarks = Landmarker5()
    faces = [Face(box=b, score=0.0, landmarks=landmarks(pixels, (b[0], b[1], b[2] - 1, b[3] - 1))) for b in boxes]
    return engine.embed_chips(engine.chips(pixels, faces))


@pytest.mark.parametrize("name", ["compreface_017_0.jpg", "skimage_chelsea.png", "skimage_moon.png"])
def test_crops_of_faceless_photos_score_low(engine: FaceEngine, name: str) -> None:
    pixels = load_image(FIXTURES / "no_faces" / name).pixels
    h, w = pixels.shape[:2]
    boxes = [(x, y, x + s, y + s) for s in (64, 128) for x in range(0, w - s, s) for y in range(0, h - s, s)]
    scores = face_likeness(_crops(engine, pixels, boxes))
    assert len(scores) >= 30 and scores.max() < FACE_LIKE_MIN, scores.max()
    assert np.median(scores) < 1e-3


def test_the_cat_that_a_detector_takes_for_a_face_is_not_face_like(engine: FaceEngine) -> None:
    pixels = load_image(FIXTURES / "no_faces" / "skimage_chelsea.png").pixels
    hits = FaceEngine(get_detector("blazeface", model="back"), engine.embedder).analyze(pixels)
    assert len(hits) == 1 and hits[0].score > 0.65  # BlazeFace's back-camera model fires on the cat
    assert face_likeness(hits[0].embedding) < 1e-4


def test_scores_are_deterministic(lfw_templates: np.ndarray) -> None:
    first = face_likeness(lfw_templates)
    assert np.array_equal(first, face_likeness(lfw_templates.copy()))
    # one template's score does not depend on the others in the batch (up to float rounding)
    assert np.allclose(first, face_likeness(lfw_templates[::-1])[::-1], rtol=1e-9, atol=0)
    assert np.allclose(first[:1], face_likeness(lfw_templates[0]), rtol=1e-9, atol=0)


def _shell(rng: np.random.Generator, n: int) -> np.ndarray:
    """Synthetic unit 'templates': a common direction plus wide spread in 10 axes, thin in one."""
    x = np.zeros((n, 16))
    x[:, 0] = 3.0
    x[:, 1:11] = rng.normal(size=(n, 10))
    x[:, 11] = 0.05 * rng.normal(size=n)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_fit_is_calibrated_on_new_samples_and_deterministic() -> None:
    rng = np.random.default_rng(1)
    train, folds = _shell(rng, 6000), np.arange(6000) % 5
    model, oof = fit_model(train, folds, axes=1, template_model="synthetic")
    again, _ = fit_model(train, folds, axes=1, template_model="synthetic")
    assert model.to_json() == again.to_json()
    assert np.median(model.score_distance2(oof)) == pytest.approx(0.5, abs=0.02)
    fresh = _shell(rng, 20000)
    assert np.mean(model.score(fresh) >= FACE_LIKE_MIN) == pytest.approx(1 - FACE_LIKE_MIN, abs=0.003)
    # displaced along the thin axis: no longer face-like, and less so the further out
    off = fresh[:100].copy()
    off[:, 11] += 0.3  # about 6 standard deviations of that axis
    shifted = model.score(off / np.linalg.norm(off, axis=1, keepdims=True))
    assert np.mean(shifted < FACE_LIKE_MIN) > 0.9
    loaded = FaceLikeModel.from_json(model.to_json())
    assert np.array_equal(loaded.score(fresh[:50]), model.score(fresh[:50]))
