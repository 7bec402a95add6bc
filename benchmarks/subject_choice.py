"""How well enrolment picks the subject of a photo that shows several faces (faceprint.subject).

On LFW every photo's subject is known: the deep-funneled crops put the subject's face at the
centre. Each person's photos are enrolled in batches of ``--per-person`` (2, as in the open-set
benchmark); for every photo where the detector finds several faces, the choice is *right* (the
centre face), *wrong* (a bystander), or *refused*.

    python benchmarks/subject_choice.py --calibrate --people 1184   # View 1 training people: the candidates
    python benchmarks/subject_choice.py --people 496                # View 1 test people (disjoint): report
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import sys
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from faceprint import FaceEngine, subject  # noqa: E402
from faceprint.errors import MultipleFacesError  # noqa: E402
from faceprint.models import cache_dir  # noqa: E402
from faceprint.pipeline import EngineSpec, analyze_images  # noqa: E402
from faceprint.types import Face  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Photo:
    person: str
    faces: list[Face]
    size: tuple[int, int]
    truth: int  # index of the face nearest the centre


def people_photos(lfw: Path, people_file: str, n_people: int, per_person: int, seed: int) -> list[list[Path]]:
    rows = [line.split("\t") for line in (lfw / people_file).read_text().splitlines()[1:] if "\t" in line]
    people = [(name, int(count)) for name, count in rows if int(count) >= per_person]
    rng = random.Random(seed)
    rng.shuffle(people)
    out = []
    for name, count in people[:n_people]:
        order = rng.sample(range(1, count + 1), per_person)
        out.append([lfw / name / f"{name}_{i:04d}.jpg" for i in order])
    return out


def load_faces(batches: list[list[Path]], workers: int, tag: str) -> list[list[Photo]]:
    """Every face with its template, cached (the detector and embedder are the defaults)."""
    cache = cache_dir() / "bench" / f"subject-{tag}.npz"
    files = [p for batch in batches for p in batch]
    if cache.is_file():
        data = np.load(cache, allow_pickle=True)
        records = data["records"].tolist()
    else:
        engine = FaceEngine()
        records = []
        for k, out in enumerate(analyze_images(files, engine, EngineSpec.of(engine), "subject", workers)):
            faces = [(f.box, f.score, f.embedding) for f in out.faces]
            records.append((out.source, faces, out.size))
            if k % 200 == 0:
                print(f"  {k}/{len(files)} images", file=sys.stderr)
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, records=np.array(records, dtype=object))
    by_file = {r[0]: r for r in records}
    out_batches = []
    for batch in batches:
        photos = []
        for path in batch:
            _, faces, size = by_file[str(path)]
            if not faces:
                continue
            face_objs = [Face(box=tuple(b), score=s, embedding=e) for b, s, e in faces]
            w, h = size
            dist = [np.hypot((f.box[0] + f.box[2]) / 2 - w / 2, (f.box[1] + f.box[3]) / 2 - h / 2) for f in face_objs]
            photos.append(Photo(path.parent.name, face_objs, size, int(np.argmin(dist))))
        out_batches.append(photos)
    return out_batches


def score(batches: list[list[Photo]]) -> dict[str, int]:
    """right / wrong / refused over the photos with several faces, with the current constants."""
    counts = {"several_faces": 0, "right": 0, "wrong": 0, "refused": 0, "by_agreement": 0, "by_dominance": 0}
    for photos in batches:
        singles = [p.faces[0].embedding for p in photos if len(p.faces) == 1]
        refs = np.stack(singles) if singles else None  # type: ignore[arg-type]
        for k, p in enumerate(photos):
            if len(p.faces) < 2:
                continue
            counts["several_faces"] += 1
            others = [
                np.stack([f.embedding for f in q.faces]) for j, q in enumerate(photos) if j != k and len(q.faces) > 1
            ]
            try:
                choice = subject.choose_subject(p.faces, p.size, refs, others)
            except MultipleFacesError:
                counts["refused"] += 1
                continue
            counts["right" if choice.index == p.truth else "wrong"] += 1
            counts["by_agreement" if choice.reason.startswith("agrees") else "by_dominance"] += 1
    return counts


def calibrate(batches: list[list[Photo]]) -> None:
    names = ["AGREE_MIN", "AGREE_MARGIN", "DOMINANT_AREA", "DOMINANT_CENTRE"]
    grid = itertools.product(
        [0.84, 0.86, 0.88, 0.90, 0.92], [0.02, 0.04, 0.06, 0.08], [1.5, 2.0, 2.5, 3.0], [0.25, 0.35, 0.5]
    )
    rows = []
    for values in grid:
        for name, value in zip(names, values):
            setattr(subject, name, value)
        counts = score(batches)
        rows.append({**dict(zip(names, values)), **counts})
    fewest = min(r["refused"] for r in rows if r["wrong"] == 0)
    # a bystander enrolled as the person is far worse than a refusal: list every setting with no wrong
    # choice and at most one refusal more than the fewest, to choose from with room to spare
    for r in rows:
        if r["wrong"] == 0 and r["refused"] <= fewest + 1:
            print(json.dumps(r))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lfw", type=Path, default=REPO.parent / "shared" / "data" / "lfw")
    parser.add_argument("--calibrate", action="store_true", help="choose the constants on View 1 training people")
    parser.add_argument("--people", type=int, default=1200)
    parser.add_argument("--per-person", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    people_file = "peopleDevTrain.txt" if args.calibrate else "peopleDevTest.txt"
    batches = people_photos(args.lfw, people_file, args.people, args.per_person, args.seed)
    tag = f"{people_file.split('.')[0]}-{args.people}-{args.per_person}-{args.seed}"
    photos = load_faces(batches, args.workers, tag)
    if args.calibrate:
        calibrate(photos)
    else:
        print(json.dumps({"people_file": people_file, "people": len(photos), **score(photos)}))


if __name__ == "__main__":
    main()
