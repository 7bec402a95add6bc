"""Passive liveness of a photo: is each face a live person, or a print or a screen held up to the camera?

One photo has no motion, so this is the passive model (MiniFASNet) alone, at its authors' operating
point; a video's motion cues are in ``faceprint liveness`` and the challenge sessions
(:mod:`faceprint.server.routes.liveness_sessions`).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, File, Request, UploadFile
from pydantic import BaseModel, Field

from faceprint.liveness.decide import PASSIVE_MIN, photo_decision
from faceprint.liveness.passive import PassiveLiveness
from faceprint.server.auth import RequireRole
from faceprint.server.deps import ImagesDep, RecognizerDep
from faceprint.server.errors import ERROR, IMAGE_ERRORS
from faceprint.server.schemas import Box

#: a read key is enough: a liveness check changes nothing
router = APIRouter(tags=["liveness"], dependencies=[Depends(RequireRole("read"))])


async def passive_model(request: Request) -> PassiveLiveness:
    """The passive model, loaded by the first request that needs it and shared after."""
    state = request.app.state
    model = getattr(state, "passive_liveness", None)
    if model is None:  # the event loop runs one getter at a time: no race
        model = state.passive_liveness = PassiveLiveness()
    return model


PassiveDep = Annotated[PassiveLiveness, Depends(passive_model)]


class LiveFace(BaseModel):
    box: Box
    live: bool = Field(description=f"The live score is at least {PASSIVE_MIN}.")
    score: float = Field(description="Live probability, 0-1 (mean of the two MiniFASNet models' class 'live').")


class LivenessResponse(BaseModel):
    width: int
    height: int
    live: bool | None = Field(description="The decision for the largest face; null when there is no face.")
    faces: list[LiveFace] = Field(description="Every face, largest first; boxes are in the file's pixels.")


@router.post("/v1/liveness", response_model=LivenessResponse, responses={**IMAGE_ERRORS, 500: ERROR})
def liveness(
    image: Annotated[UploadFile, File(description="A photo of a face (a selfie, a camera frame).")],
    rec: RecognizerDep,
    images: ImagesDep,
    passive: PassiveDep,
) -> LivenessResponse:
    """Passive liveness of every face of one photo (the model alone: a photo shows no motion)."""
    with images.slots:
        loaded = images.read(image, "image")
        faces = rec.engine.detect(loaded.pixels)
        # the model flips each 80 px patch to BGR itself: no copy of the whole photo
        scores = passive.score_many([(loaded.pixels, f.box) for f in faces], rgb=True) if faces else []
    loaded.faces_to_original(faces)
    w, h = loaded.size
    out = []
    for k, (face, score) in enumerate(zip(faces, scores)):
        decision = photo_decision(float(score), k, face.box)
        out.append(LiveFace(box=Box.of(face.box), live=decision.live, score=round(decision.score, 4)))
    return LivenessResponse(width=w, height=h, live=out[0].live if out else None, faces=out)
