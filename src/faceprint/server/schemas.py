"""Request and response bodies of the REST API (they are also its OpenAPI schema)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import Path
from pydantic import AfterValidator, BaseModel, Field
from pydantic_core import PydanticCustomError

from faceprint.errors import InvalidNameError
from faceprint.names import MAX_NAME_LENGTH, RULE, normalize_name, validate_name

#: identity metadata is free-form JSON, but every listing returns it: keep it small and shallow
MAX_METADATA_BYTES = 16_384
MAX_METADATA_DEPTH = 8
#: GET /v1/identities pages
PAGE_DEFAULT = 100
PAGE_MAX = 1000


def valid_name(value: str) -> str:
    """faceprint.names' rule as a pydantic validator: the trimmed name, or an ``invalid_name`` error."""
    try:
        return validate_name(value)
    except InvalidNameError as exc:
        raise PydanticCustomError("invalid_name", "{reason}", {"reason": str(exc)}) from None


def _depth(value: Any) -> int:
    """How deeply containers nest in a JSON value (iterative: no recursion on hostile input)."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, (dict, list)):
            level += 1
            deepest = max(deepest, level)
            if level <= MAX_METADATA_DEPTH:
                stack.extend((v, level) for v in (item.values() if isinstance(item, dict) else item))
    return deepest


def bounded_metadata(value: dict[str, Any]) -> dict[str, Any]:
    if _depth(value) > MAX_METADATA_DEPTH:
        raise PydanticCustomError("metadata_too_deep", f"nests deeper than {MAX_METADATA_DEPTH} levels")
    try:
        # allow_nan=False: NaN is not JSON, and would make every later listing of it fail
        size = len(json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode())
    except ValueError:
        raise PydanticCustomError("metadata_not_json", "holds NaN or Infinity, which JSON cannot carry") from None
    if size > MAX_METADATA_BYTES:
        raise PydanticCustomError(
            "metadata_too_large", f"is {size:,} bytes as JSON, over the limit of {MAX_METADATA_BYTES:,}"
        )
    return value


IdentityName = Annotated[
    str,
    AfterValidator(valid_name),
    Field(min_length=1, examples=["obama"], description=f"Trimmed, then {RULE}."),
]
#: a name in a URL path, looked up as the gallery stores names (trimmed, NFC; room for padding
#: and decomposed forms). Not held to the naming rule: older galleries may hold names that break it
NameParam = Annotated[
    str,
    Path(min_length=1, max_length=2 * MAX_NAME_LENGTH, description="Identity name."),
    AfterValidator(normalize_name),
]
#: a name in a URL path that may create the identity: it must follow the naming rule
NewNameParam = Annotated[
    str, Path(min_length=1, description=f"Identity name: trimmed, then {RULE}."), AfterValidator(valid_name)
]
Metadata = Annotated[
    dict[str, Any],
    AfterValidator(bounded_metadata),
    Field(
        description=f"Free-form JSON, at most {MAX_METADATA_BYTES:,} bytes and {MAX_METADATA_DEPTH} levels deep.",
        examples=[{"role": "president"}],
    ),
]


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
    max_cluster_files: int = Field(description="Photos one POST /v1/cluster may carry.")


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
    identities: list[IdentityOut] = Field(description="One page of people, by name.")
    total: int = Field(description="People in the gallery.")
    offset: int = Field(description="Position of the first person of this page.")
    limit: int
    next_offset: int | None = Field(description="The offset of the next page; null on the last one.")


class IdentityCreate(BaseModel):
    name: IdentityName
    metadata: Metadata = Field(default_factory=dict)


class IdentityRename(BaseModel):
    name: IdentityName


class IdentityDeleted(BaseModel):
    name: str
    templates_removed: int
    purged: bool = Field(description="Whether the storage was compacted so the removed data cannot be read back.")


class EnrolFile(BaseModel):
    file: str
    status: Literal["added", "skipped", "error"]
    code: str | None = None
    message: str | None = None
    box: Box | None = Field(default=None, description="The face enrolled (status added), in the photo's pixels.")
    reason: str | None = Field(
        default=None,
        description="Why that face: 'only face', 'agrees with the person's other photos', 'dominant face', "
        "or 'largest face (asked for)'.",
    )


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


class AuditRecord(BaseModel):
    id: int
    at: datetime = Field(description="When the request was answered (UTC).")
    key_id: int | None = Field(description="The API key's id (see faceprint keys list); never the key itself.")
    key_name: str
    method: str
    route: str = Field(description="The route, as documented, e.g. /v1/identify.")
    status: int = Field(description="The HTTP status of the answer.")
    duration_ms: float = Field(description="From the request's arrival to its answer.")
    request: dict[str, Any] = Field(
        description="What was asked: parameters, and each upload's file name, bytes and sha256 (never the image)."
    )
    answer: dict[str, Any] = Field(
        description="What was answered: names, scores and decisions (or same/score for a verification), "
        "or the error code."
    )


class AuditList(BaseModel):
    records: list[AuditRecord] = Field(description="One page of the log, newest first.")
    total: int = Field(description="Records that match the filters.")
    offset: int
    limit: int
    next_offset: int | None = Field(description="The offset of the next page; null on the last one.")


# ------------------------------------------------------------------------- encrypted identification
#: base64 text of one ciphertext or of the encryption parameters (SEAL's own limit on a ciphertext is far larger;
#: the request body cap, --max-upload-mb, bounds the whole query)
MAX_CIPHERTEXT_B64 = 4_000_000


class EncryptedGalleryInfo(BaseModel):
    scheme: str = Field(description="The encrypted-matching scheme (faceprint.privacy.encrypted.SCHEME).")
    model: str = Field(description="The template model the gallery holds: encrypt templates of this model.")
    rows: int = Field(description="Scoring vectors (one per identity with centroid scoring).")
    dim: int = Field(description="Values per template.")
    identities: int
    threshold: float = Field(description="The gallery's identification threshold (cosine).")


class EncryptedIdentifyRequest(BaseModel):
    model: str = Field(max_length=200, description="The template model the probe was made with (see GET).")
    context: str = Field(
        max_length=MAX_CIPHERTEXT_B64,
        description="Base64 of the CKKS encryption parameters (SEAL EncryptionParameters.save): no key of any kind.",
    )
    fold: int = Field(ge=1, le=16384, description="Template values per probe ciphertext (a power of two).")
    probe: list[Annotated[str, Field(max_length=MAX_CIPHERTEXT_B64)]] = Field(
        min_length=1, max_length=1024, description="Base64 of each probe ciphertext (SEAL Ciphertext.save)."
    )


class EncryptedIdentifyResponse(BaseModel):
    scheme: str
    model: str
    threshold: float
    names: list[str] = Field(description="The identities; the client ranks them after decrypting.")
    owners: list[int] = Field(description="For each scoring row, the index of its identity in names.")
    rows: int
    dim: int
    fold: int
    scores: list[str] = Field(description="Base64 of each result ciphertext: the encrypted row scores.")


# ------------------------------------------------------------------------------ liveness challenge
class LivenessActionOut(BaseModel):
    action: str = Field(description="blink, turn_left, turn_right, smile or open_mouth (left/right: the person's own).")
    passed: bool | None = Field(description="null while not reached or under way.")
    value: float = Field(description="The action's measure at its best (degrees, closure, happy score, lip gap).")
    time_s: float | None = Field(description="When it passed or failed, seconds from the session's start.")
    detail: str


class LivenessSessionState(BaseModel):
    id: str
    status: Literal["running", "passed", "failed"]
    action: str | None = Field(description="The action asked for now; null before the first and after the last.")
    instruction: str = Field(description="What to show the person.")
    index: int
    actions: list[LivenessActionOut]
    progress: float = Field(description="0-1 towards the current action.")
    time_left_s: float | None = Field(description="Seconds left for the current step.")
    reason: str | None = Field(description="Why the session failed.")
    face: list[int] | None = Field(description="The tracked face's box in the last frame: left, top, right, bottom.")
    passive: float | None = Field(description="Mean passive (MiniFASNet) live score so far.")
    continuity: float | None = Field(description="Lowest similarity of the face's template to its first.")
    frames: int = Field(description="Frames read so far.")
    expires_in_s: float = Field(description="Seconds until the session is forgotten.")


class LivenessChallengeInfo(BaseModel):
    required: bool = Field(description="Identify and enrol need a passed session (faceprint serve --require-liveness).")
    actions: list[str] | None = Field(description="The fixed actions every session asks; null: 2-3 at random.")
    choices: list[str] = Field(description="Every action a session may ask.")
    action_s: float = Field(description="Seconds allowed for each action.")
    claim_s: float = Field(description="Seconds a passed session stays usable for identify or enrol (once).")
