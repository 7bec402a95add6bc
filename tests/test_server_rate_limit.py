"""Per-key rate limits of the service: a token bucket per API key, checked by GuardMiddleware
before the body is read; 429 with Retry-After. A fake clock stands in for time: no sleeps."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from faceprint import FaceEngine, Recognizer
from faceprint.errors import SettingError
from faceprint.gallery import Gallery
from faceprint.server import ServerStore, create_app
from faceprint.server.ratelimit import RateLimiter, retry_after

from .test_server_api import OBAMA1, _image, assert_error, serve


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture()
def rec(tmp_path: Path, engine: FaceEngine) -> Iterator[Recognizer]:
    rec = Recognizer(Gallery(tmp_path / "gallery.db"), engine)
    yield rec
    rec.gallery.close()


def client(url: str, key: str | None = None) -> httpx.Client:
    return httpx.Client(base_url=url, headers={"X-API-Key": key} if key else {}, timeout=120)


def test_after_the_burst_429_with_retry_after_then_recovery(rec: Recognizer) -> None:
    clock = FakeClock()
    store = ServerStore(rec.gallery.store.path)  # type: ignore[attr-defined]
    one, _ = store.create_key("read", "one")
    two, _ = store.create_key("read", "two")
    app = create_app(rec, store=store, rate_limiter=RateLimiter(60, burst=3, clock=clock))  # a token a second
    with serve(app) as url, client(url, one) as a, client(url, two) as b, client(url) as anon:
        assert [a.get("/v1/auth/whoami").status_code for _ in range(3)] == [200, 200, 200]
        r = a.get("/v1/auth/whoami")
        error = assert_error(r, 429, "rate_limited")
        assert r.headers["retry-after"] == "1" and "60 requests a minute, bursts of 3" in error["message"]
        # another key has a bucket of its own; routes that need no key are not limited
        assert [b.get("/v1/identities").status_code for _ in range(3)] == [200, 200, 200]
        assert all(anon.get("/v1/health").status_code == 200 for _ in range(10))
        # a refused key is answered 401, not 429, and spends nobody's tokens
        with client(url, "fpk_wrong") as wrong:
            assert_error(wrong.get("/v1/auth/whoami"), 401, "unauthorized")
        # limited before the body is read: the upload is not looked at (no image error, no audit row)
        r = a.post("/v1/identify", files={"image": ("x.jpg", b"not an image", "image/jpeg")})
        assert_error(r, 429, "rate_limited")
        assert app.state.audit.entries()[1] == 0
        clock.advance(0.5)
        assert_error(a.get("/v1/auth/whoami"), 429, "rate_limited")
        clock.advance(0.5)
        assert a.get("/v1/auth/whoami").status_code == 200  # one token back after a second
        assert a.get("/v1/auth/whoami").status_code == 429
        clock.advance(60)  # a minute idle: the bucket is full again, but holds no more than the burst
        assert [a.get("/v1/auth/whoami").status_code for _ in range(4)] == [200, 200, 200, 429]
        assert_error(a.post("/v1/identify", files=_image(OBAMA1)), 429, "rate_limited")
        clock.advance(1)
        assert a.post("/v1/identify", files=_image(OBAMA1)).status_code == 200


def test_retry_after_counts_whole_seconds_up() -> None:
    clock = FakeClock()
    limiter = RateLimiter(20, burst=1, clock=clock)  # a token every 3 s
    assert limiter.take("k") == 0
    assert limiter.take("k") == pytest.approx(3.0)
    clock.advance(2.5)
    wait = limiter.take("k")
    assert wait == pytest.approx(0.5) and retry_after(wait) == "1"
    assert retry_after(limiter.take("other")) == "1" and limiter.take("other") == pytest.approx(3.0)
    assert RateLimiter(90).burst == 90  # the default burst: a minute's worth


def test_limits_come_from_the_environment(rec: Recognizer, monkeypatch: pytest.MonkeyPatch) -> None:
    store = ServerStore(rec.gallery.store.path)  # type: ignore[attr-defined]
    assert create_app(rec, store=store).state.rate_limiter is None  # no limit unless asked for
    monkeypatch.setenv("FACEPRINT_RATE_LIMIT", "30")
    monkeypatch.setenv("FACEPRINT_RATE_BURST", "5")
    limiter = create_app(rec, store=store).state.rate_limiter
    assert (limiter.per_minute, limiter.burst) == (30, 5)
    monkeypatch.delenv("FACEPRINT_RATE_BURST")
    assert create_app(rec, store=store).state.rate_limiter.burst == 30
    for env, bad in (("FACEPRINT_RATE_LIMIT", "-1"), ("FACEPRINT_RATE_LIMIT", "lots"), ("FACEPRINT_RATE_BURST", "1.5")):
        monkeypatch.setenv(env, bad)
        with pytest.raises(SettingError, match=env):
            create_app(rec, store=store)
        monkeypatch.setenv(env, "10")
