"""Request and response bodies of the REST API (they are also its OpenAPI schema)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

#: identity names travel in URL paths, so "/" is refused here (the gallery itself allows it)
NAME_PATTERN = r"^[^/\x00-\x1f\x7f]*[^/\s\x00-\x1f\x7f][^/\x00-\x1f\x7f]*$"
IdentityName = Field(min_length=1, max_length=200, pattern=NAME_PATTERN, examples=["obama"])


class ErrorBody(BaseModel):
    code: str = Field(description="Stable machine-readable code, e.g. no_face, unknown_identity.")
    message: str = Field(description="What went wrong, for people.")
    details: list[dict[str, Any]] | None = Field(default=None, description="Per-item errors, where there are several.")


class ErrorResponse(BaseModel):
    error: ErrorBody


class Health(BaseModel):
    status: Literal["ok"] = "ok"
    version: str


class ServiceInfo(BaseModel):
    version: str
    detector: str
    embedder: str
    model: str = Field(description="Template tag: templates compare only within one tag.")
    flip: bool
    identify_threshold: float
    verify_threshold: float
    identities: int
    templates: int
    max_upload_bytes: int
    max_pixels: int


class WhoAmI(BaseModel):
    id: int
    name: str
    role: Literal["admin", "read"]


class IdentityOut(BaseModel):
    name: str
    templates: int
    metadata: dict[str, Any]
    created_at: datetime | None
    thumbnail: bool = Field(description="Whether GET /v1/identities/{name}/thumbnail has an image stored.")


class IdentityList(BaseModel):
    identities: list[IdentityOut]


class IdentityCreate(BaseModel):
    name: str = IdentityName
    metadata: dict[str, Any] = Field(default_factory=dict)


class IdentityRename(BaseModel):
    name: str = IdentityName


class IdentityDeleted(BaseModel):
    name: str
    templates_removed: int


class EnrolFile(BaseModel):
    file: str
    status: Literal["added", "skipped", "error"]
    code: str | None = None
    message: str | None = None


class EnrolResponse(BaseModel):
    identity: str
    added: int
    skipped: int = Field(description="Photos already enrolled for this person.")
    failed: int
    templates: int = Field(description="Templates the identity has now.")
    files: list[EnrolFile]


class Box(BaseModel):
    left: int
    top: int
    right: int
    bottom: int

    @classmethod
    def of(cls, box: tuple[int, int, int, int]) -> Box:
        return cls(left=int(box[0]), top=int(box[1]), right=int(box[2]), bottom=int(box[3]))


class CandidateOut(BaseModel):
    identity: str
    score: float


class IdentifiedFace(BaseModel):
    box: Box
    detection_score: float
    identity: str | None = Field(description="The person, or null for a face that matches nobody.")
    score: float = Field(description="Cosine similarity to the best candidate (-1 when the gallery is empty).")
    candidates: list[CandidateOut]


class IdentifyResponse(BaseModel):
    width: int
    height: int
    model: str
    threshold: float
    faces: list[IdentifiedFace]


class DetectedFace(BaseModel):
    box: Box
    score: float
    landmarks: list[list[float]] = Field(description="Five (x, y) points: eyes' corners and the nose base.")


class DetectResponse(BaseModel):
    width: int
    height: int
    faces: list[DetectedFace]


class VerifyResponse(BaseModel):
    same: bool
    score: float
    threshold: float
    against: Literal["image", "identity"]
