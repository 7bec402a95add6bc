"""The service's errors: every one is ``{"error": {"code": ..., "message": ...}}`` with a status
chosen by its code, and no server-side detail (the gallery's path, a stack trace) in it."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Coroutine, Iterable, Sequence
from typing import Any, Protocol

from fastapi import HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from faceprint.errors import FaceprintError
from faceprint.server.schemas import ErrorResponse

log = logging.getLogger("faceprint.server")

#: HTTP status for each FaceprintError code (anything else that is ours: 400 bad_request)
ERROR_STATUS = {
    "bad_image": 400,
    "bad_video": 400,
    "image_too_large": 413,
    "no_face": 422,
    "multiple_faces": 422,
    "low_quality": 422,
    "unknown_identity": 404,
    "photo_not_found": 404,
    "identity_exists": 409,
    "invalid_name": 422,
    "model_error": 500,
    "gallery_read_only": 503,
    "gallery_error": 500,
    "bad_setting": 500,
    "liveness_required": 403,
    "liveness_failed": 403,
    "liveness_mismatch": 403,
    "unknown_session": 404,
    "too_many_sessions": 429,
}

#: code for HTTPExceptions raised by Starlette/FastAPI themselves (404 route, 405, ...)
HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
}

#: the error answers routes declare for the OpenAPI document (``responses=``)
ERROR: dict[str, Any] = {"model": ErrorResponse}
#: 429: a key over its rate limit (faceprint.server.ratelimit), with Retry-After
AUTH_ERRORS: dict[int | str, dict[str, Any]] = {401: ERROR, 403: ERROR, 422: ERROR, 429: ERROR}
IMAGE_ERRORS: dict[int | str, dict[str, Any]] = {**AUTH_ERRORS, 400: ERROR, 413: ERROR}

INTERNAL_ERROR_MESSAGE = "internal server error (details are in the server log)"


def error_json(status: int, code: str, message: str, details: list[dict[str, Any]] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        body["details"] = details
    return JSONResponse({"error": body}, status_code=status)


def error_code(exc: FaceprintError) -> str:
    return exc.code if exc.code != "error" else "bad_request"


def validation_problem(errors: Sequence[Any]) -> tuple[str, str]:
    """(code, message) for request validation errors: ``invalid_name`` when a name breaks the naming
    rule (the code the gallery's own refusal has), else ``validation_error``."""
    problems = []
    for e in errors[:5]:
        where = ".".join(str(p) for p in e.get("loc", ()) if p != "body") or "request"
        problems.append(f"{where}: {e.get('msg', 'invalid')}")
    code = "invalid_name" if any(e.get("type") == "invalid_name" for e in errors) else "validation_error"
    return code, "; ".join(problems) or "invalid request"


class FileFailure(Protocol):
    """One refused file of a batch upload, as its answer lists it (EnrolFile, ClusterFile)."""

    code: str | None
    message: str | None

    def model_dump(self) -> dict[str, Any]: ...


def batch_failed(failed: Sequence[FileFailure], done: str) -> JSONResponse:
    """The answer when every file of a batch was refused: the first file's error, as if it had
    come alone, with all of them in ``details``. ``done``: what the photos could not be ("enrolled")."""
    first = failed[0]
    code = first.code or "bad_request"
    message = first.message or f"no photo could be {done}"
    if len(failed) > 1:
        message = f"none of the {len(failed)} photos could be {done}; first: {message}"
    return error_json(ERROR_STATUS.get(code, 400), code, message, [f.model_dump() for f in failed])


#: what to do about a photo of several people, in the service's terms
LARGEST_HINT = "(crop the photo, or pass largest=true to take the largest face)"


def public_message(exc: FaceprintError, private: Iterable[str] = ()) -> str:
    """The error's message without server-side details (the gallery's file path)."""
    message = str(exc)
    for text in private:
        message = message.replace(f" in {text}", "").replace(text, "<gallery>")
    if exc.code == "multiple_faces":  # the engine's advice names the CLI's --largest: name ours
        message = re.sub(r"\s*\([^()]*--largest[^()]*\)", "", message) + " " + LARGEST_HINT
    return message


class PayloadTooLarge(HTTPException):
    """Raised from the body stream; an HTTPException so FastAPI's form parsing passes it on as is."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            413, {"code": "payload_too_large", "message": f"request body is over the limit of {limit:,} bytes"}
        )


# ---------------------------------------------------------------------------------- handlers
async def faceprint_error(request: Request, exc: FaceprintError) -> JSONResponse:
    code = error_code(exc)
    return error_json(ERROR_STATUS.get(code, 400), code, public_message(exc, request.app.state.private_paths))


async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
    return error_json(422, *validation_problem(exc.errors()))


async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
    if isinstance(exc.detail, dict) and "code" in exc.detail:
        code, message = str(exc.detail["code"]), str(exc.detail.get("message", ""))
    else:
        code = HTTP_CODES.get(exc.status_code, "http_error")
        message = str(exc.detail) if exc.detail else code.replace("_", " ")
    response = error_json(exc.status_code, code, message)
    for name, value in (exc.headers or {}).items():
        response.headers[name] = value
    return response


async def internal_error(request: Request, exc: Exception) -> JSONResponse:
    # normally GuardMiddleware gets there first; this is the last line of defence
    log.error("unhandled error in %s %s", request.method, request.url.path, exc_info=exc)
    return error_json(500, "internal_error", INTERNAL_ERROR_MESSAGE)


#: for ``FastAPI(exception_handlers=...)``
EXCEPTION_HANDLERS: dict[Any, Callable[[Request, Any], Coroutine[Any, Any, JSONResponse]]] = {
    FaceprintError: faceprint_error,
    RequestValidationError: validation_error,
    StarletteHTTPException: http_error,
    Exception: internal_error,
}
