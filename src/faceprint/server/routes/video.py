"""Video: the facial events of an uploaded clip (blinks, speaking, expression changes, micro-movements).

The clip goes to a temporary file (the video reader needs a file; the upload's size is capped by
the guard middleware, ``--max-upload-mb``), is tracked and named as ``faceprint video`` does, and
each track's events come back with the timeline rows. It holds one image slot while it runs, so
that clips and photos share the service's CPUs.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, File, Query, UploadFile
from pydantic import BaseModel, Field

from faceprint.errors import VideoError
from faceprint.server.auth import RequireRole
from faceprint.server.deps import ImagesDep, RecognizerDep
from faceprint.server.errors import ERROR
from faceprint.server.uploads import upload_name
from faceprint.video.events import KINDS

#: frames read per clip at most (10 minutes at 30 frames/s): the body cap bounds the file, this the work
MAX_FRAMES = 18000
#: containers the reader is given (the suffix tells FFmpeg what it is reading)
SUFFIXES = {".mp4", ".m4v", ".mov", ".mkv", ".avi", ".webm"}

router = APIRouter(tags=["video"], dependencies=[Depends(RequireRole("read"))])

EventKind = Literal["blink", "speaking", "expression", "micro"]


class EventOut(BaseModel):
    track_id: int = Field(description="The track (see appearances[].track_ids).")
    type: str = Field(description="blink, speaking, expression or micro.")
    onset_s: float = Field(description="Seconds from the start of the clip.")
    apex_s: float
    offset_s: float
    region: str = Field(description="eyes, mouth, face, or for micro: brows, eyes, mouth_corners, nose.")
    intensity: float = Field(
        description="blink: lid closure 0-1; speaking: lip motion; expression: probability; micro: flow "
        "at the apex as a share of the inter-ocular distance."
    )
    label: str | None = Field(description="expression: the new expression; else null.")


class AppearanceOut(BaseModel):
    identity: str
    track_id: int
    track_ids: list[int]
    start_s: float
    end_s: float
    start_frame: int
    end_frame: int
    score: float


class VideoEventsResponse(BaseModel):
    frames: int = Field(description="Frames processed.")
    fps: float | None
    appearances: list[AppearanceOut]
    events: list[EventOut]


@router.post(
    "/v1/video/events",
    response_model=VideoEventsResponse,
    responses={400: ERROR, 413: ERROR, 500: ERROR},
)
def video_events(
    video: Annotated[UploadFile, File(description="A video clip (mp4, mov, mkv, avi, webm).")],
    rec: RecognizerDep,
    images: ImagesDep,
    kinds: Annotated[
        list[EventKind] | None, Query(description="Event kinds to read (repeatable; default: all).")
    ] = None,
    every: Annotated[int, Query(ge=1, le=30, description="Run the detector every N frames.")] = 5,
    max_frames: Annotated[int, Query(ge=1, le=MAX_FRAMES, description="Stop after N frames.")] = MAX_FRAMES,
) -> VideoEventsResponse:
    """Track the faces of the clip, name them from the gallery, and list each track's facial events."""
    from faceprint.video.pipeline import recognize_video

    name = upload_name(video, "video")
    suffix = Path(name).suffix.lower()
    fd, tmp = tempfile.mkstemp(prefix="faceprint-clip-", suffix=suffix if suffix in SUFFIXES else ".mp4")
    try:
        with os.fdopen(fd, "wb") as f:
            video.file.seek(0)
            shutil.copyfileobj(video.file, f)
        with images.slots:
            try:
                result = recognize_video(tmp, rec, events=tuple(kinds or KINDS), every=every, max_frames=max_frames)
            except VideoError:
                raise VideoError(f"{name}: not a video this service can read") from None
    finally:
        os.unlink(tmp)
    if result.error is not None and result.stats.frames == 0:
        raise VideoError(f"{name}: {result.error}")
    return VideoEventsResponse(
        frames=result.stats.frames,
        fps=result.fps,
        appearances=[AppearanceOut(**{**a.to_dict(), "track_ids": a.track_ids}) for a in result.appearances],
        events=[EventOut(**e.to_dict()) for e in result.events],
    )
