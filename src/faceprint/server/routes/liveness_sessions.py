"""Liveness challenge sessions: the page's camera sends frames, the server says what to do next.

``POST /v1/liveness/sessions`` starts one (the server picks the actions), ``POST
/v1/liveness/sessions/{id}/frames`` sends a camera frame (a JPEG, multipart field ``frame``, with the
time it was taken, ``t``, in seconds from the session's creation), ``GET /v1/liveness/sessions/{id}``
reads the state. See :mod:`faceprint.server.liveness` and :mod:`faceprint.liveness.challenge`.
"""

from __future__ import annotations

from typing import Annotated

import numpy as np
from fastapi import APIRouter, File, Form, Path, UploadFile

from faceprint.liveness.challenge import ACTIONS
from faceprint.server.auth import ReadKey
from faceprint.server.deps import ImagesDep, LivenessDep
from faceprint.server.errors import ERROR, IMAGE_ERRORS
from faceprint.server.liveness import Held, LivenessSessions
from faceprint.server.schemas import LivenessActionOut, LivenessChallengeInfo, LivenessSessionState

router = APIRouter(prefix="/v1/liveness", tags=["liveness"])

SessionId = Annotated[str, Path(min_length=1, max_length=64, description="The id the session was created with.")]


def state_out(sessions: LivenessSessions, held: Held) -> LivenessSessionState:
    s = sessions.state(held)
    d = s.to_dict()
    return LivenessSessionState(
        id=held.id,
        status=s.status,
        action=s.action,
        instruction=s.instruction,
        index=s.index,
        actions=[LivenessActionOut(**a) for a in d["actions"]],
        progress=d["progress"],
        time_left_s=d["time_left_s"],
        reason=s.reason,
        face=d["face"],
        passive=d["passive"],
        continuity=d["continuity"],
        frames=held.session.frames,
        expires_in_s=round(max(0.0, sessions.ttl_s - held.clock()), 3),
    )


@router.get("/challenge", response_model=LivenessChallengeInfo, responses=IMAGE_ERRORS)
def challenge_info(_: ReadKey, sessions: LivenessDep) -> LivenessChallengeInfo:
    """How this server runs liveness challenges: whether identify and enrol need one, and the
    fixed actions it asks (null: 2-3 drawn at random each time)."""
    return LivenessChallengeInfo(
        required=sessions.required,
        actions=sessions.actions,
        choices=list(ACTIONS),
        action_s=sessions.config.action_s,
        claim_s=sessions.claim_s,
    )


@router.post("/sessions", response_model=LivenessSessionState, status_code=201, responses={**IMAGE_ERRORS, 429: ERROR})
def create_session(key: ReadKey, sessions: LivenessDep) -> LivenessSessionState:
    """Start a challenge: 2-3 actions drawn at random by the server (or the fixed list it was started
    with, ``faceprint serve --liveness-actions``), each within a time limit. Show ``instruction``
    and send frames until ``status`` is passed or failed."""
    return state_out(sessions, sessions.create(key.id))


@router.get("/sessions/{session_id}", response_model=LivenessSessionState, responses={**IMAGE_ERRORS, 404: ERROR})
def get_session(session_id: SessionId, key: ReadKey, sessions: LivenessDep) -> LivenessSessionState:
    """The session's state (a session past its step's time limit reads as failed)."""
    return state_out(sessions, sessions.get(session_id, key.id))


@router.post(
    "/sessions/{session_id}/frames", response_model=LivenessSessionState, responses={**IMAGE_ERRORS, 404: ERROR}
)
def send_frame(
    session_id: SessionId,
    frame: Annotated[UploadFile, File(description="A camera frame (JPEG or PNG), unmirrored.")],
    key: ReadKey,
    sessions: LivenessDep,
    images: ImagesDep,
    t: Annotated[
        float | None,
        Form(ge=0, le=3600, description="When the frame was taken, seconds from the session's creation."),
    ] = None,
) -> LivenessSessionState:
    """Read one frame. Send them in order, about 8-10 a second, one at a time."""
    held = sessions.get(session_id, key.id)
    with images.slots:
        loaded = images.read(frame, "frame")
        sessions.frame(held, np.ascontiguousarray(loaded.pixels[..., ::-1]), t)
    return state_out(sessions, held)
