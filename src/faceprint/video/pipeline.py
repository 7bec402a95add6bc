"""Who appears when: detect every N frames, track in between, name each track once.

Per frame the cost is a thumbnail for cut detection and a Kalman prediction per track;
every ``every`` frames (and on every cut) the detector runs on a copy scaled to
``detect_size`` pixels on the long side. A track's identity comes from its own template:
the quality-weighted mean of the embeddings sampled along it (a few at its start, then
one per ``resample_s`` or when a clearly better view shows up), so the embedder runs on a
small fraction of the detections and a single blurred or turned frame barely moves the
label. At the end, tracks are grouped by person with :mod:`faceprint.cluster` (unknown
tracks become ``unknown-<k>``, or take the name of the identified tracks they group with),
and tracks of one label separated by less than ``merge_gap_s`` become one appearance.

:class:`VideoTracker` is the part without a gallery (tracks, their templates and best
views: :func:`track_templates`); :class:`VideoRecognizer` adds names and the timeline.
"""

from __future__ import annotations

import contextlib
import copy
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from faceprint.cluster import cluster_templates
from faceprint.detect import Detector, get_detector
from faceprint.draw import crop_face
from faceprint.engine import normalize
from faceprint.errors import VideoError
from faceprint.fileio import atomic_write, check_outputs
from faceprint.types import Candidate, Face
from faceprint.video.quality import Quality, face_quality
from faceprint.video.reader import Frame, VideoReader, VideoSource, open_video
from faceprint.video.scene import SceneCutDetector
from faceprint.video.tracker import IouTracker, Track

if TYPE_CHECKING:
    from faceprint.api import Recognizer
    from faceprint.engine import FaceEngine
    from faceprint.video.series import FaceEvent

#: a sample this much better than the track's best so far is taken at once
BETTER_VIEW = 1.25
DEFAULT_FPS = 25.0
#: Two tracks are one person when their templates reach this cosine (the bar of faceprint.cluster
#: for two single items; groups need the same mean, with no slack: tracks of one scene are not
#: independent samples). Stricter than the 0.940 chosen for photos on LFW: video templates come from
#: small, soft, turned faces. Chosen on tracks labelled by eye in simplefr_Video_2.mp4 (a family at a
#: table: siblings, faces seen from the side and from behind) and facenet_pytorch_video.mp4
#: (pedestrians), every track pooled as if unknown: from 0.94 to 0.955 different people shared a label
#: in both clips (a red-haired boy and a dark-haired one at 0.945); at 0.96 with MIN_EVIDENCE none did,
#: and four groups of one person were kept (a grandmother's side view named through her frontal
#: shots, three pedestrians whose tracks broke). The Hamilton clip was kept for testing.
TRACK_THRESHOLD = 0.96
#: A track is grouped with others only when its template rests on at least this much sample weight
#: (the quality weights of its samples, summed: one sharp, frontal, full-size view is about 0.5).
#: Templates of a few small, blurred or turned samples crowd together whoever they show: in the
#: simplefr clip at TRACK_THRESHOLD, 8 pairs of different people shared a label with no minimum (a
#: father's blurred profile and his son's head turned away at 0.972), 3 at 0.25, none at 0.5.
MIN_EVIDENCE = 0.5


@dataclass
class TrackView:
    """One tracked face on one frame."""

    track_id: int
    box: tuple[int, int, int, int]  # (left, top, right, bottom) in the frame's pixels
    identity: str | None  # best identity so far (None: unknown)
    score: float  # similarity of the track's template to its nearest identity
    detected: bool  # the box comes from the detector on this frame (else: predicted)

    @property
    def label(self) -> str:
        return self.identity or "unknown"


@dataclass
class FrameResult:
    index: int  # frame number in the source (gaps: dropped frames)
    time_s: float
    image: np.ndarray  # the frame, BGR (not copied: draw on a copy)
    tracks: list[TrackView]
    detected: bool  # the detector ran on this frame
    scene_cut: bool
    dropped: int  # frames dropped so far (live sources)


@dataclass
class Appearance:
    """One row of the timeline: a person on screen from ``start`` to ``end``."""

    identity: str  # enrolled name, or unknown-<k> (k groups tracks of one unknown person)
    track_id: int  # first track of the appearance
    start_s: float
    end_s: float
    start_frame: int
    end_frame: int
    score: float  # best template similarity to the identity (to the nearest one if unknown)
    crop: str | None = None  # path of the best face crop, when crops are saved
    known: bool = True
    track_ids: list[int] = field(default_factory=list)  # every track merged into this row

    FIELDS = ("identity", "track_id", "start_s", "end_s", "start_frame", "end_frame", "score", "crop")

    def to_dict(self) -> dict[str, Any]:
        """The JSON/CSV record (times to the millisecond, scores to 4 decimals)."""
        return {
            "identity": self.identity,
            "track_id": self.track_id,
            "start_s": round(self.start_s, 3),
            "end_s": round(self.end_s, 3),
            "start_frame": self.start_frame,
            "end_frame": self.end_frame,
            "score": round(self.score, 4),
            "crop": self.crop,
        }


@dataclass
class VideoStats:
    frames: int = 0  # frames processed
    detections: int = 0  # detector runs
    faces_detected: int = 0
    faces_embedded: int = 0
    scene_cuts: int = 0
    seconds: float = 0.0  # wall time spent in process()

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


@dataclass
class VideoResult:
    source: str
    appearances: list[Appearance]
    stats: VideoStats
    fps: float | None  # the source's frame rate
    frames_read: int  # decoded from the source (processed + dropped)
    dropped: int
    elapsed_s: float  # wall time end to end
    error: str | None = None  # why the input ended early (results cover what was read)
    interrupted: bool = False  # stopped by Ctrl-C / KeyboardInterrupt
    annotated: str | None = None
    events: list[FaceEvent] = field(default_factory=list)  # facial events, when asked for (by onset)

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class Sample:
    """One embedded view of a tracked face."""

    frame: int
    time_s: float
    box: tuple[int, int, int, int]  # (left, top, right, bottom) in the frame's pixels
    embedding: np.ndarray  # unit length
    weight: float  # quality: size x sharpness x frontal, in (0, 1]
    score: float  # the detector's confidence


@dataclass
class TrackItem:
    """One face track, without a name: what :func:`track_templates` returns per track."""

    track_id: int
    template: np.ndarray  # unit length: the quality-weighted mean of the track's samples
    start_s: float
    end_s: float
    start_frame: int
    end_frame: int  # the last frame the detector found the face on
    detections: int  # frames the detector found the face on
    evidence: float  # summed weight of the samples behind the template (see MIN_EVIDENCE)
    box: tuple[int, int, int, int]  # the best view's face box, in its frame's pixels
    crop_frame: int  # the frame of the best view
    crop_time_s: float
    quality: float  # the best view's weight
    crop: np.ndarray | None = None  # the best view, RGB, with some context around the face
    samples: list[Sample] = field(default_factory=list)  # the best views (kept when asked)


@dataclass
class _TrackState:
    """What the pipeline knows about a track beyond its box."""

    first_time: float
    last_time: float
    samples: list[Sample] = field(default_factory=list)  # the best max_samples views
    template: np.ndarray | None = None
    weight_total: float = 0.0  # sum of the sample weights behind the template
    identity: str | None = None
    score: float = -1.0
    candidates: list[Candidate] = field(default_factory=list)
    best: Sample | None = None  # the best view so far
    best_crop: np.ndarray | None = None  # that view's face with context, BGR (when crops are kept)
    last_sample_frame: int = -(10**9)
    samples_taken: int = 0

    @property
    def best_quality(self) -> float:
        return self.best.weight if self.best is not None else 0.0


def _safe_name(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", label).strip("._") or "face"


class VideoTracker:
    """Track faces through a video and give each track a template and a best view; no gallery.

    ``detector`` overrides the engine's detector for video (a :class:`Detector` or a name for
    :func:`faceprint.detect.get_detector`): templates come from the engine's embedder either way.
    ``keep_crops`` keeps each track's best view as an image; ``keep_samples`` keeps the samples of
    ended tracks (by default an ended track keeps only its template, so that memory stays flat on
    a stream that runs for days).
    """

    def __init__(
        self,
        engine: FaceEngine,
        every: int = 5,
        detect_size: int = 960,
        detector: Detector | str | None = None,
        min_samples: int = 2,
        resample_s: float = 1.0,
        max_samples: int = 24,
        scene_cuts: bool = True,
        tracker: IouTracker | None = None,
        keep_crops: bool = False,
        keep_samples: bool = False,
    ) -> None:
        if every < 1:
            raise ValueError("every must be >= 1")
        self.engine = engine
        self.detector = _video_detector(detector if detector is not None else engine.detector)
        self.every = every
        self.detect_size = detect_size
        self.min_samples = min_samples
        self.resample_s = resample_s
        self.max_samples = max_samples
        self.scene_cuts = scene_cuts
        self.keep_crops = keep_crops
        self.keep_samples = keep_samples
        self._tracker_template = tracker
        self.reader: VideoReader | None = None
        self.reset()

    def reset(self) -> None:
        """Forget every track (start a new video)."""
        t = self._tracker_template
        self.tracker = (
            IouTracker(t.iou_threshold, t.max_missed, t.min_hits, t.max_center_dist, t.max_size_ratio)
            if t is not None
            else IouTracker()
        )
        self.stats = VideoStats()
        self.fps = DEFAULT_FPS
        self._states: dict[int, _TrackState] = {}
        self._cuts = SceneCutDetector()
        self._since_detect = 10**9  # the first frame runs the detector
        self._compacted = 0  # finished tracks already compacted

    # ------------------------------------------------------------------------- frames
    def frames(
        self, source: VideoSource | VideoReader, live: bool | None = None, max_frames: int | None = None
    ) -> Iterator[FrameResult]:
        """Process a video frame by frame (each call starts a new video). The frames read
        are yielded even when the input turns out to be bad; then :class:`VideoError` is
        raised (the tracks so far stay available)."""
        reader = open_video(source, live)
        self.reset()
        self.reader = reader
        self.fps = reader.fps or DEFAULT_FPS
        try:
            for n, frame in enumerate(reader, 1):
                yield self.process(frame, dropped=reader.dropped)
                if max_frames is not None and n >= max_frames:
                    return
        finally:
            reader.close()
            self.finish()
        if reader.error:
            raise VideoError(reader.error)

    def process(self, frame: Frame, dropped: int = 0) -> FrameResult:
        """One frame (call in frame order). Usable with frames from any source."""
        started = time.perf_counter()
        image = frame.image
        cut = self.scene_cuts and self._cuts(image)
        if cut:
            self.stats.scene_cuts += 1
            self.tracker.end_all()  # a new shot: no face continues across the cut
        self.tracker.predict(frame.index)
        # counted in processed frames, not source frames: a live source that drops frames must
        # still get cheap tracked frames between detections, or it would detect on every frame
        # it keeps, fall further behind, and drop more
        self._since_detect += 1
        detect = cut or self._since_detect >= self.every
        fresh: set[int] = set()
        if detect:
            self._since_detect = 0
            faces = self._detect(image)
            self.stats.detections += 1
            self.stats.faces_detected += len(faces)
            tracks = self.tracker.update([f.box for f in faces], frame.index)
            for track, face in zip(tracks, faces):
                fresh.add(track.id)
                state = self._states.get(track.id)
                if state is None:
                    state = self._states[track.id] = _TrackState(frame.time_s, frame.time_s)
                state.last_time = frame.time_s
                face.extra["track"] = track
            self._sample(faces, frame)
        views = []
        for track in self.tracker.active:
            if track.missed > 0 and track.id not in fresh:
                continue  # not seen by the last detection: hide rather than draw a guess
            state = self._states[track.id]
            box = track.detection_box if track.id in fresh else track.box
            h, w = image.shape[:2]
            left, top, right, bottom = (int(round(v)) for v in box)
            views.append(
                TrackView(
                    track.id,
                    (max(0, left), max(0, top), min(w, right), min(h, bottom)),
                    state.identity,
                    state.score,
                    track.id in fresh,
                )
            )
        self._compact()
        self.stats.frames += 1
        self.stats.seconds += time.perf_counter() - started
        return FrameResult(frame.index, frame.time_s, image, views, detect, cut, dropped)

    def finish(self) -> None:
        """End every track (the video is over)."""
        self.tracker.end_all()
        self._compact()

    def _compact(self) -> None:
        """Keep only what the results need of ended tracks: unless asked to keep them, their
        samples go and their template stays."""
        if not self.keep_samples:
            for track in self.tracker.finished[self._compacted :]:
                self._states[track.id].samples = []
        self._compacted = len(self.tracker.finished)
        for track in self.tracker.discarded:  # too short to report
            self._states.pop(track.id, None)
        self.tracker.discarded.clear()

    # ---------------------------------------------------------------------- detection
    def _detect(self, bgr: np.ndarray) -> list[Face]:
        """Faces with boxes and landmarks in full-frame pixels, found on a copy scaled to
        ``detect_size`` on the long side: detection cost grows with pixels, so it stays the
        same for 360p and 1080p input, and faces in high-resolution video are large."""
        h, w = bgr.shape[:2]
        scale = self.detect_size / max(h, w) if self.detect_size else 1.0
        small = bgr
        if abs(scale - 1.0) > 0.02:
            # INTER_AREA is 5x slower than bilinear at non-integer ratios (15 ms for 720p ->
            # 960 px) and only needed against aliasing when shrinking by 2 or more
            interpolation = cv2.INTER_AREA if scale <= 0.5 else cv2.INTER_LINEAR
            small = cv2.resize(bgr, (round(w * scale), round(h * scale)), interpolation=interpolation)
        else:
            scale = 1.0
        faces = self.detector.detect(cv2.cvtColor(small, cv2.COLOR_BGR2RGB))
        if scale != 1.0:
            for f in faces:
                left, top, right, bottom = (v / scale for v in f.box)
                f.box = (
                    max(0, int(round(left))),
                    max(0, int(round(top))),
                    min(w, int(round(right))),
                    min(h, int(round(bottom))),
                )
                if f.landmarks is not None:
                    f.landmarks = np.asarray(f.landmarks, np.float32) / scale
        return faces

    # ---------------------------------------------------------------------- templates
    def _wants_sample(self, state: _TrackState, quality: float, frame: int) -> bool:
        since = frame - state.last_sample_frame
        if state.samples_taken < self.min_samples:
            return True
        if quality > state.best_quality * BETTER_VIEW and since >= self.every:
            return True
        return since >= self.resample_s * self.fps

    def _sample(self, faces: list[Face], frame: Frame) -> None:
        """Embed the detections whose tracks need a sample; update those tracks' templates."""
        faces = [f for f in faces if f.landmarks is not None]
        if not faces:
            return
        bgr = frame.image
        # chips are cheap (about 0.3 ms); the embedder is not, so decide on the chip's quality
        chips = np.ascontiguousarray(self.engine.chips(bgr, faces)[..., ::-1])  # BGR frame -> RGB chips
        chosen: list[tuple[Face, np.ndarray, Quality]] = []
        for face, chip in zip(faces, chips):
            track: Track = face.extra["track"]  # type: ignore[assignment]
            quality = face_quality(face.box, face.landmarks, chip)
            if self._wants_sample(self._states[track.id], quality.total, frame.index):
                chosen.append((face, chip, quality))
        if not chosen:
            return
        templates = self.engine.embed_chips(np.stack([c for _, c, _ in chosen]))
        self.stats.faces_embedded += len(chosen)
        for (face, _, quality), embedding in zip(chosen, templates):
            track = face.extra["track"]
            sample = Sample(frame.index, frame.time_s, face.box, embedding, quality.total, face.score)
            self._add_sample(self._states[track.id], sample, bgr)  # type: ignore[union-attr]

    def _add_sample(self, state: _TrackState, sample: Sample, bgr: np.ndarray) -> None:
        state.samples.append(sample)
        if len(state.samples) > self.max_samples:  # keep the best views
            del state.samples[int(np.argmin([s.weight for s in state.samples]))]
        state.samples_taken += 1
        state.last_sample_frame = sample.frame
        if sample.weight > state.best_quality:
            state.best = sample
            if self.keep_crops:
                state.best_crop = crop_face(bgr, sample.box)
        weights = np.asarray([s.weight for s in state.samples], np.float32)
        vectors = np.stack([s.embedding for s in state.samples])
        state.template = normalize((vectors * weights[:, None]).sum(axis=0))
        state.weight_total = float(weights.sum())
        self._identify(state)

    def _identify(self, state: _TrackState) -> None:
        """Called when a track's template changes (a gallery names it here)."""

    # ---------------------------------------------------------------------- results
    def _reported(self) -> list[tuple[Track, _TrackState]]:
        tracks = self.tracker.finished + [t for t in self.tracker.active if self.tracker.confirmed(t)]
        return [(t, self._states[t.id]) for t in tracks if self._states[t.id].template is not None]

    def tracks(self) -> list[TrackItem]:
        """Every track long enough to report, in order of start (tracks still on screen too)."""
        items = []
        for track, state in sorted(self._reported(), key=lambda r: (r[0].first_frame, r[0].id)):
            best = state.best
            assert best is not None and state.template is not None  # a template has a best view
            crop = state.best_crop
            items.append(
                TrackItem(
                    track_id=track.id,
                    template=state.template,
                    start_s=state.first_time,
                    end_s=state.last_time,
                    start_frame=track.first_frame,
                    end_frame=track.last_frame,
                    detections=track.hits,
                    evidence=state.weight_total,
                    box=best.box,
                    crop_frame=best.frame,
                    crop_time_s=best.time_s,
                    quality=best.weight,
                    crop=None if crop is None else np.ascontiguousarray(crop[..., ::-1]),
                    samples=list(state.samples),
                )
            )
        return items


class VideoRecognizer(VideoTracker):
    """Recognise and track faces through a video; see the module docstring.

    ``detector`` overrides the recognizer's detector for video (a :class:`Detector` or a
    name for :func:`faceprint.detect.get_detector`): templates come from the recognizer's
    embedder either way, so they stay comparable with the gallery. ``unknown_threshold`` and
    ``min_evidence``: how tracks are grouped by person (:data:`TRACK_THRESHOLD`,
    :data:`MIN_EVIDENCE`).
    """

    def __init__(
        self,
        recognizer: Recognizer,
        every: int = 5,
        detect_size: int = 960,
        detector: Detector | str | None = None,
        top_k: int = 3,
        threshold: float | None = None,
        min_samples: int = 2,
        resample_s: float = 1.0,
        max_samples: int = 24,
        unknown_threshold: float | None = None,
        merge_gap_s: float = 1.0,
        scene_cuts: bool = True,
        crops_dir: str | os.PathLike[str] | None = None,
        tracker: IouTracker | None = None,
        min_evidence: float = MIN_EVIDENCE,
    ) -> None:
        self.recognizer = recognizer
        self.top_k = top_k
        self.threshold = recognizer.identify_threshold if threshold is None else threshold
        self.unknown_threshold = TRACK_THRESHOLD if unknown_threshold is None else unknown_threshold
        self.min_evidence = min_evidence
        self.merge_gap_s = merge_gap_s
        self.crops_dir = Path(crops_dir) if crops_dir is not None else None
        super().__init__(
            recognizer.engine,
            every,
            detect_size,
            detector,
            min_samples,
            resample_s,
            max_samples,
            scene_cuts,
            tracker,
            keep_crops=self.crops_dir is not None,
        )

    def reset(self) -> None:
        super().reset()
        self._crops: dict[str, tuple[int, float]] = {}  # crop file -> (track, quality) of the view in it

    def _identify(self, state: _TrackState) -> None:
        assert state.template is not None and state.best is not None
        probe = Face(box=state.best.box, score=1.0, embedding=state.template)
        match = self.recognizer.identify_faces([probe], top_k=self.top_k, threshold=self.threshold)[0]
        state.identity, state.score, state.candidates = match.identity, match.score, match.candidates

    # ---------------------------------------------------------------------- timeline
    def _unknown_labels(self, rows: list[tuple[Track, _TrackState]]) -> dict[int, tuple[str, float, bool]]:
        """Labels for the tracks the gallery left unknown: (label, score, known).

        Tracks are grouped by person with :func:`faceprint.cluster.cluster_templates` (identified
        tracks too, and only tracks with enough evidence behind their template). An unknown track
        grouped with identified tracks of one person is that person: a face seen side-on in one
        shot is recognised through a frontal shot elsewhere in the video. Otherwise the tracks of
        one group share an ``unknown-<k>``, numbered in order of appearance; a track that is
        not grouped (too little evidence, or a group holding several named people) gets its own."""
        pooled = [(t, s) for t, s in rows if s.identity is not None or s.weight_total >= self.min_evidence]
        group: dict[int, int] = {}
        if pooled:
            vectors = np.stack([s.template for _, s in pooled])  # type: ignore[misc]
            result = cluster_templates(vectors, self.unknown_threshold, slack=0.0, threads=1)
            group = {t.id: int(g) for (t, _), g in zip(pooled, result.labels)}
        names: dict[int, set[str]] = {}
        for track, state in pooled:
            if state.identity is not None:
                names.setdefault(group[track.id], set()).add(state.identity)
        labels: dict[int, tuple[str, float, bool]] = {}
        unknown: dict[int | tuple[str, int], str] = {}  # a group of unknown tracks, or one track -> label
        for track, state in sorted(rows, key=lambda r: (r[0].first_frame, r[0].id)):
            if state.identity is not None:
                continue
            g = group.get(track.id)
            named = names.get(g, set()) if g is not None else set()
            if len(named) == 1:
                (name,) = named
                score = self.recognizer.gallery.score(state.template, name, self.recognizer.model)  # type: ignore[arg-type]
                labels[track.id] = (name, score, True)
                continue
            key: int | tuple[str, int] = g if g is not None and not named else ("alone", track.id)
            label = unknown.setdefault(key, f"unknown-{len(unknown) + 1}")
            labels[track.id] = (label, state.score, False)
        return labels

    def timeline(self) -> list[Appearance]:
        """One row per appearance, in order of start. Call after the video ends (or at any
        time for the timeline so far: tracks still on screen are included). With
        ``crops_dir``, each row's best face view is saved there, one file per row."""
        rows = self._reported()
        unknown = self._unknown_labels(rows)
        items: list[tuple[Appearance, _TrackState]] = []
        for track, state in rows:
            label, score, known = (state.identity, state.score, True) if state.identity else unknown[track.id]
            row = Appearance(
                identity=label,
                track_id=track.id,
                start_s=state.first_time,
                end_s=state.last_time,
                start_frame=track.first_frame,
                end_frame=track.last_frame,
                score=score,
                known=known,
                track_ids=[track.id],
            )
            items.append((row, state))
        items.sort(key=lambda it: (it[0].start_frame, it[0].track_id))
        merged: list[tuple[Appearance, int, _TrackState]] = []  # row, track of its best view, that track's state
        open_rows: dict[str, int] = {}  # label -> its latest row in merged
        for row, state in items:
            j = open_rows.get(row.identity)
            if j is not None and row.start_s - merged[j][0].end_s <= self.merge_gap_s:
                into, _, best = merged[j]
                into.end_s = max(into.end_s, row.end_s)
                into.end_frame = max(into.end_frame, row.end_frame)
                into.score = max(into.score, row.score)
                into.track_ids.append(row.track_id)
                if state.best_quality > best.best_quality:
                    merged[j] = (into, row.track_id, state)
                continue
            open_rows[row.identity] = len(merged)
            merged.append((row, row.track_id, state))
        if self.crops_dir is not None:
            self._save_crops(self.crops_dir, merged)
        return [row for row, _, _ in merged]

    def _save_crops(self, folder: Path, rows: list[tuple[Appearance, int, _TrackState]]) -> None:
        """Save each row's best view as <identity>-track<row's track>.jpg. A file is rewritten
        only when its view changed, and files of an earlier call that no row names any more
        (a label that changed) are removed."""
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except FileExistsError:
            raise VideoError(f"{folder}: is a file, not a folder (for the face crops)") from None
        except OSError as exc:
            raise VideoError(f"{folder}: cannot create the face crops folder: {exc.strerror or exc}") from None
        saved: dict[str, tuple[int, float]] = {}
        for row, track_id, state in rows:
            if state.best_crop is None:
                continue
            path = str(folder / f"{_safe_name(row.identity)}-track{row.track_id:04d}.jpg")
            view = (track_id, state.best_quality)
            if self._crops.get(path) != view:
                _write_jpeg(path, state.best_crop)
            saved[path] = view
            row.crop = path
        for stale in self._crops.keys() - saved.keys():
            Path(stale).unlink(missing_ok=True)
        self._crops = saved


def _write_jpeg(path: str, image: np.ndarray) -> None:
    ok, data = cv2.imencode(".jpg", image)
    if not ok:
        raise VideoError(f"{path}: could not encode the face crop")
    try:
        with atomic_write(path, "wb") as f:
            f.write(data.tobytes())
    except OSError as exc:
        raise VideoError(f"{path}: could not write the face crop: {exc.strerror or exc}") from None


def _video_detector(detector: Detector | str) -> Detector:
    """The detector to run on video frames. dlib's detectors upsample the image before
    searching (HOG's default doubles it, 4x the cost); here ``detect_size`` already sets the
    scale, so they run with upsample 0 on a copy of the same detector (sharing its model)."""
    if isinstance(detector, str):
        return get_detector(detector, upsample=0) if detector in ("hog", "cnn") else get_detector(detector)
    if getattr(detector, "upsample", 0):
        detector = copy.copy(detector)
        detector.upsample = 0  # type: ignore[attr-defined]
    return detector


def recognize_video(
    source: VideoSource | VideoReader,
    recognizer: Recognizer,
    *,
    annotate: str | os.PathLike[str] | None = None,
    live: bool | None = None,
    max_frames: int | None = None,
    on_frame: Callable[[FrameResult], None] | None = None,
    on_annotate: Callable[[], None] | None = None,
    events: bool | Iterable[str] = False,
    **options: Any,
) -> VideoResult:
    """Process a whole video (or a stream until it ends or Ctrl-C) and return its timeline.

    ``options`` go to :class:`VideoRecognizer` (``every``, ``detect_size``, ``detector``,
    ``top_k``, ``threshold``, ``crops_dir``, ...). Raises :class:`VideoError` when the input
    cannot be opened or yields no frame at all, and :class:`faceprint.fileio.OutputError`
    when ``annotate`` or ``crops_dir`` is the input or cannot be written; an input that
    fails part way returns the partial timeline with ``error`` set. A KeyboardInterrupt
    stops processing cleanly (``interrupted`` is set) so that live streams can be ended
    with Ctrl-C. ``annotate`` writes the video with each track's box and timeline label: for
    a file, on a second read once the timeline is known (``on_annotate`` is called per frame
    written); for a camera or stream, as it is processed.

    ``events``: True (every kind) or the kinds of :data:`faceprint.video.events.KINDS` to read
    from each track (blinks, speaking, expression changes, micro-movements): the result's
    ``events``, for the tracks of the timeline, drawn by their boxes in a file's annotated copy.
    """
    from faceprint.video.events import KINDS, EventRecorder
    from faceprint.video.output import AnnotationWriter, BoxLog, annotate_file, check_video_path, draw_live

    started = time.perf_counter()
    video = VideoRecognizer(recognizer, **options)
    reader = open_video(source, live)
    try:
        if annotate is not None:
            check_video_path(annotate)
        outputs = {"annotate": annotate, "crops_dir": options.get("crops_dir")}
        check_outputs([reader.name] if reader.is_file else [], outputs, folders={"crops_dir"})
    except BaseException:
        reader.close()
        raise
    writer = AnnotationWriter(annotate, reader.fps or DEFAULT_FPS) if annotate is not None else None
    log = BoxLog() if writer is not None and reader.is_file else None
    error: str | None = None
    interrupted = False
    kinds = KINDS if events is True else tuple(events or ())
    recorder: EventRecorder | None = None
    with writer or contextlib.nullcontext():
        try:
            for result in video.frames(reader, max_frames=max_frames):
                if kinds:
                    if recorder is None:  # the tracker knows the frame rate once the video is open
                        recorder = EventRecorder(video.fps, kinds)
                    recorder.update(result)
                if log is not None:
                    log.add(result)
                elif writer is not None:
                    writer.write(draw_live(result))
                if on_frame is not None:
                    on_frame(result)
        except VideoError as exc:
            if reader.error is None or str(exc) != reader.error:
                raise  # not the input's fault
            error = reader.error
        except KeyboardInterrupt:
            interrupted = True
        finally:
            reader.close()
            video.finish()
        if video.stats.frames == 0 and error is not None:
            raise VideoError(error)
        appearances = video.timeline()
        found = recorder.events([t for a in appearances for t in a.track_ids]) if recorder is not None else []
        if log is not None and writer is not None and len(log):
            try:
                annotate_file(reader.name, log, appearances, writer, on_annotate, found)
            except KeyboardInterrupt:
                interrupted = True  # the frames drawn so far are kept, as the timeline is
    return VideoResult(
        source=reader.name,
        appearances=appearances,
        stats=video.stats,
        fps=reader.fps,
        frames_read=reader.frames_read,
        dropped=reader.dropped,
        elapsed_s=time.perf_counter() - started,
        error=error,
        interrupted=interrupted,
        annotated=str(annotate) if writer is not None and writer.frames else None,
        events=found,
    )


def track_templates(
    source: VideoSource | VideoReader,
    engine: FaceEngine,
    every: int = 5,
    detect_size: int = 960,
    on_progress: Callable[[int], None] | None = None,
    *,
    max_frames: int | None = None,
    **options: Any,
) -> list[TrackItem]:
    """One item per face track of a video, with no gallery (e.g. to cluster the people of videos):
    its template, time span, and best view (RGB crop and face box), in order of start. Detection and
    tracking run as in :func:`recognize_video`; ``options`` go to :class:`VideoTracker` (``detector``,
    ``keep_samples``, ...). ``on_progress(1)`` is called per frame. Raises :class:`VideoError` when
    the input cannot be read or ends early (a truncated file)."""
    video = VideoTracker(engine, every, detect_size, keep_crops=True, **options)
    for _ in video.frames(source, max_frames=max_frames):
        if on_progress is not None:
            on_progress(1)
    return video.tracks()
