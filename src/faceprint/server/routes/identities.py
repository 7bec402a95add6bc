"""People: list, create, look up, rename and remove them, show their face, enrol their photos."""

from __future__ import annotations

from pathlib import Path as FilePath
from typing import Annotated, Any

from fastapi import APIRouter, File, HTTPException, Query, Response, UploadFile
from fastapi.responses import JSONResponse

from faceprint.api import Recognizer
from faceprint.errors import FaceprintError
from faceprint.gallery.base import Identity
from faceprint.image import LoadedImage
from faceprint.server.auth import AdminKey, ReadKey
from faceprint.server.deps import ImagesDep, LivenessClaim, LivenessClaimDep, PrivatePathsDep, RecognizerDep, StoreDep
from faceprint.server.errors import AUTH_ERRORS, ERROR, IMAGE_ERRORS, batch_failed, error_code, public_message
from faceprint.server.schemas import (
    PAGE_DEFAULT,
    PAGE_MAX,
    Box,
    EnrolFile,
    EnrolResponse,
    IdentityCreate,
    IdentityDeleted,
    IdentityList,
    IdentityOut,
    IdentityRename,
    NameParam,
    NewNameParam,
)
from faceprint.server.store import ServerStore, file_thumbnail, make_thumbnail
from faceprint.server.uploads import ImageWork, upload_name

router = APIRouter(prefix="/v1/identities", tags=["identities"])


def identity_out(store: ServerStore, ident: Identity, thumbs: set[str] | None = None) -> IdentityOut:
    has_thumb = ident.name in thumbs if thumbs is not None else store.thumbnail(ident.name) is not None
    return IdentityOut(
        name=ident.name,
        templates=ident.templates,
        metadata=ident.metadata,
        created_at=ident.created_at,
        thumbnail=has_thumb,
    )


@router.get("", response_model=IdentityList, responses=AUTH_ERRORS)
def list_identities(
    _: ReadKey,
    rec: RecognizerDep,
    store: StoreDep,
    limit: Annotated[int, Query(ge=1, le=PAGE_MAX, description="People per page.")] = PAGE_DEFAULT,
    offset: Annotated[int, Query(ge=0, description="Skip this many (next_offset of the page before).")] = 0,
) -> IdentityList:
    """Everyone enrolled, by name, with template counts: one page at a time."""
    people = rec.gallery.identities()
    page = people[offset : offset + limit]
    thumbs = store.has_thumbnails()
    return IdentityList(
        identities=[identity_out(store, i, thumbs) for i in page],
        total=len(people),
        offset=offset,
        limit=limit,
        next_offset=offset + limit if offset + limit < len(people) else None,
    )


@router.post("", response_model=IdentityOut, status_code=201, responses={**AUTH_ERRORS, 400: ERROR, 409: ERROR})
def create_identity(body: IdentityCreate, _: AdminKey, rec: RecognizerDep, store: StoreDep) -> IdentityOut:
    """Add a person (with no photos yet)."""
    return identity_out(store, rec.gallery.add_identity(body.name, body.metadata))


@router.get("/{name}", response_model=IdentityOut, responses={**AUTH_ERRORS, 404: ERROR})
def get_identity(name: NameParam, _: ReadKey, rec: RecognizerDep, store: StoreDep) -> IdentityOut:
    return identity_out(store, rec.gallery.get_identity(name))


@router.patch("/{name}", response_model=IdentityOut, responses={**AUTH_ERRORS, 400: ERROR, 404: ERROR, 409: ERROR})
def rename_identity(
    name: NameParam, body: IdentityRename, _: AdminKey, rec: RecognizerDep, store: StoreDep
) -> IdentityOut:
    """Rename a person (their photos and thumbnail follow)."""
    rec.gallery.rename(name, body.name)
    return identity_out(store, rec.gallery.get_identity(body.name))


@router.delete("/{name}", response_model=IdentityDeleted, responses={**AUTH_ERRORS, 404: ERROR})
def delete_identity(
    name: NameParam,
    _: AdminKey,
    rec: RecognizerDep,
    purge: Annotated[
        bool,
        Query(
            description="Also erase what is left in the gallery's storage (compaction, index files, change log), "
            "so the removed templates and thumbnail cannot be read back; false for a faster delete in bulk, "
            "followed by one purging delete."
        ),
    ] = True,
) -> IdentityDeleted:
    """Remove a person, all their templates and their thumbnail; by default erased from the storage too."""
    return IdentityDeleted(name=name, templates_removed=rec.gallery.remove(name, purge=purge), purged=purge)


@router.get(
    "/{name}/thumbnail",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}}}, **AUTH_ERRORS, 404: ERROR},
)
def thumbnail(name: NameParam, _: ReadKey, rec: RecognizerDep, store: StoreDep, images: ImagesDep) -> Response:
    """A small JPEG of the person's face (from their first photo enrolled here)."""
    rec.gallery.get_identity(name)  # 404 unknown_identity
    jpeg = store.thumbnail(name) or _thumbnail_from_files(rec, store, images, name)
    if jpeg is None:
        raise HTTPException(404, {"code": "not_found", "message": f"no thumbnail for {name!r}"})
    return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "private, no-cache"})


def _thumbnail_from_files(rec: Recognizer, store: ServerStore, images: ImageWork, name: str) -> bytes | None:
    # people enrolled from the command line have file paths as sources: crop the stored box
    for t in rec.gallery.templates(name)[:3]:
        if not FilePath(t.source).is_file():
            continue
        try:
            with images.slots:
                jpeg = file_thumbnail(images.reader, t.source, t.box)
        except FaceprintError:
            continue
        store.set_thumbnail(name, jpeg)
        return jpeg
    return None


@router.post("/{name}/images", response_model=EnrolResponse, responses={**IMAGE_ERRORS, 404: ERROR})
def enrol(
    name: NewNameParam,  # checked by GuardMiddleware before the upload is read
    files: Annotated[list[UploadFile], File(description="One or more photos, one person in each.")],
    _: AdminKey,
    rec: RecognizerDep,
    store: StoreDep,
    images: ImagesDep,
    private: PrivatePathsDep,
    liveness: LivenessClaimDep,
    largest: Annotated[bool, Query(description="Take the largest face when a photo has several.")] = False,
    create: Annotated[bool, Query(description="Create the identity if it does not exist.")] = False,
) -> EnrolResponse | JSONResponse:
    """Enrol photos of one person. Each photo is stored or refused on its own; if every photo
    is refused, the answer is the first photo's error (with all of them in ``details``). A server
    started with ``--require-liveness`` needs ``liveness_session``, a passed liveness session whose
    face is each photo's (403 otherwise)."""
    if not create:
        rec.gallery.get_identity(name)  # 404 unknown_identity
    results: list[EnrolFile] = []
    thumb_done = False
    for k, upload in enumerate(files):
        source = upload_name(upload, f"file {k + 1}")
        try:
            with images.slots:
                loaded = images.read(upload, source)
                status, face_box, taken = _enrol_one(rec, name, loaded, largest, create, liveness)
            results.append(EnrolFile(file=source, status=status, **taken))
            if status == "added" and not thumb_done and face_box is not None:
                store.set_thumbnail(name, make_thumbnail(loaded.pixels, face_box))
                thumb_done = True
        except FaceprintError as exc:
            message = public_message(exc, private)
            results.append(EnrolFile(file=source, status="error", code=error_code(exc), message=message))
    failed = [r for r in results if r.status == "error"]
    if results and len(failed) == len(results):
        return batch_failed(failed, "enrolled")
    ident = rec.gallery.get_identity(name)
    return EnrolResponse(
        identity=ident.name,
        added=sum(r.status == "added" for r in results),
        skipped=sum(r.status == "skipped" for r in results),
        failed=len(failed),
        templates=ident.templates,
        files=results,
    )


def _enrol_one(
    rec: Recognizer, name: str, loaded: LoadedImage, largest: bool, create: bool, liveness: LivenessClaim | None = None
) -> tuple[str, tuple[int, int, int, int] | None, dict[str, Any]]:
    """One photo into the gallery: ("added", face box in ``loaded.pixels``, for the thumbnail, and
    which face was taken and why, for the answer) or ("skipped", None, {}); raises FaceprintError.
    The gallery and the answer get the box in the file's own pixels.

    Recognizer.enroll's steps one photo at a time, because the service needs each refusal's
    error *code* (EnrollResult keeps only the message) and the face box for the thumbnail.
    """
    if rec.gallery.store.has_source(name, loaded.sha256, rec.model):
        return "skipped", None, {}
    _, face, choice = rec.subject_face(name, loaded, largest)
    if liveness is not None:
        liveness.check(face, loaded.source)  # LivenessError: 403 liveness_mismatch
    rec.check_quality(loaded.pixels, face)  # LowQualityError: 422 low_quality, with the reason
    box = face.box
    loaded.faces_to_original([face])
    if not rec.store_face(name, face, loaded.source, loaded.sha256, create=create):
        return "skipped", None, {}
    reason = f"{choice.reason} ({choice.detail})" if choice.detail else choice.reason
    return "added", box, {"box": Box.of(face.box), "reason": reason}
