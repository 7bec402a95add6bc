"""One photo at a time: list a person's enrolled photos (templates), delete one, see its face.

Sources are shown as file names only: photos enrolled from the command line keep their file's
path in the gallery, which stays on the server. Those files, where still readable, give each
photo its thumbnail; photos uploaded to the service are not kept, so theirs have none.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path as FilePath
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Response
from pydantic import BaseModel, Field

from faceprint.api import Recognizer
from faceprint.errors import FaceprintError, PhotoNotFoundError
from faceprint.gallery.base import Template
from faceprint.names import shown
from faceprint.server.auth import AdminKey, ReadKey
from faceprint.server.deps import ImagesDep, RecognizerDep
from faceprint.server.errors import ERROR
from faceprint.server.schemas import Box, NameParam
from faceprint.server.store import file_thumbnail

router = APIRouter(prefix="/v1/identities/{name}/photos", tags=["photos"])

PhotoId = Annotated[int, Path(ge=1, le=2**62, description="The photo's id, from GET .../photos.")]
ERRORS: dict[int | str, dict[str, Any]] = {401: ERROR, 403: ERROR, 404: ERROR, 422: ERROR}


class PhotoOut(BaseModel):
    id: int
    source: str = Field(description="The photo's file name, as it was enrolled (never a server path).")
    box: Box = Field(description="The face, in the photo's pixels.")
    created_at: datetime | None
    quality: float | None = Field(description="The face detector's score for this face.")
    model: str = Field(description="Template tag of the embedding.")
    thumbnail: bool = Field(description="Whether GET .../photos/{id}/thumbnail can show this face.")


class PhotoList(BaseModel):
    identity: str
    photos: list[PhotoOut]


class PhotoDeleted(BaseModel):
    identity: str
    photo: PhotoOut
    templates: int = Field(description="Templates the identity has left.")


def file_name(source: str) -> str:
    return source.replace("\\", "/").rsplit("/", 1)[-1]


def _readable(t: Template) -> FilePath | None:
    # only absolute paths (command-line enrolment): an uploaded photo's bare file name must not be
    # looked up relative to wherever the server runs
    path = FilePath(t.source)
    return path if path.is_absolute() and path.is_file() else None


def photo_out(t: Template) -> PhotoOut:
    return PhotoOut(
        id=int(t.id or 0),
        source=file_name(t.source),
        box=Box.of(t.box),
        created_at=t.created_at,
        quality=None if t.quality is None else round(float(t.quality), 4),
        model=t.model,
        thumbnail=_readable(t) is not None,
    )


def _photo(rec: Recognizer, name: str, photo_id: int) -> Template:
    for t in rec.gallery.templates(name):  # UnknownIdentityError: 404
        if t.id == photo_id:
            return t
    raise PhotoNotFoundError(f"{shown(name.strip())} has no photo with id {photo_id}")


@router.get("", response_model=PhotoList, responses=ERRORS)
def list_photos(name: NameParam, _: ReadKey, rec: RecognizerDep) -> PhotoList:
    """The person's photos: one entry per enrolled face, oldest first."""
    gallery = rec.gallery
    return PhotoList(identity=gallery.get_identity(name).name, photos=[photo_out(t) for t in gallery.templates(name)])


@router.delete("/{photo_id}", response_model=PhotoDeleted, responses=ERRORS)
def delete_photo(name: NameParam, photo_id: PhotoId, _: AdminKey, rec: RecognizerDep) -> PhotoDeleted:
    """Remove one photo's template (the person stays, with their other photos)."""
    gallery = rec.gallery
    removed = gallery.remove_template(name, photo_id)
    ident = gallery.get_identity(name)
    return PhotoDeleted(identity=ident.name, photo=photo_out(removed), templates=ident.templates)


@router.get(
    "/{photo_id}/thumbnail",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}}}, **ERRORS},
)
def photo_thumbnail(name: NameParam, photo_id: PhotoId, _: ReadKey, rec: RecognizerDep, images: ImagesDep) -> Response:
    """A small JPEG of this photo's face, cut from its file (photos enrolled from files only)."""
    t = _photo(rec, name, photo_id)
    path = _readable(t)
    jpeg = None
    if path is not None:
        try:
            with images.slots:
                jpeg = file_thumbnail(images.reader, path, t.box)
        except FaceprintError:
            jpeg = None
    if jpeg is None:
        raise HTTPException(404, {"code": "not_found", "message": f"no thumbnail for photo {photo_id}"})
    return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"})
