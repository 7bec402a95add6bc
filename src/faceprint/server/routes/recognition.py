"""Recognition: who is in a photo, are two faces the same person, where are the faces."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, File, Query, UploadFile
from fastapi.exceptions import RequestValidationError

from faceprint.names import normalize_name
from faceprint.server.auth import RequireRole
from faceprint.server.deps import ImagesDep, RecognizerDep
from faceprint.server.errors import ERROR, IMAGE_ERRORS
from faceprint.server.schemas import (
    Box,
    CandidateOut,
    DetectedFace,
    DetectResponse,
    IdentifiedFace,
    IdentifyResponse,
    VerifyResponse,
)

#: every route here needs a key with the read role (GuardMiddleware checks it before the upload is read)
router = APIRouter(tags=["recognition"], dependencies=[Depends(RequireRole("read"))])


def _r(value: float) -> float:
    """Scores to 4 decimals, as the CLI prints them (more digits are noise)."""
    return round(float(value), 4)


@router.post("/v1/identify", response_model=IdentifyResponse, responses=IMAGE_ERRORS)
def identify(
    image: Annotated[UploadFile, File(description="A photo with any number of faces.")],
    rec: RecognizerDep,
    images: ImagesDep,
    top_k: Annotated[int, Query(ge=1, le=100, description="Candidates per face.")] = 5,
    threshold: Annotated[
        float | None, Query(ge=-1.0, le=1.0, description="Override the gallery's decision threshold (cosine).")
    ] = None,
) -> IdentifyResponse:
    """Who is each face in the photo? ``identity`` is null for a face that matches nobody."""
    with images.slots:
        loaded = images.read(image, "image")
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


@router.post("/v1/verify", response_model=VerifyResponse, responses={**IMAGE_ERRORS, 404: ERROR})
def verify(
    a: Annotated[UploadFile, File(description="A photo (its largest face is used).")],
    rec: RecognizerDep,
    images: ImagesDep,
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
    with images.slots:
        if identity is not None:
            result = rec.verify_identity(images.read(a, "a"), normalize_name(identity), threshold)
        else:
            result = rec.verify(images.read(a, "a"), images.read(b, "b"), threshold)  # type: ignore[arg-type]
    return VerifyResponse(
        same=bool(result.same),
        score=_r(result.score),
        threshold=_r(result.threshold),
        against="identity" if identity is not None else "image",
    )


@router.post("/v1/detect", response_model=DetectResponse, responses=IMAGE_ERRORS)
def detect(
    image: Annotated[UploadFile, File(description="A photo.")],
    rec: RecognizerDep,
    images: ImagesDep,
) -> DetectResponse:
    """Find faces: box, detector score and five landmarks each (no gallery lookup)."""
    with images.slots:
        loaded = images.read(image, "image")
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
