"""Timeline files (JSON, CSV) and the annotated video.

A video file is annotated after the recognition pass, from a second read of the file: only
then is every track named as its timeline row names it (``unknown-<k>`` groups and
identities found later in the video), so each drawn label is its row's identity and
track. A camera or stream cannot be read twice: it is drawn as it comes, with each
track's name so far (``unknown`` until the gallery names it).

Every file goes through :mod:`faceprint.fileio`: written beside its final name and renamed
into place only once complete.
"""

from __future__ import annotations

import csv
import json
import os
import sys
from array import array
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING

import cv2
import numpy as np

from faceprint.draw import Box, draw_faces, line_thickness
from faceprint.errors import VideoError
from faceprint.fileio import STDOUT, AtomicPath, atomic_write
from faceprint.video.pipeline import Appearance, FrameResult
from faceprint.video.reader import VideoReader

if TYPE_CHECKING:
    from faceprint.video.series import FaceEvent

KNOWN = (60, 200, 60)  # BGR
UNKNOWN = (0, 160, 255)

#: FFmpeg muxer -> a codec every opencv-python(-headless) wheel can encode
_FOURCC = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".mkv": "mp4v", ".avi": "MJPG"}


def check_video_path(path: str | os.PathLike[str]) -> None:
    """An annotated video needs a container OpenCV can write (its folder is checked by
    :func:`faceprint.fileio.check_outputs`)."""
    if Path(path).suffix.lower() not in _FOURCC:
        raise VideoError(f"{path}: annotated video must end in {', '.join(sorted(_FOURCC))}")


def track_label(identity: str, track_id: int, score: float) -> str:
    """The text drawn by a box: the timeline's identity and track column, and the score."""
    return f"{identity} #{track_id} {score:.2f}" if score > -1 else f"{identity} #{track_id}"


def _draw(
    image: np.ndarray, boxes: list[Box], labels: list[str], known: list[bool], detected: list[bool]
) -> np.ndarray:
    thin = line_thickness(image)
    colors = [KNOWN if k else UNKNOWN for k in known]
    # predicted (between detections) boxes are drawn thinner than detected ones
    return draw_faces(image, boxes, labels, colors, [thin + 1 if d else thin for d in detected])


def draw_live(result: FrameResult) -> np.ndarray:
    """A copy of a live frame with each track's box and its name so far."""
    tracks = result.tracks
    return _draw(
        result.image,
        [t.box for t in tracks],
        [track_label(t.label, t.track_id, t.score) for t in tracks],
        [t.identity is not None for t in tracks],
        [t.detected for t in tracks],
    )


class BoxLog:
    """Where every track was on every processed frame, kept as int32 (7 numbers a box, so
    hours of video take megabytes) until the timeline can name the tracks."""

    _FIELDS = 7  # frame, track, left, top, right, bottom, detected

    def __init__(self) -> None:
        self._frames = array("i")
        self._boxes = array("i")

    def add(self, result: FrameResult) -> None:
        self._frames.append(result.index)
        for t in result.tracks:
            self._boxes.extend((result.index, t.track_id, *t.box, int(t.detected)))

    def __len__(self) -> int:
        return len(self._frames)

    def lookup(self) -> Callable[[int], tuple[np.ndarray, bool]]:
        """A function of a frame index: the rows (track, left, top, right, bottom, detected)
        of the last processed frame at or before it, and whether that frame is this one (a
        frame dropped by a live run shows the boxes of the frame before it)."""
        frames = np.frombuffer(self._frames, np.int32).copy()
        boxes = np.frombuffer(self._boxes, np.int32).copy().reshape(-1, self._FIELDS)
        starts = np.searchsorted(boxes[:, 0], frames, "left")
        ends = np.searchsorted(boxes[:, 0], frames, "right")

        def at(index: int) -> tuple[np.ndarray, bool]:
            k = int(np.searchsorted(frames, index, "right")) - 1
            if k < 0:
                return boxes[:0, 1:], False
            return boxes[starts[k] : ends[k], 1:], int(frames[k]) == index

        return at

    @property
    def last_frame(self) -> int:
        return self._frames[-1] if self._frames else -1


def event_text(event: FaceEvent) -> str:
    """How an event reads on the annotated video: blink, speaking, micro brows, happy..."""
    if event.type == "expression":
        return event.label or "expression"
    return f"micro {event.region}" if event.type == "micro" else event.type


def annotate_file(
    source: str | os.PathLike[str],
    log: BoxLog,
    appearances: list[Appearance],
    writer: AnnotationWriter,
    on_frame: Callable[[], None] | None = None,
    events: Sequence[FaceEvent] = (),
) -> None:
    """Read the video file ``source`` again into ``writer`` with the boxes of ``log``, each
    labelled as its timeline row (tracks too short for the timeline are left out), followed by
    the ``events`` of its track under way on that frame (``[blink, speaking]``). Every
    frame up to the last one processed is written, dropped ones included, so the output
    keeps the input's timing."""
    rows = {track: row for row in appearances for track in row.track_ids}
    by_track: dict[int, list[FaceEvent]] = {}
    for e in events:
        by_track.setdefault(e.track_id, []).append(e)
    at = log.lookup()
    with VideoReader(source) as reader:
        for frame in reader:
            if frame.index > log.last_frame:
                break
            found, processed = at(frame.index)
            boxes: list[Box] = []
            labels, known, detected = [], [], []
            for track, left, top, right, bottom, det in found.tolist():
                row = rows.get(track)
                if row is not None:
                    boxes.append((left, top, right, bottom))
                    label = track_label(row.identity, row.track_id, row.score)
                    doing = [event_text(e) for e in by_track.get(track, ()) if e.onset_s <= frame.time_s <= e.offset_s]
                    labels.append(f"{label} [{', '.join(doing)}]" if doing else label)
                    known.append(row.known)
                    detected.append(bool(det) and processed)
            writer.write(_draw(frame.image, boxes, labels, known, detected))
            if on_frame is not None:
                on_frame()
    if writer.frames <= log.last_frame:
        raise VideoError(f"{writer.path}: reading {source} again to draw it failed: {reader.error or 'it changed'}")


class AnnotationWriter:
    """An output video at ``fps``; one frame in, one frame out. It takes the size of the
    first frame and is written to a temporary file that replaces ``path`` on :meth:`close`
    (:meth:`abort`: ``path`` stays as it was; no frame: no file).

    As a context manager it closes on success and on Ctrl-C (what was written is a shorter
    but complete video, as the timeline is) and aborts on any other exception.
    """

    def __init__(self, path: str | os.PathLike[str], fps: float) -> None:
        self.path = Path(path)
        check_video_path(self.path)
        self.fps = fps
        self.size: tuple[int, int] | None = None
        self.frames = 0
        self._target: AtomicPath | None = None
        self._writer: cv2.VideoWriter | None = None

    def _open(self, size: tuple[int, int]) -> cv2.VideoWriter:
        self._target = AtomicPath(self.path)
        fourcc = cv2.VideoWriter_fourcc(*_FOURCC[self.path.suffix.lower()])
        writer = cv2.VideoWriter(str(self._target.tmp), cv2.CAP_FFMPEG, fourcc, self.fps, size)
        if not writer.isOpened():
            self._target.abort()
            raise VideoError(f"{self.path}: cannot write a video here")
        self.size = size
        return writer

    def write(self, image: np.ndarray) -> None:
        if self._writer is None:
            self._writer = self._open((image.shape[1], image.shape[0]))
        elif (image.shape[1], image.shape[0]) != self.size:  # a stream may change resolution
            image = cv2.resize(image, self.size)
        self._writer.write(image)
        self.frames += 1

    def close(self) -> None:
        """Finish the video and put it in place."""
        if self._writer is not None:
            self._writer.release()
        if self._target is not None:
            self._target.commit()

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.release()
        if self._target is not None:
            self._target.abort()

    def __enter__(self) -> AnnotationWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None or issubclass(exc_type, KeyboardInterrupt):
            self.close()
        else:
            self.abort()


def _write_text(path: str | os.PathLike[str], write: Callable[[IO[str]], None]) -> None:
    """Run ``write`` on stdout (``-``) or on the file, which appears complete or not at all."""
    if str(path) == STDOUT:
        write(sys.stdout)
        return
    with atomic_write(path, "w", newline="", encoding="utf-8") as f:
        write(f)


def write_json(
    appearances: Iterable[Appearance], path: str | os.PathLike[str], events: Iterable[FaceEvent] | None = None
) -> None:
    """A JSON array of timeline rows (``-``: stdout); with ``events``, an object
    ``{"appearances": [...], "events": [...]}`` instead."""
    rows = [a.to_dict() for a in appearances]
    doc: object = rows if events is None else {"appearances": rows, "events": [e.to_dict() for e in events]}

    def write(f: IO[str]) -> None:
        json.dump(doc, f, indent=1)
        f.write("\n")

    _write_text(path, write)


def write_csv(appearances: Iterable[Appearance], path: str | os.PathLike[str]) -> None:
    """The timeline as CSV, same columns as the JSON (``-``: stdout; empty crop: none saved)."""

    def write(f: IO[str]) -> None:
        writer = csv.DictWriter(f, fieldnames=list(Appearance.FIELDS))
        writer.writeheader()
        for a in appearances:
            writer.writerow({k: ("" if v is None else v) for k, v in a.to_dict().items()})

    _write_text(path, write)


def write_events_csv(events: Iterable[FaceEvent], path: str | os.PathLike[str]) -> None:
    """Facial events as CSV, one row each: the columns of :attr:`FaceEvent.FIELDS` (``-``: stdout)."""
    from faceprint.video.series import FaceEvent

    def write(f: IO[str]) -> None:
        writer = csv.DictWriter(f, fieldnames=list(FaceEvent.FIELDS))
        writer.writeheader()
        for e in events:
            writer.writerow({k: ("" if v is None else v) for k, v in e.to_dict().items()})

    _write_text(path, write)


#: colours of the event kinds on the timeline plot
EVENT_COLORS = {"blink": "tab:blue", "speaking": "tab:orange", "expression": "tab:green", "micro": "tab:red"}


def plot_events(
    events: Sequence[FaceEvent],
    path: str | os.PathLike[str],
    appearances: Sequence[Appearance] = (),
    duration_s: float | None = None,
    title: str = "facial events",
) -> None:
    """A timeline PNG: one row per track (named as its timeline row when ``appearances`` are
    given), each event a bar from onset to offset coloured by type, a tick at its apex; the
    tracks' own spans in grey. Written atomically (matplotlib, Agg)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    rows = {t: row for row in appearances for t in row.track_ids}
    tracks = sorted({e.track_id for e in events} | set(rows))
    y = {t: i for i, t in enumerate(tracks)}
    fig, ax = plt.subplots(figsize=(10, 1.2 + 0.32 * max(1, len(tracks))), dpi=110)
    for t, row in rows.items():
        ax.broken_barh([(row.start_s, max(row.end_s - row.start_s, 0.04))], (y[t] - 0.4, 0.8), color="0.9")
    lanes = {"blink": -0.3, "speaking": -0.1, "expression": 0.1, "micro": 0.3}
    for e in events:
        lane = y[e.track_id] + lanes.get(e.type, 0.0)
        ax.broken_barh([(e.onset_s, max(e.duration_s, 0.03))], (lane - 0.09, 0.18), color=EVENT_COLORS.get(e.type, "k"))
        ax.plot([e.apex_s, e.apex_s], [lane - 0.1, lane + 0.1], color="k", lw=0.6)
    ax.set_yticks(range(len(tracks)))
    ax.set_yticklabels([f"{rows[t].identity} #{t}" if t in rows else f"#{t}" for t in tracks], fontsize=7)
    ax.set_ylim(-0.6, len(tracks) - 0.4)
    ax.invert_yaxis()
    end = duration_s or max([e.offset_s for e in events] + [r.end_s for r in appearances] + [1.0])
    ax.set_xlim(0, end)
    ax.set_xlabel("seconds")
    ax.set_title(title, fontsize=9)
    ax.grid(True, axis="x", alpha=0.3)
    ax.legend(handles=[Patch(color=c, label=k) for k, c in EVENT_COLORS.items()], fontsize=7, loc="upper right", ncol=4)
    fig.tight_layout()
    try:
        with atomic_write(path, "wb") as f:
            fig.savefig(f, format="png")
    finally:
        plt.close(fig)
