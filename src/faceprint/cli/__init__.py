"""The ``faceprint`` command: the root app with the global options, and the command groups, one
module each (:mod:`~faceprint.cli.gallery`, :mod:`~faceprint.cli.recognize`, :mod:`~faceprint.cli.video`,
:mod:`~faceprint.cli.evaluate`, :mod:`~faceprint.cli.serve`), which share :mod:`faceprint.cli.common`.

Heavy libraries (models, numpy work, the web stack) load inside the commands, so ``faceprint --help``
stays fast.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from faceprint import __version__, settings
from faceprint.cli import (
    analyze,
    audit,
    cluster,
    embed,
    evaluate,
    gallery,
    gallery_admin,
    liveness,
    protect,
    recognize,
    serve,
    video,
)
from faceprint.cli.common import (
    DEFAULT_DETECTOR_CHOICE,
    DetectorName,
    EmbedderName,
    ExecutorName,
    State,
    err,
    fail,
    out,
    state,
)
from faceprint.errors import FaceprintError
from faceprint.pipeline import set_executor

app = typer.Typer(
    name="faceprint",
    help="Face recognition: enrol people into a gallery, identify and verify faces in photos.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,  # plain help: no "<bool>" after flags, sentences wrap between words
)


def _print_version(value: bool) -> None:
    if value:
        out.print(f"faceprint {__version__}")
        raise typer.Exit(0)


@app.callback()
def main(
    gallery: Annotated[
        str | None,  # text, not a Path: a Path would turn postgresql://host/db into postgresql:/host/db
        typer.Option(
            "--gallery",
            "-g",
            envvar="FACEPRINT_GALLERY",
            help="Gallery file, or a postgresql://user:password@host/db URL "
            "(default: $FACEPRINT_GALLERY or ~/.local/share/faceprint/gallery.db).",
        ),
    ] = None,
    key_file: Annotated[
        Path | None,
        typer.Option(
            "--key-file",
            help="File holding the key of an encrypted gallery: 32 random bytes as hex or base64 "
            "(default: $FACEPRINT_KEY, or the file $FACEPRINT_KEY_FILE names). See: faceprint gallery rekey.",
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
    executor: Annotated[
        ExecutorName,
        typer.Option(
            help="Where batches run: local worker processes, or actors on the Ray cluster at $RAY_ADDRESS "
            "(a local Ray when unset; needs faceprint[ray])."
        ),
    ] = ExecutorName.local,
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
    if key_file is not None:  # the option wins over $FACEPRINT_KEY, as --gallery over $FACEPRINT_GALLERY
        try:
            state.key = settings.read_key_file(key_file)
        except FaceprintError as exc:
            raise fail(str(exc), 2) from None
    state.detector = str(detector.value)
    state.embedder = str(embedder.value)
    state.flip = flip
    state.workers = workers
    on_ray = executor is ExecutorName.ray
    if on_ray and importlib.util.find_spec("ray") is None:
        raise fail("--executor ray needs Ray: pip install 'faceprint[ray]'", 2)
    state.executor = str(executor.value)
    set_executor("ray" if on_ray else "local")


for _group in (
    gallery,
    recognize,
    embed,
    analyze,
    cluster,
    video,
    evaluate,
    audit,
    serve,
    gallery_admin,
    protect,
    liveness,
):
    _group.register(app)


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


__all__ = ["State", "app", "main", "run", "state"]
