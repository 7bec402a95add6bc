"""``faceprint gallery ...``: administration of whole galleries (``migrate`` between stores)."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from faceprint.cli.common import emit, err, fail, out, progress_bar

gallery_app = typer.Typer(
    help="Whole galleries: copy one between stores (SQLite file, PostgreSQL).", no_args_is_help=True
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
    source = open_store(src, create=False)
    destination = open_store(dst, create=True)
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


def register(app: typer.Typer) -> None:
    """Add the ``gallery`` group to the main ``faceprint`` command."""
    app.add_typer(gallery_app, name="gallery")
