"""Multi-view people on video: are turned heads named more often when a person keeps several views?

    python benchmarks/video_views.py             # both checks below, centroid against views scoring
    python benchmarks/video_views.py --json

1. ``simplefr_Video_2.mp4`` (a TV dinner scene: six people, many turned heads). Its tracks are found
   once with ``recognize_video`` against the 14 gallery photos (``simplefr_gallery``); every face on a
   detection frame is embedded and assigned to its track. Each person is then enrolled with their
   gallery photo plus the faces of their tracks in one half of the clip -- what enrolling from a video
   gives: frontal and turned views -- and the tracks and faces of the *other* half are identified at the
   default threshold, both ways round. Reported per scoring: tracks (template = mean of the track's
   faces) and single faces named right, left unknown, or named wrong, and the same for turned faces
   (frontal score < 0.5 from the 5 landmarks, as in ``faceprint.video.quality``).
   Ground truth: the person the photo gallery names a track as (all checked by eye on the crops), and,
   for tracks it leaves unknown, the hand labels in ``HAND_LABELS`` (a point inside the face on one
   frame; made by looking at the crops). Tracks with neither are left out of the counts (a name given
   to one is counted as ``named_unlabelled``).
2. ``face_recognition_short_hamilton_clip.mp4`` against the photos of face_recognition's examples
   (Lin-Manuel Miranda, Alex Lacamoire): the timeline under each scoring. Alex is seen only in profile
   (frames 21-45); his photos are all frontal, so no view of him can form from them.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

# first: it puts the repository's src/ on the path when faceprint is not installed
from video_speed import GALLERY, data_dir, enroll_crops

from faceprint import FaceEngine, Recognizer
from faceprint.gallery import Gallery, Template
from faceprint.match import DEFAULT_IDENTIFY, ViewRule
from faceprint.video import recognize_video
from faceprint.video.pipeline import FrameResult
from faceprint.video.quality import frontal_score

CLIP = "videos/simplefr_Video_2.mp4"
HAMILTON = "videos/face_recognition_short_hamilton_clip.mp4"
EXAMPLES = "face_recognition_examples/examples"
#: tracks the photo gallery leaves unknown, named by looking at their crops: (frame, x, y) inside the face
HAND_LABELS = {
    (146, 578, 228): "grandma",
    (249, 603, 538): "grandma",
    (906, 294, 213): "grandma",
    (995, 282, 207): "grandma",
    (30, 1112, 186): "louis",
    (906, 875, 275): "eddie",
    (1390, 989, 184): "jessica",
    (1407, 812, 214): "jessica",
    (1442, 524, 356): "evan",
    (80, 529, 157): "evan",
}
TURNED = 0.5  # frontal score below this: a turned head


@dataclass
class Sample:
    track: int
    frame: int
    embedding: np.ndarray
    frontal: float
    box: tuple[int, int, int, int]


def iou(a: tuple[int, ...], b: tuple[int, ...]) -> float:
    w = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    return inter / max((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter, 1)


def tracks_and_samples(clip: Path, rec: Recognizer) -> tuple[dict[int, str | None], list[Sample]]:
    """(track -> the person it is, None when unknown) and every face on the detection frames, on its track."""
    samples: list[Sample] = []
    at_label_frames: dict[int, list[tuple[int, tuple[int, int, int, int]]]] = {}
    label_frames = {f for f, _, _ in HAND_LABELS}

    def on_frame(result: FrameResult) -> None:
        if result.index in label_frames:
            at_label_frames[result.index] = [(v.track_id, v.box) for v in result.tracks]
        tracked = [(v.track_id, v.box) for v in result.tracks if v.detected]
        if not tracked:
            return
        for face in rec.engine.analyze(np.ascontiguousarray(result.image[..., ::-1])):
            box = tuple(int(b) for b in face.box)
            track, overlap = max(((t, iou(box, b)) for t, b in tracked), key=lambda x: x[1])
            if overlap >= 0.5:
                assert face.embedding is not None
                samples.append(Sample(track, result.index, face.embedding, frontal_score(face.landmarks), box))  # type: ignore[arg-type]

    result = recognize_video(clip, rec, on_frame=on_frame)
    truth: dict[int, str | None] = {}
    for row in result.appearances:
        for track in row.track_ids:
            truth[track] = row.identity if row.known else None
    for (frame, x, y), person in HAND_LABELS.items():
        for track, (left, top, right, bottom) in at_label_frames.get(frame, []):
            if left <= x <= right and top <= y <= bottom and truth.get(track) is None:
                truth[track] = person
    return truth, samples


def split_check(
    data: Path, engine: FaceEngine, scorings: dict[str, tuple[str, ViewRule | None, bool]], tmp: Path
) -> dict[str, Any]:
    """Enrol photos (+ one half's faces), identify the other half: counts per scoring and direction."""
    rec = Recognizer(Gallery(tmp / "photos.db"), engine)
    photos = enroll_crops(rec, sorted((data / GALLERY).glob("*.png")))
    truth, samples = tracks_and_samples(data / CLIP, rec)
    middle = (min(s.frame for s in samples) + max(s.frame for s in samples)) // 2
    first_frame = {t: min(s.frame for s in samples if s.track == t) for t in {s.track for s in samples}}
    out: dict[str, Any] = {
        "tracks": len(first_frame),
        "labelled_tracks": sum(truth.get(t) is not None for t in first_frame),
        "faces": len(samples),
        "turned_faces": sum(s.frontal < TURNED for s in samples),
        "middle_frame": middle,
    }
    for name, (how, rule, with_video) in scorings.items():
        rows = []
        for enrol_half in (0, 1):

            def in_enrol_half(track: int, enrol_half: int = enrol_half) -> bool:
                return (first_frame[track] < middle) == (enrol_half == 0)

            gallery = Gallery(tmp / f"{name}-{enrol_half}.db", how, views=rule)  # type: ignore[arg-type]
            for template in rec.gallery.templates():  # the photos
                gallery.add_templates(template.identity or "", [template])
            if with_video:
                for s in samples:
                    person = truth.get(s.track)
                    if person is not None and in_enrol_half(s.track):
                        source = f"{CLIP}#frame={s.frame}"
                        gallery.add_templates(person, [Template(s.embedding, rec.model, source, source, s.box)])
            tested = [t for t in first_frame if not in_enrol_half(t)]
            rows.append(identify_half(gallery, rec.model, truth, tested, samples))
        out[name] = {k: sum(r[k] for r in rows) for k in rows[0]}
    out["photos"] = photos
    return out


def identify_half(
    gallery: Gallery, model: str, truth: dict[int, str | None], tracks: list[int], samples: list[Sample]
) -> dict[str, int]:
    counts = {f"{what}_{k}": 0 for what in ("tracks", "faces", "turned") for k in ("right", "unknown", "wrong")}
    counts["named_unlabelled_tracks"] = 0

    def name_of(vectors: np.ndarray) -> list[str | None]:
        best = [row[0] for row in gallery.search(vectors, model, 1)]
        return [c.identity if c.score >= DEFAULT_IDENTIFY.threshold else None for c in best]

    def outcome(got: str | None, want: str) -> str:
        return "right" if got == want else "unknown" if got is None else "wrong"

    for track in tracks:
        own = [s for s in samples if s.track == track]
        mean = np.sum([s.embedding for s in own], axis=0)
        (named,) = name_of((mean / np.linalg.norm(mean))[None])
        person = truth.get(track)
        if person is None:
            counts["named_unlabelled_tracks"] += named is not None
            continue
        counts[f"tracks_{outcome(named, person)}"] += 1
        for s, got in zip(own, name_of(np.stack([s.embedding for s in own]))):
            counts[f"faces_{outcome(got, person)}"] += 1
            if s.frontal < TURNED:
                counts[f"turned_{outcome(got, person)}"] += 1
    return counts


def hamilton_check(
    data: Path, engine: FaceEngine, scorings: dict[str, tuple[str, ViewRule | None, bool]], tmp: Path
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    examples = data / EXAMPLES
    people = {
        "lin-manuel miranda": [examples / "lin-manuel-miranda.png"],
        "alex lacamoire": [
            examples / "alex-lacamoire.png",
            examples / "knn_examples/train/alex_lacamoire/img1.jpg",
            examples / "knn_examples/test/alex_lacamoire1.jpg",
        ],
    }
    for name, (how, rule, _) in scorings.items():
        rec = Recognizer(Gallery(tmp / f"hamilton-{name}.db", how, views=rule), engine)  # type: ignore[arg-type]
        rec.enroll_many(list(people.items()), largest=True)
        result = recognize_video(data / HAMILTON, rec)
        out[name] = [
            {"identity": a.identity, "frames": f"{a.start_frame}-{a.end_frame}", "score": round(a.score, 4)}
            for a in result.appearances
        ]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", help="shared data folder (holding videos/)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    data = data_dir(args.data)
    engine = FaceEngine()
    scorings: dict[str, tuple[str, ViewRule | None, bool]] = {
        "photos only, centroid": ("centroid", None, False),
        "photos + video, centroid": ("centroid", None, True),
        "photos + video, views (default rule)": ("views", ViewRule(), True),
        "photos + video, views (blend 1)": ("views", ViewRule(blend=1.0), True),
    }
    with tempfile.TemporaryDirectory() as tmp:
        report = {
            "simplefr": split_check(data, engine, scorings, Path(tmp)),
            "hamilton": hamilton_check(
                data,
                engine,
                {k: v for k, v in scorings.items() if not v[2]} | {"photos only, views": ("views", ViewRule(), False)},
                Path(tmp),
            ),
        }
    if args.json:
        print(json.dumps(report))
        return
    simple = report["simplefr"]
    print({k: v for k, v in simple.items() if not isinstance(v, dict)})
    for name, counts in simple.items():
        if isinstance(counts, dict):
            print(f"{name:<40} " + "  ".join(f"{k}={v}" for k, v in counts.items()))
    for name, rows in report["hamilton"].items():
        print(f"hamilton, {name}: " + "; ".join(f"{r['identity']} {r['frames']} {r['score']}" for r in rows))


if __name__ == "__main__":
    main()
