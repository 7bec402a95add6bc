"""One photo at a time (GET/DELETE /v1/identities/{name}/photos...), and the service's own wording
for a photo with several faces. Reuses test_server_api's live service (a fresh one for this module)."""

from __future__ import annotations

import httpx

from . import test_server_api as api
from .conftest import FIXTURES

# the live service and its clients, as fixtures of this module
service = api.service
admin = api.admin
reader = api.reader

POWELL = sorted((FIXTURES / "lfw" / "Colin_Powell").iterdir())


def test_list_and_delete_photos_one_at_a_time(admin: httpx.Client, reader: httpx.Client) -> None:
    r = admin.post("/v1/identities/powell/images", params={"create": True}, files=api._files(POWELL[:2]))
    assert r.json()["added"] == 2, r.text

    listed = reader.get("/v1/identities/powell/photos")
    assert listed.status_code == 200, listed.text
    body = listed.json()
    assert body["identity"] == "powell"
    photos = body["photos"]
    assert [p["source"] for p in photos] == [POWELL[0].name, POWELL[1].name]
    for p in photos:
        assert set(p) == {"id", "source", "box", "created_at", "quality", "model", "thumbnail"}
        assert isinstance(p["id"], int) and p["created_at"] and p["model"]
        assert 0 <= p["box"]["left"] < p["box"]["right"] and 0 <= p["box"]["top"] < p["box"]["bottom"]
        assert 0 < p["quality"] <= 1
        assert p["thumbnail"] is False  # uploaded photos are not kept on the server

    # a read key may look, not delete
    first = photos[0]["id"]
    api.assert_error(reader.delete(f"/v1/identities/powell/photos/{first}"), 403, "forbidden")
    gone = admin.delete(f"/v1/identities/powell/photos/{first}")
    assert gone.status_code == 200, gone.text
    assert gone.json()["photo"] == photos[0] and gone.json()["templates"] == 1
    assert [p["id"] for p in reader.get("/v1/identities/powell/photos").json()["photos"]] == [photos[1]["id"]]
    assert reader.get("/v1/identities/powell").json()["templates"] == 1

    # the same id again, an id of someone else's photo, an unknown person: 404 with their codes
    api.assert_error(admin.delete(f"/v1/identities/powell/photos/{first}"), 404, "photo_not_found")
    r = admin.post("/v1/identities/other/images", params={"create": True}, files=api._files(POWELL[2:3]))
    other = reader.get("/v1/identities/other/photos").json()["photos"][0]["id"]
    api.assert_error(admin.delete(f"/v1/identities/powell/photos/{other}"), 404, "photo_not_found")
    assert reader.get("/v1/identities/other").json()["templates"] == 1
    api.assert_error(reader.get("/v1/identities/nobody/photos"), 404, "unknown_identity")
    api.assert_error(admin.delete("/v1/identities/nobody/photos/1"), 404, "unknown_identity")
    api.assert_error(admin.delete("/v1/identities/powell/photos/abc"), 422, "validation_error")
    api.assert_error(reader.get(f"/v1/identities/powell/photos/{photos[1]['id']}/thumbnail"), 404, "not_found")
    with httpx.Client(base_url=reader.base_url) as anon:
        api.assert_error(anon.get("/v1/identities/powell/photos"), 401, "unauthorized")


def test_photos_of_a_person_enrolled_from_files(service: api.Service, reader: httpx.Client) -> None:
    """CLI enrolment stores file paths: the listing shows only the file name, and each photo's
    thumbnail is cropped from its file."""
    assert len(service.rec.enroll("powell from files", POWELL[:2]).added) == 2
    r = reader.get("/v1/identities/powell from files/photos")
    assert r.status_code == 200, r.text
    api.assert_clean(r)
    photos = r.json()["photos"]
    assert [p["source"] for p in photos] == [POWELL[0].name, POWELL[1].name]
    assert str(FIXTURES) not in r.text and "/" not in "".join(p["source"] for p in photos)
    assert all(p["thumbnail"] for p in photos)
    thumb = reader.get(f"/v1/identities/powell from files/photos/{photos[1]['id']}/thumbnail")
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    assert thumb.content[:2] == b"\xff\xd8" and len(thumb.content) < 40_000
    # a photo id of another person is not theirs
    other = service.rec.gallery.templates("powell from files")[0].id
    api.assert_error(reader.get(f"/v1/identities/powell/photos/{other}/thumbnail"), 404, "photo_not_found")


def test_multiple_faces_message_names_the_service_control(admin: httpx.Client) -> None:
    """The pipeline's message names the CLI's --largest; the service names its own largest=true."""
    err = api.assert_error(
        admin.post("/v1/identities/group/images", params={"create": True}, files=api._files([api.TWO_PEOPLE])),
        422,
        "multiple_faces",
    )
    for message in (err["message"], err["details"][0]["message"]):
        assert "largest=true" in message and "--largest" not in message, message
        assert "2 faces" in message, message
    # several photos, one refused: the per-file message says the same
    r = admin.post(
        "/v1/identities/group/images", params={"create": True}, files=api._files([api.TWO_PEOPLE, POWELL[0]])
    )
    refused = [f for f in r.json()["files"] if f["status"] == "error"]
    assert refused[0]["code"] == "multiple_faces" and "largest=true" in refused[0]["message"]
    assert "--largest" not in r.text
