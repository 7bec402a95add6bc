"""Timeline files (JSON, CSV) and the annotated video."""

from __future__ import annotations

import csv
import io
import json
import os
import sys
from collections.abc import Iterable
from pathlib import Path

import cv2
import numpy as np

from faceprint.errors import VideoError
from faceprint.video.pipeline import Appearance, FrameResult

KNOWN = (60, 200, 60)  # BGR
UNKNOWN = (0, 160, 255)

#: FFmpeg muxer -> a codec every opencv-python(-headless) wheel can encode
_FOURCC = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".mkv": "mp4v", ".avi": "MJPG"}


def draw(result: FrameResult) -> np.ndarray:
    """A copy of the frame with each track's box, name and score."""
    image = result.image.copy()
    h = image.shape[0]
    thick = max(1, round(h / 360))
    scale = max(0.4, h / 900)
    for t in result.tracks:
        color = KNOWN if t.identity else UNKNOWN
        left, top, right, bottom = t.box
        # predicted (between detections) boxes are drawn thinner than detected ones
        cv2.rectangle(image, (left, top), (right, bottom), color, thick + 1 if t.detected else thick)
        text = f"{t.label} {t.score:.2f}" if t.score > -1 else t.label
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
        y = top - 4 if top - th - base - 4 > 0 else bottom + th + 4
        cv2.rectangle(image, (left, y - th - base), (left + tw + 4, y + base // 2), color, cv2.FILLED)
        cv2.putText(image, text, (left + 2, y - 2), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thick, cv2.LINE_AA)
    return image


def check_output(path: str | os.PathLike[str], video: bool = False) -> None:
    """Fail before a long run, not after it, when an output cannot be written."""
    path = Path(path)
    if str(path) == "-" and not video:
        return
    if video and path.suffix.lower() not in _FOURCC:
        raise VideoError(f"{path}: annotated video must end in {', '.join(sorted(_FOURCC))}")
    if not path.parent.is_dir():
        raise VideoError(f"{path}: folder {path.parent} does not exist")
    if path.is_dir():
        raise VideoError(f"{path}: is a folder")


class AnnotationWriter:
    """An output video with the input's frame rate and size; one frame in, one frame out."""

    def __init__(self, path: str | os.PathLike[str], fps: float, size: tuple[int, int]) -> None:
        self.path = Path(path)
        check_output(self.path, video=True)
        fourcc = _FOURCC[self.path.suffix.lower()]
        self._writer = cv2.VideoWriter(str(self.path), cv2.CAP_FFMPEG, cv2.VideoWriter_fourcc(*fourcc), fps, size)
        if not self._writer.isOpened():
            raise VideoError(f"{self.path}: cannot write a video here")
        self.size = size
        self.frames = 0

    def write(self, image: np.ndarray) -> None:
        if (image.shape[1], image.shape[0]) != self.size:  # a stream may change resolution
            image = cv2.resize(image, self.size)
        self._writer.write(image)
        self.frames += 1

    def close(self) -> None:
        self._writer.release()


def _open_text(path: str | os.PathLike[str]) -> io.TextIOBase:
    if str(path) == "-":
        return sys.stdout  # type: ignore[return-value]
    return open(path, "w", newline="", encoding="utf-8")  # noqa: SIM115 (closed by the caller)


def write_json(appearances: Iterable[Appearance], path: str | os.PathLike[str]) -> None:
    """A JSON array of timeline rows (``-``: stdout)."""
    f = _open_text(path)
    try:
        json.dump([a.to_dict() for a in appearances], f, indent=1)
        f.write("\n")
    finally:
        if f is not sys.stdout:
            f.close()


def write_csv(appearances: Iterable[Appearance], path: str | os.PathLike[str]) -> None:
    """The timeline as CSV, same columns as the JSON (``-``: stdout; empty crop: none saved)."""
    f = _open_text(path)
    try:
        writer = csv.DictWriter(f, fieldnames=list(Appearance.FIELDS))
        writer.writeheader()
        for a in appearances:
            writer.writerow({k: ("" if v is None else v) for k, v in a.to_dict().items()})
    finally:
        if f is not sys.stdout:
            f.close()
