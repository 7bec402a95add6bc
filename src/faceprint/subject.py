"""Which face of an enrolment photo is the person being enrolled.

A photo of one person often shows others too: bystanders half-cut at the edges, a friend beside
them. :func:`choose_subject` takes the subject when that is unambiguous:

1. the face that **agrees with the person's other photos**: its template is close to the person's
   known templates (already enrolled, or single-face photos of the same batch), or, with none of
   those, to a face in each of the person's other group photos; it must be clearly closer than the
   next face;
2. else a **clearly dominant** face: much larger than every other and near the middle;
3. else it refuses, listing the candidate boxes, so a person can crop the photo or pass --largest.

The constants were chosen on LFW View 1 *training* people only, where the subject of every photo is
known (the face at the centre of LFW's aligned crops): ``python benchmarks/subject_choice.py
--calibrate --people 1184`` enrols 2 photos of each of 1,184 people; 215 photos show several faces.
No setting of the grid took a bystander; the fewest refusals was 2 (dominance needs an area ratio of
1.5 for that). Of the settings within one refusal of it, these keep a margin of 0.04 between the
subject and the next face rather than 0.02: 212 right, 0 wrong, 3 refused (201 by agreement, 11 by
dominance).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from faceprint.errors import MultipleFacesError
from faceprint.types import Face

#: a face agrees with the person when its similarity to them is at least this ...
AGREE_MIN = 0.88
#: ... and at least this much higher than the next face's
AGREE_MARGIN = 0.04
#: a dominant face is at least this many times the area of the next largest ...
DOMINANT_AREA = 1.5
#: ... and its centre lies within this fraction of the image's half-diagonal from the middle
DOMINANT_CENTRE = 0.35

Reason = str  # "only face" | "agrees with the person's other photos" | "dominant face" | "largest face (asked for)"


@dataclass(frozen=True)
class SubjectChoice:
    """The face taken from a photo, and why (``detail`` gives the numbers behind ``reason``)."""

    index: int
    reason: Reason
    detail: str = ""


def _area(face: Face) -> float:
    left, top, right, bottom = face.box
    return float(max(0, right - left) * max(0, bottom - top))


def _centre_offset(face: Face, size: tuple[int, int]) -> float:
    """Distance of the face's centre from the image's middle, in half-diagonals (0 = middle)."""
    left, top, right, bottom = face.box
    width, height = size
    dx = (left + right) / 2 - width / 2
    dy = (top + bottom) / 2 - height / 2
    return float(np.hypot(dx, dy) / max(np.hypot(width, height) / 2, 1.0))


def _unit(vectors: np.ndarray) -> np.ndarray:
    v = np.atleast_2d(np.asarray(vectors, np.float32))
    return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)


def agreement(faces: Sequence[Face], references: np.ndarray | None, others: Sequence[np.ndarray] = ()) -> np.ndarray:
    """Each face's similarity to the person: to the mean of ``references`` (templates known to be
    them) when there are any, else the mean over ``others`` (the candidate templates of their other
    group photos) of the best match in each. NaN for every face when there is no evidence."""
    mine = _unit(np.stack([f.embedding for f in faces]))  # type: ignore[misc]
    if references is not None and len(references):
        centre = _unit(_unit(references).mean(axis=0))[0]
        return mine @ centre
    if others:
        return np.mean([(mine @ _unit(o).T).max(axis=1) for o in others if len(o)], axis=0)
    return np.full(len(faces), np.nan)


def choose_subject(
    faces: Sequence[Face],
    size: tuple[int, int],
    references: np.ndarray | None = None,
    others: Sequence[np.ndarray] = (),
    source: str = "<image>",
) -> SubjectChoice:
    """The subject among ``faces`` (largest first, with templates) of a ``size`` = (width, height)
    photo; raises :class:`MultipleFacesError` naming the candidate boxes when it is ambiguous."""
    if len(faces) == 1:
        return SubjectChoice(0, "only face")
    scores = agreement(faces, references, others)
    if np.isfinite(scores).all():
        order = np.argsort(-scores)
        best, second = float(scores[order[0]]), float(scores[order[1]])
        if best >= AGREE_MIN and best - second >= AGREE_MARGIN:
            detail = f"similarity {best:.3f} to their other photos, next face {second:.3f}"
            return SubjectChoice(int(order[0]), "agrees with the person's other photos", detail)
    areas = [_area(f) for f in faces]
    ratio = areas[0] / max(max(areas[1:]), 1.0)  # the engine returns the largest first
    offset = _centre_offset(faces[0], size)
    if ratio >= DOMINANT_AREA and offset <= DOMINANT_CENTRE:
        return SubjectChoice(0, "dominant face", f"{ratio:.1f}x the area of the next face, near the middle")
    boxes = ", ".join(str(tuple(int(v) for v in f.box)) for f in faces[:6])
    more = f" and {len(faces) - 6} more" if len(faces) > 6 else ""
    raise MultipleFacesError(
        f"{source}: {len(faces)} faces and none is clearly the person: boxes {boxes}{more} "
        "(crop the photo, enrol more photos of them, or use --largest to take the largest face)"
    )
