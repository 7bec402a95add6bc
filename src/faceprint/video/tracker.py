"""A small IoU + Kalman (constant velocity) multi-face tracker, in the style of SORT.

Why not a library: the maintained trackers either pull a second OpenCV build and a plotting
stack (supervision 0.31: matplotlib, scipy, av, and opencv-python beside our headless
build) or pin old versions of what we already use (norfair 2.3 wants numpy 1.26 and rich
14, and depends on filterpy, unmaintained since 2018). OpenCV 5's headless build has no
lightweight box trackers either (KCF/CSRT live in contrib; its MIL is tens of ms per
box, and Nano/Vit/DaSiamRPN need separate DNN weights). Faces in a frame are few and
rarely overlap, so greedy matching on IoU is as good as the Hungarian algorithm here, and
the whole tracker is numpy only.

Boxes are ``(left, top, right, bottom)`` floats; time is counted in frames, so gaps between
detections (every N frames, or dropped frames on a live source) are just larger steps.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

Box = tuple[float, float, float, float]


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(M, 4) x (N, 4) boxes -> (M, N) intersection over union."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(axis=2)
    area_a = np.clip(a[:, 2:] - a[:, :2], 0, None).prod(axis=1)
    area_b = np.clip(b[:, 2:] - b[:, :2], 0, None).prod(axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0)


def _to_state(box: Box) -> np.ndarray:
    left, top, right, bottom = box
    return np.array([(left + right) / 2, (top + bottom) / 2, right - left, bottom - top], np.float64)


def _to_box(z: np.ndarray) -> Box:
    cx, cy, w, h = (float(v) for v in z[:4])
    w, h = max(w, 1.0), max(h, 1.0)
    return (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)


class KalmanBox:
    """Kalman filter over ``[cx, cy, w, h, vcx, vcy, vw, vh]`` with a constant-velocity model.

    Noise scales with the box size (the DeepSORT parametrisation): a 200 px face jitters
    more in pixels than a 40 px one.
    """

    POS = 1.0 / 20  # position noise, as a fraction of the box size
    VEL = 1.0 / 160  # velocity noise per frame, as a fraction of the box size
    _H = np.hstack([np.eye(4), np.zeros((4, 4))])

    def __init__(self, box: Box) -> None:
        z = _to_state(box)
        s = self._size(z)
        self.x = np.concatenate([z, np.zeros(4)])
        std = np.array([2 * self.POS * s] * 4 + [10 * self.VEL * s] * 4)
        self.P = np.diag(std**2)

    @staticmethod
    def _size(z: np.ndarray) -> float:
        return max(float(z[2] + z[3]) / 2, 1.0)

    def predict(self, dt: float = 1.0) -> Box:
        if dt <= 0:
            return self.box
        F = np.eye(8)
        F[:4, 4:] = dt * np.eye(4)
        s = self._size(self.x)
        q = np.array([self.POS * s] * 4 + [self.VEL * s] * 4) ** 2 * dt
        self.x = F @ self.x
        self.x[2:4] = np.maximum(self.x[2:4], 1.0)
        self.P = F @ self.P @ F.T + np.diag(q)
        return self.box

    def update(self, box: Box) -> Box:
        z = _to_state(box)
        r = (self.POS * self._size(z)) ** 2
        S = self._H @ self.P @ self._H.T + r * np.eye(4)
        K = self.P @ self._H.T @ np.linalg.inv(S)
        self.x = self.x + K @ (z - self._H @ self.x)
        self.P = (np.eye(8) - K @ self._H) @ self.P
        return self.box

    @property
    def box(self) -> Box:
        return _to_box(self.x)

    @property
    def velocity(self) -> tuple[float, float]:
        return float(self.x[4]), float(self.x[5])


@dataclass
class Track:
    """One face followed over time. ``first_frame``/``last_frame`` are the first and last
    frames where a detection confirmed it (not frames where it was only predicted)."""

    id: int
    kalman: KalmanBox
    first_frame: int
    last_frame: int
    frame: int  # the frame the Kalman state refers to
    hits: int = 1  # detections matched
    missed: int = 0  # consecutive detection rounds without a match
    detection_box: Box = (0.0, 0.0, 0.0, 0.0)
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def box(self) -> Box:
        return self.kalman.box


class IouTracker:
    """Associates detections with tracks; call :meth:`predict` every frame and
    :meth:`update` on frames where the detector ran.

    - matching: greedy on IoU between each track's predicted box and each detection
      (``iou_threshold``); a pair that misses the IoU gate still matches when the centres
      are within ``max_center_dist`` box sizes and the sizes agree within ``max_size_ratio``
      (a face that moved fast between two detections, before the filter knows its velocity);
    - birth: every unmatched detection starts a track;
    - death: a track unmatched for more than ``max_missed`` detection rounds ends; one seen
      by fewer than ``min_hits`` detections is then discarded as a likely false positive.
    """

    def __init__(
        self,
        iou_threshold: float = 0.3,
        max_missed: int = 2,
        min_hits: int = 2,
        max_center_dist: float = 0.6,
        max_size_ratio: float = 1.6,
    ) -> None:
        self.iou_threshold = iou_threshold
        self.max_missed = max_missed
        self.min_hits = min_hits
        self.max_center_dist = max_center_dist
        self.max_size_ratio = max_size_ratio
        self.active: list[Track] = []
        #: tracks that ended and were confirmed (``hits >= min_hits``), oldest first
        self.finished: list[Track] = []
        #: tracks that ended unconfirmed
        self.discarded: list[Track] = []
        self._next_id = 1

    def predict(self, frame: int) -> list[Track]:
        """Advance every active track to ``frame``; returns them."""
        for t in self.active:
            t.kalman.predict(frame - t.frame)
            t.frame = frame
        return self.active

    def _scores(self, tracks: list[Track], boxes: np.ndarray) -> np.ndarray:
        predicted = np.array([t.box for t in tracks], np.float64).reshape(-1, 4)
        scores = iou_matrix(predicted, boxes)
        # centre-distance fallback, scored below every IoU match so those win first
        pc = (predicted[:, None, :2] + predicted[:, None, 2:]) / 2
        bc = (boxes[None, :, :2] + boxes[None, :, 2:]) / 2
        psize = (predicted[:, None, 2:] - predicted[:, None, :2]).mean(axis=2)
        bsize = (boxes[None, :, 2:] - boxes[None, :, :2]).mean(axis=2)
        dist = np.linalg.norm(pc - bc, axis=2) / np.maximum((psize + bsize) / 2, 1.0)
        ratio = np.maximum(psize, bsize) / np.maximum(np.minimum(psize, bsize), 1.0)
        near = (scores < self.iou_threshold) & (dist < self.max_center_dist) & (ratio < self.max_size_ratio)
        fallback = self.iou_threshold * 0.5 * (1.0 - dist / self.max_center_dist)
        return np.where(near, np.maximum(fallback, 1e-6), np.where(scores >= self.iou_threshold, scores, 0.0))

    def update(self, boxes: list[Box] | np.ndarray, frame: int) -> list[Track]:
        """Match this frame's detections; returns the track of each box, in order.
        Call :meth:`predict` for ``frame`` first."""
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        assigned: list[Track | None] = [None] * len(boxes)
        matched: set[int] = set()
        if self.active and len(boxes):
            scores = self._scores(self.active, boxes)
            # greedy: best pair first, each track and each box used once
            for flat in np.argsort(-scores, axis=None):
                ti, bi = np.unravel_index(flat, scores.shape)
                if scores[ti, bi] <= 0:
                    break
                if ti in matched or assigned[bi] is not None:
                    continue
                matched.add(int(ti))
                assigned[bi] = self.active[ti]
        for bi, track in enumerate(assigned):
            box: Box = tuple(float(v) for v in boxes[bi])  # type: ignore[assignment]
            if track is None:
                track = Track(self._next_id, KalmanBox(box), frame, frame, frame, detection_box=box)
                self._next_id += 1
                self.active.append(track)
                assigned[bi] = track
                matched.add(len(self.active) - 1)
            else:
                track.kalman.update(box)
                track.hits += 1
                track.missed = 0
                track.last_frame = frame
                track.detection_box = box
        survivors = []
        for i, track in enumerate(self.active):
            if i not in matched:
                track.missed += 1
                if track.missed > self.max_missed or (track.hits < self.min_hits and track.missed > 0):
                    self._end(track)
                    continue
            survivors.append(track)
        self.active = survivors
        return assigned  # type: ignore[return-value]

    def _end(self, track: Track) -> None:
        (self.finished if track.hits >= self.min_hits else self.discarded).append(track)

    def end_all(self) -> list[Track]:
        """End every active track (a scene cut, or the end of the video); returns them."""
        ended, self.active = self.active, []
        for track in ended:
            self._end(track)
        return ended

    def confirmed(self, track: Track) -> bool:
        return track.hits >= self.min_hits
