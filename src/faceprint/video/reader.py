"""Frames from a video file, a camera or a network stream, decoded on a background thread.

Files are read in full (a small queue lets decoding overlap recognition on a second core).
Live sources (a camera index or an RTSP/HTTP URL) must be processed in real time, so the
reader keeps only the newest frame: when recognition falls behind, older frames are
dropped and counted rather than queued (a queue would add ever-growing latency).

Every problem is reported as a :class:`VideoError` naming the input. A source that ends
early (a truncated file, a stream that drops) is not an exception while iterating: the
frames read so far are yielded, then :attr:`VideoReader.error` says what went wrong, so
callers keep their partial results.
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from faceprint.errors import VideoError

VideoSource = str | int | os.PathLike[str]

_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")
#: a file whose container promises N frames but decodes fewer than N - this many is truncated
#: (some encoders report a frame or two more than they wrote)
_FRAME_COUNT_SLACK = 2
#: a live source that yields no frame for this long has dropped
DEFAULT_STREAM_TIMEOUT_S = 5.0
#: file suffixes taken for video files where a command accepts photos and videos alike
VIDEO_SUFFIXES = frozenset({".mp4", ".m4v", ".mov", ".mkv", ".avi", ".webm", ".mpg", ".mpeg", ".wmv", ".flv", ".3gp"})


@dataclass
class Frame:
    """One decoded frame. ``index`` counts every frame the source produced (dropped ones
    included), so gaps in ``index`` are drops; ``image`` is BGR, as OpenCV decodes it."""

    index: int
    time_s: float
    image: np.ndarray


def describe(source: VideoSource) -> tuple[str, bool, int | str]:
    """(display name, is_live, what to hand to ``cv2.VideoCapture``)."""
    if isinstance(source, int):
        return f"camera {source}", True, source
    text = os.fspath(source)
    if text.isdigit():
        return f"camera {text}", True, int(text)
    if _URL.match(text):
        if text.lower().startswith("file://"):
            path = text[7:]
            return path, False, path
        return _redact(text), True, text
    return text, False, text


def _redact(url: str) -> str:
    """The URL without a password (stream URLs often carry credentials)."""
    return re.sub(r"(://[^:/@]+):[^@/]*@", r"\1:***@", url)


class VideoReader:
    """Iterate over :class:`Frame` objects; see the module docstring.

    ``live=None`` decides from the source (camera index or URL: live; path: file). A file
    opened with ``live=True`` is paced at its own frame rate, as a camera would deliver it
    (handy to rehearse live processing on a recording).
    """

    def __init__(
        self,
        source: VideoSource,
        live: bool | None = None,
        queue_size: int = 8,
        stream_timeout_s: float = DEFAULT_STREAM_TIMEOUT_S,
    ) -> None:
        self.name, source_is_live, target = describe(source)
        self.is_file = not source_is_live
        self.live = source_is_live if live is None else live
        self.stream_timeout_s = stream_timeout_s
        if self.is_file:
            path = Path(str(target))
            if not path.exists():
                raise VideoError(f"{self.name}: no such file")
            if path.is_dir():
                raise VideoError(f"{self.name}: is a folder, not a video file")
            if path.stat().st_size == 0:
                raise VideoError(f"{self.name}: empty file (0 bytes)")
            # FFmpeg only: CAP_ANY would also open a lone image as a one-frame "sequence"
            self._cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
        else:
            self._cap = cv2.VideoCapture(target)
        if not self._cap.isOpened():
            self._cap.release()
            what = (
                "not a video OpenCV can read (or truncated/corrupt: no index)"
                if self.is_file
                else "could not open the camera or stream"
            )
            raise VideoError(f"{self.name}: {what}")
        fps = float(self._cap.get(cv2.CAP_PROP_FPS) or 0.0)
        #: frames per second reported by the source (None when it does not say)
        self.fps: float | None = fps if 0.5 < fps < 1000 else None
        count = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        #: frames the container says it holds (None when unknown, as for cameras and live streams;
        #: a finite file served over HTTP has one)
        self.frame_count: int | None = count if count > 0 else None
        self.width = int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        self.height = int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        #: frames decoded from the source / dropped because processing fell behind
        self.frames_read = 0
        self.dropped = 0
        #: why the source ended early (truncated file, dropped stream); None when it ended well
        self.error: str | None = None
        self._stop = threading.Event()
        self._done = threading.Event()
        self._queue: queue.Queue[Frame | None] = queue.Queue(maxsize=queue_size)
        self._latest: Frame | None = None
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ decoding thread
    def _timestamp(self, index: int, started: float) -> float:
        if self.is_file and self.fps:
            return index / self.fps
        if self.is_file:
            return float(self._cap.get(cv2.CAP_PROP_POS_MSEC) or 0.0) / 1000.0
        return time.monotonic() - started  # streams: wall clock since the first frame

    def _run(self) -> None:
        started = time.monotonic()
        last_ok = started
        index = 0
        try:
            while not self._stop.is_set():
                ok, image = self._cap.read()
                if not ok or image is None:
                    if self.is_file or (self.frame_count and index >= self.frame_count - _FRAME_COUNT_SLACK):
                        break  # the end of a file (or of a finite file served as a stream)
                    # streams can stall briefly; give up only after stream_timeout_s without frames
                    if time.monotonic() - last_ok > self.stream_timeout_s:
                        break
                    time.sleep(0.05)
                    continue
                last_ok = time.monotonic()
                if index == 0:
                    started = last_ok
                frame = Frame(index, self._timestamp(index, started), image)
                index += 1
                self.frames_read = index
                if self.is_file and self.live and self.fps:
                    # rehearsal of a live source: deliver frames no faster than the file's rate
                    delay = started + frame.time_s - time.monotonic()
                    if delay > 0:
                        self._stop.wait(delay)
                if self.live:
                    with self._cond:
                        if self._latest is not None:
                            self.dropped += 1  # the previous frame was never processed
                        self._latest = frame
                        self._cond.notify()
                else:
                    while not self._stop.is_set():
                        try:
                            self._queue.put(frame, timeout=0.1)
                            break
                        except queue.Full:
                            continue
        except Exception as exc:  # a decoder crash must end iteration, not hang it
            self.error = f"{self.name}: decoding failed after {index} frame(s): {exc}"
        finally:
            if self.error is None and not self._stop.is_set():
                self.error = self._end_error(index)
            self._done.set()
            with self._cond:
                self._cond.notify_all()
            if not self.live:
                with contextlib.suppress(queue.Full):  # wakes the consumer; it also polls _done
                    self._queue.put_nowait(None)

    def _end_error(self, n: int) -> str | None:
        """Why the source ended where it did, if that was not its natural end."""
        if n == 0:
            return f"{self.name}: no frames could be decoded" + (
                " (the file holds no video frames)" if self.is_file and not self.frame_count else ""
            )
        if self.is_file:
            if self.frame_count and n < self.frame_count - _FRAME_COUNT_SLACK:
                return (
                    f"{self.name}: video ends after {n} of {self.frame_count} frames "
                    "(truncated or corrupt); results cover the frames read"
                )
            return None
        if self.frame_count and n >= self.frame_count - _FRAME_COUNT_SLACK:
            return None  # a finite file served over HTTP reached its end
        return (
            f"{self.name}: stream stopped delivering frames after {n} frame(s) "
            f"(no frame for {self.stream_timeout_s:g} s); results cover the frames read"
        )

    # ------------------------------------------------------------------ consumer side
    def start(self) -> VideoReader:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"video-reader {self.name}", daemon=True)
            self._thread.start()
        return self

    def __iter__(self) -> Iterator[Frame]:
        self.start()
        if self.live:
            while True:
                with self._cond:
                    while self._latest is None and not self._done.is_set():
                        self._cond.wait(0.1)
                    frame, self._latest = self._latest, None
                if frame is None:
                    return
                yield frame
        else:
            while True:
                try:
                    item = self._queue.get(timeout=0.1)
                except queue.Empty:
                    if self._done.is_set() and self._queue.empty():
                        return
                    continue
                if item is None:
                    return
                yield item

    def close(self) -> None:
        """Stop decoding and release the source (safe to call twice)."""
        self._stop.set()
        if self._thread is not None:
            while True:  # unblock a producer waiting on a full queue
                try:
                    self._queue.get_nowait()
                except queue.Empty:
                    break
            self._thread.join(timeout=2.0)
        if self._thread is None or not self._thread.is_alive():
            self._cap.release()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_video(source: VideoSource | VideoReader, live: bool | None = None) -> VideoReader:
    """A :class:`VideoReader` for a path, camera index or URL (a reader is passed through)."""
    return source if isinstance(source, VideoReader) else VideoReader(source, live=live)
