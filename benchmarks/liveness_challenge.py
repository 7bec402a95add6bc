"""The active liveness challenge on real recordings and on constructed printed-photo replays.

    python benchmarks/liveness_challenge.py            # every segment, 8 replays x 5 actions
    python benchmarks/liveness_challenge.py --replays 2

Real: segments of the SimpleFR and Hamilton clips where a person turns their head or blinks (found
with faceprint.video.series: yaw and eye-closure series per track), framed as a webcam sees a face
(200 px wide in 640x480, tests/liveness_clips.frame_on_face), fed at 8 frames a second (every 3rd
frame), as the page sends them. Each is asked the action it performs (should pass) and the
opposite turn (should fail). Attacks: printed-photo replays of the benchmark's "report" people
(benchmarks/liveness_attacks.py, its print look, hand shake, blur and noise) with the card swung
+-25 or +-45 degrees about its vertical axis, looped forward and back, each asked every action. They are
constructed: no real paper, no screens, no masks, no video replays of a person doing the action.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # tests.liveness_clips: the segments the tests use

from faceprint.engine import FaceEngine  # noqa: E402
from faceprint.liveness.challenge import ACTIONS, ChallengeConfig, ChallengeModels, ChallengeSession  # noqa: E402
from tests.liveness_clips import (  # noqa: E402
    BLINK,
    HAMILTON_TURN,
    SIMPLEFR,
    TURN_RIGHT,
    Segment,
    _attacks,
    card_replay,
    frame_on_face,
    palindrome,
    read_segment,
)

#: (segment, the action it performs, an action it does not)
REAL: list[tuple[Segment, str, str]] = [
    (TURN_RIGHT, "turn_right", "turn_left"),
    (Segment(SIMPLEFR, 39.62, 41.46, (554, 114, 715, 275), "turn right, yaw +24 to -14"), "turn_right", "turn_left"),
    (Segment(SIMPLEFR, 47.80, 48.97, (504, 174, 745, 416), "turn right, yaw +22 to -9"), "turn_right", "turn_left"),
    (Segment(SIMPLEFR, 24.52, 25.30, (506, 104, 676, 274), "turn left, yaw 0 to +31"), "turn_left", "turn_right"),
    (HAMILTON_TURN, "turn_right", "turn_left"),
    (BLINK, "blink", "open_mouth"),
]


def run(
    models: ChallengeModels, frames: list, fps: float, action: str, loops: int = 1, step: int = 3
) -> ChallengeSession:
    s = ChallengeSession(models, [action], ChallengeConfig())  # type: ignore[list-item]
    t = 0.0
    for k in range(0, loops * len(frames), step):
        t = k / fps
        if s.update(frames[k % len(frames)], t).status != "running":
            return s
    if s.status == "running":  # the recording ended: the time limit would run out
        s.state(t + 60.0)
    return s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--data", type=Path, default=Path(os.environ.get("FACEPRINT_DATA", REPO.parent / "shared" / "data"))
    )
    parser.add_argument("--replays", type=int, default=8, help="printed-photo replays (report-split people)")
    args = parser.parse_args()
    models = ChallengeModels(FaceEngine())
    tick = time.perf_counter()
    frames_read = 0
    print("| real segment | asked | result | measure | passive | continuity |")
    print("|---|---|---|---|---|---|")
    for seg, does, does_not in REAL:
        raw, fps = read_segment(args.data, seg)
        frames = frame_on_face(raw, seg.box)
        for action in (does, does_not):
            s = run(models, frames, fps, action)
            frames_read += s.frames
            st = s.state()
            result = "passed" if st.status == "passed" else f"failed ({st.reason})"
            print(
                f"| {Path(seg.clip).stem} {seg.start_s:.2f}-{seg.end_s:.2f} s, {seg.what} | {action} | {result} | "
                f"{st.actions[0].value:.2f} | {st.passive or 0:.3f} | {st.continuity or 1:.3f} |"
            )
    la = _attacks()
    people = la.people_split(args.data)["report"]
    backgrounds = sorted(
        f"no_faces/{p.name}" for p in (args.data / "no_faces").iterdir() if p.name not in la.SKIP_BACKGROUNDS
    )
    passed = 0
    print("\n| replay | person | asked | result | measure | passive |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.replays):
            person = people[(i * 977) % len(people)]  # spread over the split, deterministic
            background = backgrounds[i % len(backgrounds)]
            frames, fps = card_replay(
                args.data, Path(tmp), person, 25.0 + 20.0 * (i % 2), seed=100 + i, background=background
            )
            frames = palindrome(frames)
            for action in ACTIONS:
                s = run(models, frames, fps, action, loops=3)
                frames_read += s.frames
                st = s.state()
                passed += st.status == "passed"
                result = "PASSED" if st.status == "passed" else f"failed ({st.reason})"
                print(
                    f"| card {i} | {person} | {action} | {result} | {st.actions[0].value:.2f} | {st.passive or 0:.3f} |"
                )
    total = args.replays * len(ACTIONS)
    print(f"\nreplay sessions passed: {passed} of {total}")
    elapsed = time.perf_counter() - tick
    print(f"{frames_read} frames in {elapsed:.0f} s: {1000 * elapsed / max(frames_read, 1):.0f} ms a frame (1 thread)")


if __name__ == "__main__":
    main()
