"""Liveness cues of a face track: is it flat, does it blink, does its mouth move?

* **Planarity** (3D structure): a printed photo or a screen is flat, so however it is tilted,
  turned or shaken, the texture of the face moves from one frame to another by one homography.
  A real head is not flat: when it turns, the nose moves against the cheeks (parallax), and its
  mouth, brows and eyes move on their own, which no homography explains. :class:`FlowPlanarity`
  tracks texture points inside the face (optical flow, on a locally normalised image so that a card's
  brightness changing as it tilts is not read as motion) through windows of ``PAIR_GAP_S`` and fits
  each window's start-to-end motion with a least-squares homography. What it reports is the
  *share* of the motion beyond a similarity (shift, turn and zoom in the image plane) that the
  homography leaves unexplained: near 0 for a card, near 1 for a head. That share means nothing
  when there is hardly any such motion: a face that holds still (or a card held still) moves by
  tracking noise alone, and noise is unexplained too. Such windows are not counted, and a track
  without enough counted windows gives no planarity evidence either way.
  Tracking noise (motion blur, JPEG, sensor noise) also looks like parallax, so a card that moves
  little beyond that noise can pass for a head: the fusion does not let parallax alone vouch for
  a face (:data:`faceprint.liveness.decide.PASSIVE_DEPTH_MIN`).
  Tried on the tuning sets and not kept: a trimmed homography fit (it also trimmed real faces'
  parallax, 0.63-0.81 against 0.76-0.91), 0.5 s windows (no better on generator A's cards), and
  refining each window's end points by tracking straight from its first frame (no more cards
  vetoed on generator B's tuning clips, and lower ratios for real faces too).
  The face mesh's own points were tried first and dropped: the mesh is regressed by a network
  that draws a face-shaped (3D) mesh even on a tilted photo, and it jitters by about a pixel, so
  on the tuning split's replays its homography residuals overlapped the real faces' completely.
* **Coplanar surroundings** (:func:`fit_surroundings`, computed by :class:`FlowPlanarity` in the same pass): a
  printed photo carries the photo's own background around the face, which moves with the face as part of one
  plane; a real head's surroundings are the room, which stays put. Points in a ring around the face
  (SURROUND_RING) vote for the face's homography or for the far background's motion (which also absorbs a
  camera's pan), in windows where the face moved against the background. A nearer ring (1.1-1.6 face boxes)
  caught real people's hair and ears (up to 0.97-1.0 of the ring "followed" on the real clips).
* **Blinks** (:func:`faceprint.video.series.detect_blinks`) whose closing and opening take a
  human blink's time (about 100-500 ms): a photo cannot blink, and a blink of a single frame
  or of seconds is jitter or a look down.
* **Mouth motion**: how much the inner-lip gap changes over the track (talking, smiling).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from faceprint.video.series import FaceEvent, FaceSeries, detect_blinks

#: seconds of tracking in one planarity window: long enough for a turn to build up parallax
#: above the tracking noise, short enough to give several windows in a 1 s track
PAIR_GAP_S = 0.3
#: a window counts when its points moved at least this far (RMS pixels) beyond what a similarity
#: explains: above the tracking noise, which on the tuning split's replays (blur, noise, moire,
#: MPEG-4) left a homography residual of 0.3-1.1 px
MIN_DEFORMATION_PX = 1.5
#: a track needs this many counted windows for the cue to say anything
MIN_MOVING = 3


@dataclass
class PairFit:
    """How one window's motion fits a plane: ``residual`` is the RMS distance (in face sizes,
    eye-centre distances of ``size`` pixels) between the points at the window's end and their
    start mapped by the best homography; ``deformation`` is the same for the best similarity."""

    first: int
    second: int
    residual: float
    deformation: float
    size: float = 1.0

    @property
    def ratio(self) -> float:
        """The share of the non-similarity motion a homography does not explain: near 0 for a
        card (the homography explains it all), near 1 for a head (or for noise alone)."""
        return self.residual / self.deformation if self.deformation > 0 else float("nan")


@dataclass
class Planarity:
    """The planarity cue of a track: ``pairs`` windows fitted, ``moving`` of them deformed enough
    to tell (MIN_DEFORMATION_PX); ``ratio``: the median :attr:`PairFit.ratio` over the moving
    windows (NaN when none), low for a flat card and high for a head."""

    pairs: int
    moving: int
    ratio: float
    deformation_px: float

    @property
    def informative(self) -> bool:
        return self.moving >= MIN_MOVING


def _similarity_residual(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """dst minus src mapped by the least-squares similarity (Umeyama, no reflection)."""
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    u, sig, vt = np.linalg.svd(d.T @ s)
    sign = np.sign(np.linalg.det(u @ vt)) or 1.0
    diag = np.array([1.0, sign])
    rot = u @ np.diag(diag) @ vt
    scale = float((sig * diag).sum() / max((s**2).sum(), 1e-12))
    return d - scale * s @ rot.T


def fit_pair(src: np.ndarray, dst: np.ndarray, size: float) -> tuple[float, float]:
    """(homography residual, similarity residual) of moving ``src`` (N, 2) onto ``dst``, both RMS
    point distances divided by ``size``. Least squares over all points (cv2 method 0, no RANSAC:
    the parallax of a few points is what is looked for, not an outlier to drop)."""
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    size = max(float(size), 1e-6)
    deformation = float(np.sqrt((_similarity_residual(src, dst) ** 2).sum(1).mean())) / size
    h, _ = cv2.findHomography(src, dst, 0)
    if h is None:  # degenerate (collinear points): nothing to tell
        return deformation, deformation
    mapped = cv2.perspectiveTransform(src.reshape(-1, 1, 2), h).reshape(-1, 2)
    residual = float(np.sqrt(((mapped - dst) ** 2).sum(1).mean())) / size
    return residual, deformation


#: a blink counts for liveness when its lids closed and opened again within these (seconds);
#: shorter is one frame of jitter or blur, longer a look down or a held shut
BLINK_MIN_S = 0.1
BLINK_MAX_S = 0.5


def timed_blinks(series: FaceSeries) -> list[FaceEvent]:
    """The blinks of a track whose onset-to-offset time is a human blink's."""
    return [b for b in detect_blinks(series) if BLINK_MIN_S <= b.duration_s <= BLINK_MAX_S]


def mouth_motion(series: FaceSeries) -> float:
    """Spread of the inner-lip gap over the track (95th minus 5th percentile of mouth openness,
    a ratio of the mouth's width; 0 when the track has fewer than 3 valid frames)."""
    mouth = series.mouth_open[series.valid]
    if len(mouth) < 3:
        return 0.0
    low, high = np.percentile(mouth, [5, 95])
    return float(high - low)


# --------------------------------------------------------------------------- texture flow
#: texture points tracked by optical flow follow the pixels themselves, so on a card they fit a
#: homography to the tracking noise
FLOW_MAX_POINTS = 120
#: points are taken inside the mesh's outline shrunk towards its centre by this factor, so none
#: lies on the background (which a card moves over, and which would look like parallax)
FLOW_INNER = 0.8
#: a point whose forward-backward flow misses itself by more than this (pixels) is dropped
FLOW_FB_MAX = 0.7
FLOW_MIN_POINTS = 12
FLOW_WIN = (15, 15)
#: sigma (pixels) of the blur applied before tracking
FLOW_BLUR = 1.2
#: the face is tracked on a locally normalised image (each pixel minus its neighbourhood's mean, over the
#: neighbourhood's standard deviation), in a box this many eye distances wide. A card tilted towards or away
#: from the light (or a camera's auto-exposure) changes the face's brightness and contrast between frames,
#: and Lucas-Kanade, which assumes constant brightness, reads that change as motion that no homography
#: explains (the independent replays' ablation: 1.3-2.8 px of tracking error instead of 0.2-1.0 px). On
#: generator A's tuning cards, 8 of 19 judged tracks read as a head (ratio >= 0.6) without it, none with it
FLOW_NORM_BOX = 0.5
#: grey levels added to the local standard deviation, so that flat skin's sensor noise is not stretched into
#: texture
FLOW_NORM_FLOOR = 2.0
#: the normalised region: the mesh's extent plus this many eye distances on each side (room for a frame's motion)
FLOW_ROI_MARGIN = 1.0


@dataclass
class _FlowState:
    first: int  # the frame the window began on
    start_s: float
    last_frame: int
    size: float
    start: np.ndarray  # (N, 2) positions when the window began
    current: np.ndarray  # (N, 2) positions on the last frame seen
    gray: np.ndarray  # the last frame seen
    ring_start: np.ndarray  # (M, 2) points around the face (SURROUND_RING) when the window began
    ring_current: np.ndarray
    far_start: np.ndarray  # (K, 2) far-background points (SURROUND_FAR) when the window began, 1/FAR_SCALE size
    far_current: np.ndarray
    small: np.ndarray  # the last frame seen, blurred, at 1/FAR_SCALE size, not normalised


class FlowPlanarity:
    """Planarity measured on tracked texture: call :meth:`update` with each frame's face (its mesh
    points) in frame order; every ``gap_s`` seconds of a track, the points tracked since the last
    window began are fitted by a homography (:func:`fit_pair`) and the window restarts.
    :meth:`result` gives a track's :class:`Planarity`."""

    def __init__(self, gap_s: float = PAIR_GAP_S) -> None:
        self.gap_s = gap_s
        self._state: dict[int, _FlowState] = {}
        self._fits: dict[int, list[PairFit]] = {}
        self._surround: dict[int, list[SurroundFit]] = {}
        self._gray: tuple[int, np.ndarray] | None = None
        self._small: tuple[int, np.ndarray] | None = None

    def _frame_small(self, index: int, blurred: np.ndarray) -> np.ndarray:
        if self._small is None or self._small[0] != index:
            self._small = (index, cv2.pyrDown(cv2.pyrDown(blurred)))
        return self._small[1]

    def _frame_gray(self, index: int, image: np.ndarray) -> np.ndarray:
        if self._gray is None or self._gray[0] != index:
            gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
            # fine stripes (a screen's moire, sensor noise) would catch the tracked points: blur them away
            self._gray = (index, cv2.GaussianBlur(gray, (0, 0), FLOW_BLUR))
        return self._gray[1]

    def update(self, track_id: int, index: int, time_s: float, image: np.ndarray, points: np.ndarray) -> None:
        """One face on one frame: ``points`` is the (468, 2+) mesh of the face on ``image`` (BGR)."""
        xy = np.asarray(points, np.float32)[:, :2]
        size = _eye_distance(xy)
        blurred = self._frame_gray(index, image)
        gray = normalise_face(blurred, xy, size)
        small = self._frame_small(index, blurred)
        state = self._state.get(track_id)
        if state is not None and index - state.last_frame <= 2 and len(state.current):
            # the face's and the ring's points in one call, on the normalised image
            n = len(state.current)
            moved, ok = _track(state.gray, gray, np.concatenate([state.current, state.ring_current]))
            state.start, state.current = state.start[ok[:n]], moved[:n][ok[:n]]
            state.ring_start, state.ring_current = state.ring_start[ok[n:]], moved[n:][ok[n:]]
            if len(state.far_current):
                # the far background on the plain frame at a quarter of its size, one way (outside the normalised
                # region; its motion is only compared with the face's, which needs no sub-pixel accuracy)
                far, far_ok = _track(state.small, small, state.far_current, check=False)
                state.far_start, state.far_current = state.far_start[far_ok], far[far_ok]
            state.gray, state.small, state.last_frame = gray, small, index
            if time_s - state.start_s >= self.gap_s - 1e-6:
                if len(state.current) >= FLOW_MIN_POINTS:
                    mean_size = (state.size + size) / 2
                    residual, deformation = fit_pair(state.start, state.current, mean_size)
                    self._fits.setdefault(track_id, []).append(
                        PairFit(state.first, index, residual, deformation, mean_size)
                    )
                    surround = fit_surroundings(
                        state.start,
                        state.current,
                        state.ring_start,
                        state.ring_current,
                        state.far_start * FAR_SCALE,
                        state.far_current * FAR_SCALE,
                    )
                    if surround is not None:
                        self._surround.setdefault(track_id, []).append(surround)
                state = None
            elif len(state.current) < FLOW_MIN_POINTS:
                state = None
        else:
            state = None
        if state is None:
            start, ring, far = _features(gray, xy), _ring_features(gray, xy), _far_features(small, xy / FAR_SCALE)
            self._state[track_id] = _FlowState(
                index, time_s, index, size, start, start.copy(), gray, ring, ring.copy(), far, far.copy(), small
            )

    def fits(self, track_id: int) -> list[PairFit]:
        return self._fits.get(track_id, [])

    def result(self, track_id: int) -> Planarity:
        return summarise(self.fits(track_id))

    def surroundings(self, track_id: int) -> Surroundings:
        """Does the ring around the track's face move with it (:func:`fit_surroundings`)?"""
        return summarise_surroundings(self._surround.get(track_id, []))


def summarise(fits: list[PairFit], min_deformation_px: float = MIN_DEFORMATION_PX) -> Planarity:
    """A track's :class:`Planarity` from its window fits."""
    moving = [f for f in fits if f.deformation * f.size >= min_deformation_px]
    ratio = float(np.median([f.ratio for f in moving])) if moving else float("nan")
    deformation = float(np.median([f.deformation * f.size for f in fits])) if fits else 0.0
    return Planarity(len(fits), len(moving), ratio, deformation)


def normalise_face(gray: np.ndarray, xy: np.ndarray, size: float) -> np.ndarray:
    """``gray`` (uint8) locally normalised around the face whose mesh is ``xy`` (FLOW_NORM_BOX), mid-grey
    elsewhere: brightness and contrast changes cancel out, the texture stays. Only the face's region is
    computed, with box filters (their cost per pixel does not grow with the box)."""
    height, width = gray.shape[:2]
    # the face's margin, or the ring's around it (SURROUND_RING), whichever is wider, and room for a window's motion
    ring = (SURROUND_RING[1] - 1) * np.ptp(xy, 0) / 2 + 0.3 * size
    margin = np.maximum(FLOW_ROI_MARGIN * size, ring) + 16
    x0, y0 = np.maximum(np.floor(xy.min(0) - margin), 0).astype(int)
    x1, y1 = np.minimum(np.ceil(xy.max(0) + margin), (width, height)).astype(int)
    out = np.full(gray.shape[:2], 128, np.uint8)
    if x1 - x0 < 4 or y1 - y0 < 4:
        return out
    # OpenCV's own array operations: several times faster than numpy's on these sizes
    crop = np.float32(gray[y0:y1, x0:x1])
    k = max(3, int(FLOW_NORM_BOX * size) | 1)
    centred = cv2.subtract(crop, cv2.blur(crop, (k, k)))
    spread = cv2.sqrt(cv2.blur(cv2.multiply(centred, centred), (k, k)))
    normalised = cv2.divide(centred, cv2.add(spread, FLOW_NORM_FLOOR))
    # 40 grey levels per local standard deviation around mid-grey, saturated into uint8 (what LK takes)
    out[y0:y1, x0:x1] = cv2.addWeighted(normalised, 40.0, normalised, 0.0, 128.0, dtype=cv2.CV_8U)
    return out


def _eye_distance(xy: np.ndarray) -> float:
    from faceprint.analyze.landmarks import LEFT_EYE_CORNERS, RIGHT_EYE_CORNERS

    right = xy[list(RIGHT_EYE_CORNERS)].mean(0)
    left = xy[list(LEFT_EYE_CORNERS)].mean(0)
    return float(np.linalg.norm(left - right))


def _features(gray: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """Corners worth tracking inside the face (the mesh's hull shrunk by FLOW_INNER)."""
    centre = xy.mean(0)
    hull = cv2.convexHull(((xy - centre) * FLOW_INNER + centre).astype(np.int32))
    x0, y0 = np.maximum(hull.reshape(-1, 2).min(0) - 2, 0)
    x1, y1 = np.minimum(hull.reshape(-1, 2).max(0) + 2, (gray.shape[1] - 1, gray.shape[0] - 1))
    if x1 - x0 < 8 or y1 - y0 < 8:
        return np.zeros((0, 2), np.float32)
    mask = np.zeros((y1 - y0 + 1, x1 - x0 + 1), np.uint8)
    cv2.fillConvexPoly(mask, hull - np.array([x0, y0], np.int32), 255)
    spacing = max(2, int(np.sqrt(mask.sum() / 255 / FLOW_MAX_POINTS) * 0.7))
    corners = cv2.goodFeaturesToTrack(
        gray[y0 : y1 + 1, x0 : x1 + 1], FLOW_MAX_POINTS, 0.005, spacing, mask=mask, blockSize=5
    )
    if corners is None:
        return np.zeros((0, 2), np.float32)
    return corners.reshape(-1, 2) + np.array([x0, y0], np.float32)


def _track(prev: np.ndarray, gray: np.ndarray, pts: np.ndarray, check: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Lucas-Kanade from ``prev`` to ``gray`` with a forward-backward check (``check``)."""
    p0 = pts.reshape(-1, 1, 2).astype(np.float32)
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 20, 0.01)
    p1, st1, _ = cv2.calcOpticalFlowPyrLK(prev, gray, p0, None, winSize=FLOW_WIN, maxLevel=3, criteria=criteria)
    if not check:
        return p1.reshape(-1, 2), st1.ravel() == 1
    back, st2, _ = cv2.calcOpticalFlowPyrLK(gray, prev, p1, None, winSize=FLOW_WIN, maxLevel=3, criteria=criteria)
    error = np.linalg.norm((back - p0).reshape(-1, 2), axis=1)
    ok = (st1.ravel() == 1) & (st2.ravel() == 1) & (error < FLOW_FB_MAX)
    return p1.reshape(-1, 2), ok


# --------------------------------------------------------------------------- coplanar surroundings
#: the ring around the face whose points are tracked with it: between these multiples of the mesh's box (about
#: the face's box), on the sides and above, not below SURROUND_BELOW (a real person's neck and shoulders,
#: which follow the head). A printed photo carries the photo's own background there (an LFW photo is 250 px
#: with a face about 100 px wide), which moves with the face as part of one plane; a real head's ring is
#: the room behind it, which does not follow the head
SURROUND_RING = (1.6, 2.4)
#: ring points are taken down to this far below the box's centre (in box heights)
SURROUND_BELOW = 0.3
SURROUND_MAX_POINTS = 60
SURROUND_MIN_POINTS = 8
#: the far background (which tells a camera's pan from the face's own motion): the frame outside this
#: multiple of the face's box
SURROUND_FAR = 2.2
SURROUND_FAR_POINTS = 40
#: the far background is tracked on the frame shrunk this many times (cheaper: it is tracked over the whole frame)
FAR_SCALE = 4
#: a window counts when the two explanations of the ring's motion (moves with the face, stays with the far
#: background) are this far apart at the ring's points (RMS pixels): the face moved against the background
SURROUND_MIN_SHIFT_PX = 2.5


@dataclass
class SurroundFit:
    """One window of the surroundings cue: ``follow`` is the share of the ring's points that ended nearer to where
    the face's homography takes them than to where the far background's motion takes them; ``shift`` the RMS
    distance (pixels) between those two predictions."""

    follow: float
    shift: float
    points: int


@dataclass
class Surroundings:
    """The surroundings cue of a track: ``windows`` fitted, ``moving`` of them with the face moving against the
    background (SURROUND_MIN_SHIFT_PX); ``follow``: the median :attr:`SurroundFit.follow` over those (NaN when
    none), near 1 when the ring moves with the face as one plane (a card), low for a head in a room."""

    windows: int
    moving: int
    follow: float

    @property
    def informative(self) -> bool:
        return self.moving >= MIN_MOVING


def fit_surroundings(
    face0: np.ndarray, face1: np.ndarray, ring0: np.ndarray, ring1: np.ndarray, far0: np.ndarray, far1: np.ndarray
) -> SurroundFit | None:
    """One window's :class:`SurroundFit` from the start and end positions of the face's, the ring's and the far
    background's points; None when the ring or the face has too few points, or there is no far background to
    tell a camera's motion from the face's (a tight crop: the cue says nothing)."""
    if len(ring0) < SURROUND_MIN_POINTS or len(face0) < FLOW_MIN_POINTS or len(far0) < SURROUND_MIN_POINTS:
        return None
    h, _ = cv2.findHomography(np.float64(face0), np.float64(face1), 0)
    # the far background as a similarity, robustly: a pan or a shake of the camera, not a person walking by
    g, _ = cv2.estimateAffinePartial2D(np.float64(far0), np.float64(far1), method=cv2.RANSAC, ransacReprojThreshold=2.0)
    if h is None or g is None:
        return None
    ring0 = np.float64(ring0)
    with_face = cv2.perspectiveTransform(ring0.reshape(-1, 1, 2), h).reshape(-1, 2)
    with_room = ring0 @ g[:, :2].T + g[:, 2]
    shift = float(np.sqrt(((with_face - with_room) ** 2).sum(1).mean()))
    near_face = np.linalg.norm(ring1 - with_face, axis=1) < np.linalg.norm(ring1 - with_room, axis=1)
    return SurroundFit(float(near_face.mean()), shift, len(ring0))


def summarise_surroundings(fits: list[SurroundFit], min_shift_px: float = SURROUND_MIN_SHIFT_PX) -> Surroundings:
    moving = [f for f in fits if f.shift >= min_shift_px]
    follow = float(np.median([f.follow for f in moving])) if moving else float("nan")
    return Surroundings(len(fits), len(moving), follow)


def _box_ring_mask(shape: tuple[int, ...], xy: np.ndarray, inner: float, outer: float) -> tuple[np.ndarray, int, int]:
    """A uint8 mask (255 inside) of the box of ``xy`` scaled by ``outer`` minus it scaled by ``inner`` (0: none),
    clipped to the image, with the clipped region's top-left corner."""
    centre = (xy.min(0) + xy.max(0)) / 2
    half = (xy.max(0) - xy.min(0)) / 2
    height, width = shape[:2]
    x0, y0 = np.maximum(np.floor(centre - half * outer), 0).astype(int)
    x1, y1 = np.minimum(np.ceil(centre + half * outer), (width, height)).astype(int)
    mask = np.zeros((max(y1 - y0, 0), max(x1 - x0, 0)), np.uint8)
    if mask.size == 0:
        return mask, x0, y0
    mask[:] = 255
    if inner > 0:
        a = np.floor(centre - half * inner).astype(int) - (x0, y0)
        b = np.ceil(centre + half * inner).astype(int) - (x0, y0)
        mask[max(a[1], 0) : max(b[1], 0), max(a[0], 0) : max(b[0], 0)] = 0
    return mask, x0, y0


def _masked_corners(gray: np.ndarray, mask: np.ndarray, x0: int, y0: int, n: int) -> np.ndarray:
    if mask.shape[0] < 8 or mask.shape[1] < 8 or not mask.any():
        return np.zeros((0, 2), np.float32)
    region = gray[y0 : y0 + mask.shape[0], x0 : x0 + mask.shape[1]]
    spacing = max(3, int(np.sqrt(np.count_nonzero(mask) / n) * 0.7))
    corners = cv2.goodFeaturesToTrack(region, n, 0.01, spacing, mask=mask, blockSize=5)
    if corners is None:
        return np.zeros((0, 2), np.float32)
    return corners.reshape(-1, 2) + np.array([x0, y0], np.float32)


def _ring_features(gray: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """Corners in the ring around the face (SURROUND_RING), on the sides and above (SURROUND_BELOW)."""
    mask, x0, y0 = _box_ring_mask(gray.shape, xy, *SURROUND_RING)
    bottom = int((xy[:, 1].min() + xy[:, 1].max()) / 2 + SURROUND_BELOW * np.ptp(xy[:, 1])) - y0
    mask[max(bottom, 0) :] = 0
    return _masked_corners(gray, mask, x0, y0, SURROUND_MAX_POINTS)


def _far_features(gray: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """Corners of the frame outside SURROUND_FAR times the face's box (``gray`` and ``xy`` at 1/FAR_SCALE size)."""
    full = np.full(gray.shape[:2], 255, np.uint8)
    hole, x0, y0 = _box_ring_mask(gray.shape, xy, 0.0, SURROUND_FAR)
    full[y0 : y0 + hole.shape[0], x0 : x0 + hole.shape[1]] = 0
    return _masked_corners(gray, full, 0, 0, SURROUND_FAR_POINTS)
