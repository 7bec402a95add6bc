"""Checks over the full evaluation data in ../shared/data (skipped when it is absent)."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np

from faceprint import FaceEngine, Recognizer, load_image
from faceprint.gallery import Gallery
from faceprint.match import decide


def test_compreface_faces_found_at_annotated_noses(data_dir: Path, engine: FaceEngine) -> None:
    """Per-face detection scored against CompreFace's nose annotations (47 faces, 18 photos,
    including 7000-px phone photos stored rotated with an EXIF tag)."""
    root = data_dir / "compreface_sample_images"
    annotations = json.loads((root / "annotations.json").read_text())["images"]
    hits = false_positives = total = 0
    for name, entry in annotations.items():
        faces = engine.detect(load_image(root / name).pixels)
        noses = entry["noses"]
        total += len(noses)

        def inside(box: tuple[int, int, int, int], x: float, y: float) -> bool:
            return box[0] <= x <= box[2] and box[1] <= y <= box[3]

        hits += sum(any(inside(f.box, x, y) for f in faces) for x, y in noses)
        false_positives += sum(not any(inside(f.box, x, y) for x, y in noses) for f in faces)
    assert total == 46
    assert hits >= 44, f"found {hits} of {total} annotated faces"
    assert false_positives <= 2


def test_group_photo_counts(data_dir: Path, engine: FaceEngine) -> None:
    expected_at_least = {
        "group_photos/faceapijs_bbt3.jpg": 5,
        "group_photos/deepface_couple.jpg": 2,
        "face_recognition_examples/examples/two_people.jpg": 2,
        "face_recognition_examples/examples/knn_examples/test/kit_with_rose.jpg": 2,
        "group_photos/retinaface_crowd_test.jpg": 10,
    }
    for rel, n in expected_at_least.items():
        assert len(engine.detect(load_image(data_dir / rel).pixels)) >= n, rel


def test_no_faces_in_photos_without_people(data_dir: Path, engine: FaceEngine) -> None:
    found = {p.name: len(engine.detect(load_image(p).pixels)) for p in sorted((data_dir / "no_faces").iterdir())}
    assert sum(found.values()) <= 1, found


def test_same_person_across_phone_photos(data_dir: Path, tmp_path: Path, engine: FaceEngine) -> None:
    root = data_dir / "compreface_sample_images"
    rec = Recognizer(Gallery(tmp_path / "g.db"), engine)
    a = [rec.single_face(p, largest=True)[1].embedding for p in sorted(root.glob("00[1-6]_A.jpg"))]
    b = [rec.single_face(p, largest=True)[1].embedding for p in sorted(root.glob("00[78]_B.jpg"))]
    same = [float(x @ y) for x, y in itertools.combinations(a, 2)]
    diff = [float(x @ y) for x in a for y in b]
    assert min(same) > max(diff)
    assert np.mean([s >= rec.verify_threshold for s in same]) >= 0.9
    assert all(d < rec.verify_threshold for d in diff)


def test_lfw_open_set_small_split(data_dir: Path, tmp_path: Path, engine: FaceEngine) -> None:
    """A small version of the issue-2 benchmark: 30 enrolled people, 60 strangers."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from lfw_open_set import build_split, central_template

    enrol, probes, unknown = build_split(data_dir / "lfw", "peopleDevTest.txt", 30, 60, seed=11)
    rec = Recognizer(Gallery(tmp_path / "g.db"), engine)
    for name, photos in enrol.items():
        assert not rec.enroll(name, photos, largest=True).errors

    def identity(photo: Path) -> str | None:
        t = central_template(rec, photo)
        return None if t is None else decide(rec.gallery.search(t, rec.model)[0], rec.identify_threshold)

    correct = sum(identity(photo) == name for name, photo in probes)
    rejected = sum(identity(photo) is None for photo in unknown)
    assert correct / len(probes) >= 0.9
    assert rejected / len(unknown) >= 0.9
