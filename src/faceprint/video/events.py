"""Facial events in video: blinks, speaking, expression changes and micro-movements, per track.

:class:`EventRecorder` rides along the tracker: per frame it hands each tracked face to a
:class:`~faceprint.video.series.SeriesRecorder` (mesh, openness, head pose) and, from the same
call, keeps two small things per track: the face cut out upright at a fixed scale (only the last
second of it, for :class:`RegionMotion`) and a few expression samples a second. At the end
:meth:`EventRecorder.events` reads the events off each track:

- **blinks**: :func:`faceprint.video.series.detect_blinks`;
- **speaking** (:func:`detect_speaking`): the inner-lip gap over the inter-ocular distance (so
  face size and the head's distance drop out), how far it travels back and forth within 0.6 s
  (speech opens and closes the mouth a few times a second; a smile, or a mouth opened once and
  held, travels no further than it ends up), with hysteresis, a minimum length and short gaps
  bridged; frames where the head turns fast do not count;
- **expression changes** (:func:`detect_expression_changes`): the built-in expression model a few
  times a second, smoothed, an event when a new label holds;
- **micro-movements** (:func:`spot_micro_movements`): optical flow in landmark-anchored regions
  (brows, eyes, mouth corners, nose) of the face cut out upright on each frame's own stable mesh
  points (nose, inner eye corners), so the head's motion is gone before the flow is measured; what
  the alignment leaves of it is the affine motion of the rest of the face (cheeks, forehead),
  subtracted from each region's flow. Each frame is compared with the frames half a second before
  and after it (the feature-difference scheme of the spotting literature; each end the mean of 3
  frames); a region scores by how far it is away from *both* ends in the same direction
  (:func:`transient_score`): a movement that comes and goes within that second does, a step (a
  brow raised and held) or a steady drift does not. Peaks are scored against the region's own
  running median and MAD (robust deviations), the flow's fall on either side gives the onset and
  offset, and a duration prior (0.15-0.6 s) keeps the short ones. Blinks mask the eyes and brows,
  speech the mouth corners.
"""

from __future__ import annotations

import warnings
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from faceprint.analyze.landmarks import INNER_LIPS, DenseLandmarks, LandmarkModels
from faceprint.types import Face
from faceprint.video.pipeline import FrameResult, TrackView
from faceprint.video.series import FaceEvent, FaceSeries, SeriesRecorder, detect_blinks, iter_segments

if TYPE_CHECKING:
    from faceprint.analyze.types import ExpressionClassifier

#: the kinds of event, in the order they are listed
KINDS: tuple[str, ...] = ("blink", "speaking", "expression", "micro")

# ------------------------------------------------------------------------------- regions
#: stable mesh points the face is aligned on (nose bridge and tip, inner eye corners): they move
#: with the head, hardly with the face's own movements. Not the forehead or the outer eye
#: corners: the mesh moves those with the brows, and aligning on them would cancel a brow raise
STABLE_POINTS = (168, 6, 197, 195, 5, 4, 133, 362)
#: landmark-anchored regions, each a pair of sides (the subject's right, then left), as mesh points
REGIONS: dict[str, tuple[tuple[int, ...], ...]] = {
    "brows": ((70, 63, 105, 66, 107, 46, 53, 52, 65, 55), (300, 293, 334, 296, 336, 276, 283, 282, 295, 285)),
    "eyes": ((33, 133, 159, 145, 160, 144, 158, 153), (362, 263, 386, 374, 385, 380, 387, 373)),
    "mouth_corners": ((61,), (291,)),
    "nose": ((129, 358, 4, 5, 48, 278),),
}
#: each region's box is its points' extent padded by this share of the inter-ocular distance
REGION_PAD = 0.18
#: the upright face: ALIGN_SIZE px square, eyes ALIGN_IOD px apart at ALIGN_EYES_Y from the top
ALIGN_SIZE = 112
ALIGN_IOD = 36.0
ALIGN_EYES_Y = 44.0

# ----------------------------------------------------------------------- micro-movements
#: the feature difference compares each frame with the frames this long before and after it: at
#: least the longest movement spotted, so that inside a movement both ends lie outside it
MICRO_SPAN_S = 0.5
#: a peak counts when its transient score (a share of the inter-ocular distance) is at least
#: MICRO_MIN and MICRO_REL robust deviations (1.4826 x the MAD) above the region's median over
#: MICRO_FLOOR_S around it (its noise floor: compression, the face's own ongoing motion). Chosen
#: with ``benchmarks/dynamics.py --tune`` on its tune split only (simplefr frames >= 986, synthetic
#: insertions): F1 0.31 at 1 deviation, 0.30 at 2 with a third of the false spots (taken), larger
#: deviations lose most inserted movements (the footage's floor is itself made of movements)
MICRO_MIN = 0.012
MICRO_REL = 2.0
#: peaks above this are not micro-movements: a macro-expression, a tracking slip (tune split:
#: spots on untouched footage reached 0.1-0.4, inserted movements 0.01-0.05)
MICRO_MAX = 0.08
#: the median and MAD are taken over this long around the frame
MICRO_FLOOR_S = 2.0
#: onset and offset: where the score falls under this share of the apex's, extended by the
#: onset-apex-offset shape (see :func:`spot_micro_movements`)
MICRO_EDGE = 0.5
#: a head that turns (yaw or pitch, degrees) by more than this within MICRO_SPAN_S of a frame: no
#: micro-movement is read on that frame (:func:`head_turning`). On the tune split, spots on
#: footage with nothing inserted came with turns of 5-50 degrees, inserted movements mostly 2-3;
#: 4 was the best of 3/4/5/6 there
MICRO_MAX_TURN = 4.0
#: the duration prior: spotted intervals outside it are not micro-movements
MICRO_MIN_S = 0.15
MICRO_MAX_S = 0.6

# ------------------------------------------------------------------------------ speaking
#: the lip gap (over the inter-ocular distance) is smoothed over 1/SPEAK_HIGH_HZ s (mesh jitter),
#: then its back-and-forth travel measured over SPEAK_WINDOW_S (speech opens and closes the mouth
#: a few times a second: a window holds one or two syllables)
SPEAK_HIGH_HZ = 6.0
SPEAK_WINDOW_S = 0.6
#: hysteresis: a run starts above SPEAK_ON and lasts while above SPEAK_OFF (tune split)
SPEAK_ON = 0.08
SPEAK_OFF = 0.05
SPEAK_MIN_S = 0.4
SPEAK_GAP_S = 0.4
#: the head turning fast moves the mesh's lips too: frames whose head speed (degrees per second,
#: yaw and pitch) passes this do not count as speech
SPEAK_MAX_TURN = 90.0

# ---------------------------------------------------------------------------- expression
#: expression samples per second per track, the smoothing window and how long a new label must hold
EXPRESSION_RATE = 4.0
EXPRESSION_SMOOTH_S = 1.0
EXPRESSION_HOLD_S = 1.0


# ======================================================================= region motion
def _similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """2x3 least-squares similarity (rotation, uniform scale, shift) taking ``src`` to ``dst``."""
    mu_s, mu_d = src.mean(0), dst.mean(0)
    a, b = src - mu_s, dst - mu_d
    var = float((a**2).sum())
    if var <= 1e-9:
        return np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    # complex-number fit: b = z * a with z = s * e^{i theta}
    za = a[:, 0] + 1j * a[:, 1]
    zb = b[:, 0] + 1j * b[:, 1]
    z = complex((np.conj(za) * zb).sum() / var)
    m = np.array([[z.real, -z.imag, 0.0], [z.imag, z.real, 0.0]])
    m[:, 2] = mu_d - m[:, :2] @ mu_s
    return m


def _template(points: np.ndarray) -> np.ndarray:
    """The stable points of a first frame moved so the eyes sit level, ALIGN_IOD px apart."""
    right = points[[33, 133], :2].mean(0)
    left = points[[362, 263], :2].mean(0)
    size = ALIGN_SIZE
    target = np.array([[size / 2 - ALIGN_IOD / 2, ALIGN_EYES_Y], [size / 2 + ALIGN_IOD / 2, ALIGN_EYES_Y]])
    m = _similarity(np.stack([right, left]), target)
    xy = points[list(STABLE_POINTS), :2]
    return xy @ m[:, :2].T + m[:, 2]


def _region_boxes(xy: np.ndarray) -> list[tuple[str, int, int, int, int]]:
    """(region, x0, y0, x1, y1) boxes in the upright face's pixels, one per side."""
    pad = REGION_PAD * ALIGN_IOD
    out = []
    for name, sides in REGIONS.items():
        for side in sides:
            p = xy[list(side)]
            lo, hi = p.min(0) - pad, p.max(0) + pad
            x0, y0 = (int(max(0, v)) for v in np.floor(lo))
            x1, y1 = (int(min(ALIGN_SIZE, v)) for v in np.ceil(hi))
            if x1 - x0 >= 3 and y1 - y0 >= 3:
                out.append((name, x0, y0, x1, y1))
    return out


def _mean_crop(crops: list[np.ndarray]) -> np.ndarray:
    return np.mean(np.stack(crops), axis=0, dtype=np.float32)


#: the upright face's inner part (its outer fifth on each side is background or hair), sampled
#: every 2 px, where the head's leftover motion is fitted
_INNER = slice(ALIGN_SIZE // 5, ALIGN_SIZE - ALIGN_SIZE // 5, 2)
_GRID_Y, _GRID_X = np.mgrid[_INNER, _INNER]
_FULL_Y, _FULL_X = np.mgrid[0:ALIGN_SIZE, 0:ALIGN_SIZE]


def _global_motion(flow: np.ndarray, boxes: list[tuple[str, int, int, int, int]]) -> np.ndarray:
    """The affine motion field that best explains the flow of the face outside the regions
    (cheeks, forehead, nose): what the alignment left of the head's own motion."""
    keep = np.ones(_GRID_X.shape, bool)
    for _, x0, y0, x1, y1 in boxes:
        inside = (np.clip(_GRID_X, x0, x1 - 1) == _GRID_X) & (np.clip(_GRID_Y, y0, y1 - 1) == _GRID_Y)
        keep &= ~inside
    if keep.sum() < 12:
        keep[:] = True
    xs, ys = _GRID_X[keep].astype(np.float64), _GRID_Y[keep].astype(np.float64)
    design = np.stack([np.ones_like(xs), xs, ys], axis=1)
    coef, *_ = np.linalg.lstsq(design, flow[_GRID_Y[keep], _GRID_X[keep]].astype(np.float64), rcond=None)
    return (coef[0] + _FULL_X[..., None] * coef[1] + _FULL_Y[..., None] * coef[2]).astype(np.float32)


def _flow(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Dense optical flow from ``a`` to ``b`` (Farneback, tuned for small faces and motions)."""
    return cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 2, 9, 3, 5, 1.1, 0)


@dataclass
class _MotionTrack:
    buffer: deque[tuple[int, float, np.ndarray, list[tuple[str, int, int, int, int]]]]
    frames: list[int] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    vectors: list[np.ndarray] = field(default_factory=list)
    last_frame: int = -1


@dataclass
class MotionSeries:
    """One track's regional motion. ``vectors[t, r, side, end]`` is the mean flow (x, y, in
    inter-ocular distances, the rest of the face's motion taken out) of side ``side`` (the
    subject's right, left; NaN where a region has one) of region ``REGION_NAMES[r]`` from frame
    ``frames[t]`` to the frames MICRO_SPAN_S before (``end`` 0) and after it (1). ``scores[t, r]``
    is :func:`transient_score` of those: how far the region is away from where it is both half
    a second before and after."""

    track_id: int
    frames: np.ndarray
    times: np.ndarray
    vectors: np.ndarray

    @property
    def scores(self) -> np.ndarray:
        return transient_score(self.vectors)


def transient_score(vectors: np.ndarray) -> np.ndarray:
    """(..., sides, 2, 2) flows to the frames before and after -> (...) the movement that came
    and went: both flows project onto their mean direction, the smaller projection counts (0 when
    they disagree). A movement that rises and falls back within the window moves the region away
    from both ends alike; a step (a brow raised and held, a mouth opened and kept open) is away from
    one end only, and steady motion away from the two ends in opposite directions: both score ~0.
    The larger of the sides counts."""
    before, after = vectors[..., 0, :], vectors[..., 1, :]
    mean = (before + after) / 2
    norm = np.linalg.norm(mean, axis=-1, keepdims=True)
    unit = np.divide(mean, norm, out=np.zeros_like(mean), where=norm > 0)
    proj = np.minimum((before * unit).sum(-1), (after * unit).sum(-1))
    proj = np.clip(np.nan_to_num(proj, nan=0.0), 0.0, None)
    return proj.max(-1)


REGION_NAMES: tuple[str, ...] = tuple(REGIONS)


class RegionMotion:
    """Online regional motion per track. Call :meth:`add` for each measured face in frame order;
    only the last ``2 * span + 1`` upright faces of each track are kept (ALIGN_SIZE px, grey)."""

    def __init__(self, fps: float) -> None:
        self.fps = fps
        self.span = max(2, int(round(MICRO_SPAN_S * fps)))
        self._tracks: dict[int, _MotionTrack] = {}
        self._templates: dict[int, np.ndarray] = {}

    def add(self, image: np.ndarray, track_id: int, frame: int, time_s: float, dense: DenseLandmarks) -> None:
        points = dense.points
        template = self._templates.get(track_id)
        if template is None:
            template = self._templates[track_id] = _template(points)
        m = _similarity(points[list(STABLE_POINTS), :2], template)
        size = (ALIGN_SIZE, ALIGN_SIZE)
        upright = cv2.warpAffine(image, m, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        if upright.ndim == 3:  # grey after the cut: converting the whole frame would cost more
            upright = cv2.cvtColor(upright, cv2.COLOR_BGR2GRAY)
        xy = points[:, :2] @ m[:, :2].T + m[:, 2]
        self.push(track_id, frame, time_s, upright, xy)

    def push(self, track_id: int, frame: int, time_s: float, upright: np.ndarray, xy: np.ndarray) -> None:
        """One upright face (grey, ALIGN_SIZE px) and its mesh points there (468, 2): what
        :meth:`add` cuts (a benchmark can record and replay it)."""
        state = self._tracks.get(track_id)
        if state is None:
            state = self._tracks[track_id] = _MotionTrack(deque(maxlen=2 * self.span + 1))
        if frame != state.last_frame + 1:
            state.buffer.clear()  # a gap: the comparison needs consecutive frames
        state.last_frame = frame
        state.buffer.append((frame, time_s, upright, _region_boxes(xy)))
        if len(state.buffer) == state.buffer.maxlen:
            self._measure(state)

    def break_track(self, track_id: int) -> None:
        """The face was not measured on this frame (untrusted mesh): the comparison restarts."""
        state = self._tracks.get(track_id)
        if state is not None:
            state.buffer.clear()

    def _measure(self, state: _MotionTrack) -> None:
        b = state.buffer
        centre = b[self.span]
        # Each frame is cut on its own alignment (the stable points of its own mesh): smoothing
        # that alignment over the window (a line through it) let any head motion that is not
        # steady (a nod, a sway) through as flow. The mesh's jitter is what the 3-frame means and
        # the removal of the rest of the face's motion below take care of.
        # Each end and the centre are the mean of 3 frames: compression noise averages out, a
        # movement of 5 frames or more does not
        tail, mid, head = (_mean_crop([b[i - 1][2], b[i][2], b[i + 1][2]]) for i in (1, self.span, len(b) - 2))
        boxes = centre[3]
        # flow is only reliable where the face has texture (a brow's edge, a lip's corner; not
        # the smooth skin between): each pixel counts by its gradient energy
        weight = cv2.Sobel(mid, cv2.CV_32F, 1, 0) ** 2 + cv2.Sobel(mid, cv2.CV_32F, 0, 1) ** 2
        out = np.full((len(REGION_NAMES), 2, 2, 2), np.nan, np.float32)
        for end, other in enumerate((tail, head)):
            fd = _flow(mid, other)
            # what the alignment left of the head's motion: the rest of the face's affine motion
            fd = fd - _global_motion(fd, boxes)
            seen: dict[str, int] = {}
            for name, x0, y0, x1, y1 in boxes:
                w = weight[y0:y1, x0:x1].reshape(-1, 1)
                v = (fd[y0:y1, x0:x1].reshape(-1, 2) * w).sum(0) / max(float(w.sum()), 1e-6)
                side = seen[name] = seen.get(name, -1) + 1
                out[REGION_NAMES.index(name), min(side, 1), end] = v / ALIGN_IOD
        state.frames.append(centre[0])
        state.times.append(centre[1])
        state.vectors.append(out)

    def series(self) -> dict[int, MotionSeries]:
        out = {}
        for track_id, s in self._tracks.items():
            vectors = np.stack(s.vectors) if s.vectors else np.zeros((0, len(REGION_NAMES), 2, 2, 2), np.float32)
            out[track_id] = MotionSeries(track_id, np.array(s.frames, np.int64), np.array(s.times), vectors)
        return out


def spot_micro_movements(
    motion: MotionSeries,
    fps: float,
    *,
    min_flow: float = MICRO_MIN,
    max_flow: float = MICRO_MAX,
    rel: float = MICRO_REL,
    edge: float = MICRO_EDGE,
    floor_s: float = MICRO_FLOOR_S,
    min_s: float = MICRO_MIN_S,
    max_s: float = MICRO_MAX_S,
    exclude: Iterable[tuple[str, float, float]] = (),
) -> list[FaceEvent]:
    """Micro-movements of one track: per region, peaks of the transient score
    (:attr:`MotionSeries.scores`) that are the highest within MICRO_SPAN_S either side (the
    comparison's own echoes half a second away are lower), at least ``min_flow`` and ``rel``
    robust deviations (1.4826 x the median absolute deviation) above the region's median over
    ``floor_s`` around the frame (its noise floor: compression, the face's own ongoing motion),
    and at most ``max_flow`` (larger is no micro-movement). Onset and offset: where the score
    falls under ``edge`` x the apex (to a fraction of a frame), extended by the shape of a movement
    that rises and falls smoothly (a raised cosine is at half its apex half-way from each end, so
    with ``edge`` 0.5 the onset lies twice as far from the apex as that crossing); kept when the
    interval's length is within [min_s, max_s] (a longer one is a macro-movement or a step).
    Spots of different regions that overlap are one movement, named by its strongest region.
    ``exclude``: (region, start_s, end_s) spans where a region's motion is already explained
    (:func:`micro_exclusions`: a blink, speech, a turning head)."""
    if len(motion.frames) < 3:
        return []
    span = max(2, int(round(MICRO_SPAN_S * fps)))
    spots: list[FaceEvent] = []
    dt = 1.0 / fps
    gaps = np.flatnonzero(np.diff(motion.frames) != 1) + 1
    blocked = list(exclude)
    scores = motion.scores
    n_floor = int(round(floor_s * fps))
    for r, region in enumerate(REGION_NAMES):
        # the noise floor is local: a face that starts talking or eating moves more
        whole = scores[:, r].astype(np.float64)
        median = _moving_median(whole, n_floor)
        spread = 1.4826 * _moving_median(np.abs(whole - median), n_floor) + 1e-4
        floor = np.maximum(min_flow, median + rel * spread)
        for seg in np.split(np.arange(len(motion.frames)), gaps):
            s = whole[seg]
            if len(s) < 3:
                continue
            for i in np.flatnonzero(s >= floor[seg]):
                lo, hi = max(0, i - span), min(len(s), i + span + 1)
                if s[i] < s[lo:hi].max() or (i > 0 and s[i] == s[i - 1]):
                    continue
                if s[i] > max_flow:
                    continue  # not a low-intensity movement: a macro-expression, a tracking slip
                before, after = _crossing(s, i, edge * s[i], -1), _crossing(s, i, edge * s[i], 1)
                # the onset-apex-offset shape: a movement that rises and falls smoothly (a raised
                # cosine) passes ``edge`` of its apex this share of the way from its ends
                reach = float(np.arccos(1 - 2 * edge) / np.pi)
                apex = float(motion.times[seg[i]])
                onset = apex - before * dt / reach
                offset = apex + after * dt / reach
                if not (min_s <= offset - onset <= max_s):
                    continue
                if any(reg == region and start <= apex <= end for reg, start, end in blocked):
                    continue
                spots.append(FaceEvent(motion.track_id, "micro", onset, apex, offset, region, float(s[i])))
    # one movement seen in several regions: keep the strongest of each overlapping group
    spots.sort(key=lambda e: -e.intensity)
    kept: list[FaceEvent] = []
    for e in spots:
        if all(e.offset_s <= k.onset_s or e.onset_s >= k.offset_s for k in kept):
            kept.append(e)
    return sorted(kept, key=lambda e: e.onset_s)


def _crossing(s: np.ndarray, i: int, level: float, step: int) -> float:
    """How many frames (to a fraction, by linear interpolation) from ``i`` in the direction
    ``step`` the series ``s`` first falls under ``level`` (to its end if it never does)."""
    j = i
    while 0 <= j + step < len(s) and s[j + step] > level:
        j += step
    if not 0 <= j + step < len(s):
        return float(abs(j - i))
    drop = s[j] - s[j + step]
    return abs(j - i) + (float((s[j] - level) / drop) if drop > 0 else 0.0)


def head_turning(series: FaceSeries, max_deg: float = MICRO_MAX_TURN) -> list[tuple[float, float]]:
    """(start_s, end_s) spans of frames around which the head turns (yaw or pitch) by more than
    ``max_deg`` within MICRO_SPAN_S either side."""
    if len(series) == 0:
        return []
    span = max(2, int(round(MICRO_SPAN_S * series.fps)))
    pose = series.pose[:, :2].astype(np.float64)
    pose[~series.valid] = np.nan
    padded = np.concatenate([np.full((span, 2), np.nan), pose, np.full((span, 2), np.nan)])
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * span + 1, axis=0)  # (T, 2, window)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN windows: an untrusted stretch
        change = np.nanmax(np.abs(windows - pose[:, :, None]), axis=(1, 2))
    turning = np.nan_to_num(change, nan=0.0) > max_deg
    return [(float(series.times[a]), float(series.times[b - 1])) for a, b in iter_segments(turning)]


def micro_exclusions(
    series: FaceSeries,
    blinks: Iterable[FaceEvent],
    speaking: Iterable[FaceEvent],
    max_turn: float = MICRO_MAX_TURN,
) -> list[tuple[str, float, float]]:
    """The spans where a region's motion is already explained, for :func:`spot_micro_movements`:
    a blink moves the eyes, and the brows a little, by far more than a micro-movement (it is its
    own event); speech moves the mouth corners all the time (it is not a micro-expression); a head
    turning out of the image plane moves every region (the nose against the cheeks, the far brow
    against the near one) in ways the upright cut cannot take out, so nothing is read there."""
    out = [(region, b.onset_s, b.offset_s) for b in blinks for region in ("eyes", "brows")]
    out += [("mouth_corners", e.onset_s, e.offset_s) for e in speaking]
    return out + [(region, a, b) for a, b in head_turning(series, max_turn) for region in REGION_NAMES]


def _moving_median(x: np.ndarray, n: int) -> np.ndarray:
    """Centred moving median over ``n`` samples (fewer at the edges)."""
    half = max(1, n // 2)
    if len(x) == 0:
        return x.astype(np.float64)
    padded = np.concatenate([np.full(half, np.nan), x.astype(np.float64), np.full(half, np.nan)])
    return np.nanmedian(np.lib.stride_tricks.sliding_window_view(padded, 2 * half + 1), axis=1)


# ============================================================================== speaking
def _interpolate(x: np.ndarray) -> np.ndarray:
    """NaNs filled by linear interpolation (constant beyond the ends)."""
    ok = np.isfinite(x)
    if ok.all() or not ok.any():
        return np.nan_to_num(x)
    idx = np.arange(len(x))
    return np.interp(idx, idx[ok], x[ok])


def _moving(x: np.ndarray, n: int) -> np.ndarray:
    """Centred moving mean over ``n`` samples (edges: the mean of what the window holds)."""
    half = max(0, int(n)) // 2
    c = np.concatenate([[0.0], np.cumsum(x, dtype=np.float64)])
    idx = np.arange(len(x))
    lo, hi = np.maximum(idx - half, 0), np.minimum(idx + half + 1, len(x))
    return (c[hi] - c[lo]) / (hi - lo)


def lip_gap(series: FaceSeries) -> np.ndarray:
    """(T,) inner-lip gap over the inter-ocular distance; NaN where the mesh was not trusted."""
    gap = np.linalg.norm(series.points[:, INNER_LIPS[1], :2] - series.points[:, INNER_LIPS[0], :2], axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = gap / series.face_size()
    out = out.astype(np.float64)
    out[~series.valid] = np.nan
    return out


def speech_energy(series: FaceSeries) -> np.ndarray:
    """(T,) how much the lips go back and forth, in inter-ocular distances per second: over a
    SPEAK_WINDOW_S window, the lip gap's total travel less its net change (a mouth that opens once
    and stays open, or closes slowly, travels no further than it ends up: zero), after the jitter
    above SPEAK_HIGH_HZ is smoothed away."""
    fps = series.fps
    x = _moving(_interpolate(lip_gap(series)), round(fps / SPEAK_HIGH_HZ))
    n = max(2, int(round(SPEAK_WINDOW_S * fps)))
    half = n // 2
    step = np.abs(np.diff(x, prepend=x[:1]))
    travel = _moving(step, n) * n  # the window's summed travel (edges: scaled up from what they hold)
    idx = np.arange(len(x))
    net = np.abs(x[np.minimum(idx + half, len(x) - 1)] - x[np.maximum(idx - half, 0)])
    energy = np.maximum(travel - net, 0.0) / (n / fps)
    energy[~series.valid] = 0.0
    return energy


def detect_speaking(
    series: FaceSeries, on: float = SPEAK_ON, off: float = SPEAK_OFF, min_s: float = SPEAK_MIN_S
) -> list[FaceEvent]:
    """Speaking intervals of one track (onset, apex = the most lip motion, offset); intensity is
    the mean speech-band energy over the interval (inter-ocular distances)."""
    if len(series) < 3:
        return []
    energy = speech_energy(series)
    # a fast turn of the head moves the mesh's lips as well
    turn = np.zeros(len(series))
    pose = _interpolate_rows(series.pose[:, :2].astype(np.float64))
    turn[1:] = np.hypot(*np.diff(pose, axis=0).T) * series.fps
    energy = np.where(_moving(turn, round(series.fps / 4)) > SPEAK_MAX_TURN, 0.0, energy)
    active = _hysteresis(energy, on, off)
    # bridge short pauses between words
    gap = int(round(SPEAK_GAP_S * series.fps))
    runs = list(iter_segments(active))
    for (_, stop), (start, _) in zip(runs, runs[1:]):
        if start - stop <= gap:
            active[stop:start] = True
    events = []
    for start, stop in iter_segments(active):
        onset, offset = float(series.times[start]), float(series.times[stop - 1])
        if offset - onset < min_s:
            continue
        apex = start + int(np.argmax(energy[start:stop]))
        events.append(
            FaceEvent(
                series.track_id,
                "speaking",
                onset,
                float(series.times[apex]),
                offset,
                "mouth",
                float(energy[start:stop].mean()),
            )
        )
    return events


def _interpolate_rows(x: np.ndarray) -> np.ndarray:
    return np.stack([_interpolate(c) for c in x.T], axis=1) if len(x) else x


def _hysteresis(x: np.ndarray, on: float, off: float) -> np.ndarray:
    """True from where ``x`` passes ``on`` for as long as it stays above ``off``."""
    out = np.zeros(len(x), bool)
    for start, stop in iter_segments(x > off):
        if x[start:stop].max() >= on:
            out[start:stop] = True
    return out


# ============================================================================ expression
@dataclass
class ExpressionSamples:
    """One track's expression samples: times and (n, 7) probabilities in EXPRESSIONS order."""

    track_id: int
    times: list[float] = field(default_factory=list)
    probs: list[np.ndarray] = field(default_factory=list)


def detect_expression_changes(samples: ExpressionSamples, labels: Sequence[str]) -> list[FaceEvent]:
    """An event each time the smoothed expression settles on a new label for EXPRESSION_HOLD_S:
    onset = the first sample of the new label, apex = its most confident sample in the run,
    offset = the run's end; ``label`` = the new expression, intensity = its mean probability."""
    if len(samples.times) < 2:
        return []
    t = np.array(samples.times)
    p = np.stack(samples.probs)
    rate = len(t) / max(t[-1] - t[0], 1e-6)
    n = max(1, int(round(EXPRESSION_SMOOTH_S * rate)))
    smooth = np.stack([_moving(p[:, k], n) for k in range(p.shape[1])], axis=1)
    best = smooth.argmax(1)
    runs = []  # (label index, first, last) of stable runs
    start = 0
    for i in range(1, len(best) + 1):
        if i == len(best) or best[i] != best[start]:
            if t[i - 1] - t[start] >= EXPRESSION_HOLD_S or (runs and runs[-1][0] == best[start]):
                if runs and runs[-1][0] == best[start]:
                    runs[-1] = (runs[-1][0], runs[-1][1], i - 1)
                else:
                    runs.append((int(best[start]), start, i - 1))
            start = i
    events = []
    for (_, _, _), (k, a, b) in zip(runs, runs[1:]):
        apex = a + int(np.argmax(smooth[a : b + 1, k]))
        events.append(
            FaceEvent(
                samples.track_id,
                "expression",
                float(t[a]),
                float(t[apex]),
                float(t[b]),
                "face",
                float(smooth[a : b + 1, k].mean()),
                label=labels[k],
            )
        )
    return events


# ============================================================================= recorder
class EventRecorder:
    """Feed it each :class:`FrameResult` in order (:meth:`update`), then :meth:`events`.

    ``kinds``: which events to read (:data:`KINDS`); ``expressions``: the classifier for
    expression changes (None: the built-in model when "expression" is asked for)."""

    def __init__(
        self,
        fps: float,
        kinds: Iterable[str] = KINDS,
        landmarks: LandmarkModels | None = None,
        expressions: ExpressionClassifier | None = None,
        on_face: Callable[[FrameResult, TrackView, DenseLandmarks], None] | None = None,
    ) -> None:
        self.kinds = tuple(k for k in KINDS if k in set(kinds))
        unknown = set(kinds) - set(KINDS)
        if unknown:
            raise ValueError(f"unknown event kind(s) {', '.join(sorted(unknown))}; choose from {', '.join(KINDS)}")
        self.fps = fps
        self.recorder = SeriesRecorder(landmarks, fps=fps, on_face=self._on_face)
        self.motion = RegionMotion(fps) if "micro" in self.kinds else None
        self.classifier = expressions
        if "expression" in self.kinds and self.classifier is None:
            from faceprint.analyze import make_expression_classifier

            self.classifier = make_expression_classifier("builtin")
        self._samples: dict[int, ExpressionSamples] = {}
        self._next_sample: dict[int, float] = {}
        self._on_face_extra = on_face

    def update(self, result: FrameResult) -> None:
        self.recorder.update(result)

    def _on_face(self, result: FrameResult, view: TrackView, dense: DenseLandmarks) -> None:
        from faceprint.video.series import MIN_PRESENCE

        trusted = dense.presence >= MIN_PRESENCE
        if self.motion is not None:
            if trusted:
                self.motion.add(result.image, view.track_id, result.index, result.time_s, dense)
            else:
                self.motion.break_track(view.track_id)
        if self.classifier is not None and trusted and result.time_s >= self._next_sample.get(view.track_id, -1.0):
            self._next_sample[view.track_id] = result.time_s + 1.0 / EXPRESSION_RATE
            self._sample_expression(result, view, dense)
        if self._on_face_extra is not None:
            self._on_face_extra(result, view, dense)

    def _sample_expression(self, result: FrameResult, view: TrackView, dense: DenseLandmarks) -> None:
        from faceprint.analyze import face_crop
        from faceprint.analyze.types import EXPRESSIONS

        assert self.classifier is not None
        xy = dense.points[:, :2]
        (x0, y0), (x1, y1) = xy.min(0), xy.max(0)
        face = Face(box=(int(x0), int(y0), int(x1), int(y1)), score=1.0)
        size = getattr(self.classifier, "input_size", None)
        crop = face_crop(result.image, face, size=size)
        expression = self.classifier.classify(np.ascontiguousarray(crop[:, :, ::-1]))
        probs = np.array([expression.scores.get(k, 0.0) for k in EXPRESSIONS])
        if probs.sum() <= 0:
            return
        s = self._samples.setdefault(view.track_id, ExpressionSamples(view.track_id))
        s.times.append(result.time_s)
        s.probs.append(probs)

    def series(self, min_frames: int = 1) -> list[FaceSeries]:
        return self.recorder.series(min_frames)

    def events(self, tracks: Iterable[int] | None = None) -> list[FaceEvent]:
        """Every event of every track (or of ``tracks``), by onset."""
        from faceprint.analyze.types import EXPRESSIONS

        wanted = set(tracks) if tracks is not None else None
        motion = self.motion.series() if self.motion is not None else {}
        out: list[FaceEvent] = []
        for s in self.recorder.series():
            if wanted is not None and s.track_id not in wanted:
                continue
            blinks = detect_blinks(s)
            if "blink" in self.kinds:
                out += blinks
            speaking = detect_speaking(s) if {"speaking", "micro"} & set(self.kinds) else []
            if "speaking" in self.kinds:
                out += speaking
            if "expression" in self.kinds and s.track_id in self._samples:
                out += detect_expression_changes(self._samples[s.track_id], EXPRESSIONS)
            if "micro" in self.kinds and s.track_id in motion:
                exclude = micro_exclusions(s, blinks, speaking)
                out += spot_micro_movements(motion[s.track_id], self.fps, exclude=exclude)
        return sorted(out, key=lambda e: (e.onset_s, e.track_id, e.type))


def detect_events(
    source: Any,
    engine: Any = None,
    *,
    kinds: Iterable[str] = KINDS,
    every: int = 5,
    detect_size: int = 960,
    max_frames: int | None = None,
    on_frame: Callable[[FrameResult], None] | None = None,
) -> list[FaceEvent]:
    """The facial events of a video with no gallery: track its faces (``engine``: a
    :class:`~faceprint.engine.FaceEngine`, default one if None) and read each track's events.
    Raises :class:`~faceprint.errors.VideoError` when the input cannot be read."""
    from faceprint.engine import FaceEngine
    from faceprint.video.pipeline import VideoTracker

    tracker = VideoTracker(engine or FaceEngine(), every=every, detect_size=detect_size)
    recorder: EventRecorder | None = None
    for result in tracker.frames(source, max_frames=max_frames):
        if recorder is None:
            recorder = EventRecorder(tracker.fps, kinds)
        recorder.update(result)
        if on_frame is not None:
            on_frame(result)
    return recorder.events() if recorder is not None else []
