"""Clustering: who appears in a batch of photos, grouped by person without a gallery.

Each upload is read and analysed on its own (one image slot, within the pixel budget, as the
enrol endpoint does), keeping only its faces' templates, boxes and small thumbnails; the
templates are then grouped by :func:`faceprint.cluster.cluster_templates`, and each group's mean
template is looked up in the gallery, so that the page can suggest a name for it.
"""

from __future__ import annotations

import base64
from typing import Annotated, Any, Literal

import numpy as np
from fastapi import APIRouter, Depends, File, HTTPException, Query, Request, UploadFile
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from faceprint.api import Recognizer
from faceprint.cluster import DEFAULT_THRESHOLD, cluster_templates
from faceprint.errors import FaceprintError
from faceprint.pipeline import image_faces
from faceprint.server.audit import audited, upload_summary
from faceprint.server.auth import RequireRole
from faceprint.server.deps import ImagesDep, PrivatePathsDep, RecognizerDep
from faceprint.server.errors import IMAGE_ERRORS, batch_failed, error_code, public_message
from faceprint.server.schemas import Box, CandidateOut
from faceprint.server.store import make_thumbnail
from faceprint.server.uploads import ImageWork, upload_name
from faceprint.types import Face

#: photos per request: with the body cap (20 MB by default) and the pixel budget this bounds a
#: request's work (about 0.1-0.5 s a photo) and its answer
MAX_FILES = 200
#: faces per request (crowd photos): each costs a thumbnail in the answer (~3 KB as base64)
MAX_FACES = 2000
#: thumbnails in the answer: enough to tell people apart in a strip, small enough to inline
THUMB_SIDE = 80
THUMB_QUALITY = 80
#: candidates listed per group
TOP_K = 3

# clustering changes nothing, so a read key is enough
router = APIRouter(tags=["clustering"], dependencies=[Depends(RequireRole("read"))])


class ClusterFace(BaseModel):
    file: str = Field(description="The upload's file name.")
    file_index: int = Field(description="The upload's position in the request (0 = first): its entry in files.")
    face: int = Field(description="The face's position in its photo, largest first (0 = the largest).")
    box: Box = Field(description="The face, in the photo's own pixels.")
    score: float = Field(description="Cosine similarity to the mean template of its group (1 for a face alone).")
    thumbnail: str = Field(description=f"The face as a data:image/jpeg;base64 URL, at most {THUMB_SIDE} px.")


class ClusterGroup(BaseModel):
    id: int = Field(description="0 = the largest group; groups are listed largest first.")
    size: int = Field(description="Faces in the group.")
    photos: int = Field(description="Photos those faces come from.")
    identity: str | None = Field(
        description="The enrolled person the group's mean template matches at or above the identify threshold; "
        "null for nobody."
    )
    score: float = Field(description="Cosine similarity to the best candidate (-1 when the gallery is empty).")
    candidates: list[CandidateOut] = Field(description=f"The {TOP_K} nearest enrolled people, best first.")
    faces: list[ClusterFace] = Field(description="In the order of the uploads.")


class ClusterFile(BaseModel):
    file: str
    status: Literal["ok", "error"]
    faces: int = Field(default=0, description="Faces found in the photo.")
    code: str | None = None
    message: str | None = None


class ClusterResponse(BaseModel):
    model: str = Field(description="Template tag of the embeddings.")
    threshold: float = Field(description="The clustering threshold used (cosine two single faces need).")
    min_size: int
    identify_threshold: float = Field(description="The threshold a group's identity was decided with.")
    faces: int = Field(description="Faces found in all photos.")
    failed: int = Field(description="Photos refused (see files).")
    groups: list[ClusterGroup]
    ungrouped: list[ClusterFace] = Field(description="Faces whose group is smaller than min_size.")
    files: list[ClusterFile] = Field(description="One entry per upload, in order.")


def _too_many(what: str, count: int, limit: int) -> HTTPException:
    return HTTPException(
        413,
        {
            "code": f"too_many_{what}",
            "message": f"{count} {what} is over the limit of {limit} a request; split the photos into smaller batches",
        },
    )


def _faces_of(rec: Recognizer, images: ImageWork, upload: UploadFile, source: str) -> tuple[list[Face], list[str]]:
    """Every face of one upload with its template and box (in the file's pixels), and each face's
    thumbnail as a data URL; raises FaceprintError (no_face for a photo without one)."""
    with images.slots:
        loaded = images.read(upload, source)
        faces = image_faces(rec.engine, loaded, "subject")  # every face with its template; at least one
        thumbs = [make_thumbnail(loaded.pixels, f.box, THUMB_SIDE, THUMB_QUALITY) for f in faces]
    loaded.faces_to_original(faces)  # after the thumbnails: they are cut from the reduced pixels
    return faces, ["data:image/jpeg;base64," + base64.b64encode(t).decode("ascii") for t in thumbs]


@router.post("/v1/cluster", response_model=ClusterResponse, responses=IMAGE_ERRORS)
def cluster(
    request: Request,
    files: Annotated[list[UploadFile], File(description=f"Photos (at most {MAX_FILES}), any number of faces in each.")],
    rec: RecognizerDep,
    images: ImagesDep,
    private: PrivatePathsDep,
    threshold: Annotated[
        float, Query(ge=-1.0, le=1.0, description="Cosine similarity two single faces need to be grouped.")
    ] = DEFAULT_THRESHOLD,
    min_size: Annotated[
        int, Query(ge=1, le=MAX_FACES, description="Smaller groups are not groups: their faces go to ungrouped.")
    ] = 1,
) -> ClusterResponse | JSONResponse:
    """Group the faces of several photos by person (largest group first), each group with the
    enrolled person it matches, if any. Each photo is read or refused on its own; if every photo
    is refused, the answer is the first photo's error (with all of them in ``details``)."""
    if len(files) > MAX_FILES:
        raise _too_many("files", len(files), MAX_FILES)
    # the groups are matched against the gallery: an identification, so it is in the audit log
    asked = {
        "threshold": threshold,
        "min_size": min_size,
        "files": [upload_summary(f, f"file {k + 1}") for k, f in enumerate(files)],
    }
    with audited(request, asked) as note:
        response = _cluster(files, rec, images, private, threshold, min_size)
        if isinstance(response, JSONResponse):
            note.refused(response)
        else:
            note.answer = _audit_answer(response)
    return response


def _audit_answer(response: ClusterResponse) -> dict[str, Any]:
    """The audit log's record: per group, its size, whom it matches (null: nobody), the score and
    the candidates shown (no faces, no thumbnails)."""
    return {
        "faces": response.faces,
        "failed": response.failed,
        "identify_threshold": response.identify_threshold,
        "groups": [
            {
                "size": g.size,
                "identity": g.identity,
                "score": g.score,
                "decision": "match" if g.identity is not None else "unknown",
                "candidates": [[c.identity, c.score] for c in g.candidates],
            }
            for g in response.groups
        ],
    }


def _cluster(
    files: list[UploadFile],
    rec: Recognizer,
    images: ImageWork,
    private: tuple[str, ...],
    threshold: float,
    min_size: int,
) -> ClusterResponse | JSONResponse:
    outcomes: list[ClusterFile] = []
    found: list[ClusterFace] = []
    vectors: list[np.ndarray] = []
    for k, upload in enumerate(files):
        source = upload_name(upload, f"file {k + 1}")
        try:
            faces, thumbs = _faces_of(rec, images, upload, source)
        except FaceprintError as exc:
            message = public_message(exc, private)
            outcomes.append(ClusterFile(file=source, status="error", code=error_code(exc), message=message))
            continue
        outcomes.append(ClusterFile(file=source, status="ok", faces=len(faces)))
        for j, (face, thumb) in enumerate(zip(faces, thumbs)):
            # score: filled in once the groups are known
            found.append(
                ClusterFace(file=source, file_index=k, face=j, box=Box.of(face.box), score=1.0, thumbnail=thumb)
            )
            vectors.append(face.embedding)  # type: ignore[arg-type]
        if len(found) > MAX_FACES:
            raise _too_many("faces", len(found), MAX_FACES)
    failed = [o for o in outcomes if o.status == "error"]
    if len(failed) == len(outcomes):
        return batch_failed(failed, "clustered")

    templates = np.stack(vectors)
    # one FAISS thread: the service's concurrency comes from its requests
    result = cluster_templates(templates, threshold, min_size, threads=1)
    for face, score in zip(found, result.scores.tolist()):
        face.score = round(score, 4)
    members = [result.members(c) for c in range(result.n_clusters)]
    return ClusterResponse(
        model=rec.model,
        threshold=threshold,
        min_size=min_size,
        identify_threshold=rec.identify_threshold,
        faces=len(found),
        failed=len(failed),
        groups=_groups(rec, templates, members, found),
        ungrouped=[found[i] for i in np.flatnonzero(result.labels < 0)],
        files=outcomes,
    )


def _groups(
    rec: Recognizer, templates: np.ndarray, members: list[np.ndarray], found: list[ClusterFace]
) -> list[ClusterGroup]:
    """Each group with the enrolled person its mean template matches (as identify decides)."""
    means = [templates[m].sum(axis=0) for m in members]
    # identify_faces wants faces that carry templates: the means stand in, boxless
    probes = [Face(box=(0, 0, 0, 0), score=0.0, embedding=v / max(float(np.linalg.norm(v)), 1e-12)) for v in means]
    matches = rec.identify_faces(probes, top_k=TOP_K)
    groups = []
    for c, (m, match) in enumerate(zip(members, matches)):
        faces = [found[i] for i in m]
        groups.append(
            ClusterGroup(
                id=c,
                size=len(faces),
                photos=len({f.file_index for f in faces}),
                identity=match.identity,
                score=round(float(match.score), 4),
                candidates=[
                    CandidateOut(identity=x.identity, score=round(float(x.score), 4)) for x in match.candidates
                ],
                faces=faces,
            )
        )
    return groups
