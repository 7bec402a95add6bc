"""POST /v1/analyze: every face's pose, eyes, mouth, gaze, quality, expression and face-likeness."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from faceprint import FaceEngine, Recognizer
from faceprint.gallery import Gallery
from faceprint.server import ServerStore, create_app

from .conftest import DEMO, FIXTURES
from .test_server_api import assert_error, serve

TWO_PEOPLE = DEMO / "photos" / "two_people.jpg"


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, engine: FaceEngine) -> Iterator[tuple[str, str, str]]:
    """(base URL, read key, admin key) of a live service over an empty gallery."""
    path = tmp_path_factory.mktemp("analyze") / "gallery.db"
    rec = Recognizer(Gallery(path), engine)  # makes the gallery file the key store lives in
    store = ServerStore(path)
    read, _ = store.create_key("read", "reader")
    admin, _ = store.create_key("admin", "admin")
    with serve(create_app(rec, store=store, max_upload_bytes=5_000_000)) as url:
        yield url, read, admin


def post(service: tuple[str, str, str], path: Path | bytes, name: str = "photo.jpg", **params: str) -> httpx.Response:
    url, read, _ = service
    body = path.read_bytes() if isinstance(path, Path) else path
    return httpx.post(
        f"{url}/v1/analyze", params=params, files={"image": (name, body)}, headers={"X-API-Key": read}, timeout=120
    )


def test_analyze_two_faces(service: tuple[str, str, str]) -> None:
    r = post(service, TWO_PEOPLE)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["width"], body["height"]) == (1126, 661)
    faces = body["faces"]
    assert len(faces) == 2
    for face in faces:
        assert set(face["box"]) == {"left", "top", "right", "bottom"}
        assert 0.0 <= face["quality"] <= 1.0
        assert set(face["quality_factors"]) >= {"sharpness", "exposure", "size", "pose", "eyes_open", "occlusion"}
        assert set(face["pose"]) == {"yaw", "pitch", "roll"}
        assert face["expression"]["label"] in face["expression"]["scores"]
    # the same faces, in the same order and boxes, as /v1/detect finds
    url, read, _ = service
    detected = httpx.post(
        f"{url}/v1/detect", files={"image": ("p.jpg", TWO_PEOPLE.read_bytes())}, headers={"X-API-Key": read}, timeout=60
    ).json()
    assert [f["box"] for f in faces] == [f["box"] for f in detected["faces"]]


def test_expression_can_be_left_out(service: tuple[str, str, str]) -> None:
    r = post(service, TWO_PEOPLE, expression="none")
    assert r.status_code == 200, r.text
    assert all(face["expression"] is None for face in r.json()["faces"])
    assert_error(post(service, TWO_PEOPLE, expression="vlm"), 422, "validation_error")


def test_boxes_of_a_large_photo_are_in_its_own_pixels(service: tuple[str, str, str]) -> None:
    """A photo the service keeps reduced (over 3,200 px) is answered in the file's pixels, and its
    face counts as large."""
    small = Image.open(TWO_PEOPLE)
    big = small.resize((small.width * 4, small.height * 4))
    data = io.BytesIO()
    big.save(data, "JPEG", quality=90)
    r = post(service, data.getvalue())
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["width"], body["height"]) == (4504, 2644)
    reference = post(service, TWO_PEOPLE).json()["faces"]
    for face, ref in zip(body["faces"], reference):
        got = np.array([face["box"][k] for k in ("left", "top", "right", "bottom")])
        want = 4 * np.array([ref["box"][k] for k in ("left", "top", "right", "bottom")])
        assert np.abs(got - want).max() <= 16, (got, want)
        assert face["quality_factors"]["size"] == 1.0


def test_errors(service: tuple[str, str, str]) -> None:
    url, _, _ = service
    r = httpx.post(f"{url}/v1/analyze", files={"image": ("p.jpg", TWO_PEOPLE.read_bytes())}, timeout=60)
    assert_error(r, 401, "unauthorized")
    assert_error(post(service, b"not an image"), 400, "bad_image")
    r = post(service, FIXTURES / "no_faces" / "skimage_moon.png", name="moon.png")
    assert r.status_code == 200 and r.json()["faces"] == []


def test_in_the_schema(service: tuple[str, str, str]) -> None:
    url, _, _ = service
    schema = httpx.get(f"{url}/openapi.json", timeout=30).json()
    op = schema["paths"]["/v1/analyze"]["post"]
    assert op["tags"] == ["analysis"]
    assert "AnalyzedFace" in schema["components"]["schemas"]
