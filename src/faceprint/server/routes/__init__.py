"""The service's routes, one APIRouter per resource; :data:`ROUTERS` in the order the app tries them."""

from __future__ import annotations

from faceprint.server.routes import (
    analyze,
    audit,
    cluster,
    docs,
    encrypted,
    identities,
    liveness,
    liveness_sessions,
    page,
    photos,
    recognition,
    service,
    video,
)

ROUTERS = (
    service.router,
    identities.router,
    recognition.router,
    encrypted.router,
    analyze.router,
    liveness.router,
    liveness_sessions.router,
    cluster.router,
    audit.router,
    video.router,
    page.router,
    photos.router,
    docs.router,
)

__all__ = ["ROUTERS"]
