"""Commands that fill and manage the gallery: enroll, people, photos, remove, rename."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from faceprint.analyze.quality import DEFAULT_MIN_QUALITY
from faceprint.cli.common import (
    emit,
    enroll_record,
    err,
    fail,
    image_files,
    out,
    progress_bar,
    report_failures,
    state,
)
from faceprint.errors import FaceprintError
from faceprint.names import shown, validate_name

if TYPE_CHECKING:
    pass


# ---------------------------------------------------------------------------------- enrol
def enroll(
    paths: Annotated[
        list[Path] | None, typer.Argument(help="DIR with DIR/<identity>/<images>, or image files with --name.")
    ] = None,
    name: Annotated[str | None, typer.Option("--name", "-n", help="Enrol the given images as this person.")] = None,
    by_filename: Annotated[
        bool,
        typer.Option(
            "--by-filename",
            help="Name each person after the file: obama.jpg, biden_2.png, 0008_jessica.png "
            "(a leading number and a trailing _N, -N or (N) are dropped).",
        ),
    ] = False,
    largest: Annotated[
        bool,
        typer.Option(
            help="Always take the largest face of a photo with several (by default the subject is chosen "
            "when that is clear; see the README).",
        ),
    ] = False,
    min_quality: Annotated[
        float,
        typer.Option(
            "--min-quality",
            min=0.0,
            max=1.0,
            help=f"Refuse faces below this quality (blurred, too small, eyes closed, turned away); "
            f"0 turns the gate off. [default: {DEFAULT_MIN_QUALITY}]",
            show_default=False,
        ),
    ] = DEFAULT_MIN_QUALITY,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object per person.")] = False,
    video: Annotated[
        Path | None,
        typer.Option(
            "--video",
            metavar="CLIP",
            help="Enrol --name from a video file: a few sharp, different views of the person it follows.",
        ),
    ] = None,
) -> None:
    """Enrol people: a folder of folders (one per person), --name NAME IMAGE..., --by-filename
    for photos named after their person, or --name NAME --video CLIP."""
    from faceprint.image import find_images
    from faceprint.names import name_from_filename

    jobs: list[tuple[str, list[Path]]] = []
    failures: list[tuple[str, str]] = []
    if name is not None and by_filename:
        raise fail("give either --name or --by-filename, not both", 2)
    if video is not None:
        if paths or by_filename or name is None:
            raise fail("--video takes --name NAME and no folder, image files or --by-filename", 2)
        from faceprint.cli.video import enroll_video

        enroll_video(name, video, as_json)
        return
    if not paths:
        raise fail("give a folder of person folders, image files with --name, or --video CLIP with --name", 2)
    if by_filename:
        files, failures = image_files(paths)
        grouped: dict[str, list[Path]] = {}
        for file in files:
            try:
                grouped.setdefault(validate_name(name_from_filename(file)), []).append(file)
            except FaceprintError as exc:
                failures.append((str(file), f"{file}: {exc}"))
        jobs = sorted(grouped.items())
    elif name is not None:
        try:
            name = validate_name(name)  # before any photo is read
        except FaceprintError as exc:
            raise fail(str(exc), 2) from None
        files, empty = image_files(paths)
        jobs.append((name, files))
        failures += empty
    else:
        for root in paths:
            if not root.is_dir():
                raise fail(f"{root}: not a folder (to enrol single images, pass --name NAME)", 2)
            people = sorted(p for p in root.iterdir() if p.is_dir())
            if not people:
                raise fail(f"{root}: no identity folders inside (expected {root}/<name>/<images>)", 2)
            for folder in people:
                try:
                    person = validate_name(folder.name)
                except FaceprintError as exc:
                    failures.append((str(folder), f"{folder}: {exc}"))
                    continue
                found, empty = find_images([folder])
                failures += empty
                if found:
                    jobs.append((person, found))
            loose = [f for f in root.iterdir() if f.is_file()]
            if loose:
                err.print(
                    f"[yellow]note:[/yellow] {len(loose)} file(s) directly in {escape(str(root))} ignored "
                    "(put them in a person folder)"
                )
    total = sum(len(files) for _, files in jobs)
    rec = state.recognizer(create=True)
    added = skipped = 0
    not_attempted: list[str] = []
    with progress_bar(total, "enrolling") as advance:
        results = rec.enroll_many(
            jobs, largest, lambda *_: advance(), workers=state.n_workers(total), min_quality=min_quality
        )
    for result in results:
        added += len(result.added)
        skipped += len(result.skipped)
        failures.extend(result.errors)
        not_attempted += result.not_attempted
        if as_json:
            emit(enroll_record(result))
        else:
            for src, box, why in result.chosen:
                err.print(f"[dim]{escape(src)}: several faces; took {tuple(box)}: {escape(why)}[/dim]")
    people_added = sum(bool(r.added) for r in results)
    if not as_json:
        out.print(
            f"enrolled {added} photo(s) of {people_added} person(s); {skipped} already enrolled; "
            f"{len(failures)} failed" + (f"; {len(not_attempted)} not attempted" if not_attempted else "")
        )
    report_failures(failures)
    if not_attempted:
        raise fail(f"enrolment stopped by a gallery error; {len(not_attempted)} photo(s) not attempted (run again)")
    if failures:
        raise typer.Exit(1)


# ------------------------------------------------------------------------------- gallery
def people(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """List enrolled people with their template counts."""
    gallery = state.open_gallery()
    rows = gallery.identities()
    if as_json:
        emit(
            {
                "gallery": str(gallery.store.path),
                "people": [
                    {
                        "name": i.name,
                        "templates": i.templates,
                        "metadata": i.metadata,
                        "created_at": i.created_at.isoformat() if i.created_at else None,
                    }
                    for i in rows
                ],
            }
        )
        return
    table = Table(title=f"{len(rows)} people in {gallery.store.path}")
    table.add_column("name")
    table.add_column("templates", justify="right")
    table.add_column("enrolled")
    for i in rows:
        table.add_row(i.name, str(i.templates), i.created_at.strftime("%Y-%m-%d %H:%M") if i.created_at else "")
    out.print(table)


def remove(
    name: Annotated[str, typer.Argument(help="Person to remove.")],
    photo: Annotated[
        list[int] | None,
        typer.Option("--photo", "-p", min=1, help="Remove only this photo (an id from `faceprint photos NAME`)."),
    ] = None,
    purge: Annotated[
        bool,
        typer.Option(
            "--purge",
            help="Also erase what is left in the gallery's files (erasure): compact the file and empty its "
            "write-ahead log, drop the search index files and the change-log rows, so that the removed "
            "templates cannot be read back from the files.",
        ),
    ] = False,
) -> None:
    """Remove a person and all their templates, or single photos of theirs (--photo ID, repeatable)."""
    try:
        gallery = state.open_gallery()
        if not photo:
            n = gallery.remove(name, purge=purge)
            out.print(f"removed {escape(shown(name.strip()))} ({n} template(s))" + ("; purged" if purge else ""))
            return
        done = 0
        try:
            for photo_id in dict.fromkeys(photo):
                removed = gallery.remove_template(name, photo_id)
                done += 1
                out.print(f"removed photo {photo_id} of {escape(shown(name.strip()))} ({escape(removed.source)})")
        finally:
            if purge and done:  # once for all, and for those removed before a bad id
                gallery.purge()
                out.print("purged")
    except FaceprintError as exc:
        raise fail(str(exc)) from None


def photos(
    name: Annotated[str, typer.Argument(help="An enrolled person.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List a person's photos (one template each): id, source file, face box, quality, date."""
    try:
        templates = state.open_gallery().templates(name)
    except FaceprintError as exc:
        raise fail(str(exc)) from None
    rows = [
        {
            "id": t.id,
            "source": t.source,
            "box": list(t.box),
            "quality": None if t.quality is None else round(float(t.quality), 4),
            "model": t.model,
            "created_at": t.created_at.isoformat() if t.created_at else None,
        }
        for t in templates
    ]
    if as_json:
        emit({"identity": name.strip(), "photos": rows})
        return
    table = Table(title=f"{len(rows)} photo(s) of {escape(name.strip())}")
    for column in ("id", "source", "box", "quality", "enrolled"):
        table.add_column(column, justify="right" if column == "id" else "left")
    for r in rows:
        quality = "" if r["quality"] is None else f"{r['quality']:.3f}"
        when = (r["created_at"] or "")[:16].replace("T", " ")
        table.add_row(str(r["id"]), escape(r["source"]), str(tuple(r["box"])), quality, when)
    out.print(table)


def rename(old: Annotated[str, typer.Argument()], new: Annotated[str, typer.Argument()]) -> None:
    """Rename a person."""
    try:
        new = validate_name(new)
        state.open_gallery().rename(old, new)
    except FaceprintError as exc:
        raise fail(str(exc)) from None
    out.print(f"renamed {escape(shown(old.strip()))} to {escape(shown(new))}")


def register(app: typer.Typer) -> None:
    app.command()(enroll)
    app.command()(people)
    app.command()(photos)
    app.command()(remove)
    app.command()(rename)
