"""Liveness in ISO/IEC 30107-3 terms: APCER per attack type and BPCER, per cue and fused.

    python benchmarks/liveness.py                      # report split + the real clips
    python benchmarks/liveness.py --tune               # the tuning split: evidence per track, fitted thresholds
    python benchmarks/liveness.py --attacks DIR        # clips from benchmarks/liveness_attacks.py (built if missing)
    python benchmarks/liveness.py --tune --independent DIR   # also generator B's clips (a tuning set of them)

``--independent DIR`` adds the printed-photo replays of ``liveness_replays_independent.py`` (generator B,
written without reading this code; render a tuning set of them with new seeds, e.g. ``--seed 4242 --n 24``,
and keep its default seed's clips for its own ``--evaluate`` report) as one more attack type.

Attacks are the CONSTRUCTED printed-photo and screen replays of ``liveness_attacks.py`` (LFW
people split by person into tune/report); each attack track of >= 1 s counts. Bona fide: the
tracks of >= 2 s of the two real recordings (``videos/face_recognition_short_hamilton_clip.mp4``,
``videos/simplefr_Video_2.mp4``); ``facenet_pytorch_video.mp4`` (pedestrians) is reported on its own
line. Every clip runs through :class:`faceprint.liveness.LivenessChecker`, as ``faceprint liveness``
runs it; the per-cue rows apply one cue of the same tracks' evidence:

* passive: the mean MiniFASNet live score of the sampled frames > 0.5 (as its authors and deepface run it)
* planarity: not vetoed as a flat card (a track that did not move enough passes)
* surroundings: not vetoed for a ring around the face that moves with it (a card with its photo's background)
* depth: motion with parallax; blink: a timed blink; mouth: mouth motion
* fused: the decision ``faceprint liveness`` prints

APCER = attack tracks accepted / attack tracks; BPCER = bona fide tracks rejected / bona fide tracks.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
try:  # run from a checkout without installing: use the repo's src/
    import faceprint  # noqa: F401
except ImportError:
    sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "benchmarks"))

import liveness_attacks  # noqa: E402

from faceprint.liveness.decide import PASSIVE_MIN, LivenessChecker, TrackLiveness  # noqa: E402

BONA_FIDE = ("videos/face_recognition_short_hamilton_clip.mp4", "videos/simplefr_Video_2.mp4")
OTHER_REAL = ("videos/facenet_pytorch_video.mp4",)
MIN_ATTACK_S = 1.0
MIN_BONA_FIDE_S = 2.0
CUES = ("passive", "planarity", "surroundings", "depth", "blink", "mouth", "fused")


def accepted(track: TrackLiveness, cue: str) -> bool:
    if cue == "fused":
        return track.live
    if cue == "passive":
        return track.checks["passive"].value > PASSIVE_MIN
    return track.checks[cue].passed


def run(checker: LivenessChecker, clip: Path) -> list[TrackLiveness]:
    started = time.perf_counter()
    result = checker.check_video(clip)
    print(f"  {clip.name}: {len(result.tracks)} track(s), {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return result.tracks


def rate(tracks: list[TrackLiveness], cue: str, bona_fide: bool) -> str:
    if not tracks:
        return "-"
    errors = sum((not accepted(t, cue)) if bona_fide else accepted(t, cue) for t in tracks)
    return f"{errors / len(tracks):.3f} ({errors}/{len(tracks)})"


def evidence_row(name: str, t: TrackLiveness) -> str:
    e = t.evidence
    assert e is not None
    p = e.planarity
    s = e.surroundings
    ring = f" ring {s.moving}/{s.windows} follow {s.follow:.2f}" if s is not None else ""
    return (
        f"{name:28s} t{t.track_id:<4d} {t.duration_s:4.1f}s passive {e.passive:.3f} planarity {p.moving}/{p.pairs} "
        f"ratio {p.ratio:.3f} def {p.deformation_px:.2f}px{ring} blinks {e.blinks} mouth {e.mouth:.3f} -> "
        + ("LIVE" if t.live else "no")
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="data folder (default: $FACEPRINT_DATA or ../shared/data)")
    parser.add_argument("--attacks", type=Path, default=Path("/tmp/faceprint_liveness_attacks"))
    parser.add_argument("--tune", action="store_true", help="the tuning split, with each track's evidence")
    parser.add_argument("--limit", type=int, default=None, help="at most N attack clips per type (a quick run)")
    parser.add_argument("--no-real", action="store_true", help="skip the real clips")
    parser.add_argument("--tracks", action="store_true", help="print each attack track's evidence (always with --tune)")
    parser.add_argument("--independent", type=Path, help="also the clips of liveness_replays_independent.py in DIR")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    root = liveness_attacks.data_dir(args.data)
    manifest_path = args.attacks / "manifest.json"
    if not manifest_path.is_file():
        print(f"building the attack clips in {args.attacks} (about 10 minutes)", file=sys.stderr)
        liveness_attacks.build(root, args.attacks, 24, 12)
    manifest = json.loads(manifest_path.read_text())
    split = "tune" if args.tune else "report"

    from faceprint.engine import FaceEngine

    checker = LivenessChecker(FaceEngine())
    attacks: dict[str, list[TrackLiveness]] = {}
    for kind in liveness_attacks.KINDS:
        clips = [m for m in manifest if m["split"] == split and m["kind"] == kind][: args.limit]
        print(f"{kind} replays ({split} split): {len(clips)} clips", file=sys.stderr)
        for m in clips:
            tracks = [t for t in run(checker, args.attacks / m["clip"]) if t.duration_s >= MIN_ATTACK_S]
            attacks.setdefault(kind, []).extend(tracks)
            if args.tune or args.tracks:
                for t in tracks:
                    print(evidence_row(m["clip"], t))
    if args.independent:
        specs = json.loads((args.independent / "manifest.json").read_text())[: args.limit]
        print(f"generator B printed-photo replays in {args.independent}: {len(specs)} clips", file=sys.stderr)
        for spec in specs:
            tracks = [t for t in run(checker, args.independent / f"{spec['name']}.mp4") if t.duration_s >= MIN_ATTACK_S]
            attacks.setdefault("print (gen. B)", []).extend(tracks)
            if args.tune or args.tracks:
                for t in tracks:
                    print(evidence_row(spec["name"], t))
    real: dict[str, list[TrackLiveness]] = {"bona fide": [], "other real": []}
    if not args.no_real:
        for group, clips in (("bona fide", BONA_FIDE), ("other real", OTHER_REAL)):
            for clip in clips:
                tracks = [t for t in run(checker, root / clip) if t.duration_s >= MIN_BONA_FIDE_S]
                real[group].extend(tracks)
                for t in tracks:
                    print(evidence_row(Path(clip).name, t))

    print()
    print(f"Liveness, {split} split of the constructed attacks (tracks >= {MIN_ATTACK_S:g} s) and the real clips'")
    print(f"tracks >= {MIN_BONA_FIDE_S:g} s; rates with (errors/n)")
    header = f"{'':24s}" + "".join(f"{cue:>17s}" for cue in CUES)
    print(header)
    for kind, tracks in attacks.items():
        print(f"{'APCER ' + kind:24s}" + "".join(f"{rate(tracks, cue, False):>17s}" for cue in CUES))
    every_attack = [t for tracks in attacks.values() for t in tracks]
    print(f"{'APCER all attacks':24s}" + "".join(f"{rate(every_attack, cue, False):>17s}" for cue in CUES))
    for group, tracks in real.items():
        label = "BPCER " + ("Hamilton+SimpleFR" if group == "bona fide" else "facenet clip")
        print(f"{label:24s}" + "".join(f"{rate(tracks, cue, True):>17s}" for cue in CUES))
    if args.tune:
        _suggest(every_attack)


def _suggest(tracks: list[TrackLiveness]) -> None:
    """What the tuning split says about the thresholds fitted on it."""
    import math

    still = [t.evidence.passive for t in tracks if t.evidence and not t.evidence.planarity.informative]
    judged = [t.evidence.planarity.ratio for t in tracks if t.evidence and t.evidence.planarity.informative]
    mouths = [t.evidence.mouth for t in tracks if t.evidence]
    print()
    print(f"tuning split: {len(tracks)} attack tracks; {len(judged)} moved enough for planarity")
    if still:
        print(f"  highest mean passive score of an attack track planarity could not judge: {max(still):.3f}")
    if judged:
        print(
            f"  planarity ratio of the judged attack tracks: max {max(judged):.3f}, "
            f"median {sorted(judged)[len(judged) // 2]:.3f}"
        )
    if mouths:
        print(f"  largest mouth motion of an attack track: {max(m for m in mouths if not math.isnan(m)):.3f}")
    ring = sorted(
        round(t.evidence.surroundings.follow, 2)
        for t in tracks
        if t.evidence and t.evidence.surroundings and t.evidence.surroundings.informative
    )
    print(f"  surroundings follow of the {len(ring)} attack tracks it judged: {ring}")
    depth = [t.evidence.passive for t in tracks if t.evidence and t.checks["depth"].passed]
    if depth:  # PASSIVE_DEPTH_MIN must stay above these
        print(f"  {len(depth)} attack track(s) passed for parallax; highest passive mean of them: {max(depth):.3f}")


if __name__ == "__main__":
    main()
