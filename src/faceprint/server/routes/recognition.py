"""Recognition: who is in a photo, are two faces the same person, where are the faces."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError

from faceprint.names import normalize_name
from faceprint.server.audit import audited, upload_summary
from faceprint.server.auth import RequireRole
from faceprint.server.deps import ImagesDep, LivenessClaimDep, RecognizerDep
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
    request: Request,
    image: Annotated[UploadFile, File(description="A photo with any number of faces.")],
    rec: RecognizerDep,
    images: ImagesDep,
    liveness: LivenessClaimDep,
    top_k: Annotated[int, Query(ge=1, le=100, description="Candidates per face.")] = 5,
    threshold: Annotated[
        float | None, Query(ge=-1.0, le=1.0, description="Override the gallery's decision threshold (cosine).")
    ] = None,
) -> IdentifyResponse:
    """Who is each face in the photo? ``identity`` is null for a face that matches nobody. A server
    started with ``--require-liveness`` needs ``liveness_session``, a passed liveness session whose
    face is the photo's largest face (403 otherwise)."""
    asked = {"top_k": top_k, "threshold": threshold, "image": upload_summary(image, "image")}
    with audited(request, asked) as note:
        with images.slots:
            loaded = images.read(image, "image")
            matches = rec.identify(loaded, top_k=top_k, threshold=threshold)
        if liveness is not None:
            liveness.check(max((m.face for m in matches), key=lambda f: f.width * f.height, default=None), "image")
        loaded.faces_to_original([m.face for m in matches])
        w, h = loaded.size
        response = IdentifyResponse(
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
        note.answer = identify_answer(response)
    return response


def identify_answer(response: IdentifyResponse) -> dict[str, Any]:
    """The audit log's record of an identification: per face, who (null: nobody), the score, the
    decision and the candidates shown (no boxes, no templates)."""
    return {
        "threshold": response.threshold,
        "faces": len(response.faces),
        "matches": [
            {
                "identity": f.identity,
                "score": f.score,
                "decision": "match" if f.identity is not None else "unknown",
                "candidates": [[c.identity, c.score] for c in f.candidates],
            }
            for f in response.faces
        ],
    }


@router.post("/v1/verify", response_model=VerifyResponse, responses={**IMAGE_ERRORS, 404: ERROR})
def verify(
    request: Request,
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
    asked: dict[str, Any] = {"threshold": threshold, "a": upload_summary(a, "a")}
    if identity is not None:
        asked["identity"] = normalize_name(identity)
    else:
        asked["b"] = upload_summary(b, "b")  # type: ignore[arg-type]  # given: checked above
    with audited(request, asked) as note:
        with images.slots:
            if identity is not None:
                result = rec.verify_identity(images.read(a, "a"), normalize_name(identity), threshold)
            else:
                result = rec.verify(images.read(a, "a"), images.read(b, "b"), threshold)  # type: ignore[arg-type]
        response = VerifyResponse(
            same=bool(result.same),
            score=_r(result.score),
            threshold=_r(result.threshold),
            against="identity" if identity is not None else "image",
        )
        note.answer = {
            "same": response.same,
            "score": response.score,
            "threshold": response.threshold,
            "decision": "same" if response.same else "different",
        }
    return response


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
