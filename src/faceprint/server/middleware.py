"""GuardMiddleware: what the service answers before a route reads a byte of the request body."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

from fastapi.dependencies.utils import request_params_to_args
from fastapi.routing import iter_route_contexts
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.routing import Match

from faceprint.server.auth import STATE_KEY, AuthError, guard_request, route_role
from faceprint.server.errors import INTERNAL_ERROR_MESSAGE, PayloadTooLarge, validation_problem
from faceprint.server.ratelimit import RateLimiter, retry_after

log = logging.getLogger("faceprint.server")
#: where the guard notes when it received a request (time.perf_counter()), in scope["state"]
STARTED = "started"


def _route_of(scope: MutableMapping[str, Any]) -> tuple[Any, dict[str, Any]]:
    """The route that will serve this request and its path parameters (None: no route matches).

    FastAPI keeps an included router as one entry of ``app.routes``, whose own ``matches`` says
    neither which route nor which path parameters: walk the routes inside it, as FastAPI's OpenAPI
    document does (each one as included: its full path, its dependencies)."""
    for route in iter_route_contexts(getattr(scope.get("app"), "routes", ())):
        match, child = route.matches(scope)
        if match is Match.FULL:
            return route, child.get("path_params", {})
    return None, {}


async def refusal(scope: MutableMapping[str, Any]) -> tuple[int, str, str, Mapping[str, str]] | None:
    """What to answer before the body is read: no key, or not the role the route declares (401,
    403), a key over its rate limit (429), or a path parameter the route would refuse, e.g. a name
    that breaks the naming rule (422)."""
    route, params = _route_of(scope)
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return None
    role = route_role(dependant)
    if role is not None:
        try:
            # a database lookup: off the event loop
            await run_in_threadpool(guard_request, scope["app"].state.store, Headers(scope=scope), scope, role)
        except AuthError as exc:
            return exc.status_code, exc.detail["code"], exc.detail["message"], exc.headers or {}
        limited = _rate_limited(scope)
        if limited is not None:
            return limited
    _, errors = request_params_to_args(dependant.path_params, params)
    if errors:
        return (422, *validation_problem(errors), {})
    return None


def _rate_limited(scope: MutableMapping[str, Any]) -> tuple[int, str, str, Mapping[str, str]] | None:
    """429 when the key the guard just checked has no token left (routes that need no key are not limited)."""
    limiter: RateLimiter | None = getattr(scope["app"].state, "rate_limiter", None)
    if limiter is None:
        return None
    key = scope["state"][STATE_KEY]
    wait = limiter.take(("key", key.id))
    if not wait:
        return None
    message = f"too many requests with this API key ({limiter.describe()}); retry in {retry_after(wait)} s"
    return 429, "rate_limited", message, {"Retry-After": retry_after(wait)}


def _without_body(send: Callable[[MutableMapping[str, Any]], Awaitable[None]]) -> Callable[..., Awaitable[None]]:
    """The answer to HEAD: the GET answer's status and headers, none of its body."""

    async def send_head(message: MutableMapping[str, Any]) -> None:
        await send({**message, "body": b""} if message["type"] == "http.response.body" else message)

    return send_head


class GuardMiddleware:
    """Answers what it can before the app reads a byte of the body: a body over the cap (413 from
    Content-Length, else while streaming), then whatever :func:`refusal` finds (401, 403, 429, 422; the
    server then drops the unread body as it arrives, never buffering it). Serves HEAD as GET
    without the body, for every GET route. Turns any unexpected exception into a JSON 500 without a
    stack trace (the traceback is logged here, server-side)."""

    def __init__(self, app: Any, max_body: int) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(
        self,
        scope: MutableMapping[str, Any],
        receive: Callable[[], Awaitable[MutableMapping[str, Any]]],
        send: Callable[[MutableMapping[str, Any]], Awaitable[None]],
    ) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["method"] == "HEAD":
            scope, send = {**scope, "method": "GET"}, _without_body(send)
        scope.setdefault("state", {})[STARTED] = time.perf_counter()  # the audit log's durations count from here
        started = False

        async def send_tracked(message: MutableMapping[str, Any]) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        async def reply(status: int, code: str, message: str, extra: Mapping[str, str] | None = None) -> None:
            body = json.dumps({"error": {"code": code, "message": message}}).encode()
            headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
            headers += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (extra or {}).items()]
            if status == 413:
                headers.append((b"connection", b"close"))
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body})

        for name, value in scope.get("headers", []):
            if name == b"content-length":
                if not value.isdigit():
                    await reply(400, "bad_request", "invalid Content-Length header")
                    return
                if int(value) > self.max_body:
                    await reply(413, "payload_too_large", f"request body is over the limit of {self.max_body:,} bytes")
                    return
        received = 0

        async def limited_receive() -> MutableMapping[str, Any]:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    raise PayloadTooLarge(self.max_body)
            return message

        try:
            early = await refusal(scope)
            if early is not None:
                await reply(*early)
                return
            await self.app(scope, limited_receive, send_tracked)
        except PayloadTooLarge:
            if not started:
                await reply(413, "payload_too_large", f"request body is over the limit of {self.max_body:,} bytes")
        except Exception:
            log.exception("unhandled error in %s %s", scope.get("method"), scope.get("path"))
            if not started:
                await reply(500, "internal_error", INTERNAL_ERROR_MESSAGE)
