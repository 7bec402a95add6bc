"""Unlinkability of protected templates (ISO/IEC 24745) on LFW, through the real product path.

The same people are enrolled into two galleries, A and B, from different photos (LFW View 1 *test*
people with >= 4 photos: two photos into A, two others into B, seeded), each gallery protected with a
key of its own (:mod:`faceprint.privacy.protect`). An attacker who holds both galleries compares every
template of A with every template of B: mated comparisons are of the same person, non-mated of
different people. Gomez-Barrero et al.'s global unlinkability D<->sys (IEEE TIFS 2018) says how much
such a score tells: 0 nothing (unlinkable), 1 always (fully linkable).

Rows: the same stored templates unprotected (what galleries without protection would hold, read back
with the key), both galleries under one key, the two galleries as stored (two keys), and the mean and
spread over ``--keys`` further key pairs applied to the same templates. "noise floor" is D<->sys of two
samples of one distribution (A's non-mated scores split in two) with as many "mated" scores as the real
rows: what the histogram estimator gives when there is nothing to link. Within each gallery, every score
is the unprotected one (the largest difference is printed).

    python benchmarks/unlinkability.py                  # 180 people, about 720 photos
    python benchmarks/unlinkability.py --people 40      # a quick run
"""

from __future__ import annotations

import argparse
import hashlib
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from faceprint import FaceEngine, Recognizer
from faceprint.gallery import Gallery
from faceprint.pipeline import default_workers
from faceprint.privacy.protect import TemplateProtection, protect_gallery, unlinkability

REPO = Path(__file__).resolve().parents[1]


def split(lfw: Path, n_people: int, seed: int) -> tuple[dict[str, list[Path]], dict[str, list[Path]]]:
    """Two photos of each person for gallery A and two others for B (people with >= 4 photos)."""
    rows = [line.split("\t") for line in (lfw / "peopleDevTest.txt").read_text().splitlines()[1:] if "\t" in line]
    people = sorted((name, int(count)) for name, count in rows if int(count) >= 4)
    rng = random.Random(seed)
    rng.shuffle(people)
    a: dict[str, list[Path]] = {}
    b: dict[str, list[Path]] = {}
    for name, count in people[:n_people]:
        order = rng.sample(range(1, count + 1), 4)
        photos = [lfw / name / f"{name}_{i:04d}.jpg" for i in order]
        a[name], b[name] = photos[:2], photos[2:]
    return a, b


def key(seed: int, label: str) -> bytes:
    """A reproducible 32-byte key for the benchmark (real galleries take random keys)."""
    return hashlib.sha256(f"faceprint-unlinkability-{seed}-{label}".encode()).digest()


def enrol(path: Path, people: dict[str, list[Path]], engine: FaceEngine, secret: bytes, workers: int) -> Gallery:
    gallery = Gallery(path, protect_key=secret)
    protect_gallery(gallery.store, secret)
    results = Recognizer(gallery, engine).enroll_many(people.items(), workers=workers)
    refused = sum(len(r.errors) for r in results)
    print(f"  {path.name}: {sum(len(r.added) for r in results)} photos enrolled, {refused} refused", file=sys.stderr)
    return gallery


def stored(gallery: Gallery) -> tuple[np.ndarray, np.ndarray]:
    """(identity of each template, the templates as stored)."""
    templates = gallery.templates()
    return np.array([t.identity for t in templates]), np.stack([t.embedding for t in templates])


def comparisons(
    names_a: np.ndarray, a: np.ndarray, names_b: np.ndarray, b: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(mated, non-mated) cosine scores of every template of A against every template of B."""
    scores = a.astype(np.float64) @ b.astype(np.float64).T
    same = names_a[:, None] == names_b[None, :]
    return scores[same], scores[~same]


def row(label: str, mated: np.ndarray, non_mated: np.ndarray) -> str:
    d = unlinkability(mated, non_mated)
    return f"| {label} | {len(mated):,} | {len(non_mated):,} | {mated.mean():.3f} | {non_mated.mean():.3f} | {d:.3f} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data", help="the shared data folder")
    parser.add_argument("--people", type=int, default=180, help="people enrolled in both galleries (at most 180)")
    parser.add_argument("--keys", type=int, default=20, help="further key pairs applied to the same templates")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args()
    lfw = args.data / "lfw"
    if not (lfw / "peopleDevTest.txt").is_file():
        sys.exit(f"{lfw}: no LFW here (give --data)")
    people_a, people_b = split(lfw, args.people, args.seed)
    n_photos = sum(map(len, people_a.values())) + sum(map(len, people_b.values()))
    workers = args.workers or default_workers(n_photos)
    engine = FaceEngine()
    key_a, key_b = key(args.seed, "A"), key(args.seed, "B")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        print(f"enrolling {len(people_a)} people, {n_photos} photos, {workers} worker(s)", file=sys.stderr)
        gallery_a = enrol(Path(tmp) / "a.db", people_a, engine, key_a, workers)
        gallery_b = enrol(Path(tmp) / "b.db", people_b, engine, key_b, workers)
        names_a, stored_a = stored(gallery_a)
        names_b, stored_b = stored(gallery_b)
        raw_a, raw_b = gallery_a.unprotected(stored_a), gallery_b.unprotected(stored_b)
        gallery_a.close()
        gallery_b.close()
    elapsed = time.perf_counter() - started

    protect_a = TemplateProtection(key_a)
    within = np.abs(stored_a.astype(np.float64) @ stored_a.T - raw_a.astype(np.float64) @ raw_a.T).max()
    lines = [
        "| templates compared (A x B) | mated | non-mated | mean mated | mean non-mated | D<->sys |",
        "|---|---:|---:|---:|---:|---:|",
        row("unprotected", *comparisons(names_a, raw_a, names_b, raw_b)),
        row(
            "protected, one key for both",
            *comparisons(names_a, protect_a.apply(raw_a), names_b, protect_a.apply(raw_b)),
        ),
        row("protected, two keys (as stored)", *comparisons(names_a, stored_a, names_b, stored_b)),
    ]
    others = []
    for k in range(args.keys):
        one, two = TemplateProtection(key(args.seed + 1 + k, "A")), TemplateProtection(key(args.seed + 1 + k, "B"))
        others.append(unlinkability(*comparisons(names_a, one.apply(raw_a), names_b, two.apply(raw_b))))
    mated, non_mated = comparisons(names_a, raw_a, names_b, raw_b)
    pool = np.random.default_rng(args.seed).permutation(non_mated)
    floor = unlinkability(pool[: len(mated)], pool[len(mated) :])
    lines.append(
        f"| protected, {args.keys} other key pairs: mean (sd) | | | | | {np.mean(others):.3f} ({np.std(others):.3f}) |"
    )
    lines.append(
        f"| noise floor (one distribution, {len(mated)} vs {len(pool) - len(mated):,}) | | | | | {floor:.3f} |"
    )
    print("\n".join(lines))
    print(
        f"\n{len(set(names_a) & set(names_b))} people in both galleries ({len(stored_a)} + {len(stored_b)} templates); "
        f"largest change of a score within gallery A: {within:.2e}; enrolment {elapsed:.0f} s"
    )


if __name__ == "__main__":
    main()
