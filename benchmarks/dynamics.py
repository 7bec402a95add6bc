"""Facial dynamics (``faceprint video --events``) measured: blinks, speaking, micro-movements, speed.

    python benchmarks/dynamics.py                 # the table (42 passes over 82 s of video: 20 plans)
    python benchmarks/dynamics.py --tune          # + the threshold grids, on the tune split only
    python benchmarks/dynamics.py --cache /tmp/dyn-cache   # keep each pass, to rerun the scoring fast
    python benchmarks/dynamics.py --cache /tmp/dyn-cache --first-seed 10 --prepare  # only make passes
                                  # (plans 10-19: a second process, once the clean passes are cached)

With ``--cache``, each pass keeps the upright faces the motion code was given, and a changed
motion code (:class:`faceprint.video.events.RegionMotion`) measures them again without tracking the
clip again.

Clips: ``videos/simplefr_Video_2.mp4`` (1,972 frames, 1280x720, a family dinner in short shots) and
``videos/face_recognition_short_hamilton_clip.mp4`` (275 frames, 640x360). Splits: **tune** =
simplefr frames >= 986 (thresholds were chosen there), **report** = simplefr frames < 986 and the
Hamilton clip (only reported).

- Blinks and speaking: against ``benchmarks/data/dynamics_labels.json``, the project's own labels
  made by looking at eye and mouth crops frame by frame, counted only inside the ranges labelled
  completely. Blinks: event precision/recall (a detected blink hits a labelled one when their frames
  overlap). Speaking: frame precision/recall (uncertain frames left out).
- Micro-movements: no micro-expression data set is available, so movements are inserted into the
  real frames (:mod:`dynamics_synth`: brows raised or lowered, mouth corners pulled, 200-500 ms,
  1-3% of the face's width) on faces at least 40 px between the eyes, and the spotter is scored by
  the MEGC protocol: a spot is a true positive when its interval has IoU >= 0.5 with an inserted
  one on the same face; F1 over all spots of the split. False spots per minute: the spots of the
  clean footage (nothing inserted), per minute of video and per minute of tracked face. 20 plans
  (seeds) by default, each inserting into every eligible face every 1.6 s or so.
- Speed: frames/s of the clean pass (decode, detection every 5 frames, tracking, the embedder's
  samples, mesh and iris on every face of every frame, and every event), wall clock and per CPU
  second (the second does not depend on what else the machine runs).
"""

from __future__ import annotations

import argparse
import hashlib
import inspect
import json
import os
import pickle
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
try:  # run from a checkout without installing: use the repo's src/
    import faceprint  # noqa: F401
except ImportError:
    sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import dynamics_synth as synth  # noqa: E402

from faceprint.video import events as ev  # noqa: E402
from faceprint.video import series as se  # noqa: E402

SFR = "videos/simplefr_Video_2.mp4"
HAM = "videos/face_recognition_short_hamilton_clip.mp4"
CLIPS = (SFR, HAM)
LABELS = REPO / "benchmarks" / "data" / "dynamics_labels.json"
#: simplefr frames from here on are the tune split
TUNE_FROM = 986


def split_of(clip: str, frame: int) -> str:
    return "tune" if clip == SFR and frame >= TUNE_FROM else "report"


def data_dir(arg: str | None) -> Path:
    for candidate in (arg, os.environ.get("FACEPRINT_DATA"), REPO.parent / "shared" / "data"):
        if candidate and all((Path(candidate) / c).is_file() for c in CLIPS):
            return Path(candidate)
    sys.exit(f"{SFR} not found: pass --data DIR or set FACEPRINT_DATA")


@dataclass
class Pass:
    """What one pass over a clip leaves: the series, regional motion and timing."""

    clip: str
    fps: float
    frames: int
    wall_s: float
    cpu_s: float
    series: list[Any]
    motion: dict[int, Any]
    samples: dict[int, Any] = field(default_factory=dict)
    log: list[tuple[Any, ...]] = field(default_factory=list)


class RecordingMotion(ev.RegionMotion):
    """RegionMotion that also keeps what it was given (the upright faces), so that a cached pass
    can be measured again by a changed motion code without tracking the clip again."""

    def __init__(self, fps: float) -> None:
        super().__init__(fps)
        self.log: list[tuple[Any, ...]] = []

    def push(self, track_id: int, frame: int, time_s: float, upright: Any, xy: Any) -> None:
        self.log.append((track_id, frame, time_s, upright, xy.astype(np.float16)))
        super().push(track_id, frame, time_s, upright, xy)

    def break_track(self, track_id: int) -> None:
        self.log.append((track_id,))
        super().break_track(track_id)


def replay(log: list[tuple[Any, ...]], fps: float) -> dict[int, Any]:
    motion = ev.RegionMotion(fps)
    for entry in log:
        if len(entry) == 1:
            motion.break_track(entry[0])
        else:
            track_id, frame, time_s, upright, xy = entry[:5]  # passes cached before had a 6th item
            motion.push(track_id, frame, time_s, upright, xy.astype(np.float32))
    return motion.series()


def run_pass(path: Path, clip: str, engine: Any, inserter: synth.Inserter | None = None, record: bool = False) -> Pass:
    """Track the clip and record every event's inputs (with ``inserter``: on altered frames)."""
    from faceprint.video.pipeline import VideoTracker
    from faceprint.video.reader import VideoReader

    tracker = VideoTracker(engine, every=5)
    recorder: ev.EventRecorder | None = None
    wall, cpu = time.perf_counter(), time.process_time()
    n = 0
    with VideoReader(path) as reader:
        tracker.reset()
        tracker.fps = reader.fps or 25.0
        recorder = ev.EventRecorder(tracker.fps)
        if record:
            recorder.motion = RecordingMotion(tracker.fps)
        for frame in reader:
            if inserter is not None:
                frame.image = inserter(frame.index, frame.image)
            recorder.update(tracker.process(frame))
            n += 1
        tracker.finish()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    motion = recorder.motion.series() if recorder.motion is not None else {}
    log = recorder.motion.log if isinstance(recorder.motion, RecordingMotion) else []
    return Pass(clip, tracker.fps, n, wall, cpu, recorder.series(), motion, recorder._samples, log)


def _motion_code() -> str:
    """A digest of the code that turns upright faces into motion series: a cached pass's motion is
    measured again when it changes."""
    parts = [ev.RegionMotion, ev._flow, ev._global_motion, ev._region_boxes, ev._mean_crop]
    text = "".join(inspect.getsource(f) for f in parts) + repr((ev.REGIONS, ev.REGION_PAD, ev.MICRO_SPAN_S))
    return hashlib.sha1(text.encode()).hexdigest()[:10]


#: taken when this module is imported, before the motion code's file can change under a long run
MOTION_CODE = _motion_code()


def cached(cache: Path | None, key: str, make: Any) -> Pass:
    """The pass ``key``: made by ``make(record)``, or read from ``cache`` (its upright faces kept
    beside it, and its motion measured again from them when the motion code has changed)."""
    if cache is None:
        return make(False)
    path, log_path = cache / f"{key}.pkl", cache / f"{key}.faces.pkl"
    motion_path = cache / f"{key}.motion-{MOTION_CODE}.pkl"
    if path.is_file() and log_path.is_file():
        with open(path, "rb") as f:
            value = Pass(**pickle.load(f))
    else:
        value = make(True)
        cache.mkdir(parents=True, exist_ok=True)
        with open(log_path, "wb") as f:
            pickle.dump(value.log, f)
        with open(path, "wb") as f:
            pickle.dump({**vars(value), "log": [], "motion": {}}, f)  # plain data: readable by any module
        with open(motion_path, "wb") as f:
            pickle.dump(value.motion, f)
    if motion_path.is_file():
        with open(motion_path, "rb") as f:
            value.motion = pickle.load(f)
    else:
        if not value.log:
            with open(log_path, "rb") as f:
                value.log = pickle.load(f)
        value.motion = replay(value.log, value.fps)
        with open(motion_path, "wb") as f:
            pickle.dump(value.motion, f)
    value.log = []
    return value


def to_frame(s: Any, t: float) -> int:
    return int(round(float(np.interp(t, s.times, s.frames))))


def find_track(series: list[Any], frame: int, centre: tuple[float, float]) -> Any | None:
    """The track whose box on ``frame`` holds ``centre`` (the nearest such box)."""
    best, dist = None, float("inf")
    for s in series:
        k = int(np.searchsorted(s.frames, frame))
        if k >= len(s) or s.frames[k] != frame:
            continue
        x0, y0, x1, y1 = s.boxes[k]
        if x0 <= centre[0] <= x1 and y0 <= centre[1] <= y1:
            d = np.hypot((x0 + x1) / 2 - centre[0], (y0 + y1) / 2 - centre[1])
            if d < dist:
                best, dist = s, d
    return best


def _in(frame: int, spans: list[list[int]]) -> bool:
    return any(a <= frame <= b for a, b in spans)


# ------------------------------------------------------------------------------ labels
def score_labels(passes: dict[str, Pass], params: dict[str, float]) -> dict[str, dict[str, float]]:
    """Blink event and speaking frame counts per split, with ``params`` overriding thresholds."""
    labels = json.loads(LABELS.read_text())["faces"]
    out: dict[str, dict[str, float]] = {}
    for face in labels:
        p = passes[face["clip"]]
        s = find_track(p.series, face["face"]["frame"], tuple(face["face"]["centre"]))
        c = out.setdefault(face["split"], dict.fromkeys(("b_tp", "b_fp", "b_fn", "s_tp", "s_fp", "s_fn"), 0))
        if s is None:
            print(f"warning: no track for the labelled face {face['face']} in {face['clip']}")
            continue
        b = face["blinks"]
        lo, hi = b["frames"]
        old = (se.BLINK_CLOSE_AT, se.BLINK_OPEN_AT)
        se.BLINK_CLOSE_AT = params.get("blink_close", se.BLINK_CLOSE_AT)
        try:
            found = [
                (to_frame(s, e.onset_s), to_frame(s, e.apex_s), to_frame(s, e.offset_s)) for e in se.detect_blinks(s)
            ]
        finally:
            se.BLINK_CLOSE_AT, se.BLINK_OPEN_AT = old
        found = [f for f in found if lo <= f[1] <= hi and not _in(f[1], b["uncertain"])]
        hit = set()
        for on, _, off in found:
            match = [i for i, (a, z) in enumerate(b["events"]) if on <= z and a <= off]
            if match:
                hit.update(match)
            else:
                c["b_fp"] += 1
        c["b_tp"] += len(hit)
        c["b_fn"] += len(b["events"]) - len(hit)
        if "speaking" in face:
            sp = face["speaking"]
            lo, hi = sp["frames"]
            # pauses shorter than the detector bridges are part of speech, as the detector counts them
            intervals = [list(sp["intervals"][0])] if sp["intervals"] else []
            for a, z in sp["intervals"][1:]:
                if a - intervals[-1][1] - 1 <= ev.SPEAK_GAP_S * p.fps:
                    intervals[-1][1] = z
                else:
                    intervals.append([a, z])
            events = ev.detect_speaking(
                s, on=params.get("speak_on", ev.SPEAK_ON), off=params.get("speak_off", ev.SPEAK_OFF)
            )
            for f in range(lo, hi + 1):
                if _in(f, sp["uncertain"]):
                    continue
                truth = _in(f, intervals)
                said = any(to_frame(s, e.onset_s) <= f <= to_frame(s, e.offset_s) for e in events)
                c["s_tp"] += truth and said
                c["s_fp"] += said and not truth
                c["s_fn"] += truth and not said
    return out


# ---------------------------------------------------------------------------- spotting
def spots(p: Pass, params: dict[str, float]) -> list[tuple[Any, Any]]:
    """(series, event) for every micro-movement spotted in a pass."""
    out = []
    for s in p.series:
        m = p.motion.get(s.track_id)
        if m is None:
            continue
        turn = params.get("max_turn", ev.MICRO_MAX_TURN)
        speaking = ev.detect_speaking(s) if params.get("speech_gate", 1) else []
        exclude = ev.micro_exclusions(s, se.detect_blinks(s), speaking, turn)
        kwargs = {k: params[k] for k in ("min_flow", "max_flow", "rel", "edge", "floor_s") if k in params}
        out += [(s, e) for e in ev.spot_micro_movements(m, p.fps, exclude=exclude, **kwargs)]
    return out


def iou(a: tuple[int, int], b: tuple[int, int]) -> float:
    inter = min(a[1], b[1]) - max(a[0], b[0]) + 1
    union = max(a[1], b[1]) - min(a[0], b[0]) + 1
    return max(0, inter) / union


def score_spotting(
    clean: dict[str, Pass], runs: list[tuple[dict[str, Pass], list[synth.Insertion]]], params: dict[str, float]
) -> dict[str, dict[str, float]]:
    """Spotting counts per split over every (inserted passes, insertions) run, and the clean
    footage's spots."""
    out: dict[str, dict[str, float]] = {}
    for split in ("tune", "report"):
        out[split] = dict.fromkeys(("tp", "fp", "fn", "clean_spots", "video_min", "face_min"), 0.0)
    for clip, p in clean.items():
        for s, e in spots(p, params):
            out[split_of(clip, to_frame(s, e.apex_s))]["clean_spots"] += 1
        for s in p.series:
            for f in s.frames[s.valid]:
                out[split_of(clip, int(f))]["face_min"] += 1 / p.fps / 60
        for f in range(p.frames):
            out[split_of(clip, f)]["video_min"] += 1 / p.fps / 60
    for inserted, truth in runs:
        for clip, p in inserted.items():
            gts = [t for t in truth if t.clip == clip]
            used: set[int] = set()
            for s, e in spots(p, params):
                span = (to_frame(s, e.onset_s), to_frame(s, e.offset_s))
                split = split_of(clip, to_frame(s, e.apex_s))
                best, best_iou = None, 0.5
                for i, t in enumerate(gts):
                    if i in used or find_track([s], t.apex, t.centre) is None:
                        continue
                    v = iou(span, (t.onset, t.offset))
                    if v >= best_iou:
                        best, best_iou = i, v
                if best is None:
                    out[split]["fp"] += 1
                else:
                    used.add(best)
                    out[split]["tp"] += 1
            for i, t in enumerate(gts):
                out[t.split]["all_" + t.kind] = out[t.split].get("all_" + t.kind, 0) + 1
                out[t.split]["hit_" + t.kind] = out[t.split].get("hit_" + t.kind, 0) + (i in used)
                if i not in used:
                    out[t.split]["fn"] += 1
    return out


def f1(tp: float, fp: float, fn: float) -> tuple[float, float, float]:
    p = tp / (tp + fp) if tp + fp else float("nan")
    r = tp / (tp + fn) if tp + fn else float("nan")
    return p, r, (2 * tp / (2 * tp + fp + fn) if tp + fp + fn else float("nan"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", help="the shared data folder (default: $FACEPRINT_DATA or ../shared/data)")
    ap.add_argument("--cache", type=Path, help="keep each pass here and reuse it")
    ap.add_argument("--seeds", type=int, default=20, help="insertion plans (one pass over each clip per plan)")
    ap.add_argument("--first-seed", type=int, default=0, help="start at this plan (to share the passes out)")
    ap.add_argument("--prepare", action="store_true", help="only make the passes (with --cache), print nothing")
    ap.add_argument("--tune", action="store_true", help="also print the threshold grids on the tune split")
    args = ap.parse_args()
    root = data_dir(args.data)
    from faceprint.engine import FaceEngine

    engine = FaceEngine()
    clean = {
        c: cached(args.cache, f"clean-{Path(c).stem}", lambda r, c=c: run_pass(root / c, c, engine, record=r))
        for c in CLIPS
    }
    runs: list[tuple[dict[str, Pass], list[synth.Insertion]]] = []
    for seed in range(args.first_seed, args.seeds):
        rng = np.random.default_rng(seed)
        truth: list[synth.Insertion] = []
        for c in CLIPS:
            truth += synth.plan(c, clean[c].series, clean[c].fps, lambda f, c=c: split_of(c, f), rng)
        inserted = {}
        for c in CLIPS:
            points = {(s.track_id, int(f)): s.points[k] for s in clean[c].series for k, f in enumerate(s.frames)}
            inserter = synth.Inserter([t for t in truth if t.clip == c], points)
            inserted[c] = cached(
                args.cache,
                f"inserted-{Path(c).stem}-{seed}",
                lambda r, c=c, i=inserter: run_pass(root / c, c, engine, i, record=r),
            )
        runs.append((inserted, truth))
    if args.prepare:
        return

    if args.tune:
        print("tune split (simplefr frames >= 986):")
        for close in (0.15, 0.2, 0.25, 0.3, 0.35):
            c = score_labels(clean, {"blink_close": close})["tune"]
            print(f"  blink_close {close}: P/R/F1 {_fmt(f1(c['b_tp'], c['b_fp'], c['b_fn']))}")
        for on in (0.05, 0.065, 0.08, 0.1, 0.12):
            c = score_labels(clean, {"speak_on": on, "speak_off": on * 2 / 3})["tune"]
            print(f"  speak_on {on}: P/R/F1 {_fmt(f1(c['s_tp'], c['s_fp'], c['s_fn']))}")
        grid = [{"min_flow": m, "rel": r} for m in (0.008, 0.012, 0.016) for r in (0.0, 1.0, 2.0)]
        grid += [{"max_turn": t, "speech_gate": g} for t in (3.0, 4.0, 6.0) for g in (1, 0)]
        for params in grid:
            c = score_spotting(clean, runs, params)["tune"]
            print(
                f"  micro {params}: P/R/F1 {_fmt(f1(c['tp'], c['fp'], c['fn']))}"
                f", clean spots/min of video {c['clean_spots'] / c['video_min']:.2f}"
            )

    labels = score_labels(clean, {})
    spotting = score_spotting(clean, runs, {})
    print("\n| measure | tune split | report split |")
    print("|---|---|---|")
    row = {k: f1(labels[k]["b_tp"], labels[k]["b_fp"], labels[k]["b_fn"]) for k in ("tune", "report")}
    n = {k: int(labels[k]["b_tp"] + labels[k]["b_fn"]) for k in row}
    print(
        f"| blinks: precision / recall (labelled blinks) | {_fmt(row['tune'][:2])} ({n['tune']}) "
        f"| {_fmt(row['report'][:2])} ({n['report']}) |"
    )
    row = {k: f1(labels[k]["s_tp"], labels[k]["s_fp"], labels[k]["s_fn"]) for k in ("tune", "report")}
    n = {k: int(labels[k]["s_tp"] + labels[k]["s_fn"]) for k in row}
    print(
        f"| speaking: frame precision / recall (speaking frames) | {_fmt(row['tune'][:2])} ({n['tune']}) "
        f"| {_fmt(row['report'][:2])} ({n['report']}) |"
    )
    row = {k: f1(spotting[k]["tp"], spotting[k]["fp"], spotting[k]["fn"]) for k in ("tune", "report")}
    n = {k: int(spotting[k]["tp"] + spotting[k]["fn"]) for k in row}
    print(
        f"| micro-movements: spotting F1 at IoU >= 0.5 (P / R; inserted) | {row['tune'][2]:.3f} "
        f"({_fmt(row['tune'][:2])}; {n['tune']}) | {row['report'][2]:.3f} ({_fmt(row['report'][:2])}; {n['report']}) |"
    )
    for k in ("tune", "report"):
        spotting[k]["per_video_min"] = spotting[k]["clean_spots"] / spotting[k]["video_min"]
        spotting[k]["per_face_min"] = spotting[k]["clean_spots"] / spotting[k]["face_min"]
    print(
        f"| false spots per minute of video / of tracked face (clean footage) | "
        f"{spotting['tune']['per_video_min']:.2f} / {spotting['tune']['per_face_min']:.2f} | "
        f"{spotting['report']['per_video_min']:.2f} / {spotting['report']['per_face_min']:.2f} |"
    )
    print("\nmicro-movement operating points (report split; the default is MICRO_MAX_TURN, 1000: no gate):")
    for turn in (4.0, 6.0, 10.0, 1000.0):
        c = score_spotting(clean, runs, {"max_turn": turn})["report"]
        precision, recall, score = f1(c["tp"], c["fp"], c["fn"])
        print(
            f"  max_turn {turn}: F1 {score:.3f}, precision {precision:.2f}, recall {recall:.2f}, false spots "
            f"{c['clean_spots'] / c['video_min']:.2f}/min of video, {c['clean_spots'] / c['face_min']:.2f}/face-min"
        )
    for k in ("tune", "report"):
        kinds = sorted(key[4:] for key in spotting[k] if key.startswith("all_"))
        recall_by_kind = ", ".join(
            f"{kind} {spotting[k]['hit_' + kind]:.0f}/{spotting[k]['all_' + kind]:.0f}" for kind in kinds
        )
        print(f"found at IoU >= 0.5, {k} split: {recall_by_kind}")
    by_kind: dict[str, list[int]] = {}
    for _, truth in runs:
        for t in truth:
            by_kind.setdefault(t.kind, [0, 0])[t.split == "report"] += 1
    print(f"\ninserted movements (tune, report): {by_kind}")
    for c in CLIPS:
        p = clean[c]
        print(
            f"speed {Path(c).name}: {p.frames} frames, {p.frames / p.wall_s:.1f} frames/s wall, "
            f"{p.frames / p.cpu_s:.1f} frames per CPU second (clean pass, events on)"
        )


def _fmt(values: tuple[float, ...]) -> str:
    return " / ".join("-" if np.isnan(v) else f"{v:.2f}" for v in values)


if __name__ == "__main__":
    main()
