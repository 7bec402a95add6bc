"""Head pose from the face mesh: cv2.solvePnP against a canonical 3D face.

The canonical face is the face mesh's own mean geometry: the model's 3D output (x, y and its
relative depth z) on 798 LFW pairsDevTrain.txt faces, aligned by generalised Procrustes
analysis, turned to the faces' average pose, levelled on the eye corners, made mirror-symmetric
and scaled to 90 mm between the outer eye corners (an adult average), as
``python benchmarks/face_analysis.py --fit-canonical`` does. Only points that expressions move
little are kept: the nose, the forehead, the eye corners, cheekbones and temples (not lips, jaw,
brows or lids). Zero pitch is therefore "as LFW's faces look on average", roughly level.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from faceprint.analyze.types import Pose

# camera frame: x to the image's right, y down, z away from the camera; millimetres
#: mesh index -> (y, z) of the points on the midline (x = 0)
MIDLINE: dict[int, tuple[float, float]] = {
    1: (6.7, -33.6),  # nose tip
    2: (12.9, -18.0),
    4: (0.3, -35.7),
    6: (-28.6, -17.2),
    9: (-51.8, -14.3),
    10: (-83.1, -8.2),  # top of the forehead
    151: (-67.8, -11.7),
    168: (-36.2, -12.8),  # between the eyes
    195: (-15.0, -27.6),
    197: (-21.6, -22.2),
}
#: (mesh index on the image's left, its mirror twin) -> (|x|, y, z)
SIDES: dict[tuple[int, int], tuple[float, float, float]] = {
    (33, 263): (45.0, -32.0, 9.4),  # outer eye corners
    (133, 362): (17.3, -30.7, 4.0),  # inner eye corners
    (98, 327): (17.5, 10.5, -9.8),
    (129, 358): (21.1, 3.7, -6.1),
    (67, 297): (34.9, -80.0, -0.1),
    (109, 338): (18.8, -82.6, -6.5),
    (103, 332): (49.8, -74.2, 10.9),
    (54, 284): (59.7, -65.5, 23.6),
    (234, 454): (69.5, -14.1, 63.1),  # the sides of the face, in front of the ears
    (127, 356): (70.3, -28.1, 58.5),
    (50, 280): (48.9, -0.5, 3.7),
    (117, 346): (52.5, -15.8, 9.7),
    (123, 352): (63.0, -2.7, 20.6),
}


def _canonical() -> tuple[np.ndarray, np.ndarray]:
    index, points = [], []
    for i, (y, z) in MIDLINE.items():
        index.append(i)
        points.append((0.0, y, z))
    for (a, b), (x, y, z) in SIDES.items():
        index += [a, b]
        points += [(-x, y, z), (x, y, z)]
    return np.array(index), np.array(points, np.float64)


CANONICAL_INDEX, CANONICAL_POINTS = _canonical()


def head_pose(points: np.ndarray, image_size: tuple[int, int]) -> Pose:
    """Yaw, pitch, roll in degrees from (468, 2+) mesh points in pixels of a ``(width, height)``
    image. The camera is assumed to have a focal length of the image's long side (a 53 degree
    view) and its centre at the image's centre: true enough for photos, and what a crop allows.

    Signs (see :class:`~faceprint.analyze.types.Pose`): yaw + = turned to the subject's left (the
    image's right), pitch + = chin up, roll + = head tilted to the subject's left shoulder
    (clockwise in the image).
    """
    w, h = image_size
    f = float(max(w, h))
    camera = np.array([[f, 0.0, w / 2], [0.0, f, h / 2], [0.0, 0.0, 1.0]])
    image_points = np.ascontiguousarray(points[CANONICAL_INDEX, :2], np.float64)
    ok, rvec, _ = cv2.solvePnP(CANONICAL_POINTS, image_points, camera, None, flags=cv2.SOLVEPNP_SQPNP)
    if not ok:
        return Pose(float("nan"), float("nan"), float("nan"))
    rot, _ = cv2.Rodrigues(rvec)
    return pose_from_rotation(rot)


def pose_from_rotation(rot: np.ndarray) -> Pose:
    """Pose of a rotation taking the canonical face into the camera frame, as R = Rz(roll) Ry(b) Rx(a)
    with yaw = -b and pitch = -a (the nose, at -z, then moves to +x and up)."""
    b = math.asin(max(-1.0, min(1.0, -float(rot[2, 0]))))
    a = math.atan2(float(rot[2, 1]), float(rot[2, 2]))
    roll = math.atan2(float(rot[1, 0]), float(rot[0, 0]))
    return Pose(yaw=-math.degrees(b), pitch=-math.degrees(a), roll=math.degrees(roll))
