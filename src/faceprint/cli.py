"""The ``faceprint`` command."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
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

from faceprint import __version__, settings
from faceprint.detect import DEFAULT_DETECTOR, DETECTORS
from faceprint.errors import FaceprintError, GalleryError
from faceprint.names import shown, validate_name

if TYPE_CHECKING:
    from faceprint.types import Face, Match

app = typer.Typer(
    name="faceprint",
    help="Face recognition: enrol people into a gallery, identify and verify faces in photos.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,  # plain help: no "<bool>" after flags, sentences wrap between words
)
# soft wrap on both: a message is never broken inside a file name, so grep on a pipe works
out = Console(soft_wrap=True, highlight=False)
err = Console(stderr=True, highlight=False, soft_wrap=True)

DetectorName = StrEnum("DetectorName", {name: name for name in DETECTORS})  # type: ignore[misc]
DEFAULT_DETECTOR_CHOICE = DetectorName(DEFAULT_DETECTOR)


class EmbedderName(StrEnum):
    onnx = "onnx"
    dlib = "dlib"


class State:
    gallery: Path | None = None
    detector: str = DEFAULT_DETECTOR
    embedder: str = "onnx"
    flip: bool = True
    workers: int | None = None
    _engine: Any = None
    _recognizer: Any = None

    def n_workers(self, n_items: int) -> int:
        from faceprint.pipeline import default_workers

        return self.workers if self.workers is not None else default_workers(n_items)

    def engine(self) -> Any:
        """The face engine alone (commands that need no gallery)."""
        if self._engine is None:
            from faceprint.engine import FaceEngine

            self._engine = FaceEngine(detector=self.detector, embedder=self.embedder, flip=self.flip)
        return self._engine

    def recognizer(self, create: bool = False) -> Any:
        """The engine over the gallery; only commands that write pass ``create`` (a mistyped
        --gallery for a reading command must not leave an empty gallery behind)."""
        if self._recognizer is None:
            from faceprint.api import Recognizer

            self._recognizer = Recognizer(self.open_gallery(create), self.engine())
        return self._recognizer

    def open_gallery(self, create: bool = False) -> Any:
        from faceprint.gallery import Gallery, default_gallery_path

        return Gallery(self.gallery or default_gallery_path(), create=create)


state = State()


def _print_version(value: bool) -> None:
    if value:
        out.print(f"faceprint {__version__}")
        raise typer.Exit(0)


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
        DetectorName,  # type: ignore[valid-type]
        typer.Option(help="Face detector: blazeface (default), hog (dlib) or cnn (dlib MMOD, slow on CPU)."),
    ] = DEFAULT_DETECTOR_CHOICE,
    embedder: Annotated[
        EmbedderName, typer.Option(help="Embedding backend: onnx (fast) or dlib (reference).")
    ] = EmbedderName.onnx,
    flip: Annotated[bool, typer.Option(help="Average each face's template with its mirror image's.")] = True,
    workers: Annotated[
        int | None,
        typer.Option("--workers", "-w", min=1, max=256, help="Worker processes for batches (default: one per core)."),
    ] = None,
    version: Annotated[
        bool,
        typer.Option("--version", is_eager=True, callback=_print_version, help="Print the version and exit."),
    ] = False,
) -> None:
    try:
        settings.check()  # every FACEPRINT_* value, before any work
    except FaceprintError as exc:
        raise fail(str(exc), 2) from None
    state.gallery = gallery
    state.detector = str(detector.value)
    state.embedder = str(embedder.value)
    state.flip = flip
    state.workers = workers


def fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[red]error:[/red] {escape(message)}")
    return typer.Exit(code)


def check_threshold(value: float | None) -> float | None:
    """--threshold: a finite cosine similarity (nan, inf and 5 would make every answer meaningless)."""
    if value is not None and not (math.isfinite(value) and -1.0 <= value <= 1.0):
        raise typer.BadParameter(f"{value} is not a cosine similarity: give a number from -1 to 1")
    return value


ThresholdOption = typer.Option(
    callback=check_threshold, help="Override the decision threshold (cosine similarity, -1 to 1)."
)


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
            err.print(f"  {escape(message if source in message else f'{source}: {message}')}")


def emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def report_images(
    results: Iterable[tuple[str, list[dict[str, Any]], str | None]],
    total: int,
    label: str,
    as_json: bool,
    show: Callable[[dict[str, Any]], None],
    problems: Iterable[tuple[str, str]] = (),
) -> None:
    """One record per image (a JSON line, or ``show``); bad files are listed at the end and
    make the exit code 1. A gallery failure stops the batch after that summary."""
    failures: list[tuple[str, str]] = list(problems)
    stopped: GalleryError | None = None
    with progress_bar(total, label, enabled=total > 1) as advance:
        try:
            for source, faces, error in results:
                record: dict[str, Any] = {"image": source, "faces": faces, "error": error}
                if error is not None:
                    failures.append((source, error))
                advance()
                if as_json:
                    emit(record)
                elif error is None:
                    show(record)
        except GalleryError as exc:
            stopped = exc
    report_failures(failures)
    if stopped is not None:
        raise fail(f"stopped: {stopped}")
    if failures:
        raise typer.Exit(1)


def _files(paths: list[Path]) -> tuple[list[Path], list[tuple[str, str]]]:
    """The image files under ``paths`` and a failure for each folder without any; exits 1 when
    there is nothing at all to do."""
    from faceprint.image import find_images

    files, empty = find_images(paths)
    if not files:
        raise fail("; ".join(message for _, message in empty))
    return files, empty


# ---------------------------------------------------------------------------------- enrol
@app.command()
def enroll(
    paths: Annotated[list[Path], typer.Argument(help="DIR with DIR/<identity>/<images>, or image files with --name.")],
    name: Annotated[str | None, typer.Option("--name", "-n", help="Enrol the given images as this person.")] = None,
    by_filename: Annotated[
        bool,
        typer.Option(
            "--by-filename",
            help="Name each person after the file: obama.jpg, biden_2.png, 0008_jessica.png "
            "(a leading number and a trailing _N, -N or (N) are dropped).",
        ),
    ] = False,
    largest: Annotated[bool, typer.Option(help="Take the largest face when a photo has several.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object per person.")] = False,
) -> None:
    """Enrol people: a folder of folders (one per person), --name NAME IMAGE..., or --by-filename
    for photos named after their person."""
    from faceprint.image import find_images
    from faceprint.names import name_from_filename

    jobs: list[tuple[str, list[Path]]] = []
    failures: list[tuple[str, str]] = []
    if name is not None and by_filename:
        raise fail("give either --name or --by-filename, not both", 2)
    if by_filename:
        files, failures = _files(paths)
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
        files, empty = _files(paths)
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
        results = rec.enroll_many(jobs, largest, lambda *_: advance(), workers=state.n_workers(total))
    for result in results:
        added += len(result.added)
        skipped += len(result.skipped)
        failures.extend(result.errors)
        not_attempted += result.not_attempted
        if as_json:
            emit(
                {
                    "identity": result.name,
                    "added": len(result.added),
                    "skipped": len(result.skipped),
                    "errors": [m for _, m in result.errors],
                    "not_attempted": len(result.not_attempted),
                }
            )
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


# ------------------------------------------------------------------------------ identify
@app.command()
def identify(
    paths: Annotated[list[Path], typer.Argument(help="Image files or folders.")],
    top_k: Annotated[int, typer.Option("--top-k", "-k", min=1, help="Candidates per face.")] = 3,
    threshold: Annotated[float | None, ThresholdOption] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per image per line.")] = False,
    annotate: Annotated[
        Path | None,
        typer.Option("--annotate", help="Write each photo with boxes and names drawn into this folder."),
    ] = None,
    crops: Annotated[
        Path | None,
        typer.Option("--crops", help="Write each face as DIR/<identity or unknown>/<photo>-face<k>.jpg."),
    ] = None,
) -> None:
    """Who is in these photos? Each face gets a name or 'unknown'."""
    from faceprint.fileio import check_outputs
    from faceprint.outputs import PhotoOutputs

    files, empty = _files(paths)
    try:
        check_outputs(files, {"--annotate": annotate, "--crops": crops}, folders=("--annotate", "--crops"))
        outputs = PhotoOutputs(annotate, crops)
    except (FaceprintError, OSError) as exc:
        raise fail(str(exc), 2) from None
    rec = state.recognizer()
    mismatch = rec.model_mismatch()
    if mismatch:
        raise fail(mismatch, 2)
    if rec.gallery.store.identity_count(rec.model) == 0:
        err.print("[yellow]warning:[/yellow] the gallery has no people enrolled: every face will be unknown")

    def record(m: Match) -> dict[str, Any]:
        return {
            "box": list(m.face.box),
            "identity": m.identity,
            "score": round(m.score, 4),
            "candidates": [{"identity": c.identity, "score": round(c.score, 4)} for c in m.candidates],
        }

    def written(source: str, matches: list[Match], error: str | None) -> str | None:
        """The image's error, or that of writing its --annotate/--crops files."""
        if error is None and outputs.enabled:
            try:
                outputs.write(source, matches)
            except (FaceprintError, OSError) as exc:
                return f"{source}: cannot write its outputs: {exc}"
        return error

    results = rec.identify_many(files, top_k, threshold, workers=state.n_workers(len(files)))
    report_images(
        ((r.source, [record(m) for m in matches], written(r.source, matches, r.error)) for r, matches in results),
        len(files),
        "identifying",
        as_json,
        _print_identified,
        empty,
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
    a: Annotated[Path | None, typer.Argument(help="First image.")] = None,
    b: Annotated[Path | None, typer.Argument(help="Second image (or use --identity).")] = None,
    identity: Annotated[
        str | None, typer.Option("--identity", "-i", help="Compare A with this enrolled person.")
    ] = None,
    pairs: Annotated[
        Path | None,
        typer.Option(
            "--pairs",
            help="A CSV of image pairs (two columns of paths, relative to the CSV's folder or absolute; an "
            "optional third column with the truth: yes/no, same/different, 1/0); one result per pair.",
        ),
    ] = None,
    threshold: Annotated[float | None, ThresholdOption] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (one object per pair with --pairs).")] = False,
) -> None:
    """Are two photos (or a photo and an enrolled person) the same person? Exit 0 if same, 3 if not.
    With --pairs: every pair of a CSV file, each photo read once; exit 1 if any pair failed."""
    if pairs is not None:
        if a is not None or b is not None or identity is not None:
            raise fail("--pairs takes no images and no --identity", 2)
        _verify_pairs(pairs, threshold, as_json)
        return
    if a is None or (b is None) == (identity is None):
        raise fail("give an image A and either a second image B or --identity NAME (or --pairs FILE)", 2)
    try:
        if identity is not None:
            rec = state.recognizer()
            mismatch = rec.model_mismatch()
            if mismatch:
                raise FaceprintError(mismatch)
            result = rec.verify_identity(a, identity, threshold)
        else:
            result = _pair_results([(a, b)], threshold, workers=1)[0]  # type: ignore[list-item]
            if result.error is not None:
                raise FaceprintError(result.error)
            result = result.result
    except FaceprintError as exc:
        if as_json:
            emit({"same": None, "score": None, "threshold": threshold, "note": None, "error": str(exc)})
        raise fail(str(exc)) from None
    if result.note:
        err.print(f"[yellow]note:[/yellow] {escape(result.note)}")
    if as_json:
        emit({"same": result.same, "score": round(result.score, 4), "threshold": result.threshold, "note": result.note})
    else:
        verdict = "[green]same person[/green]" if result.same else "[red]different people[/red]"
        out.print(f"{verdict} (score {result.score:.3f}, threshold {result.threshold:.3f})")
    if not result.same:
        raise typer.Exit(3)


def _verify_threshold(threshold: float | None) -> float:
    """--threshold, else the gallery's calibrated one if there is a gallery, else the default: comparing
    two photos needs no gallery, and must not create one."""
    from faceprint.errors import GalleryNotFoundError
    from faceprint.match import DEFAULT_VERIFY

    if threshold is not None:
        return threshold
    try:
        return float(state.recognizer().verify_threshold)
    except GalleryNotFoundError:
        return DEFAULT_VERIFY.threshold


def _pair_results(pairs: list[tuple[Path, Path]], threshold: float | None, workers: int) -> list[Any]:
    from faceprint.api import verify_pairs

    n_images = len({p for pair in pairs for p in pair})
    with progress_bar(n_images, "embedding", enabled=n_images > 2) as advance:
        return verify_pairs(
            state.engine(), pairs, _verify_threshold(threshold), workers, on_progress=lambda *_: advance()
        )


TRUTH = {
    "yes": True,
    "same": True,
    "true": True,
    "1": True,
    "no": False,
    "different": False,
    "false": False,
    "0": False,
}


def _read_pairs(path: Path) -> tuple[list[tuple[Path, Path]], list[bool | None]]:
    """Pairs of image paths from a CSV (header optional), with the truth column when present."""
    import csv

    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            rows = [r for r in csv.reader(fh) if r and any(c.strip() for c in r)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise fail(f"{path}: cannot read the pairs file ({exc})", 2) from None
    base = path.parent
    pairs: list[tuple[Path, Path]] = []
    truth: list[bool | None] = []
    for k, row in enumerate(rows):
        if len(row) < 2:
            raise fail(f"{path}: line {k + 1}: expected two image paths separated by a comma", 2)
        first, second = (Path(c.strip()) for c in row[:2])
        if k == 0 and not (base / first).exists() and not first.exists() and first.suffix == "":
            continue  # a header such as file_x,file_y
        pairs.append(tuple(p if p.is_absolute() else base / p for p in (first, second)))  # type: ignore[arg-type]
        truth.append(TRUTH.get(row[2].strip().lower()) if len(row) > 2 else None)
    if not pairs:
        raise fail(f"{path}: no pairs in the file", 2)
    return pairs, truth


def _verify_pairs(path: Path, threshold: float | None, as_json: bool) -> None:
    pairs, truth = _read_pairs(path)
    results = _pair_results(pairs, threshold, state.n_workers(2 * len(pairs)))
    failures: list[tuple[str, str]] = []
    right = labelled = 0
    for pair, expected in zip(results, truth):
        verdict = pair.result
        if pair.error is not None:
            failures.append((f"{pair.a} / {pair.b}", pair.error))
        elif expected is not None:
            labelled += 1
            right += verdict.same == expected
        record: dict[str, Any] = {
            "a": pair.a,
            "b": pair.b,
            "same": None if verdict is None else verdict.same,
            "score": None if verdict is None else round(verdict.score, 4),
            "threshold": None if verdict is None else verdict.threshold,
            "note": None if verdict is None else verdict.note,
            "expected": expected,
            "error": pair.error,
        }
        if as_json:
            emit(record)
        elif verdict is not None:
            word = "same" if verdict.same else "different"
            out.print(f"{escape(pair.a)}  {escape(pair.b)}: {word} ({verdict.score:.3f})")
    if labelled:
        err.print(f"{right}/{labelled} labelled pairs right ({right / labelled:.3f})")
    report_failures(failures)
    if failures:
        raise typer.Exit(1)


# -------------------------------------------------------------------------------- detect
@app.command()
def detect(
    paths: Annotated[list[Path], typer.Argument(help="Image files or folders.")],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per image per line.")] = False,
) -> None:
    """Find faces: box, detector score and 5 landmarks for each."""
    from faceprint.pipeline import EngineSpec, analyze_images

    files, empty = _files(paths)
    engine = state.engine()

    def record(face: Face) -> dict[str, Any]:
        return {
            "box": list(face.box),
            "score": round(face.score, 4),
            "landmarks": [[round(float(x), 1), round(float(y), 1)] for x, y in face.landmarks],  # type: ignore[union-attr]
        }

    def show(record: dict[str, Any]) -> None:
        out.print(f"{record['image']}: {len(record['faces'])} face(s)")
        for face in record["faces"]:
            points = " ".join(f"({x:.0f},{y:.0f})" for x, y in face["landmarks"])
            out.print(f"  box {tuple(face['box'])} score {face['score']:.3f} landmarks {points}")

    results = analyze_images(files, engine, EngineSpec.of(engine), "detect", state.n_workers(len(files)))
    report_images(
        ((r.source, [record(f) for f in r.faces], r.error) for r in results),
        len(files),
        "detecting",
        as_json,
        show,
        empty,
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
def remove(
    name: Annotated[str, typer.Argument(help="Person to remove.")],
    photo: Annotated[
        list[int] | None,
        typer.Option("--photo", "-p", min=1, help="Remove only this photo (an id from `faceprint photos NAME`)."),
    ] = None,
) -> None:
    """Remove a person and all their templates, or single photos of theirs (--photo ID, repeatable)."""
    try:
        gallery = state.open_gallery()
        if not photo:
            n = gallery.remove(name)
            out.print(f"removed {escape(shown(name.strip()))} ({n} template(s))")
            return
        for photo_id in dict.fromkeys(photo):
            removed = gallery.remove_template(name, photo_id)
            out.print(f"removed photo {photo_id} of {escape(shown(name.strip()))} ({escape(removed.source)})")
    except FaceprintError as exc:
        raise fail(str(exc)) from None


@app.command()
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


@app.command()
def rename(old: Annotated[str, typer.Argument()], new: Annotated[str, typer.Argument()]) -> None:
    """Rename a person."""
    try:
        new = validate_name(new)
        state.open_gallery().rename(old, new)
    except FaceprintError as exc:
        raise fail(str(exc)) from None
    out.print(f"renamed {escape(shown(old.strip()))} to {escape(shown(new))}")


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
    from faceprint.pipeline import Terminated

    try:
        app()
    except FaceprintError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}")
        sys.exit(1)
    except Terminated:  # SIGTERM: the workers are already stopped
        err.print("terminated")
        sys.exit(143)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
    except SystemExit as exc:
        if exc.code == 130:  # typer turns Ctrl-C into a silent exit 130
            err.print("interrupted")
        raise


if __name__ == "__main__":
    run()
