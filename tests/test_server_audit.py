"""The service's audit log: identifications and verifications recorded with the key, the question
(no image bytes) and the answer; GET /v1/audit for admins; retention; a failed write fails closed."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from faceprint import FaceEngine, Recognizer
from faceprint.errors import SettingError
from faceprint.gallery import Gallery
from faceprint.server import ServerStore, create_app
from faceprint.server.audit import AuditLog
from faceprint.server.store import open_server_store

from .test_server_api import BIDEN, MOON, OBAMA, OBAMA1, TWO_PEOPLE, _files, _image, assert_error, serve


def client(url: str, key: str | None = None) -> httpx.Client:
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"} if key else {}, timeout=120)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def upload(path: Path) -> dict[str, Any]:
    return {"file": path.name, "bytes": path.stat().st_size, "sha256": sha256(path)}


@pytest.fixture()
def two_people(gallery_url: str, engine: FaceEngine) -> Iterator[Recognizer]:
    """obama and biden enrolled, in a SQLite file, then in a PostgreSQL database."""
    rec = Recognizer(Gallery(gallery_url), engine)
    for name, photos in (("obama", OBAMA), ("biden", BIDEN)):
        assert len(rec.enroll(name, photos).added) == len(photos)
    yield rec
    rec.gallery.close()


def test_identifications_and_verifications_are_logged(two_people: Recognizer) -> None:
    rec = two_people
    store = open_server_store(rec.gallery.store)
    admin, admin_key = store.create_key("admin", "auditor")
    reader, reader_key = store.create_key("read", "front desk")
    with serve(create_app(rec, store=store)) as url, client(url, reader) as r, client(url, admin) as a:
        identified = r.post("/v1/identify", files=_image(TWO_PEOPLE), params={"top_k": 2}).json()
        same = r.post("/v1/verify", files=_image(OBAMA1, "a"), params={"identity": " obama "}).json()
        pair = r.post("/v1/verify", files={**_image(OBAMA1, "a"), **_image(BIDEN[0], "b")}).json()
        assert_error(
            r.post("/v1/identify", files={"image": ("scan.jpg", b"not a photo", "image/jpeg")}), 400, "bad_image"
        )
        clustered = r.post("/v1/cluster", files=_files([OBAMA1, TWO_PEOPLE])).json()
        assert r.get("/v1/identities").status_code == 200  # not an identification: not logged

        # admins only
        assert_error(r.get("/v1/audit"), 403, "forbidden")
        with client(url) as anon:
            assert_error(anon.get("/v1/audit"), 401, "unauthorized")
        page = a.get("/v1/audit").json()
        assert page["total"] == 5 and page["next_offset"] is None
        log = page["records"]
        assert [e["route"] for e in log] == ["/v1/cluster", "/v1/identify", "/v1/verify", "/v1/verify", "/v1/identify"]
        assert [e["status"] for e in log] == [200, 400, 200, 200, 200]
        assert {(e["key_id"], e["key_name"], e["method"]) for e in log} == {(reader_key.id, "front desk", "POST")}
        assert [e["id"] for e in log] == sorted((e["id"] for e in log), reverse=True)
        assert all(e["duration_ms"] > 0 for e in log)
        now = datetime.now(UTC)
        assert all(now - timedelta(minutes=5) < datetime.fromisoformat(e["at"]) <= now for e in log)
        cluster, refused, pair_entry, same_entry, identify = log

        # what was asked: the parameters and the uploads' names, sizes and hashes, never their bytes
        assert identify["request"] == {"top_k": 2, "threshold": None, "image": upload(TWO_PEOPLE)}
        not_a_photo = {"file": "scan.jpg", "bytes": 11, "sha256": hashlib.sha256(b"not a photo").hexdigest()}
        assert refused["request"]["image"] == not_a_photo and refused["answer"] == {"error": "bad_image"}
        assert same_entry["request"] == {"threshold": None, "a": upload(OBAMA1), "identity": "obama"}
        assert pair_entry["request"] == {"threshold": None, "a": upload(OBAMA1), "b": upload(BIDEN[0])}
        assert cluster["request"]["files"] == [upload(OBAMA1), upload(TWO_PEOPLE)]

        # the answer as it was given: names, scores and decisions
        answer = identify["answer"]
        assert answer["threshold"] == identified["threshold"] and answer["faces"] == 2
        assert [(m["identity"], m["score"]) for m in answer["matches"]] == [
            (f["identity"], f["score"]) for f in identified["faces"]
        ]
        assert sorted(m["decision"] for m in answer["matches"]) == ["match", "match"]
        assert answer["matches"][0]["candidates"] == [
            [c["identity"], c["score"]] for c in identified["faces"][0]["candidates"]
        ]
        assert same_entry["answer"] == {
            "same": True,
            "score": same["score"],
            "threshold": same["threshold"],
            "decision": "same",
        }
        assert pair_entry["answer"]["decision"] == "different" and pair_entry["answer"]["score"] == pair["score"]
        assert [(g["identity"], g["size"]) for g in cluster["answer"]["groups"]] == [
            (g["identity"], g["size"]) for g in clustered["groups"]
        ]

        # filters and pages
        def routes(**params: Any) -> list[str]:
            return [e["route"] for e in a.get("/v1/audit", params=params).json()["records"]]

        assert routes(route="/v1/verify") == ["/v1/verify", "/v1/verify"]
        assert routes(key=reader_key.id, route="/v1/identify") == ["/v1/identify", "/v1/identify"]
        assert routes(key=admin_key.id) == []
        assert routes(since=(now + timedelta(minutes=1)).isoformat()) == []
        assert len(routes(since=(now - timedelta(minutes=5)).isoformat(), until=now.isoformat())) == 5
        first = a.get("/v1/audit", params={"limit": 2}).json()
        second = a.get("/v1/audit", params={"limit": 2, "offset": first["next_offset"]}).json()
        assert (first["total"], first["next_offset"], second["next_offset"]) == (5, 2, 4)
        assert [e["id"] for e in first["records"] + second["records"]] == [e["id"] for e in log[:4]]
        assert_error(a.get("/v1/audit", params={"limit": 0}), 422, "validation_error")
        assert_error(a.get("/v1/audit", params={"since": "yesterday"}), 422, "validation_error")


def test_rows_hold_no_image(tmp_path: Path, engine: FaceEngine) -> None:
    path = tmp_path / "gallery.db"
    rec = Recognizer(Gallery(path), engine)
    store = ServerStore(path)
    key, _ = store.create_key("read")
    with serve(create_app(rec, store=store)) as url, client(url, key) as r:
        assert r.post("/v1/identify", files=_image(TWO_PEOPLE)).status_code == 200
    with sqlite3.connect(path) as db:
        ((request, answer),) = db.execute("SELECT request, answer FROM audit_log").fetchall()
    photo = TWO_PEOPLE.read_bytes()
    assert len(request) + len(answer) < 1000  # a 490 KB photo: names and hashes only
    for chunk in (photo[1000:1032], photo[1000:1032].hex()):
        assert str(chunk) not in request and str(chunk) not in answer
    rec.gallery.close()


def test_a_failed_audit_write_fails_the_request(
    tmp_path: Path, engine: FaceEngine, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "gallery.db"
    rec = Recognizer(Gallery(path), engine)
    rec.enroll("obama", OBAMA)
    store = ServerStore(path)
    key, _ = store.create_key("read")

    def broken(*_: Any, **__: Any) -> int:
        raise sqlite3.OperationalError("disk I/O error")

    app = create_app(rec, store=store)
    monkeypatch.setattr(app.state.audit, "add", broken)
    with serve(app) as url, client(url, key) as r:
        response = r.post("/v1/identify", files=_image(OBAMA1))
        assert_error(response, 500, "internal_error")  # fail closed: no answer goes out unrecorded
        assert "obama" not in response.text
        assert_error(r.post("/v1/verify", files=_image(MOON, "a"), params={"identity": "obama"}), 500, "internal_error")
        assert r.get("/v1/info").status_code == 200  # what is not audited goes on
    assert "audit log: could not record POST /v1/identify" in caplog.text
    rec.gallery.close()


class FakeClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def test_retention_prunes_old_rows(tmp_path: Path) -> None:
    path = tmp_path / "gallery.db"
    Gallery(path).close()
    clock = FakeClock(datetime(2026, 1, 1, tzinfo=UTC))
    audit = AuditLog(ServerStore(path), retention_days=30, clock=clock)

    def add(route: str) -> None:
        audit.add(
            key_id=1, key_name="k", method="POST", route=route, status=200, duration_ms=1.0, request={}, answer={}
        )

    def kept() -> list[str]:
        return [e.route for e in audit.entries()[0]]

    add("/jan1")
    clock.now += timedelta(minutes=30)
    add("/jan1-later")
    clock.now = datetime(2026, 1, 20, tzinfo=UTC)
    add("/jan20")
    assert kept() == ["/jan20", "/jan1-later", "/jan1"]
    clock.now = datetime(2026, 2, 5, tzinfo=UTC)  # Jan 1 is now over 30 days old; Jan 20 is not
    add("/feb5")
    assert kept() == ["/feb5", "/jan20"]
    assert [e.at for e in audit.entries()[0]] == ["2026-02-05T00:00:00.000+00:00", "2026-01-20T00:00:00.000+00:00"]
    # the writes prune at most once an hour: a row that expires meanwhile waits for the next prune
    clock.now = datetime(2026, 2, 19, tzinfo=UTC)  # Jan 20 is exactly 30 days old: kept
    add("/feb19")
    clock.now += timedelta(minutes=30)  # Jan 20 is now past the retention, but the last prune was 30 min ago
    add("/feb19-later")
    assert kept() == ["/feb19-later", "/feb19", "/feb5", "/jan20"]
    clock.now += timedelta(minutes=30)
    add("/feb19-next")
    assert kept() == ["/feb19-next", "/feb19-later", "/feb19", "/feb5"]
    assert audit.prune() == 0
    # 0 keeps everything
    forever = AuditLog(ServerStore(path), retention_days=0, clock=FakeClock(datetime(2100, 1, 1, tzinfo=UTC)))
    forever.add(key_id=None, key_name="", method="POST", route="/x", status=200, duration_ms=1, request={}, answer={})
    assert forever.prune() == 0 and forever.entries()[1] == 5


def test_retention_is_a_setting(tmp_path: Path, engine: FaceEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "gallery.db"
    rec = Recognizer(Gallery(path), engine)
    store = ServerStore(path)
    assert create_app(rec, store=store).state.audit.retention_days == 90
    monkeypatch.setenv("FACEPRINT_AUDIT_RETENTION_DAYS", "7")
    assert create_app(rec, store=store).state.audit.retention_days == 7
    monkeypatch.setenv("FACEPRINT_AUDIT_RETENTION_DAYS", "-3")
    with pytest.raises(SettingError, match="FACEPRINT_AUDIT_RETENTION_DAYS"):
        create_app(rec, store=store)
    rec.gallery.close()
