"""faceprint.compat.face_recognition against the real face_recognition 1.3.0 (those tests skip, saying so,
where it is not installed), and what the compatible module does beyond the original's own suite:
batching, models loaded once, dlib's jitter, a missing 68-point model, truncated files, the worker pool."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import ImageFile

from faceprint.compat.face_recognition import _cli, api, face_detection_cli, face_recognition_cli
from faceprint.errors import ImageError, ModelError
from faceprint.image import load_image

from .compat_face_recognition_images import SUITE_IMAGES, suite_folder
from .conftest import FIXTURES

#: the issue's bound is 1e-3 per component; the ONNX port is within about 1e-6 of dlib
ENCODING_TOLERANCE = 1e-3
GROUP = sorted((FIXTURES / "group").glob("*.jpg"))
LFW = sorted((FIXTURES / "lfw").glob("*/*.jpg"))
PHOTOS = [p for p in SUITE_IMAGES.values() if p.is_file()] + GROUP + LFW


@pytest.fixture(scope="module")
def original() -> Iterator[ModuleType]:
    """The real face_recognition 1.3.0, its process-wide PIL setting undone for the other tests."""
    try:
        version = metadata.version("face_recognition")
    except metadata.PackageNotFoundError:
        pytest.skip("face_recognition is not installed: pip install --no-deps face_recognition==1.3.0")
    if version != "1.3.0":
        pytest.skip(f"face_recognition {version} is installed; these tests compare with 1.3.0")
    before = ImageFile.LOAD_TRUNCATED_IMAGES
    import face_recognition  # sets ImageFile.LOAD_TRUNCATED_IMAGES = True when first imported

    ImageFile.LOAD_TRUNCATED_IMAGES = before
    yield face_recognition
    ImageFile.LOAD_TRUNCATED_IMAGES = before


@pytest.fixture(scope="module")
def test_images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return suite_folder(tmp_path_factory.mktemp("face_recognition") / "test_images")


def invoke(command, *args: object) -> str:
    result = CliRunner().invoke(command, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result.output


def assert_close(ours: list[np.ndarray], theirs: list[np.ndarray]) -> None:
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs, strict=True):
        assert a.shape == b.shape == (128,)
        assert a.dtype == b.dtype == np.float64
        assert np.abs(a - b).max() <= ENCODING_TOLERANCE


# ------------------------------------------------------------------ the same answers as the original
@pytest.mark.parametrize("photo", PHOTOS, ids=lambda p: p.name)
def test_same_answers_as_the_original(original: ModuleType, photo: Path) -> None:
    img = original.load_image_file(photo)
    assert np.array_equal(api.load_image_file(photo), img)
    boxes = original.face_locations(img)
    assert api.face_locations(img) == boxes
    assert api.face_landmarks(img) == original.face_landmarks(img)
    assert api.face_landmarks(img, boxes, model="small") == original.face_landmarks(img, boxes, model="small")
    assert_close(api.face_encodings(img), original.face_encodings(img))
    assert_close(api.face_encodings(img, boxes, model="large"), original.face_encodings(img, boxes, model="large"))


def test_same_grey_image(original: ModuleType) -> None:
    grey = api.load_image_file(LFW[0], mode="L")
    assert np.array_equal(grey, original.load_image_file(LFW[0], mode="L"))
    assert api.face_locations(grey) == original.face_locations(grey)
    assert api.face_landmarks(grey) == original.face_landmarks(grey)
    for lib in (api, original):  # faces are found in grey, but only an RGB image has encodings
        with pytest.raises(TypeError):
            lib.face_encodings(grey)


def test_same_cnn_boxes(original: ModuleType) -> None:
    images = [original.load_image_file(p) for p in LFW[:2]]  # 250x250: a second each on a CPU
    for img in images:
        assert api.face_locations(img, model="cnn") == original.face_locations(img, model="cnn")
    ours = api.batch_face_locations(images, number_of_times_to_upsample=0)
    assert ours == original.batch_face_locations(images, number_of_times_to_upsample=0)


def test_same_detection_lines(original: ModuleType, test_images: Path) -> None:
    from face_recognition import face_detection_cli as theirs

    assert invoke(face_detection_cli.main, test_images) == invoke(theirs.main, test_images)


def test_same_recognition_lines(original: ModuleType, test_images: Path) -> None:
    from face_recognition import face_recognition_cli as theirs

    assert invoke(face_recognition_cli.main, test_images, test_images) == invoke(theirs.main, test_images, test_images)
    ours = invoke(face_recognition_cli.main, test_images, test_images, "--show-distance", "1").splitlines()
    lines = invoke(theirs.main, test_images, test_images, "--show-distance", "1").splitlines()
    assert len(ours) == len(lines)
    for mine, line in zip(ours, lines, strict=True):
        *name, distance = mine.rsplit(",", 1)
        *their_name, their_distance = line.rsplit(",", 1)
        assert name == their_name
        if distance == "None":
            assert their_distance == "None"
        else:  # the digits past the encodings' agreement may differ
            assert float(distance) == pytest.approx(float(their_distance), abs=ENCODING_TOLERANCE)


def test_same_truncated_file(original: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    truncated = tmp_path / "cut.jpg"
    data = SUITE_IMAGES["obama2.jpg"].read_bytes()
    truncated.write_bytes(data[: len(data) * 2 // 3])
    ours = api.load_image_file(truncated)
    with pytest.raises(ImageError):  # faceprint's own loader still refuses it in this process
        load_image(truncated)
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)  # as the original's import left it
    assert np.array_equal(ours, original.load_image_file(truncated))


def test_same_folder_listing(original: ModuleType, tmp_path: Path) -> None:
    from face_recognition import face_detection_cli as theirs

    for name in ("a.jpg", "b.PNG", "c.jpeg", "d.txt", "e.png.txt", ".jpg", "f"):
        (tmp_path / name).touch()
    assert _cli.image_files_in_folder(str(tmp_path)) == theirs.image_files_in_folder(str(tmp_path))
    assert {Path(f).name for f in _cli.image_files_in_folder(str(tmp_path))} == {
        "a.jpg",
        "b.PNG",
        "c.jpeg",
        "e.png.txt",
        ".jpg",
    }


# ------------------------------------------------------------------ fast
def test_faces_of_an_image_are_embedded_in_one_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    img = api.load_image_file(GROUP[0])
    embedder = api._embedder()
    batches: list[int] = []

    class Counting:
        def embed(self, chips: np.ndarray) -> np.ndarray:
            batches.append(len(chips))
            return embedder.embed(chips)

    monkeypatch.setattr(api, "_embedder", Counting)
    found = api.face_encodings(img)
    assert len(found) >= 2
    assert batches == [len(found)]


def test_models_are_loaded_once() -> None:
    assert api._embedder() is api._embedder()
    assert api._pose_predictor(68) is api._pose_predictor(68) is api.pose_predictor_68_point
    assert api._hog_detector() is api.face_detector
    with pytest.raises(AttributeError):
        api.no_such_model  # noqa: B018


def test_jitter_is_dlib_s_own(monkeypatch: pytest.MonkeyPatch) -> None:
    img = api.load_image_file(LFW[0])
    boxes = api.face_locations(img)
    plain = api.face_encodings(img, boxes)[0]

    def no_onnx() -> None:
        raise AssertionError("num_jitters > 1 must use dlib's own compute_face_descriptor")

    monkeypatch.setattr(api, "_embedder", no_onnx)
    jittered = api.face_encodings(img, boxes, num_jitters=2)[0]
    assert jittered.dtype == np.float64
    # an average over random crops and flips: nearer than the 0.6 "same person" bound, never equal
    assert 0 < np.linalg.norm(jittered - plain) < 0.3


def test_no_jitter_at_one_or_below() -> None:
    img = api.load_image_file(LFW[0])
    boxes = api.face_locations(img)
    plain = api.face_encodings(img, boxes)[0]
    for jitters in (0, 1):  # dlib computes one plain descriptor for these too
        assert np.array_equal(api.face_encodings(img, boxes, num_jitters=jitters)[0], plain)


def test_non_contiguous_image_is_encoded() -> None:
    img = api.load_image_file(LFW[0])
    boxes = api.face_locations(img)
    view = np.ascontiguousarray(img[:, :, ::-1])[:, :, ::-1]  # what frame[:, :, ::-1] gives a webcam user
    assert not view.flags["C_CONTIGUOUS"]
    assert np.array_equal(api.face_encodings(view, boxes)[0], api.face_encodings(img, boxes)[0])


def test_no_face_no_encoding() -> None:
    assert api.face_encodings(np.zeros((80, 80, 3), np.uint8)) == []
    assert api.face_locations(np.zeros((80, 80, 3), np.uint8)) == []


# ------------------------------------------------------------------ clear failures
@pytest.fixture()
def no_68_point_model(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    real = api.dlib_model

    def without_68(name: str) -> Path:
        if name == api.SHAPE68_FILE:
            raise ModelError(f"/models/{name}: dlib model file missing")
        return real(name)

    monkeypatch.setattr(api, "dlib_model", without_68)
    api._pose_predictor.cache_clear()
    yield
    api._pose_predictor.cache_clear()


@pytest.mark.usefixtures("no_68_point_model")
def test_missing_68_point_model_fails_clearly() -> None:
    img = api.load_image_file(LFW[0])
    for call in (lambda: api.face_landmarks(img), lambda: api.face_encodings(img, model="large")):
        with pytest.raises(ModelError, match=r"68-point landmarks .* unavailable; model='small'"):
            call()
    assert len(api.face_landmarks(img, model="small")) == 1
    assert len(api.face_encodings(img)) == 1


def test_unknown_landmark_model() -> None:
    with pytest.raises(ValueError, match="Supported models are"):
        api.face_landmarks(np.zeros((80, 80, 3), np.uint8), model="medium")


@pytest.mark.parametrize("cpus", ["0", "-2"])
def test_bad_cpus(cpus: str, test_images: Path) -> None:
    result = CliRunner().invoke(face_detection_cli.main, [str(test_images), "--cpus", cpus])
    assert result.exit_code == 2
    assert "--cpus" in result.output


# ------------------------------------------------------------------ the commands
def test_detection_upsample_option(test_images: Path) -> None:
    photo = test_images / "obama2.jpg"
    img = api.load_image_file(photo)
    lines = invoke(face_detection_cli.main, photo, "--upsample", "1").splitlines()
    assert lines == [f"{photo},{t},{r},{b},{left}" for t, r, b, left in api.face_locations(img, 1)]
    lines = invoke(face_detection_cli.main, photo).splitlines()  # 1.3.0 always looked without upsampling
    assert lines == [f"{photo},{t},{r},{b},{left}" for t, r, b, left in api.face_locations(img, 0)]


def test_recognition_lines(test_images: Path, tmp_path: Path) -> None:
    lines = invoke(face_recognition_cli.main, test_images, test_images / "obama.jpg").splitlines()
    known = {Path(p).stem for p in _cli.image_files_in_folder(str(test_images))}
    assert not [line for line in lines if line.startswith("WARNING")]  # one face in each of the seven
    assert {line.rsplit(",", 1)[1] for line in lines} <= known
    assert f"{test_images / 'obama.jpg'},obama" in lines
    assert f"{test_images / 'obama.jpg'},biden" not in lines
    lines = invoke(face_recognition_cli.main, tmp_path, test_images / "biden.jpg").splitlines()
    assert lines == [f"{test_images / 'biden.jpg'},unknown_person"]


def test_worker_pool_gives_the_same_lines(test_images: Path) -> None:
    # spawns two worker processes (a few seconds each to start)
    args = (test_images, test_images, "--show-distance", "true")
    assert invoke(face_recognition_cli.main, *args, "--cpus", "2") == invoke(face_recognition_cli.main, *args)
    assert invoke(face_detection_cli.main, test_images, "--cpus", "2") == invoke(face_detection_cli.main, test_images)


def test_runs_without_the_original(tmp_path: Path) -> None:
    """In a process where ``import face_recognition`` fails, the module and its commands still work."""
    (tmp_path / "face_recognition.py").write_text("raise ImportError('the original must not be needed')\n")
    photo = SUITE_IMAGES["obama.jpg"]
    code = (
        "import faceprint.compat.face_recognition as fr\n"
        f"print(fr.face_locations(fr.load_image_file({str(photo)!r})))\n"
        "from faceprint.compat.face_recognition import face_detection_cli\n"
        f"face_detection_cli.main([{str(photo)!r}], standalone_mode=False)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    # the command looks without upsampling, as 1.3.0 did: a slightly different box
    assert proc.stdout.splitlines() == ["[(142, 617, 409, 349)]", f"{photo},136,624,394,366"]
