"""The service itself: liveness, what it runs, and who is asking."""

from __future__ import annotations

from fastapi import APIRouter

from faceprint import __version__
from faceprint.image import max_pixels
from faceprint.server.auth import ReadKey
from faceprint.server.deps import MaxUploadBytesDep, RecognizerDep
from faceprint.server.errors import AUTH_ERRORS
from faceprint.server.routes import cluster
from faceprint.server.schemas import Health, ServiceInfo, WhoAmI

router = APIRouter(tags=["service"])


@router.get("/v1/health", response_model=Health)
def health() -> Health:
    """Liveness: no key needed."""
    return Health(version=__version__)


@router.get("/v1/info", response_model=ServiceInfo, responses=AUTH_ERRORS)
def info(_: ReadKey, rec: RecognizerDep, max_upload_bytes: MaxUploadBytesDep) -> ServiceInfo:
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
        max_cluster_files=cluster.MAX_FILES,
    )


@router.get("/v1/auth/whoami", response_model=WhoAmI, responses=AUTH_ERRORS)
def whoami(key: ReadKey) -> WhoAmI:
    """The key this request was made with (to check a key and learn its role)."""
    return WhoAmI(id=key.id, name=key.name, role=key.role)
