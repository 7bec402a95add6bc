"""What every route shares, per app: :func:`share` puts it on ``app.state``, and routes receive it
through these dependencies, e.g. ``rec: RecognizerDep`` (``Annotated[Recognizer, Depends(recognizer)]``).

The getters are ``async def`` because all they do is read an attribute: FastAPI calls an async
dependency on the event loop, where a plain ``def`` one would take a trip through the thread pool.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from fastapi import Depends, FastAPI, Request

from faceprint.analyze import FaceAnalyzer
from faceprint.api import Recognizer
from faceprint.errors import ModelError
from faceprint.server.store import ServerStore
from faceprint.server.uploads import ImageWork


def share(
    app: FastAPI,
    *,
    recognizer: Recognizer,
    store: ServerStore,
    images: ImageWork,
    private_paths: Sequence[str],
    max_upload_bytes: int,
) -> None:
    """Set what the dependencies below hand out (GuardMiddleware and auth read ``state.store`` too)."""
    state = app.state
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
