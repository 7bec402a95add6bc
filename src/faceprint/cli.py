"""The ``faceprint`` command."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from faceprint.detect import DEFAULT_DETECTOR
from faceprint.errors import FaceprintError

if TYPE_CHECKING:
    from faceprint.types import Face, Match

app = typer.Typer(
    name="faceprint",
    help="Face recognition: enrol people into a gallery, identify and verify faces in photos.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
out = Console(soft_wrap=True, highlight=False)
err = Console(stderr=True, highlight=False)


class State:
    gallery: Path | None = None
    detector: str = DEFAULT_DETECTOR
    embedder: str = "onnx"
    flip: bool = True
    workers: int | None = None
    _recognizer: Any = None

    def n_workers(self, n_items: int) -> int:
        from faceprint.pipeline import default_workers

        return self.workers if self.workers is not None else default_workers(n_items)

    def recognizer(self) -> Any:
        if self._recognizer is None:
            from faceprint.api import Recognizer
            from faceprint.engine import FaceEngine

            engine = FaceEngine(detector=self.detector, embedder=self.embedder, flip=self.flip)
            self._recognizer = Recognizer(self.open_gallery(), engine)
        return self._recognizer

    def open_gallery(self) -> Any:
        from faceprint.gallery import Gallery, default_gallery_path

        return Gallery(self.gallery or default_gallery_path())


state = State()


@app.callback()
def main(
    gallery: Annotated[
        Path | None,
        typer.Option(
            "--gallery",
            "-g",
            envvar="FACEPRINT_GALLERY",
            help="Gallery file (default: $FACEPRINT_GALLERY or ~/.local/share/faceprint/gallery.db).",
        ),
    ] = None,
    detector: Annotated[
        str, typer.Option(help="Face detector: blazeface (default), hog (dlib) or cnn (dlib MMOD, slow on CPU).")
    ] = DEFAULT_DETECTOR,
    embedder: Annotated[str, typer.Option(help="Embedding backend: onnx (fast) or dlib (reference).")] = "onnx",
    flip: Annotated[bool, typer.Option(help="Average each face's template with its mirror image's.")] = True,
    workers: Annotated[
        int | None,
        typer.Option("--workers", "-w", min=1, help="Worker processes for batches (default: one per core)."),
    ] = None,
) -> None:
    state.gallery = gallery
    state.detector = detector
    state.embedder = embedder
    state.flip = flip
    state.workers = workers


def fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}")
    return typer.Exit(code)


class RateColumn(ProgressColumn):
    """Items per second."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:.1f}/s" if speed else "", style="progress.data.speed")


@contextmanager
def progress_bar(total: int, label: str, enabled: bool = True) -> Iterator[Any]:
    """A progress bar on stderr (stdout stays clean for --json)."""
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err, disable=not enabled, transient=False) as progress:
        task = progress.add_task(label, total=total)
        yield lambda n=1: progress.advance(task, n)


def report_failures(failures: list[tuple[str, str]]) -> None:
    if failures:
        err.print(f"[red]{len(failures)} file(s) failed:[/red]")
        for source, message in failures:
            err.print(f"  {message if source in message else f'{source}: {message}'}")


def emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def report_images(
    results: Iterable[tuple[str, list[dict[str, Any]], str | None]],
    total: int,
    label: str,
    as_json: bool,
    show: Callable[[dict[str, Any]], None],
) -> None:
    """One record per image (a JSON line, or ``show``); bad files are listed at the end and
    make the exit code 1."""
    failures: list[tuple[str, str]] = []
    with progress_bar(total, label, enabled=total > 1) as advance:
        for source, faces, error in results:
            record: dict[str, Any] = {"image": source, "faces": faces, "error": error}
            if error is not None:
                failures.append((source, error))
            advance()
            if as_json:
                emit(record)
            elif error is None:
                show(record)
    report_failures(failures)
    if failures:
        raise typer.Exit(1)


def _files(paths: list[Path]) -> list[Path]:
    from faceprint.image import iter_image_files

    return iter_image_files(paths)


# ---------------------------------------------------------------------------------- enrol
@app.command()
def enroll(
    paths: Annotated[list[Path], typer.Argument(help="DIR with DIR/<identity>/<images>, or image files with --name.")],
    name: Annotated[str | None, typer.Option("--name", "-n", help="Enrol the given images as this person.")] = None,
    largest: Annotated[bool, typer.Option(help="Take the largest face when a photo has several.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object per person.")] = False,
) -> None:
    """Enrol people: a folder of folders (one per person) or --name NAME IMAGE..."""
    jobs: list[tuple[str, list[Path]]] = []
    failures: list[tuple[str, str]] = []
    if name is not None:
        jobs.append((name, _files(paths)))
    else:
        for root in paths:
            if not root.is_dir():
                raise fail(f"{root}: not a folder (to enrol single images, pass --name NAME)", 2)
            people = sorted(p for p in root.iterdir() if p.is_dir())
            if not people:
                raise fail(f"{root}: no identity folders inside (expected {root}/<name>/<images>)", 2)
            jobs.extend((p.name, _files([p])) for p in people)
            loose = [f for f in root.iterdir() if f.is_file()]
            if loose:
                err.print(
                    f"[yellow]note:[/yellow] {len(loose)} file(s) directly in {root} ignored "
                    "(put them in a person folder)"
                )
    total = sum(len(files) for _, files in jobs)
    rec = state.recognizer()
    added = skipped = 0
    for person, files in jobs:
        if not files:
            failures.append((person, f"{person}: no image files"))
    with progress_bar(total, "enrolling") as advance:
        results = rec.enroll_many(
            [(p, f) for p, f in jobs if f], largest, lambda *_: advance(), workers=state.n_workers(total)
        )
        for result in results:
            person = result.name
            added += len(result.added)
            skipped += len(result.skipped)
            failures.extend(result.errors)
            if as_json:
                emit(
                    {
                        "identity": person,
                        "added": len(result.added),
                        "skipped": len(result.skipped),
                        "errors": [m for _, m in result.errors],
                    }
                )
    if not as_json:
        out.print(
            f"enrolled {added} photo(s) of {len(jobs)} person(s); {skipped} already enrolled; {len(failures)} failed"
        )
    report_failures(failures)
    if failures:
        raise typer.Exit(1)


# ------------------------------------------------------------------------------ identify
@app.command()
def identify(
    paths: Annotated[list[Path], typer.Argument(help="Image files or folders.")],
    top_k: Annotated[int, typer.Option("--top-k", "-k", min=1, help="Candidates per face.")] = 3,
    threshold: Annotated[float | None, typer.Option(help="Override the gallery's decision threshold (cosine).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per image per line.")] = False,
) -> None:
    """Who is in these photos? Each face gets a name or 'unknown'."""
    files = _files(paths)
    rec = state.recognizer()
    if rec.gallery.store.identity_count(rec.model) == 0:
        err.print("[yellow]warning:[/yellow] the gallery has no people enrolled: every face will be unknown")

    def record(m: Match) -> dict[str, Any]:
        return {
            "box": list(m.face.box),
            "identity": m.identity,
            "score": round(m.score, 4),
            "candidates": [{"identity": c.identity, "score": round(c.score, 4)} for c in m.candidates],
        }

    results = rec.identify_many(files, top_k, threshold, workers=state.n_workers(len(files)))
    report_images(
        ((r.source, [record(m) for m in matches], r.error) for r, matches in results),
        len(files),
        "identifying",
        as_json,
        _print_identified,
    )


def _print_identified(record: dict[str, Any]) -> None:
    faces = record["faces"]
    if not faces:
        out.print(f"{record['image']}: no faces")
        return
    labels = []
    for face in faces:
        who = face["identity"] or "unknown"
        best = face["candidates"][0] if face["candidates"] else None
        hint = f", nearest {best['identity']} {best['score']:.3f}" if face["identity"] is None and best else ""
        labels.append(f"{who} ({face['score']:.3f}{hint}) at {tuple(face['box'])}")
    out.print(f"{record['image']}: " + "; ".join(labels))


# -------------------------------------------------------------------------------- verify
@app.command()
def verify(
    a: Annotated[Path, typer.Argument(help="First image.")],
    b: Annotated[Path | None, typer.Argument(help="Second image (or use --identity).")] = None,
    identity: Annotated[
        str | None, typer.Option("--identity", "-i", help="Compare A with this enrolled person.")
    ] = None,
    threshold: Annotated[float | None, typer.Option(help="Override the decision threshold (cosine).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON object.")] = False,
) -> None:
    """Are two photos (or a photo and an enrolled person) the same person? Exit 0 if same, 3 if not."""
    if (b is None) == (identity is None):
        raise fail("give either a second image B or --identity NAME", 2)
    rec = state.recognizer()
    try:
        result = rec.verify(a, b, threshold) if b is not None else rec.verify_identity(a, identity, threshold)  # type: ignore[arg-type]
    except FaceprintError as exc:
        if as_json:
            emit({"same": None, "score": None, "threshold": threshold, "error": str(exc)})
        raise fail(str(exc)) from None
    if as_json:
        emit({"same": result.same, "score": round(result.score, 4), "threshold": result.threshold})
    else:
        verdict = "[green]same person[/green]" if result.same else "[red]different people[/red]"
        out.print(f"{verdict} (score {result.score:.3f}, threshold {result.threshold:.3f})")
    if not result.same:
        raise typer.Exit(3)


# -------------------------------------------------------------------------------- detect
@app.command()
def detect(
    paths: Annotated[list[Path], typer.Argument(help="Image files or folders.")],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per image per line.")] = False,
) -> None:
    """Find faces: box, detector score and 5 landmarks for each."""
    from faceprint.pipeline import EngineSpec, analyze_images

    files = _files(paths)
    engine = state.recognizer().engine

    def record(face: Face) -> dict[str, Any]:
        return {
            "box": list(face.box),
            "score": round(face.score, 4),
            "landmarks": [[round(float(x), 1), round(float(y), 1)] for x, y in face.landmarks],  # type: ignore[union-attr]
        }

    def show(record: dict[str, Any]) -> None:
        boxes = ", ".join(str(tuple(x["box"])) for x in record["faces"])
        out.print(f"{record['image']}: {len(record['faces'])} face(s) {boxes}")

    results = analyze_images(files, engine, EngineSpec.of(engine), "detect", state.n_workers(len(files)))
    report_images(
        ((r.source, [record(f) for f in r.faces], r.error) for r in results), len(files), "detecting", as_json, show
    )


# ------------------------------------------------------------------------------- gallery
@app.command()
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


@app.command()
def remove(name: Annotated[str, typer.Argument(help="Person to remove.")]) -> None:
    """Remove a person and all their templates."""
    try:
        n = state.open_gallery().remove(name)
    except FaceprintError as exc:
        raise fail(str(exc)) from None
    out.print(f"removed {name!r} ({n} template(s))")


@app.command()
def rename(old: Annotated[str, typer.Argument()], new: Annotated[str, typer.Argument()]) -> None:
    """Rename a person."""
    try:
        state.open_gallery().rename(old, new)
    except FaceprintError as exc:
        raise fail(str(exc)) from None
    out.print(f"renamed {old!r} to {new!r}")


# ------------------------------------------------------------------ more command groups
# Each feature package registers its own commands here (one line each).
# [register-commands]
from faceprint.video.cli import register as _register_video  # noqa: E402

_register_video(app)
from faceprint.evaluate.cli import register as register_evaluate  # noqa: E402

register_evaluate(app)
from faceprint.server.cli import register as _register_server  # noqa: E402

_register_server(app)


def run() -> None:
    try:
        app()
    except FaceprintError as exc:
        err.print(f"[red]error:[/red] {exc}")
        sys.exit(1)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    run()
