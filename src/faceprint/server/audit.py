"""The audit log: every identification and verification the service answers, kept with its gallery.

One row per request: when (UTC), which API key (its id and name, never the secret), the route,
what was asked (the parameters, and each upload's file name, size and SHA-256: never its bytes,
pixels or templates), the answer (names, scores and the decision for each face, or same/score for a
verification; the error code for a refusal), the HTTP status and how long it took. The rows live in
the ``audit_log`` table of the service's store (:class:`~faceprint.server.store.ServerStore`), in the
SQLite file or the PostgreSQL database, so replicas sharing a database share one log. Admin keys
read it through ``GET /v1/audit`` (:mod:`faceprint.server.routes.audit`).

Writes fail closed: a request whose row cannot be written is answered 500 (and the failure is
logged), so that no identification is given out unrecorded. A gallery opened read-only (an operator's
choice) is served without a log, with a warning at start-up. Rows older than the retention
($FACEPRINT_AUDIT_RETENTION_DAYS, 90 days; 0 keeps them forever) are deleted by the writes
themselves, at most once an hour (one indexed DELETE).

Routes record through :func:`audited` (a ``with`` block around the work: it records the answer, or
the error that ended the request) or :func:`record` (one call, for a route that builds its entry itself).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import Request, Response, UploadFile
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from faceprint.errors import FaceprintError
from faceprint.server.errors import ERROR_STATUS, HTTP_CODES, error_code
from faceprint.server.middleware import STARTED
from faceprint.server.store import ServerStore
from faceprint.server.uploads import upload_name
from faceprint.settings import audit_retention_days

log = logging.getLogger("faceprint.server")


def utc_now() -> datetime:
    return datetime.now(UTC)


def stamp(when: datetime) -> str:
    """The stored form of a time: UTC ISO 8601 to the millisecond, fixed width, so that text order is time order
    (a time without a zone is taken as UTC)."""
    when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    return when.isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class AuditEntry:
    """One row of the log."""

    id: int
    at: str
    key_id: int | None
    key_name: str
    method: str
    route: str
    status: int
    duration_ms: float
    request: dict[str, Any]
    answer: dict[str, Any]


_COLUMNS = "id, at, key_id, key_name, method, route, status, duration_ms, request, answer"


class AuditLog:
    """The ``audit_log`` table of a :class:`ServerStore` (SQLite or PostgreSQL: the same SQL over the
    store's statement runners). Thread-safe. ``clock``: the time now, UTC (tests pass a fake one)."""

    #: how often the writes delete rows past the retention
    PRUNE_EVERY = timedelta(hours=1)

    def __init__(
        self, store: ServerStore, retention_days: int | None = None, clock: Callable[[], datetime] = utc_now
    ) -> None:
        self.store = store
        self.retention_days = audit_retention_days() if retention_days is None else int(retention_days)
        self.clock = clock
        self._pruned_at: datetime | None = None
        self._prune_lock = threading.Lock()

    @property
    def readable(self) -> bool:
        return "audit_log" not in self.store._missing

    @property
    def writable(self) -> bool:
        """False where the gallery is read-only: the service then runs without a log."""
        return self.readable and not self.store.read_only

    def add(
        self,
        *,
        key_id: int | None,
        key_name: str,
        method: str,
        route: str,
        status: int,
        duration_ms: float,
        request: Mapping[str, Any],
        answer: Mapping[str, Any],
    ) -> int:
        """Write one row (and delete the expired ones, once an hour); returns its id. Raises what the
        database raises: the caller fails the request."""
        now = self.clock()
        rows = self.store._write(
            "INSERT INTO audit_log (at, key_id, key_name, method, route, status, duration_ms, request, answer) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (
                stamp(now),
                key_id,
                key_name,
                method,
                route,
                int(status),
                round(float(duration_ms), 2),
                _json(request),
                _json(answer),
            ),
        )
        self._maybe_prune(now)
        return int(rows[0][0])

    def _maybe_prune(self, now: datetime) -> None:
        if not self.retention_days:
            return
        with self._prune_lock:
            if self._pruned_at is not None and now - self._pruned_at < self.PRUNE_EVERY:
                return
            self._pruned_at = now
        self.prune(now)

    def prune(self, now: datetime | None = None) -> int:
        """Delete the rows older than the retention (none when it is 0); returns how many went."""
        if not self.retention_days:
            return 0
        cutoff = (now or self.clock()) - timedelta(days=self.retention_days)
        return len(self.store._write("DELETE FROM audit_log WHERE at < ? RETURNING id", (stamp(cutoff),)))

    def entries(
        self,
        *,
        limit: int = 100,
        offset: int = 0,
        key_id: int | None = None,
        route: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> tuple[list[AuditEntry], int]:
        """One page of rows, newest first, and how many match in all. ``since`` is inclusive,
        ``until`` exclusive."""
        if not self.readable:
            return [], 0
        where, args = [], []
        for clause, value in (
            ("key_id = ?", key_id),
            ("route = ?", route),
            ("at >= ?", None if since is None else stamp(since)),
            ("at < ?", None if until is None else stamp(until)),
        ):
            if value is not None:
                where.append(clause)
                args.append(value)
        condition = f" WHERE {' AND '.join(where)}" if where else ""
        total = int(self.store._rows(f"SELECT COUNT(*) FROM audit_log{condition}", tuple(args))[0][0])
        rows = self.store._rows(
            f"SELECT {_COLUMNS} FROM audit_log{condition} ORDER BY id DESC LIMIT ? OFFSET ?",
            (*args, limit, offset),
        )
        return [_entry(r) for r in rows], total


def _json(value: Mapping[str, Any]) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def _entry(row: tuple[Any, ...]) -> AuditEntry:
    id_, at, key_id, key_name, method, route, status, duration, request, answer = row
    return AuditEntry(
        int(id_),
        str(at),
        None if key_id is None else int(key_id),
        str(key_name),
        str(method),
        str(route),
        int(status),
        float(duration),
        json.loads(request),
        json.loads(answer),
    )


# ------------------------------------------------------------------------------ recording
def record(request: Request, summary: Mapping[str, Any], answer: Mapping[str, Any], status: int = 200) -> None:
    """Write the audit row of ``request`` (a route's Request, after its key was checked): what was
    asked (``summary``: parameters and :func:`upload_summary` of each upload, never image bytes or
    templates) and the ``answer``. Does nothing where the app keeps no log; raises (after logging)
    when the write fails, so that the request fails too."""
    audit: AuditLog | None = getattr(request.app.state, "audit", None)
    if audit is None:
        return
    key = getattr(request.state, "api_key", None)
    started = request.scope.get("state", {}).get(STARTED)
    try:
        audit.add(
            key_id=getattr(key, "id", None),
            key_name=getattr(key, "name", ""),
            method=request.method,
            route=getattr(request.scope.get("route"), "path", request.url.path),
            status=status,
            duration_ms=0.0 if started is None else (time.perf_counter() - started) * 1000,
            request=summary,
            answer=answer,
        )
    except Exception:
        log.exception("audit log: could not record %s %s: the request is refused", request.method, request.url.path)
        raise


@dataclass
class Note:
    """What :func:`audited` will record: the route sets ``answer`` (or calls :meth:`refused` with the
    error it answers itself)."""

    answer: dict[str, Any] = field(default_factory=dict)
    status: int = 200

    def refused(self, response: Response) -> None:
        """The route answers an error of the service's shape itself (e.g. a batch whose every photo failed)."""
        body = json.loads(bytes(response.body))
        self.status, self.answer = response.status_code, {"error": body["error"]["code"]}


@contextlib.contextmanager
def audited(request: Request, summary: Mapping[str, Any]) -> Iterator[Note]:
    """Record the request when the block ends: with the answer the block put in the note, or the
    status and error code of the exception that ended it (which then goes on as it would)."""
    note = Note()
    try:
        yield note
    except Exception as exc:
        status, code = _failure(exc)
        record(request, summary, {"error": code}, status)
        raise
    record(request, summary, note.answer, note.status)


def _failure(exc: Exception) -> tuple[int, str]:
    """The status and error code the service will answer ``exc`` with (as server.errors does)."""
    if isinstance(exc, FaceprintError):
        code = error_code(exc)
        return ERROR_STATUS.get(code, 400), code
    if isinstance(exc, StarletteHTTPException):
        detail = exc.detail
        code = str(detail["code"]) if isinstance(detail, dict) and "code" in detail else None
        return exc.status_code, code or HTTP_CODES.get(exc.status_code, "http_error")
    if isinstance(exc, RequestValidationError):
        return 422, "validation_error"
    return 500, "internal_error"


# ------------------------------------------------------------------------------ summaries
def upload_summary(upload: UploadFile, fallback: str) -> dict[str, Any]:
    """An upload as the log names it: file name (as messages show it), size and SHA-256 of its bytes."""
    digest, size = hashlib.sha256(), 0
    upload.file.seek(0)
    while chunk := upload.file.read(1 << 20):
        digest.update(chunk)
        size += len(chunk)
    upload.file.seek(0)
    return {"file": upload_name(upload, fallback), "bytes": size, "sha256": digest.hexdigest()}


__all__ = [
    "AuditEntry",
    "AuditLog",
    "Note",
    "audited",
    "record",
    "stamp",
    "upload_summary",
]
