"""Synthetic micro-movements inserted into real video frames, for ``benchmarks/dynamics.py``.

No micro-expression data set can be had here (CAS(ME)^3 and SAMM-LV need licences), so the
spotter is measured on real footage with known movements added: a smooth, local warp
(:func:`cv2.remap` with a Gaussian displacement field) that raises or lowers the brows or pulls
the mouth corners, anchored on the face mesh of that very frame (from a first, clean pass),
rising from nothing at the onset to its full amplitude at the apex and back by the offset.
Amplitudes are a small share of the face's width (its mesh's extent), durations 200-500 ms.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

#: where a movement is put, per kind: the mesh points it is centred on, per side
ANCHORS = {
    "brow_raise": ((105, 66, 65, 52, 53), (334, 296, 295, 282, 283)),
    "brow_lower": ((107, 66, 55, 65), (336, 296, 285, 295)),
    "mouth_pull": ((61,), (291,)),
}
#: the region the spotter should name for each kind
KIND_REGION = {"brow_raise": "brows", "brow_lower": "brows", "mouth_pull": "mouth_corners"}
#: the Gaussian's width, in inter-ocular distances
SIGMA = {"brow_raise": 0.28, "brow_lower": 0.22, "mouth_pull": 0.2}


@dataclass
class Insertion:
    """One inserted movement on one face: frames ``onset`` (last neutral frame) to ``offset``."""

    clip: str
    track_id: int  # the clean pass's track
    kind: str
    onset: int
    apex: int
    offset: int
    amplitude: float  # share of the face's width at the apex
    centre: tuple[float, float]  # the face's centre on the apex frame (to find its track again)
    split: str

    @property
    def region(self) -> str:
        return KIND_REGION[self.kind]


def profile(frame: int, ins: Insertion) -> float:
    """0 at the onset and offset, 1 at the apex, raised-cosine ramps in between."""
    if frame <= ins.onset or frame >= ins.offset:
        return 0.0
    if frame <= ins.apex:
        u = (frame - ins.onset) / max(1, ins.apex - ins.onset)
    else:
        u = 1.0 - (frame - ins.apex) / max(1, ins.offset - ins.apex)
    return float((1 - np.cos(np.pi * u)) / 2)


def _directions(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """(unit vector along the eyes, unit vector up the face, inter-ocular distance)."""
    right = points[[33, 133], :2].mean(0)
    left = points[[362, 263], :2].mean(0)
    d = left - right
    iod = float(np.hypot(*d))
    along = d / max(iod, 1e-6)
    up = np.array([along[1], -along[0]])  # image y grows downwards
    return along, up, iod


def warp(image: np.ndarray, points: np.ndarray, kind: str, amount: float) -> np.ndarray:
    """``image`` with the movement ``kind`` applied at ``amount`` pixels (in place, and returned)."""
    if amount <= 0:
        return image
    along, up, iod = _directions(points)
    sigma = SIGMA[kind] * iod
    h, w = image.shape[:2]
    for side, idx in enumerate(ANCHORS[kind]):
        c = points[list(idx), :2].mean(0)
        outward = -along if side == 0 else along
        if kind == "brow_raise":
            v = up * amount
        elif kind == "brow_lower":  # a frown: down and towards the nose
            v = (-up * 0.8 - outward * 0.6) * amount
        else:  # a smile's pull: out and up
            v = (outward * 0.8 + up * 0.6) * amount
        r = int(np.ceil(3 * sigma))
        x0, y0 = max(0, int(c[0]) - r), max(0, int(c[1]) - r)
        x1, y1 = min(w, int(c[0]) + r + 1), min(h, int(c[1]) + r + 1)
        if x1 - x0 < 2 or y1 - y0 < 2:
            continue
        ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        g = np.exp(-((xs - c[0]) ** 2 + (ys - c[1]) ** 2) / (2 * sigma**2)).astype(np.float32)
        # content at x moves to x + D(x): sample the source at x - D(x)
        map_x = xs - g * np.float32(v[0])
        map_y = ys - g * np.float32(v[1])
        patch = cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        image[y0:y1, x0:x1] = patch
    return image


def plan(
    clip: str,
    series: list,
    fps: float,
    split_of: dict[str, object],
    rng: np.random.Generator,
    *,
    min_iod: float = 40.0,
    every_s: float = 1.6,
    margin_s: float = 0.6,
    max_yaw: float = 30.0,
) -> list[Insertion]:
    """Movements to insert into ``clip``, planned from its clean pass (:class:`FaceSeries` list):
    on faces at least ``min_iod`` px between the eyes, turned less than ``max_yaw``, with the mesh
    trusted ``margin_s`` either side; one every ``every_s`` at most per face, never overlapping.
    ``split_of(frame)`` names the split of a frame (tune/report)."""
    out: list[Insertion] = []
    margin = int(round(margin_s * fps))
    step = int(round(every_s * fps))
    kinds = list(ANCHORS)
    for s in series:
        ok = s.valid & (np.abs(s.pose[:, 0]) < max_yaw) & (s.face_size() >= min_iod)
        i = margin + int(rng.integers(0, max(1, step // 2)))  # each seed puts them elsewhere
        while True:
            dur = int(round(rng.uniform(0.2, 0.5) * fps))
            if i + dur + margin >= len(s):
                break
            window = slice(i - margin, i + dur + margin + 1)
            consecutive = s.frames[i + dur + margin] - s.frames[i - margin] == dur + 2 * margin
            if not (ok[window].all() and consecutive):
                i += max(1, margin // 2)
                continue
            onset = int(s.frames[i])
            apex = onset + max(1, int(round(dur * rng.uniform(0.35, 0.5))))
            k = int(np.searchsorted(s.frames, apex))
            x0, y0, x1, y1 = s.boxes[k]
            out.append(
                Insertion(
                    clip,
                    s.track_id,
                    kinds[len(out) % len(kinds)],
                    onset,
                    apex,
                    onset + dur,
                    float(rng.uniform(0.01, 0.03)),
                    ((x0 + x1) / 2, (y0 + y1) / 2),
                    str(split_of(onset)),  # type: ignore[operator]
                )
            )
            i += step
    return out


class Inserter:
    """Applies planned insertions to frames as they are read: ``frame_points`` gives, per
    (track, frame), the clean pass's mesh points there."""

    def __init__(self, insertions: list[Insertion], frame_points: dict[tuple[int, int], np.ndarray]) -> None:
        self.by_frame: dict[int, list[Insertion]] = {}
        for ins in insertions:
            for f in range(ins.onset + 1, ins.offset):
                self.by_frame.setdefault(f, []).append(ins)
        self.points = frame_points

    def __call__(self, index: int, image: np.ndarray) -> np.ndarray:
        todo = self.by_frame.get(index)
        if not todo:
            return image
        image = image.copy()
        for ins in todo:
            points = self.points.get((ins.track_id, index))
            if points is None:
                continue
            width = float(points[:, 0].max() - points[:, 0].min())
            warp(image, points, ins.kind, ins.amplitude * width * profile(index, ins))
        return image
