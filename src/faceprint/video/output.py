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
from collections.abc import Callable, Iterable
from pathlib import Path
from types import TracebackType
from typing import IO

import cv2
import numpy as np

from faceprint.draw import Box, draw_faces, line_thickness
from faceprint.errors import VideoError
from faceprint.fileio import STDOUT, AtomicPath, atomic_write
from faceprint.video.pipeline import Appearance, FrameResult
from faceprint.video.reader import VideoReader

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


def annotate_file(
    source: str | os.PathLike[str],
    log: BoxLog,
    appearances: list[Appearance],
    writer: AnnotationWriter,
    on_frame: Callable[[], None] | None = None,
) -> None:
    """Read the video file ``source`` again into ``writer`` with the boxes of ``log``, each
    labelled as its timeline row (tracks too short for the timeline are left out). Every
    frame up to the last one processed is written, dropped ones included, so the output
    keeps the input's timing."""
    rows = {track: row for row in appearances for track in row.track_ids}
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
                    labels.append(track_label(row.identity, row.track_id, row.score))
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


def write_json(appearances: Iterable[Appearance], path: str | os.PathLike[str]) -> None:
    """A JSON array of timeline rows (``-``: stdout)."""

    def write(f: IO[str]) -> None:
        json.dump([a.to_dict() for a in appearances], f, indent=1)
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
