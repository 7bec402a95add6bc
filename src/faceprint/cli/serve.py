"""``faceprint serve`` and ``faceprint keys``: added to the main CLI by :func:`register`.

The web stack (fastapi, uvicorn) is imported inside the command, so the rest of the CLI starts
as fast as before and works without it.
"""

from __future__ import annotations

import ipaddress
import os
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.table import Table

from faceprint.cli import common as core
from faceprint.settings import AUDIT_RETENTION_DAYS, MAX_PIXELS, RATE_BURST, RATE_LIMIT


class KeyRole(StrEnum):
    admin = "admin"
    read = "read"


class LogLevel(StrEnum):
    critical = "critical"
    error = "error"
    warning = "warning"
    info = "info"
    debug = "debug"


def _key_store(create: bool = False) -> Any:
    from faceprint.server.store import open_server_store

    return open_server_store(core.state.open_gallery(create).store)


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on (0.0.0.0 for every interface).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8000,
    cors_origin: Annotated[
        list[str] | None,
        typer.Option("--cors-origin", help="Allow browser pages from this origin (repeatable), e.g. https://a.b."),
    ] = None,
    max_upload_mb: Annotated[float, typer.Option(min=0.01, help="Largest request body, in MB (413 above).")] = 20.0,
    max_pixels: Annotated[
        int | None,
        typer.Option(
            min=int(MAX_PIXELS.lo),
            max=int(MAX_PIXELS.hi),
            help="Largest image in pixels (default: $FACEPRINT_MAX_PIXELS or 64M).",
        ),
    ] = None,
    rate_limit: Annotated[
        float | None,
        typer.Option(
            min=0,
            max=RATE_LIMIT.hi,
            help="Requests a minute each API key may make, 429 beyond (default: $FACEPRINT_RATE_LIMIT; 0: no limit).",
        ),
    ] = None,
    rate_burst: Annotated[
        int | None,
        typer.Option(
            min=0,
            max=int(RATE_BURST.hi),
            help="Requests a key may make at once (default: $FACEPRINT_RATE_BURST, else the per-minute limit).",
        ),
    ] = None,
    audit_retention_days: Annotated[
        int | None,
        typer.Option(
            min=0,
            max=int(AUDIT_RETENTION_DAYS.hi),
            help="Days the audit log keeps a request (default: $FACEPRINT_AUDIT_RETENTION_DAYS or 90; 0: forever).",
        ),
    ] = None,
    require_liveness: Annotated[
        bool,
        typer.Option(
            "--require-liveness",
            help="Identify and enrol need a passed liveness challenge of the same face (POST /v1/liveness/sessions).",
        ),
    ] = False,
    liveness_actions: Annotated[
        str | None,
        typer.Option(
            help="Ask every liveness challenge these actions, e.g. blink,turn_left (a kiosk, a test); "
            "default: 2-3 drawn at random. Clients never choose.",
        ),
    ] = None,
    log_level: Annotated[LogLevel, typer.Option(help="uvicorn log level.")] = LogLevel.info,
) -> None:
    """Serve the REST API (/v1, docs at /docs) and the web page (/) over the gallery."""
    try:
        import uvicorn

        from faceprint.server import create_app
        from faceprint.server.audit import AuditLog
        from faceprint.server.ratelimit import RateLimiter
        from faceprint.server.store import open_server_store
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise core.fail(f"faceprint serve needs fastapi, uvicorn and python-multipart ({exc})") from None
    fixed_actions = _liveness_actions(liveness_actions)
    if max_pixels is not None:
        # decode_image reads the cap from the environment on every call
        os.environ["FACEPRINT_MAX_PIXELS"] = str(max_pixels)
    rec = core.state.recognizer(create=True)  # a new gallery can be filled from the page
    rec.gallery.check_protection_key()
    store = open_server_store(rec.gallery.store)
    # the options override the environment's settings (create_app reads those itself)
    for env, value in ((RATE_LIMIT.env, rate_limit), (RATE_BURST.env, rate_burst)):
        if value is not None:
            os.environ[env] = str(value)
    audit = None if audit_retention_days is None else AuditLog(store, retention_days=audit_retention_days)
    app = create_app(
        rec, store=store, cors_origins=cors_origin or (), max_upload_bytes=int(max_upload_mb * 1e6), audit=audit
    )
    core.err.print(f"gallery {rec.gallery.store.path}: {len(rec.gallery)} people, model {rec.model}", soft_wrap=True)
    kept: AuditLog | None = app.state.audit
    if kept is None:
        core.err.print("[yellow]warning:[/yellow] the gallery is read-only: no audit log of identifications is kept")
    else:
        days = f"{kept.retention_days} days" if kept.retention_days else "forever"
        core.err.print(f"audit log: identifications and verifications are recorded, kept {days} (GET /v1/audit)")
    limiter: RateLimiter | None = app.state.rate_limiter
    core.err.print(f"rate limit: {limiter.describe()} per API key" if limiter else "rate limit: none")
    app.state.liveness = _liveness_sessions(rec, require_liveness, fixed_actions)
    if store.active_key_count() == 0:
        core.err.print(
            "[yellow]warning:[/yellow] no API keys yet: every request but /v1/health will get 401. "
            "Create one with: faceprint keys create --role admin"
        )
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        core.err.print(
            "[yellow]note:[/yellow] listening beyond this machine over plain HTTP: API keys and photos travel "
            "unencrypted unless a TLS proxy sits in front"
        )
    shown = f"[{host}]" if ":" in host else host
    core.err.print(f"serving on http://{shown}:{port}/  (API docs: http://{shown}:{port}/docs)", soft_wrap=True)
    uvicorn.run(app, host=host, port=port, log_level=log_level.value, server_header=False)


def _liveness_actions(actions: str | None) -> list[str] | None:
    """--liveness-actions as a list (exit 2 for a bad one)."""
    from faceprint.liveness.challenge import parse_actions

    try:
        return list(parse_actions(actions)) if actions is not None else None
    except ValueError as exc:
        raise core.fail(f"--liveness-actions: {exc}", 2) from None


def _liveness_sessions(rec: Any, required: bool, fixed: list[str] | None) -> Any:
    """The service's liveness sessions, as the options ask."""
    from faceprint.server.liveness import LivenessSessions

    sessions = LivenessSessions(rec.engine, actions=fixed, required=required, continuity=rec.verify_threshold)
    asked = ",".join(fixed) if fixed else "2-3 random actions"
    core.err.print(f"liveness: {asked} per challenge{'; required for identify and enrol' if required else ''}")
    return sessions


keys_app = typer.Typer(help="API keys for faceprint serve (stored hashed in the gallery).", no_args_is_help=True)


@keys_app.command("create")
def keys_create(
    role: Annotated[KeyRole, typer.Option(help="admin: may change the gallery; read: identify/verify/list.")],
    name: Annotated[str, typer.Option(help="A label to recognise the key by.")] = "",
) -> None:
    """Create a key and print it (once: only its hash is stored)."""
    secret, key = _key_store(create=True).create_key(role.value, name)
    core.err.print(f"created {key.role} key {key.id}{f' ({key.name})' if key.name else ''}; it is shown only now:")
    core.out.print(secret)


@keys_app.command("list")
def keys_list(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """List keys (never the keys themselves: their first characters only)."""
    keys = _key_store().list_keys()
    if as_json:
        core.emit(
            {
                "keys": [
                    {
                        "id": k.id,
                        "name": k.name,
                        "role": k.role,
                        "hint": k.hint,
                        "created_at": k.created_at,
                        "last_used_at": k.last_used_at,
                        "revoked_at": k.revoked_at,
                    }
                    for k in keys
                ]
            }
        )
        return
    table = Table(title=f"{sum(k.active for k in keys)} active API key(s)")
    for column in ("id", "name", "role", "key", "created", "last used", "status"):
        table.add_column(column, justify="right" if column == "id" else "left")
    for k in keys:
        table.add_row(
            str(k.id),
            k.name,
            k.role,
            f"{k.hint}…",
            k.created_at[:16].replace("T", " "),
            (k.last_used_at or "")[:16].replace("T", " "),
            "active" if k.active else f"revoked {k.revoked_at[:10]}",  # type: ignore[index]
        )
    core.out.print(table)


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[int, typer.Argument(metavar="ID", help="The key's id (see keys list).")]) -> None:
    """Revoke a key: a running server refuses it from the next request on."""
    from faceprint.errors import FaceprintError

    try:
        key = _key_store().revoke_key(key_id)
    except FaceprintError as exc:
        raise core.fail(str(exc)) from None
    core.out.print(f"revoked key {key.id}{f' ({key.name})' if key.name else ''}")


def register(app: typer.Typer) -> None:
    """Add ``serve`` and the ``keys`` group to the main ``faceprint`` command."""
    app.command("serve")(serve)
    app.add_typer(keys_app, name="keys")
