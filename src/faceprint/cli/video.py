"""``faceprint video``: who appears when in a video file, on a camera or in a stream."""

from __future__ import annotations

import os
import time
from collections import deque
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated, Any

import typer


def register(app: typer.Typer) -> None:
    """Add the ``video`` command to the faceprint CLI."""
    app.command(name="video")(video)


def video(
    source: Annotated[
        str, typer.Argument(metavar="INPUT", help="Video file, camera index (0, 1, ...) or RTSP/HTTP URL.")
    ],
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write the timeline as a JSON array ('-': stdout).")
    ] = None,
    csv_out: Annotated[Path | None, typer.Option("--csv", help="Write the timeline as CSV ('-': stdout).")] = None,
    annotate: Annotated[
        Path | None,
        typer.Option(
            "--annotate",
            help="Write a copy of the video with each box labelled as its row, e.g. unknown-1 #4 (.mp4/.mkv/.avi).",
        ),
    ] = None,
    crops: Annotated[
        Path | None, typer.Option("--crops", help="Save each appearance's best face crop in this folder (one per row).")
    ] = None,
    every: Annotated[
        int, typer.Option("--every", min=1, help="Run the detector every N frames; track in between.")
    ] = 5,
    top_k: Annotated[int, typer.Option("--top-k", "-k", min=1, help="Candidates kept per track.")] = 3,
    threshold: Annotated[
        float | None, typer.Option(help="Override the gallery's identification threshold (cosine).")
    ] = None,
    detect_size: Annotated[
        int,
        typer.Option(
            "--detect-size",
            min=64,
            help="Long side in pixels of the copy the detector sees (smaller: faster, misses small faces).",
        ),
    ] = 960,
    live: Annotated[
        bool | None,
        typer.Option(
            "--live/--no-live",
            help="Process in real time, dropping frames when behind (default: on for cameras and URLs).",
        ),
    ] = None,
    max_frames: Annotated[int | None, typer.Option("--max-frames", min=1, help="Stop after N frames.")] = None,
    events: Annotated[
        bool,
        typer.Option(
            "--events",
            help="Also read facial events per track: blinks, speaking, expression changes, micro-movements "
            '(--json then writes {"appearances": [...], "events": [...]}).',
        ),
    ] = False,
    events_csv: Annotated[
        Path | None,
        typer.Option("--events-csv", help="Write the facial events as CSV ('-': stdout; implies --events)."),
    ] = None,
    plot: Annotated[
        Path | None, typer.Option("--plot", help="Write a timeline plot of the facial events (.png; implies --events).")
    ] = None,
) -> None:
    """Who appears when: track faces through a video and name each track from the gallery.

    Prints a timeline (one row per appearance), or writes it with --json/--csv. Files show a
    progress bar; live sources a status line, and Ctrl-C stops them and still writes the
    outputs. Exits 1 when the input is unreadable or ends early (partial results are kept),
    2 when an output is the input, another output, or cannot be written there. Each output
    file appears complete, or not at all.
    """
    # FFmpeg's and OpenCV's own log lines ("moov atom not found", "can't open camera by
    # index") would only repeat our error messages, less clearly
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    import cv2.utils.logging
    from rich.progress import Progress, SpinnerColumn, TextColumn

    from faceprint.cli.common import err, fail, out, progress_bar, state
    from faceprint.errors import FaceprintError, VideoError
    from faceprint.fileio import check_outputs
    from faceprint.video.output import check_video_path, plot_events, write_csv, write_events_csv, write_json
    from faceprint.video.pipeline import FrameResult, recognize_video
    from faceprint.video.reader import describe, open_video

    if os.environ.get("OPENCV_LOG_LEVEL") is None:
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    outputs = (("--json", json_out), ("--csv", csv_out), ("--events-csv", events_csv))
    stdout = [f"{name} -" for name, path in outputs if str(path) == "-"]
    if len(stdout) > 1:
        raise fail(f"{' and '.join(stdout)} cannot {'both' if len(stdout) == 2 else 'all'} write to stdout", 2)
    if plot is not None and plot.suffix.lower() != ".png":
        raise fail(f"{plot}: --plot writes a PNG image: give it a .png name", 2)
    events = events or events_csv is not None or plot is not None
    # before loading the models or opening anything for writing: an output that is the input,
    # another output or unwritable is a usage error (2); a bad input (1) also fails at once
    _, is_live, target = describe(source)
    try:
        if annotate is not None:
            check_video_path(annotate)
        check_outputs(
            [] if is_live else [str(target)],
            {
                "--annotate": annotate,
                "--json": json_out,
                "--csv": csv_out,
                "--crops": crops,
                "--events-csv": events_csv,
                "--plot": plot,
            },
            folders={"--crops"},
        )
    except FaceprintError as exc:
        raise fail(str(exc), 2) from None
    try:
        reader = open_video(source, live)
    except VideoError as exc:
        raise fail(str(exc)) from None
    try:
        rec = state.recognizer()
    except BaseException:
        reader.close()
        raise
    if len(rec.gallery.matrix(rec.model).names) == 0:
        err.print("[yellow]warning:[/yellow] the gallery has no people enrolled: every face will be unknown")

    recent: deque[float] = deque(maxlen=30)
    interactive = err.is_terminal

    def status(result: FrameResult, n: int) -> str:
        recent.append(time.perf_counter())
        rate = (len(recent) - 1) / (recent[-1] - recent[0]) if len(recent) > 1 and recent[-1] > recent[0] else 0.0
        faces = ", ".join(t.label for t in result.tracks) or "no faces"
        return f"{n} frames | {rate:.1f} fps | {result.dropped} dropped | {faces}"

    options: dict[str, Any] = {
        "every": every,
        "top_k": top_k,
        "threshold": threshold,
        "detect_size": detect_size,
        "crops_dir": crops,
        "annotate": annotate,
        "max_frames": max_frames,
        "events": events,
    }
    last_index = [-1]  # the last frame processed: a file's annotated copy runs to it
    try:
        if reader.live:
            columns = (SpinnerColumn(), TextColumn("{task.description}"))
            with Progress(*columns, console=err, transient=False, disable=not interactive) as progress:
                task = progress.add_task(f"{reader.name}: waiting for frames", total=None)
                counter = [0, 0]  # frames processed, frames annotated

                def on_live(result: FrameResult) -> None:
                    counter[0] += 1
                    last_index[0] = result.index
                    progress.update(task, description=status(result, counter[0]))

                def on_live_annotate() -> None:
                    counter[1] += 1
                    progress.update(task, description=f"annotating {annotate}: {counter[1]}/{last_index[0] + 1} frames")

                result = recognize_video(reader, rec, on_frame=on_live, on_annotate=on_live_annotate, **options)
        else:
            total = reader.frame_count if max_frames is None else min(max_frames, reader.frame_count or max_frames)
            # one bar for recognition, then one for drawing the annotated copy (a second read)
            with ExitStack() as first, ExitStack() as second:
                advance = first.enter_context(progress_bar(total, Path(reader.name).name, enabled=interactive))  # type: ignore[arg-type]
                drawn: list[Any] = []

                def on_file(result: FrameResult) -> None:
                    last_index[0] = result.index
                    advance()

                def on_file_annotate() -> None:
                    if not drawn:
                        first.close()
                        bar = progress_bar(last_index[0] + 1, f"annotating {annotate}", enabled=interactive)
                        drawn.append(second.enter_context(bar))
                    drawn[0]()

                result = recognize_video(reader, rec, on_frame=on_file, on_annotate=on_file_annotate, **options)
    except FaceprintError as exc:
        raise fail(str(exc)) from None
    finally:
        reader.close()

    rows = result.appearances
    try:
        if json_out is not None:
            write_json(rows, json_out, result.events if events else None)
        if csv_out is not None:
            write_csv(rows, csv_out)
        if events_csv is not None:
            write_events_csv(result.events, events_csv)
        if plot is not None:
            plot_events(result.events, plot, rows, title=f"facial events in {Path(result.source).name}")
    except (OSError, FaceprintError) as exc:
        raise fail(f"cannot write the timeline: {exc}") from None
    if json_out is None and csv_out is None and events_csv is None:
        _print_table(out, rows, result.source)
        if events:
            _print_events(out, result.events, rows)
    s = result.stats
    rate = s.frames / result.elapsed_s if result.elapsed_s > 0 else 0.0
    dropped = f", {result.dropped} dropped" if reader.live else ""
    err.print(
        f"{s.frames} frames in {result.elapsed_s:.1f} s ({rate:.1f} frames/s{dropped}); "
        f"{s.detections} detector runs, {s.faces_embedded} faces embedded; {len(rows)} appearance(s)"
        + (f"; {len(result.events)} facial event(s)" if events else "")
        + (f"; annotated video: {result.annotated}" if result.annotated else "")
    )
    if result.error:
        raise fail(result.error)
    if result.interrupted:
        err.print("stopped (Ctrl-C); outputs written")
        if not reader.live:
            raise typer.Exit(130)


def _print_table(console: Any, rows: list[Any], source: str) -> None:
    from rich.table import Table

    table = Table(title=f"{len(rows)} appearance(s) in {source}")
    for name, justify in (
        ("identity", "left"),
        ("track", "right"),
        ("start", "right"),
        ("end", "right"),
        ("frames", "right"),
        ("score", "right"),
        ("crop", "left"),
    ):
        table.add_column(name, justify=justify, overflow="fold")  # type: ignore[arg-type]
    for a in rows:
        style = None if a.known else "yellow"
        table.add_row(
            a.identity,
            str(a.track_id),
            _clock(a.start_s),
            _clock(a.end_s),
            f"{a.start_frame}-{a.end_frame}",
            f"{a.score:.3f}",
            a.crop or "",
            style=style,
        )
    console.print(table)


def _print_events(console: Any, events: list[Any], rows: list[Any]) -> None:
    from rich.table import Table

    names = {t: a.identity for a in rows for t in a.track_ids}
    table = Table(title=f"{len(events)} facial event(s)")
    for name in ("identity", "track", "type", "onset", "apex", "offset", "region", "intensity", "label"):
        table.add_column(name, justify="right" if name in ("track", "intensity") else "left")
    for e in events:
        table.add_row(
            names.get(e.track_id, ""),
            str(e.track_id),
            e.type,
            _clock(e.onset_s),
            _clock(e.apex_s),
            _clock(e.offset_s),
            e.region,
            f"{e.intensity:.3f}",
            e.label or "",
        )
    console.print(table)


def _clock(seconds: float) -> str:
    minutes, s = divmod(seconds, 60)
    return f"{int(minutes)}:{s:05.2f}"


def enroll_video(name: str, clip: Path, as_json: bool) -> None:
    """``faceprint enroll --name NAME --video CLIP``: enrol a few sharp, different views of the
    person the clip follows (:func:`faceprint.video.enrol_from_video`); says which track and
    frames were taken."""
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    from rich.markup import escape

    from faceprint.cli.common import emit, enroll_record, err, fail, out, progress_bar, report_failures, state
    from faceprint.errors import FaceprintError
    from faceprint.names import validate_name
    from faceprint.video.enrol import enrol_from_video
    from faceprint.video.reader import describe, open_video

    try:
        name = validate_name(name)  # before the clip is read
    except FaceprintError as exc:
        raise fail(str(exc), 2) from None
    shown, live, _ = describe(clip)
    if live:
        raise fail(f"{shown}: --video needs a video file, not a camera or stream", 2)
    try:
        reader = open_video(clip)
    except FaceprintError as exc:
        raise fail(str(exc)) from None
    try:
        rec = state.recognizer(create=True)
        with progress_bar(reader.frame_count or 0, clip.name, enabled=err.is_terminal) as advance:
            result = enrol_from_video(rec, name, reader, on_progress=advance)
    except FaceprintError as exc:
        raise fail(str(exc)) from None
    finally:
        reader.close()
    track = result.track
    assert track is not None  # enrol_from_video raises when it takes no track
    if as_json:
        emit(
            {
                **enroll_record(result),
                "video": result.video,
                "tracks": result.tracks,
                "track": {
                    "track_id": track.track_id,
                    "start_s": round(track.start_s, 3),
                    "end_s": round(track.end_s, 3),
                    "start_frame": track.start_frame,
                    "end_frame": track.end_frame,
                    "detections": track.detections,
                },
                "views": [
                    {
                        "frame": v.frame,
                        "time_s": round(v.time_s, 3),
                        "box": list(v.box),
                        "quality": round(v.quality, 4),
                        "source": v.source,
                        "stored": v.stored,
                    }
                    for v in result.views
                ],
            }
        )
    else:
        err.print(
            f"took track {track.track_id} of {result.tracks} in {escape(shown)}: {_clock(track.start_s)}-"
            f"{_clock(track.end_s)}, frames {track.start_frame}-{track.end_frame}, {track.detections} detections"
        )
        for v in result.views:
            kept = "" if v.stored else " (already enrolled)"
            err.print(f"[dim]  frame {v.frame} ({_clock(v.time_s)}), box {v.box}, quality {v.quality:.2f}{kept}[/dim]")
        out.print(
            f"enrolled {len(result.added)} view(s) of {escape(result.name)} from {escape(shown)}; "
            f"{len(result.skipped)} already enrolled; {len(result.errors)} failed"
        )
    report_failures(result.errors)
    if result.not_attempted:
        raise fail(f"enrolment stopped by a gallery error; {len(result.not_attempted)} view(s) not stored (run again)")
    if result.errors:
        raise typer.Exit(1)
