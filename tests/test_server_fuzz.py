"""Property-based fuzzing of the REST API from its own OpenAPI schema (schemathesis): whatever
a client sends, the service answers without a 5xx, with a body that matches the documented
schema and the one error shape, and without a stack trace.

Bounded: a few derandomized examples per operation and no deadline (the engine is slow on a busy
machine). schemathesis needs the app when the module is collected (its lazy fixture loader does
not work with pytest 9), so the app is built at import over a temporary gallery, and the engine
is bound to the session's shared one only when the tests run.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from faceprint import FaceEngine, Recognizer
from faceprint.gallery import Gallery
from faceprint.server import ServerStore, create_app

from .conftest import DEMO


class _SessionEngine:
    """Stands in for the FaceEngine until the session's ``engine`` fixture is bound (so collecting
    this module loads no model)."""

    engine: FaceEngine | None = None

    def __getattr__(self, name: str) -> Any:
        if self.engine is None:
            self.engine = FaceEngine()
        return getattr(self.engine, name)


_DIR = Path(tempfile.mkdtemp(prefix="faceprint-fuzz-"))
atexit.register(shutil.rmtree, _DIR, ignore_errors=True)  # also when this module is only collected
_ENGINE = _SessionEngine()
_REC = Recognizer(Gallery(_DIR / "gallery.db"), _ENGINE)  # type: ignore[arg-type]
_STORE = ServerStore(_DIR / "gallery.db")
_ADMIN, _ = _STORE.create_key("admin", "fuzz")
APP = create_app(_REC, store=_STORE, max_upload_bytes=1_000_000)
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@pytest.fixture(scope="module", autouse=True)
def _bound(engine: FaceEngine) -> Iterator[None]:
    _ENGINE.engine = engine
    # one real person, so that lookups by a guessed name sometimes hit (the schema's example is "obama")
    assert _REC.enroll("obama", [sorted((DEMO / "gallery" / "obama").iterdir())[0]]).added
    yield
    _REC.gallery.close()
    _STORE.close()


def _assert_clean_error(response: Any) -> None:
    if response.status_code < 400:
        return
    body = response.json()
    assert set(body) == {"error"} and {"code", "message"} <= set(body["error"]), body
    assert "Traceback" not in response.text and 'File "' not in response.text, response.text


@schema.parametrize()
@settings(
    max_examples=6,
    deadline=None,
    derandomize=True,  # the same cases every run: a CI failure reproduces locally
    suppress_health_check=list(HealthCheck),
)
def test_no_server_errors(case: Any) -> None:
    response = case.call(headers={"Authorization": f"Bearer {_ADMIN}"})
    case.validate_response(response, checks=[not_a_server_error, response_schema_conformance])
    _assert_clean_error(response)


@schema.parametrize()
@settings(max_examples=2, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_without_a_key(case: Any) -> None:
    """Every operation but health refuses an anonymous caller with 401 (or a 4xx for a malformed
    request), never a 5xx."""
    response = case.call()
    case.validate_response(response, checks=[not_a_server_error])
    _assert_clean_error(response)
    if case.path != "/v1/health":
        assert 400 <= response.status_code < 500
