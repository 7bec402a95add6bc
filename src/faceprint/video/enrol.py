"""Enrol a person from a video: a few sharp, different views of the one person the clip follows.

The clip is tracked as ``faceprint video`` tracks it, except that every detection is embedded
(not one per second), so each track has many candidate views. The person is the track the
detector found on the most frames; when a track of someone else (a template below
:data:`~faceprint.video.pipeline.TRACK_THRESHOLD` to it) was found on nearly as many, the clip
is refused rather than guessed. Views are chosen by quality (face size, sharpness, frontal pose:
the video pipeline's sample weight) and diversity: the best view first, then each time the
candidate that adds most, its weight times its distance to the nearest view already taken
(farthest-point selection), among candidates at least half as good as the best.

Each view is stored as one template with :meth:`Recognizer.store_face`: its source is
``<clip>#t=<seconds>&frame=<n>`` and its file hash the clip's, so views differ by their face box
(no two views with the same box are taken) and enrolling the same clip again stores nothing new.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from faceprint.api import EnrollResult
from faceprint.errors import FaceprintError, GalleryError, MultipleFacesError, NoFaceError, VideoError
from faceprint.names import validate_name
from faceprint.types import Face
from faceprint.video.pipeline import TRACK_THRESHOLD, Sample, TrackItem, track_templates
from faceprint.video.reader import VideoReader, describe

if TYPE_CHECKING:
    from faceprint.api import Recognizer

#: another person's track found on at least this share of the chosen track's frames makes the
#: choice a guess: the clip is refused
AMBIGUOUS = 0.8
#: candidate views weigh at least this share of the track's best view
MIN_RELATIVE_QUALITY = 0.5
#: a view this similar to one already taken adds nothing (a still face in a still shot)
NEAR_DUPLICATE = 0.995
#: samples kept per track while enrolling (the best by weight; plenty to choose a few from)
KEPT_SAMPLES = 64


@dataclass
class VideoView:
    """One view of :func:`enrol_from_video`: where in the clip it is and whether it was stored."""

    frame: int
    time_s: float
    box: tuple[int, int, int, int]  # the face in that frame's pixels
    quality: float  # the video pipeline's sample weight (size x sharpness x frontal)
    source: str  # as stored in the gallery
    stored: bool  # False: the person already had this view


@dataclass
class VideoEnrollResult(EnrollResult):
    """:class:`EnrollResult` (``added``/``skipped`` list the views' sources) plus which track of
    the clip was taken and which views."""

    video: str = ""
    track: TrackItem | None = None
    tracks: int = 0  # tracks found in the clip
    views: list[VideoView] = field(default_factory=list)


def enrol_from_video(
    rec: Recognizer,
    name: str,
    source: str | os.PathLike[str] | VideoReader,
    max_views: int = 5,
    *,
    every: int = 5,
    detect_size: int = 960,
    on_progress: Callable[[int], None] | None = None,
) -> VideoEnrollResult:
    """Enrol ``name`` from a video file (a path, or a reader opened on one): up to ``max_views``
    views of the person it follows (see the module docstring). ``on_progress(1)`` per frame read.
    Raises InvalidNameError before reading anything, VideoError for a camera or stream or an
    unreadable or truncated file, NoFaceError when no face was tracked and MultipleFacesError when
    several people are about equally present. A gallery failure is recorded in ``errors`` (the views
    not yet stored in ``not_attempted``), as :meth:`Recognizer.enroll` does."""
    name = validate_name(name)
    if max_views < 1:
        raise ValueError("max_views must be at least 1")
    shown, live = (source.name, not source.is_file) if isinstance(source, VideoReader) else describe(source)[:2]
    if live:  # refused before a camera is opened
        raise VideoError(f"{shown}: enrolling needs a video file, not a camera or stream")
    path = os.path.abspath(shown)
    items = track_templates(
        source,
        rec.engine,
        every,
        detect_size,
        on_progress,
        resample_s=0.0,  # every detection is a candidate view
        max_samples=KEPT_SAMPLES,
        keep_samples=True,
    )
    track = choose_track(items, shown)
    result = VideoEnrollResult(name, video=path, track=track, tracks=len(items))
    sha256 = _file_sha256(path)
    views = select_views(track.samples, max_views)
    for n, view in enumerate(views):
        source_name = view_source(path, view)
        face = Face(box=view.box, score=view.score, embedding=view.embedding)
        try:
            stored = rec.store_face(name, face, source_name, sha256)
        except GalleryError as exc:  # the gallery cannot take more: stop, as enroll does
            result.errors.append((source_name, str(exc)))
            result.not_attempted += [view_source(path, v) for v in views[n + 1 :]]
            break
        except FaceprintError as exc:
            result.errors.append((source_name, str(exc)))
            continue
        (result.added if stored else result.skipped).append(source_name)
        result.views.append(VideoView(view.frame, view.time_s, view.box, view.weight, source_name, stored))
    return result


def view_source(path: str, view: Sample) -> str:
    """What the gallery records as a view's source: the clip, the time and the frame."""
    return f"{path}#t={view.time_s:.3f}&frame={view.frame}"


def choose_track(items: list[TrackItem], shown: str) -> TrackItem:
    """The track the detector found on the most frames (ties: more evidence), unless another
    person's track comes within :data:`AMBIGUOUS` of it."""
    items = [t for t in items if t.samples]
    if not items:
        raise NoFaceError(f"{shown}: no face was tracked in the video")
    ranked = sorted(items, key=lambda t: (-t.detections, -t.evidence, t.track_id))
    best = ranked[0]
    rivals = [
        t
        for t in ranked[1:]
        if t.detections >= AMBIGUOUS * best.detections and float(t.template @ best.template) < TRACK_THRESHOLD
    ]
    if rivals:
        listed = "; ".join(_describe(t) for t in [best, *rivals])
        raise MultipleFacesError(
            f"{shown}: several people are on screen about as long ({listed}): "
            "use a clip where the person to enrol is the one most on screen"
        )
    return best


def _describe(track: TrackItem) -> str:
    return f"track {track.track_id}: {track.start_s:.1f}-{track.end_s:.1f} s, {track.detections} detections"


def select_views(samples: list[Sample], max_views: int) -> list[Sample]:
    """Up to ``max_views`` samples: the best first, then by weight x distance to the nearest
    view taken, among samples at least :data:`MIN_RELATIVE_QUALITY` of the best; near duplicates
    and repeated boxes are left out. In order of selection."""
    if not samples:
        return []
    weights = np.array([s.weight for s in samples])
    pool = [s for s, w in zip(samples, weights) if w >= MIN_RELATIVE_QUALITY * weights.max()]
    vectors = np.stack([s.embedding for s in pool])
    quality = np.array([s.weight for s in pool])
    first = int(np.argmax(quality))
    chosen = [first]
    nearest = vectors @ vectors[first]  # each candidate's similarity to its nearest chosen view
    while len(chosen) < max_views:
        boxes = {pool[i].box for i in chosen}
        usable = np.array([s.box not in boxes for s in pool]) & (nearest < NEAR_DUPLICATE)
        if not usable.any():
            break
        gain = np.where(usable, quality * (1.0 - nearest), -np.inf)
        pick = int(np.argmax(gain))
        chosen.append(pick)
        nearest = np.maximum(nearest, vectors @ vectors[pick])
    return [pool[i] for i in chosen]


def _file_sha256(path: str) -> str:
    """The file's SHA-256, read in chunks (videos can be large)."""
    try:
        with open(path, "rb") as f:
            return hashlib.file_digest(f, "sha256").hexdigest()
    except OSError as exc:
        raise VideoError(f"{path}: cannot read: {exc.strerror or exc}") from None
