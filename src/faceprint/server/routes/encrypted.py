"""Identification on encrypted templates: the service scores a probe it cannot read.

The client keeps the secret key (:mod:`faceprint.privacy.encrypted`): it reads the layout from
``GET /v1/identify/encrypted``, sends its encrypted template to ``POST /v1/identify/encrypted`` and
gets back encrypted scores of every identity with their names, which only it can decrypt, rank and
decide on. The service holds no key, so neither the template nor the scores nor the decision is
ever known here (the audit log records only the sizes of the query and the answer).

A query is at most 128 ciphertexts of about 33 KB (4.2 MB, 5.6 MB as base64 JSON) with the default
parameters, within the service's default 20 MB request cap (``faceprint serve --max-upload-mb``).
"""

from __future__ import annotations

import base64
import binascii
import threading
from typing import TYPE_CHECKING

from fastapi import APIRouter, Depends, Request

from faceprint.errors import FaceprintError
from faceprint.server.audit import audited
from faceprint.server.auth import RequireRole
from faceprint.server.deps import RecognizerDep
from faceprint.server.errors import AUTH_ERRORS, ERROR
from faceprint.server.schemas import EncryptedGalleryInfo, EncryptedIdentifyRequest, EncryptedIdentifyResponse

if TYPE_CHECKING:  # TenSEAL is optional: the privacy module is imported when a request needs it
    from faceprint.privacy.encrypted import GallerySide

#: like /v1/identify, a key with the read role
router = APIRouter(tags=["recognition"], dependencies=[Depends(RequireRole("read"))])
_made = threading.Lock()


def _side(request: Request) -> GallerySide:
    """The app's gallery side (its packed plaintexts are kept between queries), made on first use."""
    from faceprint.privacy.encrypted import GallerySide, seal

    seal()  # the missing-TenSEAL error before any work
    state = request.app.state
    with _made:
        side = getattr(state, "encrypted_side", None)
        if side is None:
            rec = state.recognizer
            side = state.encrypted_side = GallerySide(rec.gallery, rec.model)
    return side


def _decode(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        from faceprint.privacy.encrypted import BadEncryptedQuery

        raise BadEncryptedQuery(f"{what} is not base64") from None


@router.get("/v1/identify/encrypted", response_model=EncryptedGalleryInfo, responses={**AUTH_ERRORS, 500: ERROR})
def encrypted_info(request: Request, rec: RecognizerDep) -> EncryptedGalleryInfo:
    """What a client needs to lay out its encrypted template: the model, scoring rows and dimension."""
    from faceprint.privacy.encrypted import SCHEME

    rows, scorer = _side(request).current()
    return EncryptedGalleryInfo(
        scheme=SCHEME,
        model=rec.model,
        rows=scorer.rows,
        dim=scorer.dim,
        identities=len(rows.names),
        threshold=rec.identify_threshold,
    )


@router.post(
    "/v1/identify/encrypted",
    response_model=EncryptedIdentifyResponse,
    responses={**AUTH_ERRORS, 400: ERROR, 413: ERROR, 500: ERROR},
)
def identify_encrypted(
    request: Request, body: EncryptedIdentifyRequest, rec: RecognizerDep
) -> EncryptedIdentifyResponse:
    """Encrypted scores of every identity for an encrypted template (CKKS): decrypt them with the
    secret key that never left the client."""
    from faceprint.privacy.encrypted import SCHEME, answer

    asked = {
        "model": body.model,
        "fold": body.fold,
        "probe_ciphertexts": len(body.probe),
        "context_chars": len(body.context),
    }
    with audited(request, asked) as note:
        if body.model != rec.model:
            raise FaceprintError(
                f"the probe was made with model {body.model}, the gallery holds {rec.model}: scores would mean nothing"
            )
        side = _side(request)
        probe = [_decode(text, f"probe ciphertext {i}") for i, text in enumerate(body.probe)]
        got = answer(side, _decode(body.context, "context"), probe, body.fold)
        note.answer = {"rows": got.rows, "fold": got.fold, "result_ciphertexts": len(got.results)}
    return EncryptedIdentifyResponse(
        scheme=SCHEME,
        model=rec.model,
        threshold=rec.identify_threshold,
        names=got.names,
        owners=got.owners,
        rows=got.rows,
        dim=got.dim,
        fold=got.fold,
        scores=[base64.b64encode(r).decode("ascii") for r in got.results],
    )
