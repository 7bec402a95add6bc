"""POST /v1/cluster: the faces of a batch of uploads grouped by person. Reuses test_server_api's
live service (a fresh one for this module) and the real engine on the LFW fixture photos."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from faceprint.cluster import DEFAULT_THRESHOLD
from faceprint.server.routes.cluster import MAX_FILES, THUMB_SIDE

from . import test_server_api as api
from .conftest import FIXTURES

service = api.service
admin = api.admin
reader = api.reader
enrolled = api.enrolled

LFW = FIXTURES / "lfw"
# Sharon's second photo and Blair's first show a bystander too (a second, smaller face)
PEOPLE = ("Ariel_Sharon", "Colin_Powell", "Tony_Blair")
PHOTOS = [p for person in PEOPLE for p in sorted((LFW / person).iterdir())]


def person_of(face: dict[str, Any]) -> str:
    return face["file"].rsplit("_", 1)[0]


def cluster(client: httpx.Client, paths: list[Path], **params: Any) -> httpx.Response:
    return client.post("/v1/cluster", files=api._files(paths), params=params)


def test_photos_of_three_people_group_into_their_people(reader: httpx.Client) -> None:
    r = cluster(reader, PHOTOS)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["threshold"] == DEFAULT_THRESHOLD and body["min_size"] == 1
    assert (body["faces"], body["failed"]) == (11, 0)  # 9 subjects + 2 bystanders
    assert [(f["file"], f["status"], f["faces"]) for f in body["files"]] == [
        (p.name, "ok", 2 if p.name in ("Ariel_Sharon_0002.jpg", "Tony_Blair_0001.jpg") else 1) for p in PHOTOS
    ]
    groups = body["groups"]
    # each person's three photos (by their largest face) form one group of three; the bystanders are alone
    assert [g["size"] for g in groups] == [3, 3, 3, 1, 1] and [g["id"] for g in groups] == [0, 1, 2, 3, 4]
    assert sorted({person_of(f) for f in g["faces"]}.pop() for g in groups[:3]) == sorted(PEOPLE)
    for g in groups[:3]:
        assert len({person_of(f) for f in g["faces"]}) == 1 and all(f["face"] == 0 for f in g["faces"])
        assert g["photos"] == 3
        assert all(0.9 < f["score"] <= 1.0 for f in g["faces"])
    assert all(f["face"] == 1 and f["score"] == 1.0 for g in groups[3:] for f in g["faces"])
    assert body["ungrouped"] == []
    # nobody is enrolled in this module's gallery yet: no names, no candidates
    assert all(g["identity"] is None and g["candidates"] == [] and g["score"] == -1 for g in groups)

    # every face points back at its upload, with its box in the photo's pixels and a small JPEG of it
    for g in groups:
        for f in g["faces"]:
            assert body["files"][f["file_index"]]["file"] == f["file"] == PHOTOS[f["file_index"]].name
            box = f["box"]
            assert 0 <= box["left"] < box["right"] <= 250 and 0 <= box["top"] < box["bottom"] <= 250
            prefix, data = f["thumbnail"].split(",", 1)
            assert prefix == "data:image/jpeg;base64"
            thumb = Image.open(io.BytesIO(base64.b64decode(data)))
            assert thumb.format == "JPEG" and max(thumb.size) <= THUMB_SIDE
    assert len(r.content) < 11 * 6000  # the answer stays small: a few KB a face
    api.assert_clean(r)


def test_min_size_and_threshold(reader: httpx.Client) -> None:
    body = cluster(reader, PHOTOS, min_size=2).json()
    assert [g["size"] for g in body["groups"]] == [3, 3, 3]
    assert sorted((f["file"], f["face"]) for f in body["ungrouped"]) == [
        ("Ariel_Sharon_0002.jpg", 1),
        ("Tony_Blair_0001.jpg", 1),
    ]
    # a threshold no two different photos reach: every face alone
    alone = cluster(reader, PHOTOS[:3], threshold=1.0).json()
    assert [g["size"] for g in alone["groups"]] == [1, 1, 1, 1] and alone["threshold"] == 1.0
    # the lowest: everything together
    together = cluster(reader, PHOTOS[:6], threshold=-1.0).json()
    assert [g["size"] for g in together["groups"]] == [7]


def test_groups_are_named_after_the_enrolled_people_they_match(enrolled: None, reader: httpx.Client) -> None:
    # enrolled: obama and biden, from demo/gallery; obama1.jpg is another photo of Obama
    body = cluster(reader, [*PHOTOS[3:6], api.OBAMA1]).json()
    by_file = {g["faces"][0]["file"]: g for g in body["groups"]}
    obama = by_file["obama1.jpg"]
    assert obama["identity"] == "obama" and obama["score"] >= body["identify_threshold"]
    assert obama["candidates"][0] == {"identity": "obama", "score": obama["score"]}
    powell = by_file[PHOTOS[3].name]
    assert powell["size"] == 3 and powell["identity"] is None and powell["score"] < body["identify_threshold"]
    assert len(powell["candidates"]) == 2  # both enrolled people, best first
    assert powell["candidates"][0]["score"] >= powell["candidates"][1]["score"]


def test_a_bad_file_is_reported_and_the_rest_clustered(reader: httpx.Client) -> None:
    files = [
        *api._files(PHOTOS[3:6]),
        ("files", ("notes.txt", b"not an image", "text/plain")),
        *api._files([api.MOON]),
    ]
    r = reader.post("/v1/cluster", files=files)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["failed"] == 2 and body["faces"] == 3
    assert [(f["file"], f["status"], f["code"]) for f in body["files"]] == [
        *((p.name, "ok", None) for p in PHOTOS[3:6]),
        ("notes.txt", "error", "bad_image"),
        ("skimage_moon.png", "error", "no_face"),
    ]
    assert all(f["message"] for f in body["files"][3:])
    assert [g["size"] for g in body["groups"]] == [3]
    api.assert_clean(r)


def test_every_file_refused_answers_the_first_error(reader: httpx.Client) -> None:
    err = api.assert_error(reader.post("/v1/cluster", files=api._files([api.MOON])), 422, "no_face")
    assert err["details"][0]["file"] == "skimage_moon.png"
    files = [("files", ("a.jpg", b"\xff\xd8garbage", "image/jpeg")), *api._files([api.MOON])]
    err = api.assert_error(reader.post("/v1/cluster", files=files), 400, "bad_image")
    assert err["message"].startswith("none of the 2 photos could be clustered; first: ")
    assert [(d["file"], d["code"]) for d in err["details"]] == [("a.jpg", "bad_image"), ("skimage_moon.png", "no_face")]


def test_keys_and_validation(service: api.Service, reader: httpx.Client) -> None:
    with service.client() as anon:
        api.assert_error(cluster(anon, PHOTOS[:1]), 401, "unauthorized")
    with service.client("fpk_wrong") as wrong:
        api.assert_error(cluster(wrong, PHOTOS[:1]), 401, "unauthorized")
    # a read key is enough (nothing changes), and an admin key too
    with service.client(service.admin) as admin_client:
        assert cluster(admin_client, PHOTOS[:1]).status_code == 200
    for params in ({"threshold": 1.5}, {"threshold": -2}, {"threshold": "nan"}, {"min_size": 0}, {"min_size": "x"}):
        api.assert_error(cluster(reader, PHOTOS[:1], **params), 422, "validation_error")
    api.assert_error(reader.post("/v1/cluster"), 422, "validation_error")  # no files


def test_too_many_files_is_refused_before_any_is_read(
    reader: httpx.Client, service: api.Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    def never(*_: object, **__: object) -> None:
        raise AssertionError("a photo was read")

    monkeypatch.setattr(service.rec.engine, "find_faces", never)
    files = [("files", (f"{k}.jpg", b"x", "image/jpeg")) for k in range(MAX_FILES + 1)]
    err = api.assert_error(reader.post("/v1/cluster", files=files), 413, "too_many_files")
    assert f"{MAX_FILES + 1} files" in err["message"] and f"limit of {MAX_FILES}" in err["message"]
    assert reader.get("/v1/info").json()["max_cluster_files"] == MAX_FILES


def test_documented_in_the_openapi_schema(service: api.Service) -> None:
    with service.client() as anon:
        spec = anon.get("/openapi.json").json()
    op = spec["paths"]["/v1/cluster"]["post"]
    assert {p["name"] for p in op["parameters"]} == {"threshold", "min_size"}
    assert {"200", "401", "413", "422"} <= set(op["responses"])
