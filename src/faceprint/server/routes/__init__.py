"""The service's routes, one APIRouter per resource; :data:`ROUTERS` in the order the app tries them."""

from __future__ import annotations

from faceprint.server.routes import analyze, cluster, docs, identities, page, photos, recognition, service

ROUTERS = (
    service.router,
    identities.router,
    recognition.router,
    analyze.router,
    cluster.router,
    page.router,
    photos.router,
    docs.router,
)

__all__ = ["ROUTERS"]
