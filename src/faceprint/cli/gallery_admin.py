"""``faceprint gallery ...``: administration of whole galleries (``migrate`` between stores; ``new-key``
and ``rekey`` for encryption at rest, :mod:`faceprint.gallery.crypto`; ``export-encrypted`` for a gallery
side that holds only ciphertexts, :mod:`faceprint.privacy.encrypted_gallery`)."""

from __future__ import annotations

import base64
import os
import secrets
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from faceprint.cli.common import emit, err, fail, out, progress_bar, state

gallery_app = typer.Typer(
    help="Whole galleries: copy one between stores (SQLite file, PostgreSQL); encrypt one, or change its key.",
    no_args_is_help=True,
)


@gallery_app.command("migrate")
def migrate(
    src: Annotated[str, typer.Argument(metavar="SRC", help="The gallery to copy: a file or a postgresql:// URL.")],
    dst: Annotated[
        str, typer.Argument(metavar="DST", help="Where to copy it: an empty or missing gallery (file or URL).")
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as one JSON object.")] = False,
) -> None:
    """Copy every person, template and setting (calibrated thresholds included) of SRC into DST, with the
    service's API keys and thumbnails, then check the copy: counts of people and of templates per model and
    person, the settings, and a checksum of every template. Exit 1 if anything differs."""
    from faceprint.gallery import open_store
    from faceprint.gallery.location import shown_url
    from faceprint.gallery.migrate import ensure_empty
    from faceprint.gallery.migrate import migrate as run_migration

    if src == dst:
        raise fail("SRC and DST are the same gallery", 2)
    source = open_store(src, create=False, key=state.key)
    destination = open_store(dst, create=True, key=state.key)  # a key encrypts the new copy too
    ensure_empty(destination)
    people = len(source.identities())
    # each person is read three times: copied, then summarised on either side
    with progress_bar(3 * people, "migrating", enabled=not as_json and people > 0) as advance:
        report = run_migration(source, destination, advance)
    service, service_problems = copy_service(source, destination)
    problems = report.problems + service_problems
    if as_json:
        emit(
            {
                "source": shown_url(src),
                "destination": shown_url(dst),
                "copied": {"identities": report.copied_identities, "templates": report.copied_templates, **service},
                "source_summary": report.source.as_dict(),
                "destination_summary": report.destination.as_dict(),
                "verified": not problems,
                "problems": problems,
            }
        )
    else:
        table = Table(title=f"{escape(shown_url(src))} -> {escape(shown_url(dst))}")
        for column in ("", "source", "destination"):
            table.add_column(column)
        s, d = report.source, report.destination
        table.add_row("people", str(s.identities), str(d.identities))
        for model in sorted(s.templates.keys() | d.templates.keys()):
            table.add_row(
                f"templates ({escape(model)})", str(s.templates.get(model, 0)), str(d.templates.get(model, 0))
            )
        table.add_row("settings", ", ".join(sorted(s.settings)) or "-", ", ".join(sorted(d.settings)) or "-")
        table.add_row("template checksum", s.checksum[:16], d.checksum[:16])
        table.add_row("API keys, thumbnails", "", f"{service['api_keys']}, {service['thumbnails']} copied")
        out.print(table)
    source.close()
    destination.close()
    if problems:
        for problem in problems:
            err.print(f"[red]mismatch:[/red] {escape(problem)}")
        raise fail("the copy differs from the source (see above)")
    if not as_json:
        err.print(
            f"verified: {report.copied_identities} people and {report.copied_templates} templates copied; "
            "counts and checksums agree"
        )


def copy_service(source: Any, destination: Any) -> tuple[dict[str, int], list[str]]:
    """Carry faceprint serve's API keys (hashed) and thumbnails along, and check them: (how many were
    copied, what differs)."""
    from faceprint.server.store import open_server_store

    old, new = open_server_store(source), open_server_store(destination)
    keys, thumbnails = old.records()
    new.add_records(keys, thumbnails)
    copied_keys, copied_thumbnails = new.records()
    problems = []
    if sorted(k[2] for k in copied_keys) != sorted(k[2] for k in keys):  # the key hashes
        problems.append(f"API keys: {len(keys)} in the source, {len(copied_keys)} in the destination")
    if copied_thumbnails != thumbnails:
        problems.append(f"thumbnails: {len(thumbnails)} in the source, {len(copied_thumbnails)} in the destination")
    old.close()
    new.close()
    return {"api_keys": len(copied_keys), "thumbnails": len(copied_thumbnails)}, problems


@gallery_app.command("new-key")
def new_key(
    out_file: Annotated[
        Path | None,
        typer.Option("--out", help="Write the key to this new file (readable by you only) instead of printing it."),
    ] = None,
) -> None:
    """Make a gallery key: 32 random bytes, base64. Keep it safe: without it an encrypted gallery cannot
    be opened, and nothing can recover it."""
    key = base64.b64encode(secrets.token_bytes(32)).decode()
    if out_file is None:
        out.print(key)
        return
    try:
        fd = os.open(out_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise fail(f"{out_file}: already exists: a key file is never overwritten", 2) from None
    except OSError as exc:
        raise fail(f"{out_file}: cannot create the key file ({exc.strerror})", 2) from None
    with os.fdopen(fd, "w") as f:
        f.write(key + "\n")
    err.print(f"wrote a new key to {escape(str(out_file))}")


@gallery_app.command("rekey")
def rekey(
    new_key_file: Annotated[
        Path | None, typer.Option("--new-key-file", help="File holding the new key (default: $FACEPRINT_NEW_KEY).")
    ] = None,
    decrypt: Annotated[
        bool, typer.Option("--decrypt", help="Store the templates unencrypted again, instead of under a new key.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as one JSON object.")] = False,
) -> None:
    """Encrypt the gallery (a SQLite file) under a new key, or change its key: every template and thumbnail
    is re-sealed in one transaction (interrupted, the old key still opens it), the file is vacuumed so no
    old bytes remain, and the search index files beside it are deleted (the next search rebuilds them).
    The current key is --key-file or $FACEPRINT_KEY (an unencrypted gallery needs none). Stop faceprint
    serve and other users of the gallery first: they would hold the old key."""
    from faceprint import settings
    from faceprint.errors import FaceprintError
    from faceprint.gallery import default_gallery_path
    from faceprint.gallery.crypto import is_encrypted, key_id, resolve_key
    from faceprint.gallery.index import remove_index_files
    from faceprint.gallery.location import url_scheme
    from faceprint.gallery.sqlite import SQLiteStore

    location = state.gallery or default_gallery_path()
    if isinstance(location, str) and url_scheme(location):
        raise fail("encryption at rest is supported for SQLite galleries only: give a gallery file", 2)
    if decrypt and (new_key_file is not None or os.environ.get(settings.NEW_KEY_ENV)):
        raise fail(f"--decrypt takes no new key: drop --new-key-file / {settings.NEW_KEY_ENV}", 2)
    new: bytes | None = None
    if not decrypt:
        try:
            new = settings.read_key_file(new_key_file) if new_key_file else settings.gallery_key(settings.NEW_KEY_ENV)
        except FaceprintError as exc:
            raise fail(str(exc), 2) from None
        if new is None:
            raise fail(f"give the new key in --new-key-file or {settings.NEW_KEY_ENV} (or --decrypt)", 2)
    path = Path(location)
    was_encrypted = path.is_file() and is_encrypted(path)
    if decrypt and not was_encrypted:
        raise fail(f"{path}: the gallery is not encrypted: nothing to decrypt", 2)
    # an unencrypted gallery needs no key to open: a FACEPRINT_KEY set for other galleries is not its
    store = SQLiteStore(path, create=False, key=resolve_key(state.key) if was_encrypted else None)
    try:
        count = store.rekey(new)
    finally:
        store.close()
    removed = remove_index_files(path)
    result = {
        "gallery": str(path),
        "templates": count,
        "was_encrypted": was_encrypted,
        "encrypted": new is not None,
        "key_id": None if new is None else key_id(new),
        "index_files_removed": len(removed),
    }
    if as_json:
        emit(result)
    elif new is None:
        err.print(f"{escape(str(path))}: decrypted {count} templates; the gallery opens without a key now")
    else:
        verb = "re-encrypted" if was_encrypted else "encrypted"
        done = f"{verb} {count} templates under key {result['key_id']}"
        then = "the old key no longer opens it" if was_encrypted else "it opens only with this key now"
        err.print(f"{escape(str(path))}: {done}; {then}")


@gallery_app.command("export-encrypted")
def export_encrypted(
    out_file: Annotated[
        Path, typer.Argument(metavar="OUT", help="The encrypted gallery to write: hand this file to the gallery side.")
    ],
    holder_key: Annotated[
        Path,
        typer.Option(
            "--holder-key", help="The key holder's file to create (secret key, names): keep it, never hand it over."
        ),
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as one JSON object.")] = False,
) -> None:
    """Encrypt the gallery's templates under a new CKKS key, for a gallery side that is to hold only
    ciphertexts (identify --encrypted --encrypted-gallery OUT --holder-key FILE). Needs faceprint[privacy]."""
    from faceprint.errors import FaceprintError
    from faceprint.fileio import check_outputs

    if holder_key.exists():
        raise fail(f"--holder-key {holder_key}: already exists: a key file is never overwritten", 2)
    try:
        check_outputs([], {"OUT": out_file, "--holder-key": holder_key})
    except FaceprintError as exc:
        raise fail(str(exc), 2) from None
    rec = state.recognizer()
    try:
        from faceprint.privacy.encrypted_gallery import KeyHolder

        holder, stored = KeyHolder.export(rec.gallery, rec.model, rec.identify_threshold)
        stored.save(out_file)
        try:
            holder.save(holder_key)
        except BaseException:
            out_file.unlink()  # ciphertexts that no key decrypts
            raise
    except (FaceprintError, OSError) as exc:
        raise fail(str(exc)) from None
    result = {
        "encrypted_gallery": str(out_file),
        "holder_key": str(holder_key),
        "model": rec.model,
        "identities": len(holder.names),
        "rows": stored.layout.rows,
        "bytes": out_file.stat().st_size,
    }
    if as_json:
        emit(result)
    else:
        err.print(
            f"wrote {result['identities']} identities ({result['rows']} rows, {result['bytes']:,} bytes of "
            f"ciphertexts) to {escape(str(out_file))}; keep {escape(str(holder_key))} secret"
        )


def register(app: typer.Typer) -> None:
    """Add the ``gallery`` group to the main ``faceprint`` command."""
    app.add_typer(gallery_app, name="gallery")
