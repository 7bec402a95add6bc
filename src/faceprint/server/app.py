"""The REST service: ``create_app(recognizer)`` builds a FastAPI app over one Recognizer.

Routes live in :mod:`faceprint.server.routes`, one APIRouter per resource; what they share (the
recognizer, the key store, the image slots and pixel budget) is set on ``app.state`` here and
reaches them through the dependencies of :mod:`faceprint.server.deps`.

Every route that touches the engine or the gallery is a plain ``def``: FastAPI runs those in
its thread pool, so decoding, detection and embedding never block the event loop's other
requests (dlib's detectors serialise themselves with a lock; the SQLite store opens one
connection per thread and writes in BEGIN IMMEDIATE transactions). A semaphore bounds how many
images are analysed at once, a pixel budget how many pixels are decoded at once, and large images
are kept reduced to what the detector needs, so a burst of uploads cannot exhaust memory.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from faceprint import __version__
from faceprint.api import Recognizer
from faceprint.image import ImageReader, PixelBudget, map_large_allocations
from faceprint.server.audit import AuditLog
from faceprint.server.deps import share
from faceprint.server.errors import EXCEPTION_HANDLERS
from faceprint.server.middleware import GuardMiddleware
from faceprint.server.ratelimit import RateLimiter
from faceprint.server.routes import ROUTERS
from faceprint.server.routes.page import mount_static
from faceprint.server.store import ServerStore, open_server_store
from faceprint.server.uploads import ImageWork
from faceprint.settings import check as check_settings
from faceprint.settings import decode_budget_pixels

DEFAULT_MAX_UPLOAD_BYTES = 20_000_000  # 20 MB, as `faceprint serve --max-upload-mb` counts
log = logging.getLogger("faceprint.server")


def create_app(
    recognizer: Recognizer,
    *,
    store: ServerStore | None = None,
    cors_origins: Iterable[str] = (),
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
    image_jobs: int | None = None,
    decode_budget: int | None = None,
    audit: AuditLog | None = None,
    rate_limiter: RateLimiter | None = None,
) -> FastAPI:
    """The service over ``recognizer`` (its engine and gallery are used as they are, shared by
    every request). Keys and thumbnails go to ``store``, by default the gallery's own file or database.
    Raises SettingError for a bad FACEPRINT_* setting, so that a server never starts half-working.

    ``image_jobs`` caps how many requests analyse images at once (default: twice the CPUs; more
    jobs than cores only queue). ``decode_budget`` caps the pixels decoded at once by all requests
    together (default: $FACEPRINT_DECODE_BUDGET_PIXELS, 64M); images are kept at most twice the
    detector's size on the long side (3200 px), with boxes mapped back to the file's pixels.

    ``audit``: where identifications and verifications are recorded (default: the store's audit
    log, kept $FACEPRINT_AUDIT_RETENTION_DAYS; none for a read-only gallery). ``rate_limiter``: the
    per-key limit (default: $FACEPRINT_RATE_LIMIT and $FACEPRINT_RATE_BURST; none when unset)."""
    check_settings()
    rec = recognizer
    gallery_path = rec.gallery.store.path  # type: ignore[attr-defined]  # a file, or a database URL as shown
    store = store if store is not None else open_server_store(rec.gallery.store)
    audit = audit if audit is not None else AuditLog(store)
    if not audit.writable:
        log.warning("audit log: off, the gallery is read-only: identifications will not be recorded")
        audit = None

    app = FastAPI(
        title="faceprint",
        version=__version__,
        description=(
            "Face recognition over HTTP: enrol people into a gallery, identify and verify faces, group the "
            "faces of a batch of photos by person.\n\n"
            "Authenticate with an API key from `faceprint keys create` as `Authorization: Bearer KEY` or "
            "`X-API-Key: KEY`. Keys with the `read` role may identify, verify, detect, cluster and list; `admin` keys "
            'may also change the gallery. Every error is `{"error": {"code": ..., "message": ...}}`.'
        ),
        docs_url=None,  # served by faceprint.server.routes.docs from the fastapi-swagger package: no CDN
        redoc_url=None,
        exception_handlers=EXCEPTION_HANDLERS,
    )
    share(
        app,
        recognizer=rec,
        store=store,
        images=ImageWork(
            slots=threading.BoundedSemaphore(image_jobs or 2 * (os.cpu_count() or 1)),
            # alignment wants some resolution beyond the detector's, but no more than twice it
            reader=ImageReader(2 * rec.engine.max_detect_side, PixelBudget(decode_budget or decode_budget_pixels())),
        ),
        private_paths=[str(gallery_path)],
        max_upload_bytes=max_upload_bytes,
        audit=audit,
        rate_limiter=rate_limiter if rate_limiter is not None else RateLimiter.from_settings(),
    )
    map_large_allocations()  # decoded images go back to the OS when freed, not to glibc's arenas

    for router in ROUTERS:
        app.include_router(router)
    mount_static(app)
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


__all__ = ["DEFAULT_MAX_UPLOAD_BYTES", "create_app"]
