"""The REST service over a live uvicorn (in a thread, one per module) with the real engine."""

from __future__ import annotations

import contextlib
import io
import json
import socket
import subprocess
import sys
import threading
import time
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import anyio
import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from PIL import Image
from typer.testing import CliRunner

from faceprint import FaceEngine, Recognizer
from faceprint.errors import InvalidNameError, SettingError
from faceprint.gallery import Gallery
from faceprint.names import validate_name
from faceprint.server import ServerStore, create_app
from faceprint.settings import decode_budget_pixels

from .conftest import DEMO, FIXTURES, REPO

MAX_UPLOAD = 2_000_000
OBAMA = sorted((DEMO / "gallery" / "obama").iterdir())
BIDEN = sorted((DEMO / "gallery" / "biden").iterdir())
TWO_PEOPLE = DEMO / "photos" / "two_people.jpg"
OBAMA1 = DEMO / "photos" / "obama1.jpg"
MOON = FIXTURES / "no_faces" / "skimage_moon.png"


@dataclass
class Service:
    url: str
    rec: Recognizer
    store: ServerStore
    admin: str
    read: str
    gallery_path: Path

    def client(self, key: str | None = None, style: str = "bearer") -> httpx.Client:
        headers = {}
        if key is not None:
            headers = {"Authorization": f"Bearer {key}"} if style == "bearer" else {"X-API-Key": key}
        return httpx.Client(base_url=self.url, headers=headers, timeout=120)


@contextlib.contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """The app on a live uvicorn (in a thread) on a free loopback port: its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=5))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, engine: FaceEngine) -> Iterator[Service]:
    path = tmp_path_factory.mktemp("server") / "gallery.db"
    rec = Recognizer(Gallery(path), engine)
    store = ServerStore(path)
    admin, _ = store.create_key("admin", "test admin")
    read, _ = store.create_key("read", "test reader")
    with serve(create_app(rec, store=store, max_upload_bytes=MAX_UPLOAD)) as url:
        yield Service(url, rec, store, admin, read, path)


@pytest.fixture(scope="module")
def admin(service: Service) -> Iterator[httpx.Client]:
    with service.client(service.admin) as client:
        yield client


@pytest.fixture(scope="module")
def reader(service: Service) -> Iterator[httpx.Client]:
    with service.client(service.read, style="x-api-key") as client:
        yield client


@pytest.fixture(scope="module")
def enrolled(service: Service, admin: httpx.Client) -> None:
    """obama (created first, then enrolled) and biden (created by the enrolment) from demo/gallery."""
    assert admin.post("/v1/identities", json={"name": "obama", "metadata": {"role": "president"}}).status_code == 201
    r = admin.post("/v1/identities/obama/images", files=_files(OBAMA))
    assert r.status_code == 200, r.text
    assert r.json()["added"] == 2
    r = admin.post("/v1/identities/biden/images", params={"create": True}, files=_files(BIDEN))
    assert r.status_code == 200, r.text
    assert r.json()["added"] == 2


def _files(paths: list[Path], field: str = "files") -> list[tuple[str, tuple[str, bytes, str]]]:
    return [(field, (p.name, p.read_bytes(), "image/jpeg")) for p in paths]


def _image(path: Path, field: str = "image") -> dict[str, tuple[str, bytes, str]]:
    return {field: (path.name, path.read_bytes(), "image/jpeg")}


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The one error shape, the expected code, and never a stack trace or a server path."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}, body
    assert body["error"]["code"] == code, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert_clean(response)
    return body["error"]


def assert_clean(response: httpx.Response) -> None:
    text = response.text
    assert "Traceback" not in text and 'File "' not in text and "site-packages" not in text, text
    assert ".db" not in text, text  # the gallery's path stays on the server


def snapshot(service: Service) -> list[tuple[str, int]]:
    return [(i.name, i.templates) for i in service.rec.gallery.identities()]


# ------------------------------------------------------------------------------ auth
def test_health_needs_no_key_and_info_needs_one(service: Service, reader: httpx.Client) -> None:
    with service.client() as anon:
        assert anon.get("/v1/health").json() == {"status": "ok", "version": anon.get("/v1/health").json()["version"]}
        assert_error(anon.get("/v1/info"), 401, "unauthorized")
    info = reader.get("/v1/info").json()
    assert info["model"] == service.rec.model
    assert info["max_upload_bytes"] == MAX_UPLOAD
    assert 0 < info["identify_threshold"] < 1


@pytest.mark.parametrize("style", ["bearer", "x-api-key"])
def test_auth_roles(service: Service, style: str) -> None:
    with service.client(style=style) as anon:
        r = anon.get("/v1/identities")
        assert_error(r, 401, "unauthorized")
        assert r.headers.get("www-authenticate") == "Bearer"
    with service.client("fpk_wrong", style=style) as bad:
        assert_error(bad.get("/v1/identities"), 401, "unauthorized")
    with service.client(service.read, style=style) as reader:
        assert reader.get("/v1/identities").status_code == 200
        assert reader.get("/v1/auth/whoami").json() == {"id": 2, "name": "test reader", "role": "read"}
        before = snapshot(service)
        assert_error(reader.post("/v1/identities", json={"name": "x"}), 403, "forbidden")
        assert_error(reader.delete("/v1/identities/obama"), 403, "forbidden")
        assert_error(reader.patch("/v1/identities/obama", json={"name": "y"}), 403, "forbidden")
        assert_error(reader.post("/v1/identities/x/images", files=_files(OBAMA[:1])), 403, "forbidden")
        assert snapshot(service) == before
    with service.client(service.admin, style=style) as admin:
        assert admin.get("/v1/auth/whoami").json()["role"] == "admin"


def test_revoked_key_is_refused_at_once(service: Service) -> None:
    secret, key = service.store.create_key("read", "short-lived")
    with service.client(secret) as client:
        assert client.get("/v1/identities").status_code == 200
        service.store.revoke_key(key.id)
        assert_error(client.get("/v1/identities"), 401, "unauthorized")


# ----------------------------------------------------------------------- recognition
def test_identify_two_people(enrolled: None, reader: httpx.Client) -> None:
    r = reader.post("/v1/identify", files=_image(TWO_PEOPLE), params={"top_k": 2})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["width"], body["height"]) == (1126, 661)
    assert sorted(f["identity"] for f in body["faces"]) == ["biden", "obama"]
    for face in body["faces"]:
        box = face["box"]
        assert 0 <= box["left"] < box["right"] <= body["width"] and 0 <= box["top"] < box["bottom"] <= body["height"]
        assert face["score"] >= body["threshold"]
        assert face["candidates"][0] == {"identity": face["identity"], "score": face["score"]}
        assert len(face["candidates"]) == 2
    # obama is on the left of this photo
    left = min(body["faces"], key=lambda f: f["box"]["left"])
    assert left["identity"] == "obama"


def test_identify_unknown_face_and_no_face(enrolled: None, reader: httpx.Client) -> None:
    r = reader.post("/v1/identify", files=_image(FIXTURES / "lfw" / "Tony_Blair" / "Tony_Blair_0001.jpg"))
    faces = r.json()["faces"]
    # original LFW framing: BlazeFace also finds the half-cropped person at the left edge
    assert len(faces) >= 1 and all(f["identity"] is None and f["candidates"] for f in faces)
    r = reader.post("/v1/identify", files=_image(MOON))
    assert r.status_code == 200 and r.json()["faces"] == []


def test_verify_pairs_and_identity(enrolled: None, reader: httpx.Client) -> None:
    same = reader.post("/v1/verify", files={**_image(OBAMA1, "a"), **_image(OBAMA[0], "b")}).json()
    assert same["same"] is True and same["against"] == "image" and same["score"] >= same["threshold"]
    diff = reader.post("/v1/verify", files={**_image(OBAMA1, "a"), **_image(BIDEN[0], "b")}).json()
    assert diff["same"] is False and diff["score"] < diff["threshold"]
    ident = reader.post("/v1/verify", params={"identity": "obama"}, files=_image(OBAMA1, "a")).json()
    assert ident["same"] is True and ident["against"] == "identity"
    other = reader.post("/v1/verify", params={"identity": "biden"}, files=_image(OBAMA1, "a")).json()
    assert other["same"] is False


def test_detect(reader: httpx.Client) -> None:
    body = reader.post("/v1/detect", files=_image(TWO_PEOPLE)).json()
    assert len(body["faces"]) == 2
    for face in body["faces"]:
        assert len(face["landmarks"]) == 5 and all(len(p) == 2 for p in face["landmarks"])
        b = face["box"]
        assert all(b["left"] <= x <= b["right"] for x, _ in face["landmarks"])


# ------------------------------------------------------------------------ identities
def test_list_get_thumbnail(enrolled: None, reader: httpx.Client) -> None:
    people = {p["name"]: p for p in reader.get("/v1/identities").json()["identities"]}
    assert people["obama"]["templates"] == 2 and people["obama"]["metadata"] == {"role": "president"}
    assert people["biden"]["thumbnail"] is True
    assert reader.get("/v1/identities/biden").json()["templates"] == 2
    r = reader.get("/v1/identities/obama/thumbnail")
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg" and r.content[:2] == b"\xff\xd8"
    assert len(r.content) < 40_000


def test_thumbnail_of_a_person_enrolled_from_files(service: Service, reader: httpx.Client) -> None:
    """People enrolled with the CLI (file sources) get a thumbnail cropped from their file."""
    photo = FIXTURES / "lfw" / "Colin_Powell" / "Colin_Powell_0001.jpg"
    assert service.rec.enroll("colin", [photo]).added
    r = reader.get("/v1/identities/colin/thumbnail")
    assert r.status_code == 200 and r.content[:2] == b"\xff\xd8"
    assert reader.get("/v1/identities/colin").json()["thumbnail"] is True


def test_rename_and_delete(service: Service, admin: httpx.Client) -> None:
    photos = sorted((FIXTURES / "lfw" / "Hugo_Chavez").iterdir())[:2]
    r = admin.post("/v1/identities/hugo/images", params={"create": True}, files=_files(photos))
    assert r.json()["templates"] == 2
    renamed = admin.patch("/v1/identities/hugo", json={"name": "Hugo Chávez"})
    assert renamed.status_code == 200 and renamed.json()["name"] == "Hugo Chávez"
    assert renamed.json()["thumbnail"] is True  # the thumbnail follows the identity
    assert_error(admin.get("/v1/identities/hugo"), 404, "unknown_identity")
    # the renamed person is still recognised
    r = admin.post("/v1/identify", files=_image(sorted((FIXTURES / "lfw" / "Hugo_Chavez").iterdir())[2]))
    assert r.json()["faces"][0]["identity"] == "Hugo Chávez"
    gone = admin.delete("/v1/identities/Hugo Chávez")
    assert gone.json() == {"name": "Hugo Chávez", "templates_removed": 2, "purged": True}
    assert_error(admin.get("/v1/identities/Hugo Chávez"), 404, "unknown_identity")
    assert_error(admin.get("/v1/identities/Hugo Chávez/thumbnail"), 404, "unknown_identity")


def test_enrol_reports_each_file(enrolled: None, admin: httpx.Client) -> None:
    files = _files([OBAMA[0], TWO_PEOPLE, MOON]) + [("files", ("notes.txt", b"not an image", "text/plain"))]
    r = admin.post("/v1/identities/obama/images", files=files)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["added"], body["skipped"], body["failed"], body["templates"]) == (1, 1, 2, 3)
    assert [(f["file"], f["status"], f["code"]) for f in body["files"]] == [
        ("obama.jpg", "skipped", None),
        ("two_people.jpg", "added", None),  # Obama's face: it agrees with his enrolled photos
        ("skimage_moon.png", "error", "no_face"),
        ("notes.txt", "error", "bad_image"),
    ]
    taken = body["files"][1]
    assert taken["box"] == {"left": 243, "top": 54, "right": 391, "bottom": 202}
    assert taken["reason"].startswith("agrees with the person's other photos")
    assert_clean(r)
    # the largest face of a group photo, when asked for
    r = admin.post("/v1/identities/biden/images", params={"largest": True}, files=_files([TWO_PEOPLE]))
    assert r.json()["added"] == 1 and r.json()["templates"] == 3
    assert r.json()["files"][0]["reason"] == "largest face (asked for)"
    admin.delete("/v1/identities/biden")
    assert admin.post("/v1/identities/biden/images", params={"create": True}, files=_files(BIDEN)).status_code == 200


# ----------------------------------------------------------------------------- errors
def test_every_error_code_and_gallery_untouched(
    service: Service, enrolled: None, admin: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = snapshot(service)
    # bad_image: corrupt and truncated images
    assert_error(
        admin.post("/v1/identify", files={"image": ("x.jpg", b"\xff\xd8garbage", "image/jpeg")}), 400, "bad_image"
    )
    truncated = OBAMA1.read_bytes()[:3000]
    assert_error(admin.post("/v1/detect", files={"image": ("t.jpg", truncated, "image/jpeg")}), 400, "bad_image")
    assert_error(admin.post("/v1/identify", files={"image": ("empty.jpg", b"", "image/jpeg")}), 400, "bad_image")
    # no_face / multiple_faces
    assert_error(admin.post("/v1/verify", files={**_image(OBAMA1, "a"), **_image(MOON, "b")}), 422, "no_face")
    assert_error(admin.post("/v1/identities/obama/images", files=_files([MOON])), 422, "no_face")
    strangers = DEMO / "photos" / "kit_with_rose.jpg"  # two faces, neither of them Obama, neither dominant
    err = assert_error(admin.post("/v1/identities/obama/images", files=_files([strangers])), 422, "multiple_faces")
    assert err["details"][0]["file"] == "kit_with_rose.jpg"
    # unknown_identity
    assert_error(admin.get("/v1/identities/nobody"), 404, "unknown_identity")
    assert_error(admin.delete("/v1/identities/nobody"), 404, "unknown_identity")
    assert_error(admin.patch("/v1/identities/nobody", json={"name": "n2"}), 404, "unknown_identity")
    assert_error(admin.post("/v1/identities/nobody/images", files=_files(OBAMA[:1])), 404, "unknown_identity")
    assert_error(
        admin.post("/v1/verify", params={"identity": "nobody"}, files=_image(OBAMA1, "a")), 404, "unknown_identity"
    )
    # identity_exists
    assert_error(admin.post("/v1/identities", json={"name": "obama"}), 409, "identity_exists")
    assert_error(admin.patch("/v1/identities/obama", json={"name": "biden"}), 409, "identity_exists")
    # validation_error; invalid_name (the naming rule of faceprint.names)
    assert_error(admin.post("/v1/identities", json={}), 422, "validation_error")
    assert_error(admin.post("/v1/identities", json={"name": "a/b"}), 422, "invalid_name")
    assert_error(admin.post("/v1/identities", json={"name": "   "}), 422, "invalid_name")
    assert_error(
        admin.post("/v1/identities", content=b"{not json", headers={"content-type": "application/json"}),
        422,
        "validation_error",
    )
    assert_error(admin.post("/v1/identify", files=_image(OBAMA1), params={"top_k": 0}), 422, "validation_error")
    assert_error(admin.post("/v1/identify", files=_image(OBAMA1), params={"threshold": "nan"}), 422, "validation_error")
    assert_error(admin.post("/v1/identify"), 422, "validation_error")
    assert_error(admin.post("/v1/verify", files=_image(OBAMA1, "a")), 422, "validation_error")
    assert_error(
        admin.post("/v1/verify", params={"identity": "obama"}, files={**_image(OBAMA1, "a"), **_image(OBAMA1, "b")}),
        422,
        "validation_error",
    )
    assert_error(
        admin.post("/v1/identities/%20/images", params={"create": True}, files=_files(OBAMA[:1])), 422, "invalid_name"
    )
    # bad_request: a broken multipart body
    broken = admin.post("/v1/identify", content=b"--xyz\r\nbroken", headers={"content-type": "multipart/form-data"})
    assert_error(broken, 400, "bad_request")
    # not_found / method_not_allowed
    assert_error(admin.get("/v1/nothing-here"), 404, "not_found")
    assert_error(admin.get("/static/nothing.js"), 404, "not_found")
    assert admin.post("/v1/identities", json={"name": "empty person"}).status_code == 201
    assert_error(admin.get("/v1/identities/empty person/thumbnail"), 404, "not_found")
    assert admin.delete("/v1/identities/empty person").status_code == 200
    assert_error(admin.put("/v1/identities"), 405, "method_not_allowed")
    # bad_image: a file of a format faceprint does not read (EPS would run Ghostscript), whatever its name
    eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 64 64\n%%EndComments\n0 0 moveto 64 64 lineto stroke\n"
    err = assert_error(admin.post("/v1/identify", files={"image": ("x.jpg", eps, "image/jpeg")}), 400, "bad_image")
    assert "not an image file" in err["message"]
    # image_too_large: the pixel cap (FACEPRINT_MAX_PIXELS) is read on every decode; only it is quoted
    monkeypatch.setenv("FACEPRINT_MAX_PIXELS", "10000")
    err = assert_error(admin.post("/v1/identify", files=_image(OBAMA1)), 413, "image_too_large")
    assert "1,231,360 pixels" in err["message"] and "over the limit of 10,000 pixels" in err["message"]
    assert "20,000" not in err["message"] and "20000" not in err["message"]
    monkeypatch.delenv("FACEPRINT_MAX_PIXELS")

    # internal_error: an unexpected exception is logged, never shown
    def boom(*_: object, **__: object) -> None:
        raise RuntimeError("secret internals at /srv/faceprint/gallery.db")

    monkeypatch.setattr(service.rec, "identify", boom)
    r = admin.post("/v1/identify", files=_image(OBAMA1))
    assert_error(r, 500, "internal_error")
    assert "secret" not in r.text and "RuntimeError" not in r.text
    monkeypatch.undo()
    assert admin.post("/v1/identify", files=_image(OBAMA1)).status_code == 200
    # nothing above changed the gallery
    assert snapshot(service) == before


def test_payload_too_large(service: Service, admin: httpx.Client) -> None:
    before = snapshot(service)
    big = b"\xff\xd8" + b"\0" * (MAX_UPLOAD + 1000)

    # refused from the Content-Length header alone
    def post(**kwargs: object) -> httpx.Response:
        # the server answers 413 and closes while the client may still be sending; under load
        # the client can then see the reset before the answer, so a reset gets two more tries
        # (a body given as a function is made anew for each try: a generator is spent once sent)
        for attempt in range(3):
            try:
                args = {k: v() if k == "content" and callable(v) else v for k, v in kwargs.items()}
                return admin.post(**args)  # type: ignore[arg-type]
            except httpx.TransportError:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    r = post(url="/v1/identities/obama/images", files={"files": ("big.jpg", big, "image/jpeg")})
    assert_error(r, 413, "payload_too_large")

    # and from the stream itself when the client does not say (chunked upload)
    def chunks() -> Iterator[bytes]:
        yield b'--b\r\nContent-Disposition: form-data; name="image"; filename="big.jpg"\r\n\r\n'
        for _ in range(MAX_UPLOAD // 65536 + 2):
            yield b"\0" * 65536
        yield b"\r\n--b--\r\n"

    r = post(url="/v1/identify", content=chunks, headers={"content-type": "multipart/form-data; boundary=b"})
    assert_error(r, 413, "payload_too_large")
    assert snapshot(service) == before
    assert admin.get("/v1/health").status_code == 200


# ------------------------------------------------------------------------ concurrency
def test_concurrent_enrolment_and_identification(service: Service, enrolled: None) -> None:
    """4 threads enrol at once (each its own person, and all into one shared person) while
    another identifies: nothing is lost, nothing fails."""
    people = sorted(p for p in (FIXTURES / "lfw").iterdir())[:4]
    errors: list[str] = []
    barrier = threading.Barrier(5)

    def enrol(k: int, person: Path) -> None:
        photos = sorted(person.iterdir())
        try:
            with service.client(service.admin) as client:
                barrier.wait(timeout=60)
                for photo in photos:  # one request per photo, so the threads interleave
                    r = client.post(
                        f"/v1/identities/conc_{k}/images",
                        params={"create": True, "largest": True},
                        files=_files([photo]),
                    )
                    if r.status_code != 200 or r.json()["added"] != 1:
                        errors.append(f"{person.name}: {r.status_code} {r.text}")
                r = client.post(
                    "/v1/identities/conc_shared/images",
                    params={"create": True, "largest": True},
                    files=_files(photos[:1]),
                )
                if r.status_code != 200 or r.json()["added"] != 1:
                    errors.append(f"shared {person.name}: {r.status_code} {r.text}")
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(f"{person.name}: {exc!r}")

    def identify() -> None:
        try:
            with service.client(service.read) as client:
                barrier.wait(timeout=60)
                for _ in range(3):
                    r = client.post("/v1/identify", files=_image(OBAMA1))
                    if r.status_code != 200 or [f["identity"] for f in r.json()["faces"]] != ["obama"]:
                        errors.append(f"identify: {r.status_code} {r.text}")
        except Exception as exc:  # noqa: BLE001
            errors.append(f"identify: {exc!r}")

    threads = [threading.Thread(target=enrol, args=(k, p)) for k, p in enumerate(people)]
    threads.append(threading.Thread(target=identify))
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors, errors
    counts = dict(snapshot(service))
    assert [counts[f"conc_{k}"] for k in range(4)] == [3, 3, 3, 3]
    assert counts["conc_shared"] == 4
    # and each enrolled person is now recognised as themselves
    with service.client(service.read) as client:
        for k, person in enumerate(people):
            r = client.post("/v1/identify", files=_image(sorted(person.iterdir())[1]))
            assert r.json()["faces"][0]["identity"] in (f"conc_{k}", "conc_shared")


# ------------------------------------------------------------------- app configuration
def test_cors_only_for_configured_origins(service: Service) -> None:
    app = create_app(service.rec, store=service.store, cors_origins=["https://ok.example"])
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"}

    async def exchange() -> list[httpx.Response]:
        # in-process ASGI transport: a second app on the same recognizer, no second server
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            return [
                await client.options("/v1/identify", headers={"Origin": "https://ok.example", **preflight}),
                await client.options("/v1/identify", headers={"Origin": "https://evil.example", **preflight}),
                await client.get("/v1/identities", headers={"Origin": "https://ok.example"}),
            ]

    ok, other, refused = anyio.run(exchange)
    assert ok.status_code == 200 and ok.headers["access-control-allow-origin"] == "https://ok.example"
    assert "access-control-allow-origin" not in other.headers
    # errors carry the CORS header too, so a page on the allowed origin can read them
    assert refused.status_code == 401 and refused.headers["access-control-allow-origin"] == "https://ok.example"
    # without --cors-origin there are no CORS headers at all
    with service.client() as anon:
        assert "access-control-allow-origin" not in anon.get("/v1/health", headers={"Origin": "https://x.y"}).headers


def test_openapi_docs_and_page(service: Service) -> None:
    with service.client() as anon:
        spec = anon.get("/openapi.json").json()
        assert {"/v1/identities", "/v1/identify", "/v1/verify", "/v1/detect", "/v1/health", "/v1/info"} <= set(
            spec["paths"]
        )
        assert {"HTTPBearer", "APIKeyHeader"} <= set(spec["components"]["securitySchemes"])
        docs = anon.get("/docs")
        assert docs.status_code == 200 and "swagger-ui-bundle.js" in docs.text
        assert "cdn" not in docs.text.lower() and "https://" not in docs.text  # works offline
        script = anon.get("/docs-assets/swagger-ui-bundle.js")
        assert script.status_code == 200 and len(script.content) > 100_000
        page = anon.get("/")
        assert page.status_code == 200 and "faceprint" in page.text
        assert "default-src 'self'" in page.headers["content-security-policy"]


def test_keys_cli(tmp_path: Path) -> None:
    from faceprint.cli import app

    runner = CliRunner()
    gallery = str(tmp_path / "keys.db")
    created = runner.invoke(app, ["--gallery", gallery, "keys", "create", "--role", "read", "--name", "ci"])
    assert created.exit_code == 0, created.output
    secret = [line for line in created.output.splitlines() if line.startswith("fpk_")][0]
    store = ServerStore(gallery)
    key = store.authenticate(secret)
    assert key is not None and key.role == "read" and key.name == "ci"
    # only the hash is stored
    raw = (tmp_path / "keys.db").read_bytes()
    assert secret.encode() not in raw
    listed = runner.invoke(app, ["--gallery", gallery, "keys", "list", "--json"])
    assert '"role": "read"' in listed.output and secret not in listed.output
    assert runner.invoke(app, ["--gallery", gallery, "keys", "revoke", str(key.id)]).exit_code == 0
    assert store.authenticate(secret) is None
    assert runner.invoke(app, ["--gallery", gallery, "keys", "revoke", "999"]).exit_code == 1
    assert runner.invoke(app, ["--gallery", gallery, "keys", "create", "--role", "root"]).exit_code != 0


# ----------------------------------------------------------- checks before the body
def _early_answer(url: str, path: str, headers: dict[str, str]) -> tuple[int, dict[str, Any], float]:
    """Declare a 19 MB upload, send 1 MB of it and no more: the status and JSON body of the answer,
    and the seconds it took (a server that waits for the whole body never answers)."""
    host, port = url.removeprefix("http://").split(":")
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}", "Content-Type: multipart/form-data; boundary=b"]
    lines += ["Content-Length: 19000000"] + [f"{k}: {v}" for k, v in headers.items()]
    with socket.create_connection((host, int(port)), timeout=2) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        start = time.monotonic()

        def send_some() -> None:
            part = b'--b\r\nContent-Disposition: form-data; name="image"; filename="big.png"\r\n\r\n'
            with contextlib.suppress(OSError):  # the server may close while this is sent
                sock.sendall(part + b"\0" * 1_000_000)

        threading.Thread(target=send_some, daemon=True).start()
        data = b""
        with contextlib.suppress(OSError):  # a timeout, or a reset after the answer
            while not _complete(data):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        elapsed = time.monotonic() - start
    assert _complete(data), f"no answer within 2 s of the headers: {data[:200]!r}"
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body), elapsed


def _complete(data: bytes) -> bool:
    head, sep, body = data.partition(b"\r\n\r\n")
    lengths = [int(line.split(b":")[1]) for line in head.lower().split(b"\r\n") if line.startswith(b"content-length:")]
    return bool(sep) and bool(lengths) and len(body) >= lengths[0]


def test_key_role_and_name_are_checked_before_the_body_is_read(service: Service) -> None:
    """With a 20 MB upload cap (the default), an anonymous caller, a read key on an admin route, and a
    name that breaks the rule are all answered at once, before the 19 MB body is read."""
    before = snapshot(service)
    with serve(create_app(service.rec, store=service.store)) as url:
        cases = [
            ("/v1/identify", {}, 401, "unauthorized"),
            ("/v1/identify", {"Authorization": "Bearer fpk_wrong"}, 401, "unauthorized"),
            ("/v1/identities/obama/images", {"X-API-Key": service.read}, 403, "forbidden"),
            ("/v1/identities/%3Cscript%3E/images?create=true", {"X-API-Key": service.admin}, 422, "invalid_name"),
        ]
        for path, headers, status, code in cases:
            got, body, seconds = _early_answer(url, path, headers)
            assert (got, body["error"]["code"]) == (status, code), (path, body)
            assert seconds < 2, (path, seconds)
        with httpx.Client(base_url=url) as client:  # and the server carries on
            assert client.get("/v1/health").status_code == 200
    assert snapshot(service) == before


# --------------------------------------------------------------------------- names
@pytest.mark.parametrize("raw", ["<script>", "a\x7fb", "tab\there", " ", "x" * 201])
def test_one_name_rule_for_every_route_that_creates_or_renames(
    service: Service, enrolled: None, admin: httpx.Client, raw: str
) -> None:
    before = snapshot(service)
    with pytest.raises(InvalidNameError) as rule:
        validate_name(raw)
    # the same rule, and the same words, by URL path (before the photo is read) and in JSON bodies
    for response in (
        admin.post(f"/v1/identities/{quote(raw, safe='')}/images", params={"create": True}, files=_files(OBAMA[:1])),
        admin.post("/v1/identities", json={"name": raw}),
        admin.patch("/v1/identities/obama", json={"name": raw}),
    ):
        assert str(rule.value) in assert_error(response, 422, "invalid_name")["message"]
    assert snapshot(service) == before


def test_names_are_trimmed_and_looked_up_alike(service: Service, admin: httpx.Client) -> None:
    composed, decomposed = "Zoë Ann", unicodedata.normalize("NFD", "Zoë Ann")
    assert composed != decomposed
    r = admin.post("/v1/identities", json={"name": f"  {decomposed} "})
    assert r.status_code == 201 and r.json()["name"] == composed
    for path_name in (composed, f" {composed}  ", decomposed):
        assert admin.get(f"/v1/identities/{quote(path_name)}").json()["name"] == composed
    r = admin.post(f"/v1/identities/{quote(' ' + decomposed)}/images", params={"create": True}, files=_files(OBAMA[:1]))
    assert r.json()["identity"] == composed and r.json()["templates"] == 1  # the same person, not a second one
    assert admin.delete(f"/v1/identities/{quote(decomposed + ' ')}").json()["templates_removed"] == 1


# ---------------------------------------------------------------- metadata, paging
def test_metadata_is_bounded(service: Service, admin: httpx.Client) -> None:
    before = snapshot(service)
    err = assert_error(
        admin.post("/v1/identities", json={"name": "meta", "metadata": {"notes": "x" * 20_000}}),
        422,
        "validation_error",
    )
    assert "16,384" in err["message"]
    deep: dict[str, Any] = {}
    for _ in range(20):
        deep = {"d": deep}
    assert_error(admin.post("/v1/identities", json={"name": "meta", "metadata": deep}), 422, "validation_error")
    nan = b'{"name": "meta", "metadata": {"a": NaN}}'  # Python reads it; no JSON client could read it back
    assert_error(
        admin.post("/v1/identities", content=nan, headers={"content-type": "application/json"}),
        422,
        "validation_error",
    )
    assert snapshot(service) == before
    ok = {"notes": "x" * 10_000, "tags": [{"a": [1, 2, {"b": None}]}]}
    assert admin.post("/v1/identities", json={"name": "meta", "metadata": ok}).json()["metadata"] == ok
    assert admin.delete("/v1/identities/meta").status_code == 200


def test_identities_are_listed_page_by_page(service: Service, reader: httpx.Client) -> None:
    added = [f"page {k}" for k in range(7)]
    for name in added:
        service.rec.gallery.add_identity(name)
    try:
        everyone = sorted(i.name for i in service.rec.gallery.identities())
        seen: list[str] = []
        offset: int | None = 0
        while offset is not None:
            page = reader.get("/v1/identities", params={"limit": 3, "offset": offset}).json()
            assert page["total"] == len(everyone) and page["limit"] == 3 and page["offset"] == offset
            assert 1 <= len(page["identities"]) <= 3
            seen += [p["name"] for p in page["identities"]]
            offset = page["next_offset"]
        assert seen == everyone
        first = reader.get("/v1/identities").json()
        assert first["limit"] == 100 and first["next_offset"] is None and len(first["identities"]) == len(everyone)
        assert reader.get("/v1/identities", params={"offset": 10_000}).json()["identities"] == []
        for bad in ({"limit": 0}, {"limit": 1001}, {"offset": -1}):
            assert_error(reader.get("/v1/identities", params=bad), 422, "validation_error")
    finally:
        for name in added:
            service.rec.gallery.remove(name)


# ------------------------------------------------------------------------ HEAD, settings
def test_head_answers_like_get_without_the_body(service: Service, reader: httpx.Client) -> None:
    with service.client() as anon:
        for path in ("/", "/v1/health", "/static/app.js", "/openapi.json", "/docs"):
            head, get = anon.head(path), anon.get(path)
            assert (head.status_code, get.status_code) == (200, 200), path
            assert head.content == b"" and head.headers["content-type"] == get.headers["content-type"], path
        assert anon.head("/v1/identities").status_code == 401
    r = reader.head("/v1/identities")
    assert r.status_code == 200 and r.content == b""


@pytest.mark.parametrize(("env", "value"), [("FACEPRINT_MAX_PIXELS", "abc"), ("FACEPRINT_DECODE_BUDGET_PIXELS", "0")])
def test_a_bad_setting_stops_the_service_from_starting(
    service: Service, monkeypatch: pytest.MonkeyPatch, env: str, value: str
) -> None:
    monkeypatch.setenv(env, value)
    with pytest.raises(SettingError, match=env):
        create_app(service.rec, store=service.store)


# ------------------------------------------------------------------------ large photos
def _enlarged(path: Path, factor: int) -> bytes:
    img = Image.open(path).convert("RGB")
    buf = io.BytesIO()
    img.resize((img.width * factor, img.height * factor), Image.Resampling.BICUBIC).save(buf, "JPEG", quality=85)
    assert len(buf.getvalue()) < MAX_UPLOAD
    return buf.getvalue()


def test_large_photos_are_answered_in_their_own_pixels(service: Service, enrolled: None, admin: httpx.Client) -> None:
    """A photo beyond what the service keeps (3200 px on the long side) is analysed reduced: sizes,
    boxes and landmarks in the answer, and boxes in the gallery, are still the file's pixels."""
    big = {"image": ("big.jpg", _enlarged(TWO_PEOPLE, 4), "image/jpeg")}  # 4504x2644
    small = sorted(admin.post("/v1/detect", files=_image(TWO_PEOPLE)).json()["faces"], key=lambda f: f["box"]["left"])
    body = admin.post("/v1/detect", files=big).json()
    assert (body["width"], body["height"]) == (4504, 2644)
    faces = sorted(body["faces"], key=lambda f: f["box"]["left"])
    assert len(faces) == len(small) == 2
    for face, ref in zip(faces, small):
        assert all(abs(face["box"][k] - 4 * ref["box"][k]) <= 24 for k in ("left", "top", "right", "bottom"))
        assert all(abs(p - 4 * q) <= 24 for pt, rt in zip(face["landmarks"], ref["landmarks"]) for p, q in zip(pt, rt))
    named = admin.post("/v1/identify", files=big).json()
    assert (named["width"], named["height"]) == (4504, 2644)
    assert [f["identity"] for f in sorted(named["faces"], key=lambda f: f["box"]["left"])] == ["obama", "biden"]
    # enrolment stores the box in the file's pixels (the thumbnail and photo listings crop it from there)
    files = {"files": ("big_obama.jpg", _enlarged(OBAMA[0], 4), "image/jpeg")}
    assert admin.post("/v1/identities/large/images", params={"create": True}, files=files).json()["added"] == 1
    (stored,) = service.rec.gallery.templates("large")
    (reference,) = [t for t in service.rec.gallery.templates("obama") if t.source == OBAMA[0].name]
    assert all(abs(a - 4 * b) <= 24 for a, b in zip(stored.box, reference.box)), (stored.box, reference.box)
    assert admin.get("/v1/identities/large/thumbnail").status_code == 200
    assert admin.delete("/v1/identities/large").status_code == 200


def test_concurrent_huge_uploads_stay_within_the_stated_memory_bound() -> None:
    """README, service section: peak RSS <= warm RSS + 4 bytes x decode budget + 80 MiB x image jobs,
    and memory goes back after the burst. Six 8000x8000 PNGs at once, on a real `faceprint serve`."""
    script = REPO / "benchmarks" / "server_memory.py"
    cmd = [sys.executable, str(script), "--n", "6", "--side", "8000", "--rounds", "1", "--json"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["ok"] == 6 and result["faces"] == [2], result
    bound = result["warm_rss_mib"] + 4 * decode_budget_pixels() / 2**20 + 80 * 2 * result["cpus"]
    assert result["peak_rss_mib"] <= bound, (result, bound)
    assert result["after_rss_mib"] <= result["warm_rss_mib"] + 100, result
