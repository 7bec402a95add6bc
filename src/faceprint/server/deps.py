"""What every route shares, per app: :func:`share` puts it on ``app.state``, and routes receive it
through these dependencies, e.g. ``rec: RecognizerDep`` (``Annotated[Recognizer, Depends(recognizer)]``).

The getters are ``async def`` because all they do is read an attribute: FastAPI calls an async
dependency on the event loop, where a plain ``def`` one would take a trip through the thread pool.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

import numpy as np
from fastapi import Depends, FastAPI, Form, Header, Request

from faceprint.analyze import FaceAnalyzer
from faceprint.api import Recognizer
from faceprint.errors import ModelError
from faceprint.server.audit import AuditLog
from faceprint.server.auth import ReadKey
from faceprint.server.liveness import LivenessSessions
from faceprint.server.ratelimit import RateLimiter
from faceprint.server.store import ServerStore
from faceprint.server.uploads import ImageWork
from faceprint.types import Face


def share(
    app: FastAPI,
    *,
    recognizer: Recognizer,
    store: ServerStore,
    images: ImageWork,
    private_paths: Sequence[str],
    max_upload_bytes: int,
    audit: AuditLog | None = None,
    rate_limiter: RateLimiter | None = None,
) -> None:
    """Set what the dependencies below hand out (GuardMiddleware and auth read ``state.store`` too;
    the guard reads ``state.rate_limiter``, :func:`faceprint.server.audit.record` ``state.audit``)."""
    state = app.state
    state.audit = audit
    state.rate_limiter = rate_limiter
    state.recognizer = recognizer
    state.store = store
    state.images = images
    state.private_paths = tuple(private_paths)
    state.max_upload_bytes = max_upload_bytes


async def recognizer(request: Request) -> Recognizer:
    """The engine and gallery every request uses."""
    return request.app.state.recognizer


async def server_store(request: Request) -> ServerStore:
    """API keys and thumbnails."""
    return request.app.state.store


async def images(request: Request) -> ImageWork:
    """The image slots and the pixel-budgeted reader."""
    return request.app.state.images


async def private_paths(request: Request) -> tuple[str, ...]:
    """Server-side paths that error messages must not show (the gallery's file)."""
    return request.app.state.private_paths


async def max_upload_bytes(request: Request) -> int:
    """The cap on a request body."""
    return request.app.state.max_upload_bytes


RecognizerDep = Annotated[Recognizer, Depends(recognizer)]
StoreDep = Annotated[ServerStore, Depends(server_store)]
ImagesDep = Annotated[ImageWork, Depends(images)]
PrivatePathsDep = Annotated[tuple[str, ...], Depends(private_paths)]
MaxUploadBytesDep = Annotated[int, Depends(max_upload_bytes)]


async def face_analyzer(request: Request) -> FaceAnalyzer:
    """The face analyser (models load on its first face), made on the first request that needs it:
    with the built-in expression model, or without expressions where that model is not installed
    (``app.state.expression_error`` then says why)."""
    state = request.app.state
    analyzer = getattr(state, "analyzer", None)
    if analyzer is None:  # the event loop runs one getter at a time: no race
        try:
            analyzer = FaceAnalyzer("builtin")
            state.expression_error = None
        except ModelError as exc:
            analyzer = FaceAnalyzer("none")
            state.expression_error = str(exc)
        state.analyzer = analyzer
    return analyzer


FaceAnalyzerDep = Annotated[FaceAnalyzer, Depends(face_analyzer)]


async def liveness_sessions(request: Request) -> LivenessSessions:
    """The liveness challenge sessions: what ``faceprint serve`` set up (``--require-liveness``,
    ``--liveness-actions``), else, made on first use, random actions, not required. Its models load
    on the first session."""
    state = request.app.state
    sessions = getattr(state, "liveness", None)
    if sessions is None:  # the event loop runs one getter at a time: no race; no model loads here
        rec: Recognizer = state.recognizer
        sessions = state.liveness = LivenessSessions(rec.engine, continuity=rec.verify_threshold)
    return sessions


LivenessDep = Annotated[LivenessSessions, Depends(liveness_sessions)]


class LivenessClaim:
    """A passed liveness session claimed by a request (``--require-liveness``): ``check`` each face
    the request acts on against the session's face."""

    def __init__(self, sessions: LivenessSessions, template: np.ndarray) -> None:
        self.sessions = sessions
        self.template = template

    def check(self, face: Face | None, source: str) -> None:
        self.sessions.check_face(self.template, face.embedding if face is not None else None, source)


def liveness_claim(
    key: ReadKey,
    sessions: LivenessDep,
    liveness_session: Annotated[
        str | None,
        Form(max_length=64, description="A passed liveness session (needed when the server requires liveness)."),
    ] = None,
    x_liveness_session: Annotated[str | None, Header(max_length=64, include_in_schema=False)] = None,
) -> LivenessClaim | None:
    """None when the server does not require liveness; else the claimed session (single use), or 403."""
    if not sessions.required:
        return None
    template = sessions.claim(liveness_session or x_liveness_session, key.id)
    return LivenessClaim(sessions, template)


LivenessClaimDep = Annotated[LivenessClaim | None, Depends(liveness_claim)]
