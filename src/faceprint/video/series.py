"""Dense landmarks over time: one :class:`FaceSeries` per track, and the events read from it.

The tracker (:class:`~faceprint.video.pipeline.VideoTracker`) says where each face is on every
frame; :class:`SeriesRecorder` runs the face mesh and iris models there (the analysis issue's
landmarks) and keeps, per track, the points, eye and mouth openness and head pose. Liveness cues
(:mod:`faceprint.liveness`) and facial dynamics (``faceprint video --events``) both read these
series, so both see the same numbers, and a blink is found by one function, :func:`detect_blinks`.

Between detections the mesh's crop follows the previous frame's mesh (as MediaPipe's own
tracking graph does) rather than the Kalman-predicted box: the mesh is steadier than the
detector, and a turned head keeps its crop centred.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from faceprint.analyze.landmarks import (
    LEFT_EYE_CORNERS,
    RIGHT_EYE_CORNERS,
    ROI_SCALE,
    DenseLandmarks,
    LandmarkModels,
    eye_openness,
    mouth_openness,
)
from faceprint.analyze.pose import head_pose
from faceprint.types import Face
from faceprint.video.pipeline import FrameResult, TrackView, VideoTracker
from faceprint.video.reader import VideoReader, VideoSource

#: the mesh's presence logit under which a frame's landmarks are not trusted (not a face, or
#: badly covered): such frames are kept with ``valid`` False so that time stays continuous.
#: Not 0: looked at track by track in simplefr_Video_2.mp4 and the Hamilton clip, real faces
#: turned half away score -3 to 0 (a grandmother's side view, the Obamas in profile), while the
#: backs of heads, a shirt and a bunch of flowers tracked as faces score -6 to -12; full profiles
#: (-5 to -10) fall with them, and their landmarks (one eye hidden) are not worth trusting
MIN_PRESENCE = -4.0
#: the mesh's points span about 1/ROI_SCALE of its crop; following the mesh, the crop is
#: its extent times this (MediaPipe's tracking crop is 1.5x the mesh's extent)
FOLLOW_SCALE = 1.5


@dataclass
class FaceEvent:
    """Something a face did over an interval: a blink, speech, a micro-movement...

    ``onset_s``/``apex_s``/``offset_s`` are in seconds from the start of the video;
    ``intensity`` is the event's own measure (for a blink, how far the lids closed, 0-1);
    ``label`` says more where the type needs it (an expression change: the new expression)."""

    track_id: int
    type: str
    onset_s: float
    apex_s: float
    offset_s: float
    region: str
    intensity: float
    label: str | None = None

    FIELDS = ("track_id", "type", "onset_s", "apex_s", "offset_s", "region", "intensity", "label")

    @property
    def duration_s(self) -> float:
        return self.offset_s - self.onset_s

    def to_dict(self) -> dict[str, Any]:
        return {
            "track_id": self.track_id,
            "type": self.type,
            "onset_s": round(self.onset_s, 3),
            "apex_s": round(self.apex_s, 3),
            "offset_s": round(self.offset_s, 3),
            "region": self.region,
            "intensity": round(self.intensity, 4),
            "label": self.label,
        }


@dataclass
class FaceSeries:
    """One track's landmarks frame by frame (arrays share their first axis, one row per frame).

    ``points``: (T, 468, 3) mesh points in frame pixels; ``eyes``: (T, 2, 16, 2) lid contours;
    ``eye_open``: (T, 2) lid gap over eye width (subject's right eye first; ~0.3 open, < 0.1
    shut); ``mouth_open``: (T,) inner-lip gap over mouth width; ``pose``: (T, 3) yaw, pitch,
    roll in degrees; ``valid``: (T,) the mesh trusted the frame (presence >= MIN_PRESENCE);
    ``detected``: (T,) the detector confirmed the box on that frame.
    """

    track_id: int
    fps: float
    frames: np.ndarray
    times: np.ndarray
    boxes: np.ndarray
    points: np.ndarray
    eyes: np.ndarray
    eye_open: np.ndarray
    mouth_open: np.ndarray
    pose: np.ndarray
    presence: np.ndarray
    valid: np.ndarray
    detected: np.ndarray

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def start_s(self) -> float:
        return float(self.times[0]) if len(self) else 0.0

    @property
    def end_s(self) -> float:
        return float(self.times[-1]) if len(self) else 0.0

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s

    def face_size(self) -> np.ndarray:
        """(T,) pixels between the eye centres: the scale to normalise motion by."""
        right = self.points[:, list(RIGHT_EYE_CORNERS), :2].mean(1)
        left = self.points[:, list(LEFT_EYE_CORNERS), :2].mean(1)
        return np.linalg.norm(left - right, axis=1)


@dataclass
class _Rows:
    frames: list[int] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    boxes: list[tuple[int, int, int, int]] = field(default_factory=list)
    points: list[np.ndarray] = field(default_factory=list)
    eyes: list[np.ndarray] = field(default_factory=list)
    eye_open: list[tuple[float, float]] = field(default_factory=list)
    mouth_open: list[float] = field(default_factory=list)
    pose: list[tuple[float, float, float]] = field(default_factory=list)
    presence: list[float] = field(default_factory=list)
    detected: list[bool] = field(default_factory=list)


def follow_face(previous: DenseLandmarks, box: tuple[int, int, int, int]) -> Face:
    """A face whose mesh crop (:func:`faceprint.analyze.landmarks.mesh_roi`) follows the previous
    frame's mesh: its box is the mesh's extent, scaled so the crop is FOLLOW_SCALE x that extent,
    and its 5 points are the mesh's eye corners (so the crop turns with the head's roll)."""
    xy = previous.points[:, :2]
    lo, hi = xy.min(0), xy.max(0)
    centre = (lo + hi) / 2
    half = max(hi - lo) * FOLLOW_SCALE / ROI_SCALE / 2
    # mesh_roi moves the centre down a little for detector boxes; negligible here
    follow_box = (int(centre[0] - half), int(centre[1] - half), int(centre[0] + half), int(centre[1] + half))
    p = previous.points
    # dlib's 5-point order: the image's right eye's corners (0, 1), then the left eye's (2, 3), nose
    five = np.array([p[263, :2], p[362, :2], p[33, :2], p[133, :2], p[1, :2]])
    return Face(box=follow_box, score=1.0, landmarks=five)


class SeriesRecorder:
    """Feed it each :class:`FrameResult` in order; it measures every tracked face on the frame
    and keeps one :class:`FaceSeries` per track.

    ``on_face(result, view, dense)`` is called for each face measured (callers that need the
    pixels, such as a passive liveness model or optical flow, use ``result.image`` there: frames
    are not kept). ``detected_only`` measures only frames where the detector saw the face.
    """

    def __init__(
        self,
        landmarks: LandmarkModels | None = None,
        fps: float = 25.0,
        on_face: Callable[[FrameResult, TrackView, DenseLandmarks], None] | None = None,
        detected_only: bool = False,
    ) -> None:
        self.landmarks = landmarks or LandmarkModels()
        self.fps = fps
        self.on_face = on_face
        self.detected_only = detected_only
        self._rows: dict[int, _Rows] = {}
        self._last: dict[int, tuple[int, DenseLandmarks]] = {}

    def update(self, result: FrameResult) -> list[tuple[TrackView, DenseLandmarks]]:
        """Measure the faces of one frame; returns what was measured."""
        out = []
        h, w = result.image.shape[:2]
        rgb: np.ndarray | None = None
        for view in result.tracks:
            if self.detected_only and not view.detected:
                continue
            if rgb is None:
                # the mesh and iris models were trained on RGB: fed the frame's BGR, the same faces
                # scored presence logits lower by 5-15 and their lids read less closed
                rgb = cv2.cvtColor(result.image, cv2.COLOR_BGR2RGB)
            face = self._face_for(view, result.index)
            dense = self.landmarks(rgb, face)
            pose = head_pose(dense.points, (w, h))
            rows = self._rows.setdefault(view.track_id, _Rows())
            rows.frames.append(result.index)
            rows.times.append(result.time_s)
            rows.boxes.append(view.box)
            rows.points.append(dense.points.astype(np.float32))
            rows.eyes.append(dense.eyes.astype(np.float32))
            rows.eye_open.append((eye_openness(dense.eyes[0]), eye_openness(dense.eyes[1])))
            rows.mouth_open.append(mouth_openness(dense.points))
            rows.pose.append((pose.yaw, pose.pitch, pose.roll))
            rows.presence.append(dense.presence)
            rows.detected.append(view.detected)
            if dense.presence >= MIN_PRESENCE:
                self._last[view.track_id] = (result.index, dense)
            else:
                self._last.pop(view.track_id, None)
            if self.on_face is not None:
                self.on_face(result, view, dense)
            out.append((view, dense))
        return out

    def _face_for(self, view: TrackView, frame: int) -> Face:
        last = self._last.get(view.track_id)
        # a detection re-anchors the crop; so does a gap (the face may have moved far)
        if last is None or view.detected or frame - last[0] > 2:
            return Face(box=view.box, score=1.0)
        return follow_face(last[1], view.box)

    def series(self, min_frames: int = 1) -> list[FaceSeries]:
        """Every track's series with at least ``min_frames`` frames, by track id."""
        out = []
        for track_id in sorted(self._rows):
            r = self._rows[track_id]
            if len(r.frames) < min_frames:
                continue
            presence = np.array(r.presence, np.float32)
            out.append(
                FaceSeries(
                    track_id=track_id,
                    fps=self.fps,
                    frames=np.array(r.frames, np.int64),
                    times=np.array(r.times, np.float64),
                    boxes=np.array(r.boxes, np.int32).reshape(-1, 4),
                    points=np.stack(r.points),
                    eyes=np.stack(r.eyes),
                    eye_open=np.array(r.eye_open, np.float32),
                    mouth_open=np.array(r.mouth_open, np.float32),
                    pose=np.array(r.pose, np.float32),
                    presence=presence,
                    valid=presence >= MIN_PRESENCE,
                    detected=np.array(r.detected, bool),
                )
            )
        return out


def record_series(
    tracker: VideoTracker,
    source: VideoSource | VideoReader,
    *,
    live: bool | None = None,
    max_frames: int | None = None,
    on_face: Callable[[FrameResult, TrackView, DenseLandmarks], None] | None = None,
    on_frame: Callable[[FrameResult], None] | None = None,
    landmarks: LandmarkModels | None = None,
) -> list[FaceSeries]:
    """Run ``tracker`` over a video and measure every tracked face on every frame.

    The tracker decides where faces are (its ``every`` and detector apply); the landmarks run on
    all frames in between. Raises what :meth:`VideoTracker.frames` raises."""
    recorder: SeriesRecorder | None = None
    for result in tracker.frames(source, live=live, max_frames=max_frames):
        if recorder is None:
            recorder = SeriesRecorder(landmarks, fps=tracker.fps, on_face=on_face)
        recorder.update(result)
        if on_frame is not None:
            on_frame(result)
    return recorder.series() if recorder is not None else []


def iter_segments(mask: np.ndarray) -> Iterator[tuple[int, int]]:
    """(start, stop) index pairs of the runs of True in a 1-D bool array (stop exclusive)."""
    m = np.concatenate([[False], np.asarray(mask, bool), [False]])
    d = np.diff(m.astype(np.int8))
    starts, stops = np.flatnonzero(d == 1), np.flatnonzero(d == -1)
    yield from zip(starts.tolist(), stops.tolist())


#: blink detection: closure is 1 - openness / the track's open-eye baseline; a blink is a run
#: whose closure passes CLOSE_AT at its deepest, bounded where it falls back under OPEN_AT. The
#: iris model's lid contour does not close all the way on video, so the bar is lower than a shut
#: eye. Chosen with ``benchmarks/dynamics.py --tune`` on its tune split (simplefr frames >= 986, the
#: project's own labels): CLOSE_AT 0.15/0.2/0.25/0.3/0.35 gave F1 0.25/0.5/0.5/0.67/0.67 there
#: (one labelled blink there; the others' false blinks decide), OPEN_AT 0.1
BLINK_CLOSE_AT = 0.3
BLINK_OPEN_AT = 0.1
#: runs longer than this are eyes kept shut or looking down, not blinks
BLINK_MAX_S = 1.0
#: the baseline: a high quantile of openness over a window around each frame (eyes are open
#: most of the time, so the quantile tracks the open eye through pose and scale changes)
BASELINE_WINDOW_S = 3.0
BASELINE_QUANTILE = 0.8
#: lids are read only on faces turned less than this (degrees of yaw) and at least this many
#: pixels between the eyes: on a profile or a face a few pixels tall the lid contour is guesswork
#: (the audience of the Hamilton clip, in profile, "blinked" every few frames)
BLINK_MAX_YAW = 40.0
BLINK_MIN_IOD = 15.0


def eye_closure(series: FaceSeries) -> np.ndarray:
    """(T,) how shut the eyes are, 0 = as open as usual for this track, 1 = shut; NaN where the
    mesh was not trusted or the lids cannot be read (BLINK_MAX_YAW, BLINK_MIN_IOD). Both eyes
    are averaged, and openness is taken relative to a running baseline so that a person with
    narrow eyes, or a head turning, is not a blink."""
    openness = series.eye_open.mean(1).astype(np.float64)
    readable = series.valid & (np.abs(series.pose[:, 0]) <= BLINK_MAX_YAW) & (series.face_size() >= BLINK_MIN_IOD)
    openness[~readable] = np.nan
    half = max(1, int(round(BASELINE_WINDOW_S * series.fps / 2)))
    baseline = np.full_like(openness, np.nan)
    for i in range(len(openness)):
        window = openness[max(0, i - half) : i + half + 1]
        window = window[np.isfinite(window)]
        if len(window):
            baseline[i] = np.quantile(window, BASELINE_QUANTILE)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.clip(1.0 - openness / baseline, 0.0, 1.0)


def detect_blinks(series: FaceSeries) -> list[FaceEvent]:
    """Blinks of one track: onset (lids start to close), apex (most shut), offset (open again),
    intensity = closure at the apex. Frames the mesh did not trust break a run."""
    closure = eye_closure(series)
    events = []
    filled = np.nan_to_num(closure, nan=0.0)
    for start, stop in iter_segments(filled > BLINK_OPEN_AT):
        run = filled[start:stop]
        apex = start + int(np.argmax(run))
        if run.max() < BLINK_CLOSE_AT:
            continue
        onset_s = float(series.times[start - 1] if start > 0 else series.times[start])
        offset_s = float(series.times[stop] if stop < len(series) else series.times[stop - 1])
        if offset_s - onset_s > BLINK_MAX_S:
            continue
        events.append(
            FaceEvent(series.track_id, "blink", onset_s, float(series.times[apex]), offset_s, "eyes", float(run.max()))
        )
    return events
