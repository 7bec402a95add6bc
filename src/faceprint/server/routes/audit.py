"""The audit log, for admins: who identified or verified whom, when, and what the answer was."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from faceprint.server.audit import AuditLog
from faceprint.server.auth import RequireRole
from faceprint.server.errors import AUTH_ERRORS
from faceprint.server.schemas import PAGE_DEFAULT, PAGE_MAX, AuditList, AuditRecord
from faceprint.server.store import ServerStore

router = APIRouter(tags=["audit"], dependencies=[Depends(RequireRole("admin"))])


def _audit_log(request: Request) -> AuditLog:
    # a read-only gallery's app writes no log, but what is there can still be read
    audit: AuditLog | None = request.app.state.audit
    store: ServerStore = request.app.state.store
    return audit if audit is not None else AuditLog(store, retention_days=0)


@router.get("/v1/audit", response_model=AuditList, responses=AUTH_ERRORS)
def audit_log(
    request: Request,
    limit: Annotated[int, Query(ge=1, le=PAGE_MAX, description="Records per page.")] = PAGE_DEFAULT,
    offset: Annotated[int, Query(ge=0, description="Skip this many (next_offset of the page before).")] = 0,
    key: Annotated[int | None, Query(ge=1, le=2**63 - 1, description="Only this API key's requests (its id).")] = None,
    route: Annotated[
        str | None, Query(min_length=1, max_length=200, description="Only this route, e.g. /v1/identify.")
    ] = None,
    since: Annotated[datetime | None, Query(description="From this time on (ISO 8601; UTC if no zone).")] = None,
    until: Annotated[datetime | None, Query(description="Before this time (ISO 8601; UTC if no zone).")] = None,
) -> AuditList:
    """Identifications and verifications made through the service, newest first: the key, the
    route, what was asked (no images) and the answer. Admin keys only."""
    entries, total = _audit_log(request).entries(
        limit=limit, offset=offset, key_id=key, route=route, since=since, until=until
    )
    return AuditList(
        records=[AuditRecord(**asdict(e)) for e in entries],
        total=total,
        offset=offset,
        limit=limit,
        next_offset=offset + limit if offset + limit < total else None,
    )
