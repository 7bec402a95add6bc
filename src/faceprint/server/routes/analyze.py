"""Face analysis: head pose, eyes, mouth, gaze, quality, expression and face-likeness of each face."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, File, Query, Request, UploadFile
from pydantic import BaseModel, Field

from faceprint.analyze import face_record
from faceprint.errors import ModelError
from faceprint.server.auth import RequireRole
from faceprint.server.deps import FaceAnalyzerDep, ImagesDep, RecognizerDep
from faceprint.server.errors import ERROR, IMAGE_ERRORS
from faceprint.server.schemas import Box

#: a read key is enough: analysis changes nothing (GuardMiddleware checks it before the upload is read)
router = APIRouter(tags=["analysis"], dependencies=[Depends(RequireRole("read"))])


class PoseOut(BaseModel):
    yaw: float = Field(description="Degrees; + = turned to the subject's left (the image's right).")
    pitch: float = Field(description="Degrees; + = chin up.")
    roll: float = Field(description="Degrees; + = tilted to the subject's left shoulder (clockwise in the image).")


class GazeOut(BaseModel):
    horizontal: float = Field(description="Where the irises sit in the eyes, -1 to 1, + = the image's right.")
    vertical: float = Field(description="-1 to 1, + = up (relative to the eyes, not the camera).")


class ExpressionOut(BaseModel):
    label: str = Field(description="angry, disgust, fear, happy, sad, surprise, neutral (or unknown).")
    scores: dict[str, float] = Field(description="Probability of each label (empty when the backend gives none).")
    backend: str


class AnalyzedFace(BaseModel):
    box: Box
    score: float = Field(description="The detector's score.")
    quality: float = Field(description="0-1: the share of LFW training faces of lower quality (0.5 = typical).")
    quality_factors: dict[str, float | None] = Field(
        description="Each 0 (unusable) to 1 (fine): sharpness, exposure, size, pose, eyes_open, occlusion, "
        "flip_agreement (null where not measured)."
    )
    pose: PoseOut
    eyes_open: float = Field(description="0 (shut) to 1 (open).")
    mouth_open: float = Field(description="0 (closed) to 1 (wide open).")
    gaze: GazeOut
    expression: ExpressionOut | None = Field(description="Null when not asked for (expression=none).")
    face_like: float | None = Field(description="How face-like the template is, 0-1 (null where not installed).")


class AnalyzeResponse(BaseModel):
    width: int
    height: int
    faces: list[AnalyzedFace]


@router.post("/v1/analyze", response_model=AnalyzeResponse, responses={**IMAGE_ERRORS, 500: ERROR})
def analyze(
    request: Request,
    image: Annotated[UploadFile, File(description="A photo with any number of faces.")],
    rec: RecognizerDep,
    images: ImagesDep,
    analyzer: FaceAnalyzerDep,
    expression: Annotated[
        Literal["builtin", "none"], Query(description="The built-in expression model, or no expression.")
    ] = "builtin",
) -> AnalyzeResponse:
    """Analyse every face of the photo, largest first; boxes are in the file's pixels."""
    if expression == "builtin" and request.app.state.expression_error:
        raise ModelError(request.app.state.expression_error)
    with images.slots:
        loaded = images.read(image, "image")
        faces = rec.engine.analyze(loaded.pixels)
        sx, sy = loaded.scale  # a large photo is analysed reduced: its size factor counts file pixels
        analyzer.analyze(loaded.pixels, faces, pixel_scale=(sx + sy) / 2, expression=expression == "builtin")
    loaded.faces_to_original(faces)
    w, h = loaded.size
    out = []
    for face in faces:
        record = face_record(face)
        record["box"] = Box.of(face.box)
        out.append(AnalyzedFace.model_validate(record))
    return AnalyzeResponse(width=w, height=h, faces=out)
