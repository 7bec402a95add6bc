"""Bulk enrol and identify through the CLI: 1,000 LFW photos enrolled, 1,000 others identified.

    python benchmarks/cli_bulk.py [--lfw ../shared/data/lfw] [--n 1000]

Builds DIR/<person>/<photo> symlink folders from LFW (people in name order; each person's
photos split between the enrol and the identify set), runs ``faceprint enroll`` and
``faceprint identify --json`` as a user would, and prints images per second and how many
identify answers name the right person.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lfw", type=Path, default=REPO.parent / "shared" / "data" / "lfw")
    ap.add_argument("--n", type=int, default=1000)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="faceprint-bulk-"))
    enrol_dir, probe_dir = work / "enrol", work / "identify"
    n_enrol = n_probe = 0
    truth: dict[str, str] = {}
    for person in sorted(p for p in args.lfw.iterdir() if p.is_dir()):
        photos = sorted(person.glob("*.jpg"))
        if len(photos) < 2:
            continue
        half = (len(photos) + 1) // 2
        for photo in photos[:half]:
            if n_enrol < args.n:
                (enrol_dir / person.name).mkdir(parents=True, exist_ok=True)
                os.symlink(photo, enrol_dir / person.name / photo.name)
                n_enrol += 1
        for photo in photos[half:]:
            if n_probe < args.n:  # people beyond the enrolled ones are unknowns (truth: None)
                probe_dir.mkdir(parents=True, exist_ok=True)
                os.symlink(photo, probe_dir / photo.name)
                truth[str(probe_dir / photo.name)] = person.name if (enrol_dir / person.name).is_dir() else None
                n_probe += 1
        if n_enrol >= args.n and n_probe >= args.n:
            break
    env = {**os.environ, "FACEPRINT_GALLERY": str(work / "gallery.db")}
    cli = [sys.executable, "-m", "faceprint.cli"]

    t0 = time.perf_counter()
    # LFW photos often show other people at the edges: take the largest (the centred) face
    enrol = subprocess.run([*cli, "enroll", "--largest", str(enrol_dir)], env=env, capture_output=True, text=True)
    t_enrol = time.perf_counter() - t0
    t0 = time.perf_counter()
    ident = subprocess.run([*cli, "identify", "--json", str(probe_dir)], env=env, capture_output=True, text=True)
    t_ident = time.perf_counter() - t0
    records = [json.loads(line) for line in ident.stdout.splitlines()]
    right = 0
    for r in records:
        faces = r["faces"]
        if faces:
            central = min(
                faces, key=lambda f: abs(f["box"][0] + f["box"][2] - 250) + abs(f["box"][1] + f["box"][3] - 250)
            )
            right += central["identity"] == truth[r["image"]]
        else:
            right += truth[r["image"]] is None
    print(
        f"enrol:    {n_enrol} photos of {len(list(enrol_dir.iterdir()))} people in {t_enrol:.1f} s = "
        f"{n_enrol / t_enrol:.1f} images/s (exit {enrol.returncode}); {enrol.stdout.strip()}"
    )
    print(
        f"identify: {len(records)} photos in {t_ident:.1f} s = {len(records) / t_ident:.1f} images/s "
        f"(exit {ident.returncode}); right answer for {right}/{len(records)} = {right / max(1, len(records)):.3f}"
    )
    print(f"(right: the person, or unknown for the {sum(v is None for v in truth.values())} never enrolled)")
    print(f"cpu cores: {os.cpu_count()}; work dir: {work}")


if __name__ == "__main__":
    main()
