"""face_recognition 1.3.0's published test suite (its tests/test_face_recognition.py: 30 tests), written
again here against ``faceprint.compat.face_recognition``: the same names, images and expected values.

The CNN tests run dlib's MMOD detector on a CPU: about 80 s of the file's time.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from faceprint.compat.face_recognition import api, face_detection_cli, face_recognition_cli

from .compat_face_recognition_images import suite_folder

FACE_PARTS = {
    "chin",
    "left_eyebrow",
    "right_eyebrow",
    "nose_bridge",
    "nose_tip",
    "left_eye",
    "right_eye",
    "top_lip",
    "bottom_lip",
}


@pytest.fixture(scope="module")
def test_images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return suite_folder(tmp_path_factory.mktemp("face_recognition") / "test_images")


@pytest.fixture(scope="module")
def load(test_images: Path):
    return lambda name: api.load_image_file(test_images / name)


@pytest.fixture(scope="module")
def encodings(load) -> dict[str, np.ndarray]:
    """The first face's encoding of each of the four portraits the comparison tests use."""
    return {name: api.face_encodings(load(f"{name}.jpg"))[0] for name in ("obama", "obama2", "obama3", "biden")}


def run(command, *args: str):
    result = CliRunner().invoke(command, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result.output


def top_bottom(detections) -> tuple[int, int]:
    """The top and bottom of the one detection there must be (a dlib rectangle, or a CNN detection's)."""
    assert len(detections) == 1
    rect = getattr(detections[0], "rect", detections[0])
    return rect.top(), rect.bottom()


# ------------------------------------------------------------------ images
def test_load_image_file(load) -> None:
    assert load("obama.jpg").shape == (1137, 910, 3)


def test_load_image_file_32bit(load) -> None:
    assert load("32bit.png").shape == (1200, 626, 3)


# ------------------------------------------------------------------ detection
def test_raw_face_locations(load) -> None:
    assert top_bottom(api._raw_face_locations(load("obama.jpg"))) == (142, 409)


def test_cnn_raw_face_locations(load) -> None:
    assert top_bottom(api._raw_face_locations(load("obama.jpg"), model="cnn")) == pytest.approx((144, 389), abs=25)


def test_raw_face_locations_32bit_image(load) -> None:
    assert top_bottom(api._raw_face_locations(load("32bit.png"))) == (290, 558)


def test_cnn_raw_face_locations_32bit_image(load) -> None:
    assert top_bottom(api._raw_face_locations(load("32bit.png"), model="cnn")) == pytest.approx((259, 552), abs=25)


def test_face_locations(load) -> None:
    assert api.face_locations(load("obama.jpg")) == [(142, 617, 409, 349)]


def test_cnn_face_locations(load) -> None:
    faces = api.face_locations(load("obama.jpg"), model="cnn")
    assert len(faces) == 1
    assert faces[0] == pytest.approx((144, 608, 389, 363), abs=25)


def test_partial_face_locations(load) -> None:
    # the first face overhangs the image's left edge: trimmed to 0
    assert api.face_locations(load("obama_partial_face.jpg")) == [(142, 191, 365, 0)]
    assert api.face_locations(load("obama_partial_face2.jpg")) == [(142, 551, 409, 349)]


def test_raw_face_locations_batched(load) -> None:
    img = load("obama.jpg")
    batched = api._raw_face_locations_batched([img, img, img], number_of_times_to_upsample=0)
    assert len(batched) == 3
    for faces in batched:
        assert top_bottom(faces) == (154, 390)


def test_batched_face_locations(load) -> None:
    img = load("obama.jpg")
    batched = api.batch_face_locations([img, img, img], number_of_times_to_upsample=0)
    assert batched == [[(154, 611, 390, 375)]] * 3


# ------------------------------------------------------------------ landmarks
def test_raw_face_landmarks(load) -> None:
    shapes = api._raw_face_landmarks(load("obama.jpg"))
    assert len(shapes) == 1
    assert shapes[0].num_parts == 68
    point = shapes[0].parts()[10]
    assert (point.x, point.y) == (552, 399)


def test_face_landmarks(load) -> None:
    landmarks = api.face_landmarks(load("obama.jpg"))
    assert set(landmarks[0]) == FACE_PARTS
    assert landmarks[0]["chin"] == [
        (369, 220), (372, 254), (378, 289), (384, 322), (395, 353), (414, 382), (437, 407), (464, 424), (495, 428),
        (527, 420), (552, 399), (576, 372), (594, 344), (604, 314), (610, 282), (613, 250), (615, 219),
    ]  # fmt: skip


def test_face_landmarks_small_model(load) -> None:
    landmarks = api.face_landmarks(load("obama.jpg"), model="small")
    assert set(landmarks[0]) == {"nose_tip", "left_eye", "right_eye"}
    assert landmarks[0]["nose_tip"] == [(496, 295)]


# ------------------------------------------------------------------ encodings
def test_face_encodings(load) -> None:
    found = api.face_encodings(load("obama.jpg"))
    assert len(found) == 1
    assert len(found[0]) == 128


def test_face_encodings_large_model(load) -> None:
    found = api.face_encodings(load("obama.jpg"), model="large")
    assert len(found) == 1
    assert len(found[0]) == 128


def test_face_distance(encodings: dict[str, np.ndarray]) -> None:
    others = [encodings["obama2"], encodings["obama3"], encodings["biden"]]
    distances = api.face_distance(others, encodings["obama"])
    assert type(distances) is np.ndarray
    # 0.6 is the default threshold: the same person within it, another beyond
    assert distances[0] <= 0.6
    assert distances[1] <= 0.6
    assert distances[2] > 0.6


def test_face_distance_empty_lists(encodings: dict[str, np.ndarray]) -> None:
    for empty in ([], np.array([])):
        distances = api.face_distance(empty, encodings["biden"])
        assert type(distances) is np.ndarray
        assert len(distances) == 0


def test_compare_faces(encodings: dict[str, np.ndarray]) -> None:
    matches = api.compare_faces([encodings["obama2"], encodings["obama3"], encodings["biden"]], encodings["obama"])
    assert type(matches) is list
    assert [bool(m) for m in matches] == [True, True, False]


def test_compare_faces_empty_lists(encodings: dict[str, np.ndarray]) -> None:
    for empty in ([], np.array([])):
        matches = api.compare_faces(empty, encodings["biden"])
        assert type(matches) is list
        assert matches == []


# ------------------------------------------------------------------ face_recognition command
def test_command_line_interface_options() -> None:
    assert "Show this message and exit." in run(face_recognition_cli.main, "--help")


def test_command_line_interface(test_images: Path) -> None:
    assert "obama.jpg,obama" in run(face_recognition_cli.main, test_images, test_images / "obama.jpg")


def test_command_line_interface_big_image(test_images: Path) -> None:
    # obama3.jpg is over 1600 px: shrunk before it is checked
    assert "obama3.jpg,obama" in run(face_recognition_cli.main, test_images, test_images / "obama3.jpg")


def test_command_line_interface_tolerance(test_images: Path) -> None:
    output = run(face_recognition_cli.main, test_images, test_images / "obama.jpg", "--tolerance", "0.55")
    assert "obama.jpg,obama" in output


def test_command_line_interface_show_distance(test_images: Path) -> None:
    output = run(face_recognition_cli.main, test_images, test_images / "obama.jpg", "--show-distance", "1")
    assert "obama.jpg,obama,0.0" in output


# ------------------------------------------------------------------ face_detection command
def test_fd_command_line_interface_options() -> None:
    assert "Show this message and exit." in run(face_detection_cli.main, "--help")


def test_fd_command_line_interface(test_images: Path) -> None:
    parts = run(face_detection_cli.main, test_images / "obama.jpg").split(",")
    assert len(parts) == 5
    assert "obama.jpg" in parts[0]


def test_fd_command_line_interface_folder(test_images: Path) -> None:
    output = run(face_detection_cli.main, test_images)
    for name in ("obama_partial_face2.jpg", "obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg"):
        assert name in output


def test_fd_command_line_interface_hog_model(test_images: Path) -> None:
    assert "obama.jpg" in run(face_detection_cli.main, test_images / "obama.jpg", "--model", "hog")


def test_fd_command_line_interface_cnn_model(test_images: Path) -> None:
    assert "obama.jpg" in run(face_detection_cli.main, test_images / "obama.jpg", "--model", "cnn")
