"""What every command shares: the consoles, messages, progress bars, JSON lines, the state the
global options set, and the options several commands take. It imports no command module."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

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
from rich.text import Text

from faceprint.detect import DEFAULT_DETECTOR, DETECTORS
from faceprint.errors import GalleryError

out = Console(soft_wrap=True, highlight=False)
err = Console(stderr=True, highlight=False, soft_wrap=True)

DetectorName = StrEnum("DetectorName", {name: name for name in DETECTORS})  # type: ignore[misc]
DEFAULT_DETECTOR_CHOICE = DetectorName(DEFAULT_DETECTOR)


class EmbedderName(StrEnum):
    onnx = "onnx"
    dlib = "dlib"


class ExecutorName(StrEnum):
    local = "local"
    ray = "ray"


class State:
    gallery: str | Path | None = None  # --gallery: a file path, or a database URL (kept as text)
    key: bytes | None | Literal["environment"] = "environment"  # --key-file's key, else $FACEPRINT_KEY's
    detector: str = DEFAULT_DETECTOR
    embedder: str = "onnx"
    flip: bool = True
    workers: int | None = None
    executor: str = "local"
    _engine: Any = None
    _recognizer: Any = None

    def n_workers(self, n_items: int) -> int:
        if self.workers is not None:
            return self.workers
        if self.executor == "ray":  # one actor per CPU of the cluster, not of this machine
            from faceprint.ray_executor import default_workers as ray_workers

            return ray_workers(n_items)
        from faceprint.pipeline import default_workers

        return default_workers(n_items)

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

        return Gallery(self.gallery or default_gallery_path(), create=create, key=self.key)


state = State()


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


def image_files(paths: list[Path]) -> tuple[list[Path], list[tuple[str, str]]]:
    """The image files under ``paths`` and a failure for each folder without any; exits 1 when
    there is nothing at all to do."""
    from faceprint.image import find_images

    files, empty = find_images(paths)
    if not files:
        raise fail("; ".join(message for _, message in empty))
    return files, empty


def enroll_record(result: Any) -> dict[str, Any]:
    """The JSON object of one person's enrolment (an :class:`faceprint.api.EnrollResult`)."""
    return {
        "identity": result.name,
        "added": len(result.added),
        "skipped": len(result.skipped),
        "errors": [m for _, m in result.errors],
        "not_attempted": len(result.not_attempted),
        "chosen": [{"image": src, "box": list(box), "reason": why} for src, box, why in result.chosen],
    }
