"""The REST service: ``create_app(recognizer)`` builds a FastAPI app over one Recognizer.

Every route that touches the engine or the gallery is a plain ``def``: FastAPI runs those in
its thread pool, so decoding, detection and embedding never block the event loop's other
requests (dlib's detectors serialise themselves with a lock; the SQLite store opens one
connection per thread and writes in BEGIN IMMEDIATE transactions). A semaphore bounds how many
images are analysed at once, a pixel budget how many pixels are decoded at once, and large images
are kept reduced to what the detector needs, so a burst of uploads cannot exhaust memory.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping, Sequence
from pathlib import Path as FilePath
from typing import Annotated, Any

from fastapi import FastAPI, File, HTTPException, Query, Request, Response, UploadFile
from fastapi.dependencies.utils import request_params_to_args
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from faceprint import __version__
from faceprint.api import Recognizer
from faceprint.errors import FaceprintError
from faceprint.gallery.base import Identity
from faceprint.image import ImageReader, LoadedImage, PixelBudget, map_large_allocations, max_pixels
from faceprint.names import normalize_name
from faceprint.server.auth import AdminKey, AuthError, ReadKey, guard_request, route_role
from faceprint.server.docs import router as docs_router
from faceprint.server.photos import router as photos_router
from faceprint.server.schemas import (
    PAGE_DEFAULT,
    PAGE_MAX,
    Box,
    CandidateOut,
    DetectedFace,
    DetectResponse,
    EnrolFile,
    EnrolResponse,
    ErrorResponse,
    Health,
    IdentifiedFace,
    IdentifyResponse,
    IdentityCreate,
    IdentityDeleted,
    IdentityList,
    IdentityOut,
    IdentityRename,
    NameParam,
    NewNameParam,
    ServiceInfo,
    VerifyResponse,
    WhoAmI,
)
from faceprint.server.store import ServerStore, file_thumbnail, make_thumbnail
from faceprint.settings import check as check_settings
from faceprint.settings import decode_budget_pixels

log = logging.getLogger("faceprint.server")

STATIC_DIR = FilePath(__file__).parent / "static"
DEFAULT_MAX_UPLOAD_BYTES = 20_000_000  # 20 MB, as `faceprint serve --max-upload-mb` counts

#: HTTP status for each FaceprintError code (anything else that is ours: 400 bad_request)
ERROR_STATUS = {
    "bad_image": 400,
    "bad_video": 400,
    "image_too_large": 413,
    "no_face": 422,
    "multiple_faces": 422,
    "unknown_identity": 404,
    "photo_not_found": 404,
    "identity_exists": 409,
    "invalid_name": 422,
    "model_error": 500,
    "gallery_read_only": 503,
    "gallery_error": 500,
    "bad_setting": 500,
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
}

_E = {"model": ErrorResponse}
AUTH_ERRORS: dict[int | str, dict[str, Any]] = {401: _E, 403: _E, 422: _E}
IMAGE_ERRORS: dict[int | str, dict[str, Any]] = {**AUTH_ERRORS, 400: _E, 413: _E}


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


def _route_of(scope: MutableMapping[str, Any]) -> tuple[Any, dict[str, Any]]:
    """The route that will serve this request and its path parameters (None: no route matches)."""
    for route in getattr(scope.get("app"), "routes", ()):
        match, child = route.matches(scope)
        if match is Match.FULL:
            return route, child.get("path_params", {})
    return None, {}


async def refusal(scope: MutableMapping[str, Any]) -> tuple[int, str, str, Mapping[str, str]] | None:
    """What to answer before the body is read: no key, or not the role the route declares (401,
    403), or a path parameter the route would refuse, e.g. a name that breaks the naming rule (422)."""
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
    _, errors = request_params_to_args(dependant.path_params, params)
    if errors:
        return (422, *validation_problem(errors), {})
    return None


def _without_body(send: Callable[[MutableMapping[str, Any]], Awaitable[None]]) -> Callable[..., Awaitable[None]]:
    """The answer to HEAD: the GET answer's status and headers, none of its body."""

    async def send_head(message: MutableMapping[str, Any]) -> None:
        await send({**message, "body": b""} if message["type"] == "http.response.body" else message)

    return send_head


class GuardMiddleware:
    """Answers what it can before the app reads a byte of the body: a body over the cap (413 from
    Content-Length, else while streaming), then whatever :func:`refusal` finds (401, 403, 422; the
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
                await reply(500, "internal_error", "internal server error (details are in the server log)")


def _r(value: float) -> float:
    """Scores to 4 decimals, as the CLI prints them (more digits are noise)."""
    return round(float(value), 4)


def _source(upload: UploadFile, fallback: str) -> str:
    """The upload's file name for messages: printable, short, never a path."""
    name = (upload.filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if c.isprintable())[:100]
    return name or fallback


def _read(images: ImageReader, upload: UploadFile, fallback: str) -> LoadedImage:
    upload.file.seek(0)
    return images.decode(upload.file.read(), _source(upload, fallback))


def create_app(
    recognizer: Recognizer,
    *,
    store: ServerStore | None = None,
    cors_origins: Iterable[str] = (),
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
    image_jobs: int | None = None,
    decode_budget: int | None = None,
) -> FastAPI:
    """The service over ``recognizer`` (its engine and gallery are used as they are, shared by
    every request). Keys and thumbnails go to ``store``, by default the gallery's own file.
    Raises SettingError for a bad FACEPRINT_* setting, so that a server never starts half-working.

    ``image_jobs`` caps how many requests analyse images at once (default: twice the CPUs; more
    jobs than cores only queue). ``decode_budget`` caps the pixels decoded at once by all requests
    together (default: $FACEPRINT_DECODE_BUDGET_PIXELS, 64M); images are kept at most twice the
    detector's size on the long side (3200 px), with boxes mapped back to the file's pixels."""
    check_settings()
    rec = recognizer
    if store is None:
        store = ServerStore(rec.gallery.store.path)  # type: ignore[attr-defined]

    app = FastAPI(
        title="faceprint",
        version=__version__,
        description=(
            "Face recognition over HTTP: enrol people into a gallery, identify and verify faces.\n\n"
            "Authenticate with an API key from `faceprint keys create` as `Authorization: Bearer KEY` or "
            "`X-API-Key: KEY`. Keys with the `read` role may identify, verify, detect and list; `admin` keys "
            'may also change the gallery. Every error is `{"error": {"code": ..., "message": ...}}`.'
        ),
        docs_url=None,  # served by faceprint.server.docs from the fastapi-swagger package: no CDN
        redoc_url=None,
    )
    app.state.recognizer = rec
    app.state.store = store
    app.state.max_upload_bytes = max_upload_bytes
    slots = threading.BoundedSemaphore(image_jobs or 2 * (os.cpu_count() or 1))
    app.state.image_slots = slots  # for the routers of other modules
    # alignment wants some resolution beyond the detector's, but no more than twice it
    images = ImageReader(2 * rec.engine.max_detect_side, PixelBudget(decode_budget or decode_budget_pixels()))
    app.state.images = images
    map_large_allocations()  # decoded images go back to the OS when freed, not to glibc's arenas
    private = [str(rec.gallery.store.path)]  # type: ignore[attr-defined]

    # ------------------------------------------------------------------ error handlers
    @app.exception_handler(FaceprintError)
    async def faceprint_error(_: Request, exc: FaceprintError) -> JSONResponse:
        code = error_code(exc)
        return error_json(ERROR_STATUS.get(code, 400), code, public_message(exc, private))

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        return error_json(422, *validation_problem(exc.errors()))

    @app.exception_handler(StarletteHTTPException)
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

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        # normally GuardMiddleware gets there first; this is the last line of defence
        log.error("unhandled error in %s %s", request.method, request.url.path, exc_info=exc)
        return error_json(500, "internal_error", "internal server error (details are in the server log)")

    # ------------------------------------------------------------------------ service
    @app.get("/v1/health", response_model=Health, tags=["service"])
    def health() -> Health:
        """Liveness: no key needed."""
        return Health(version=__version__)

    @app.get("/v1/info", response_model=ServiceInfo, tags=["service"], responses=AUTH_ERRORS)
    def info(_: ReadKey) -> ServiceInfo:
        """The models in use, the decision thresholds and the gallery's size."""
        people = rec.gallery.identities()
        engine = rec.engine.info
        return ServiceInfo(
            version=__version__,
            detector=engine.detector,
            embedder=engine.embedder,
            model=rec.model,
            flip=engine.flip,
            identify_threshold=rec.identify_threshold,
            verify_threshold=rec.verify_threshold,
            identities=len(people),
            templates=sum(p.templates for p in people),
            max_upload_bytes=max_upload_bytes,
            max_pixels=max_pixels(),
        )

    @app.get("/v1/auth/whoami", response_model=WhoAmI, tags=["service"], responses=AUTH_ERRORS)
    def whoami(key: ReadKey) -> WhoAmI:
        """The key this request was made with (to check a key and learn its role)."""
        return WhoAmI(id=key.id, name=key.name, role=key.role)

    # --------------------------------------------------------------------- identities
    def identity_out(ident: Identity, thumbs: set[str] | None = None) -> IdentityOut:
        has_thumb = ident.name in thumbs if thumbs is not None else store.thumbnail(ident.name) is not None
        return IdentityOut(
            name=ident.name,
            templates=ident.templates,
            metadata=ident.metadata,
            created_at=ident.created_at,
            thumbnail=has_thumb,
        )

    @app.get("/v1/identities", response_model=IdentityList, tags=["identities"], responses=AUTH_ERRORS)
    def list_identities(
        _: ReadKey,
        limit: Annotated[int, Query(ge=1, le=PAGE_MAX, description="People per page.")] = PAGE_DEFAULT,
        offset: Annotated[int, Query(ge=0, description="Skip this many (next_offset of the page before).")] = 0,
    ) -> IdentityList:
        """Everyone enrolled, by name, with template counts: one page at a time."""
        people = rec.gallery.identities()
        page = people[offset : offset + limit]
        thumbs = store.has_thumbnails()
        return IdentityList(
            identities=[identity_out(i, thumbs) for i in page],
            total=len(people),
            offset=offset,
            limit=limit,
            next_offset=offset + limit if offset + limit < len(people) else None,
        )

    @app.post(
        "/v1/identities",
        response_model=IdentityOut,
        status_code=201,
        tags=["identities"],
        responses={**AUTH_ERRORS, 400: _E, 409: _E},
    )
    def create_identity(body: IdentityCreate, _: AdminKey) -> IdentityOut:
        """Add a person (with no photos yet)."""
        return identity_out(rec.gallery.add_identity(body.name, body.metadata))

    @app.get(
        "/v1/identities/{name}", response_model=IdentityOut, tags=["identities"], responses={**AUTH_ERRORS, 404: _E}
    )
    def get_identity(name: NameParam, _: ReadKey) -> IdentityOut:
        return identity_out(rec.gallery.get_identity(name))

    @app.patch(
        "/v1/identities/{name}",
        response_model=IdentityOut,
        tags=["identities"],
        responses={**AUTH_ERRORS, 400: _E, 404: _E, 409: _E},
    )
    def rename_identity(name: NameParam, body: IdentityRename, _: AdminKey) -> IdentityOut:
        """Rename a person (their photos and thumbnail follow)."""
        rec.gallery.rename(name, body.name)
        return identity_out(rec.gallery.get_identity(body.name))

    @app.delete(
        "/v1/identities/{name}",
        response_model=IdentityDeleted,
        tags=["identities"],
        responses={**AUTH_ERRORS, 404: _E},
    )
    def delete_identity(name: NameParam, _: AdminKey) -> IdentityDeleted:
        """Remove a person and all their templates."""
        return IdentityDeleted(name=name, templates_removed=rec.gallery.remove(name))

    @app.get(
        "/v1/identities/{name}/thumbnail",
        response_class=Response,
        tags=["identities"],
        responses={200: {"content": {"image/jpeg": {}}}, **AUTH_ERRORS, 404: _E},
    )
    def thumbnail(name: NameParam, _: ReadKey) -> Response:
        """A small JPEG of the person's face (from their first photo enrolled here)."""
        rec.gallery.get_identity(name)  # 404 unknown_identity
        jpeg = store.thumbnail(name) or _thumbnail_from_files(name)
        if jpeg is None:
            raise HTTPException(404, {"code": "not_found", "message": f"no thumbnail for {name!r}"})
        return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "private, no-cache"})

    def _thumbnail_from_files(name: str) -> bytes | None:
        # people enrolled from the command line have file paths as sources: crop the stored box
        for t in rec.gallery.templates(name)[:3]:
            if not FilePath(t.source).is_file():
                continue
            try:
                with slots:
                    jpeg = file_thumbnail(images, t.source, t.box)
            except FaceprintError:
                continue
            store.set_thumbnail(name, jpeg)
            return jpeg
        return None

    @app.post(
        "/v1/identities/{name}/images",
        response_model=EnrolResponse,
        tags=["identities"],
        responses={**IMAGE_ERRORS, 404: _E},
    )
    def enrol(
        name: NewNameParam,  # checked by GuardMiddleware before the upload is read
        files: Annotated[list[UploadFile], File(description="One or more photos, one person in each.")],
        _: AdminKey,
        largest: Annotated[bool, Query(description="Take the largest face when a photo has several.")] = False,
        create: Annotated[bool, Query(description="Create the identity if it does not exist.")] = False,
    ) -> EnrolResponse | JSONResponse:
        """Enrol photos of one person. Each photo is stored or refused on its own; if every photo
        is refused, the answer is the first photo's error (with all of them in ``details``)."""
        if not create:
            rec.gallery.get_identity(name)  # 404 unknown_identity
        results: list[EnrolFile] = []
        thumb_done = False
        for k, upload in enumerate(files):
            source = _source(upload, f"file {k + 1}")
            try:
                with slots:
                    loaded = _read(images, upload, source)
                    status, face_box = _enrol_one(rec, name, loaded, largest, create)
                results.append(EnrolFile(file=source, status=status))
                if status == "added" and not thumb_done and face_box is not None:
                    store.set_thumbnail(name, make_thumbnail(loaded.pixels, face_box))
                    thumb_done = True
            except FaceprintError as exc:
                message = public_message(exc, private)
                results.append(EnrolFile(file=source, status="error", code=error_code(exc), message=message))
        failed = [r for r in results if r.status == "error"]
        if results and len(failed) == len(results):
            first = failed[0]
            code = first.code or "bad_request"
            message = first.message or "no photo could be enrolled"
            if len(failed) > 1:
                message = f"none of the {len(failed)} photos could be enrolled; first: {message}"
            return error_json(ERROR_STATUS.get(code, 400), code, message, [r.model_dump() for r in failed])
        ident = rec.gallery.get_identity(name)
        return EnrolResponse(
            identity=ident.name,
            added=sum(r.status == "added" for r in results),
            skipped=sum(r.status == "skipped" for r in results),
            failed=len(failed),
            templates=ident.templates,
            files=results,
        )

    # -------------------------------------------------------------------- recognition
    @app.post("/v1/identify", response_model=IdentifyResponse, tags=["recognition"], responses=IMAGE_ERRORS)
    def identify(
        image: Annotated[UploadFile, File(description="A photo with any number of faces.")],
        _: ReadKey,
        top_k: Annotated[int, Query(ge=1, le=100, description="Candidates per face.")] = 5,
        threshold: Annotated[
            float | None, Query(ge=-1.0, le=1.0, description="Override the gallery's decision threshold (cosine).")
        ] = None,
    ) -> IdentifyResponse:
        """Who is each face in the photo? ``identity`` is null for a face that matches nobody."""
        with slots:
            loaded = _read(images, image, "image")
            matches = rec.identify(loaded, top_k=top_k, threshold=threshold)
        loaded.faces_to_original([m.face for m in matches])
        w, h = loaded.size
        return IdentifyResponse(
            width=w,
            height=h,
            model=rec.model,
            threshold=rec.identify_threshold if threshold is None else threshold,
            faces=[
                IdentifiedFace(
                    box=Box.of(m.face.box),
                    detection_score=_r(m.face.score),
                    identity=m.identity,
                    score=_r(m.score),
                    candidates=[CandidateOut(identity=c.identity, score=_r(c.score)) for c in m.candidates],
                )
                for m in matches
            ],
        )

    @app.post("/v1/verify", response_model=VerifyResponse, tags=["recognition"], responses={**IMAGE_ERRORS, 404: _E})
    def verify(
        a: Annotated[UploadFile, File(description="A photo (its largest face is used).")],
        _: ReadKey,
        b: Annotated[UploadFile | None, File(description="A second photo; or give identity instead.")] = None,
        identity: Annotated[
            str | None, Query(min_length=1, max_length=200, description="Compare A with this enrolled person.")
        ] = None,
        threshold: Annotated[float | None, Query(ge=-1.0, le=1.0, description="Override the threshold.")] = None,
    ) -> VerifyResponse:
        """Are two photos the same person, or is a photo the enrolled person ``identity``?"""
        if (b is None) == (identity is None):
            raise RequestValidationError(
                [{"loc": ("body", "b"), "msg": "give either a second image b or an identity", "type": "value_error"}]
            )
        with slots:
            if identity is not None:
                result = rec.verify_identity(_read(images, a, "a"), normalize_name(identity), threshold)
            else:
                result = rec.verify(_read(images, a, "a"), _read(images, b, "b"), threshold)  # type: ignore[arg-type]
        return VerifyResponse(
            same=bool(result.same),
            score=_r(result.score),
            threshold=_r(result.threshold),
            against="identity" if identity is not None else "image",
        )

    @app.post("/v1/detect", response_model=DetectResponse, tags=["recognition"], responses=IMAGE_ERRORS)
    def detect(
        image: Annotated[UploadFile, File(description="A photo.")],
        _: ReadKey,
    ) -> DetectResponse:
        """Find faces: box, detector score and five landmarks each (no gallery lookup)."""
        with slots:
            loaded = _read(images, image, "image")
            faces = loaded.faces_to_original(rec.engine.find_faces(loaded.pixels).faces)
        w, h = loaded.size
        return DetectResponse(
            width=w,
            height=h,
            faces=[
                DetectedFace(
                    box=Box.of(f.box),
                    score=_r(f.score),
                    landmarks=[]
                    if f.landmarks is None
                    else [[round(float(x), 1), round(float(y), 1)] for x, y in f.landmarks],
                )
                for f in faces
            ],
        )

    # ------------------------------------------------------------------------ web page
    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(
            STATIC_DIR / "index.html",
            headers={
                # everything the page needs is served from here: no CDN, works offline
                "Content-Security-Policy": (
                    "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; "
                    "connect-src 'self'; frame-ancestors 'none'"
                ),
                "X-Content-Type-Options": "nosniff",
                "Cache-Control": "no-cache",
            },
        )

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.include_router(photos_router)
    app.include_router(docs_router)

    # outermost last: CORS wraps the guard so that even 413 and 500 answers carry CORS headers
    app.add_middleware(GuardMiddleware, max_body=max_upload_bytes)
    origins = list(cors_origins)
    if origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=["GET", "POST", "PATCH", "DELETE"],
            allow_headers=["Authorization", "X-API-Key", "Content-Type"],
            max_age=600,
        )
    return app


def _enrol_one(
    rec: Recognizer, name: str, loaded: LoadedImage, largest: bool, create: bool
) -> tuple[str, tuple[int, int, int, int] | None]:
    """One photo into the gallery: ("added", face box in ``loaded.pixels``, for the thumbnail) or
    ("skipped", None); raises FaceprintError. The gallery gets the box in the file's own pixels.

    Recognizer.enroll's steps one photo at a time, because the service needs each refusal's
    error *code* (EnrollResult keeps only the message) and the face box for the thumbnail.
    """
    if rec.gallery.store.has_source(name, loaded.sha256, rec.model):
        return "skipped", None
    _, face = rec.single_face(loaded, largest)
    box = face.box
    loaded.faces_to_original([face])
    if not rec.store_face(name, face, loaded.source, loaded.sha256, create=create):
        return "skipped", None
    return "added", box


__all__ = ["DEFAULT_MAX_UPLOAD_BYTES", "create_app"]
