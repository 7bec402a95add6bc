"""Active liveness: a challenge-response session ("blink", then "turn your head to your left"...).

A :class:`ChallengeSession` asks for 2-3 actions drawn at random (``secrets.SystemRandom``: a
challenge the client could predict is no challenge), each within a time limit, and reads them from
a stream of frames fed to :meth:`ChallengeSession.update`. It follows one face, the largest when
the session starts, and fails when:

* the face is lost for more than ``lost_s`` (someone stepping out, a card swapped);
* another face becomes the larger one while it is there (a second person leaning in);
* the face's template (the engine's embedding, every ``template_every_s``) drifts below
  ``continuity`` cosine from the first one: the identity changed (a card swapped in place);
* an action is not done in time;
* the passive model (:class:`~faceprint.liveness.passive.PassiveLiveness`, scored with each
  template) called the face a spoof: its mean live score under ``passive_min``.

Actions are read against the face's own baseline over the first ``baseline_s``, from the face
mesh (:mod:`faceprint.analyze.landmarks`) and head pose (:mod:`faceprint.analyze.pose`):

* ``blink``: eye closure (openness over a running high quantile of openness, as
  :func:`faceprint.video.series.eye_closure` reads it, with its thresholds) dips and recovers,
  lids closed and open again within a human blink's time (:mod:`faceprint.liveness.cues`);
* ``turn_left`` / ``turn_right``: yaw moves ``turn_deg`` from where it was (its extreme so far in
  the other direction) towards the subject's own left / right (yaw + = the subject's left; frames
  are unmirrored camera images, whatever a preview shows). A printed photo turned about its
  vertical axis reads as a narrower face, not a turned one: the constructed replays swung by
  +-35 degrees read under 7 degrees of yaw. (The mesh's own points are no parallax test: the
  mesh draws a 3D face even on a tilted photo, see :mod:`faceprint.liveness.cues`.)
* ``smile``: the built-in expression model's "happy" score rises, or the mouth corners widen;
* ``open_mouth``: the inner-lip gap opens past ``mouth_open`` of the mouth's width.

Frames are BGR (OpenCV's order); ``time_s`` is the frame's time on the session's clock.
"""

from __future__ import annotations

import secrets
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

from faceprint.analyze import face_crop
from faceprint.analyze.landmarks import (
    LEFT_EYE_CORNERS,
    MOUTH_CORNERS,
    RIGHT_EYE_CORNERS,
    DenseLandmarks,
    LandmarkModels,
    eye_openness,
    mouth_openness,
)
from faceprint.analyze.pose import head_pose
from faceprint.analyze.types import ExpressionClassifier
from faceprint.engine import FaceEngine
from faceprint.errors import ModelError
from faceprint.liveness.cues import BLINK_MAX_S, BLINK_MIN_S
from faceprint.liveness.passive import PassiveLiveness
from faceprint.match import DEFAULT_VERIFY
from faceprint.types import Face
from faceprint.video.reader import VideoSource
from faceprint.video.series import (
    BASELINE_QUANTILE,
    BASELINE_WINDOW_S,
    BLINK_CLOSE_AT,
    BLINK_OPEN_AT,
    MIN_PRESENCE,
)
from faceprint.video.tracker import iou_matrix

Action = Literal["blink", "turn_left", "turn_right", "smile", "open_mouth"]
ACTIONS: tuple[Action, ...] = ("blink", "turn_left", "turn_right", "smile", "open_mouth")
#: what the person is told; "left"/"right" are the person's own
INSTRUCTIONS: dict[str, str] = {
    "look": "Look at the camera",
    "blink": "Blink",
    "turn_left": "Turn your head to your left",
    "turn_right": "Turn your head to your right",
    "smile": "Smile",
    "open_mouth": "Open your mouth",
}
Status = Literal["running", "passed", "failed"]


def parse_actions(text: str | Sequence[str]) -> list[Action]:
    """Action names from "blink,turn_left" or a list; ValueError naming a bad or repeated one."""
    names = [n.strip() for n in (text.split(",") if isinstance(text, str) else text) if n.strip()]
    if not names:
        raise ValueError(f"no actions given; choose from {', '.join(ACTIONS)}")
    for name in names:
        if name not in ACTIONS:
            raise ValueError(f"unknown action {name!r}; choose from {', '.join(ACTIONS)}")
    if len(set(names)) != len(names):
        raise ValueError(f"an action is repeated in {','.join(names)}")
    return names  # type: ignore[return-value]


def random_actions(count: int | None = None, choices: Sequence[Action] = ACTIONS) -> list[Action]:
    """2 or 3 distinct actions (``count`` of them if given) drawn with the OS's randomness. Any
    order works: a turn is measured from wherever the head was, not from straight ahead."""
    rng = secrets.SystemRandom()
    n = count if count is not None else rng.choice((2, 3))
    return rng.sample(list(choices), min(n, len(choices)))


@dataclass(frozen=True)
class ChallengeConfig:
    """Thresholds and time limits. Defaults are what the real clips and constructed replays of the
    README's "Active challenge" section were measured with."""

    action_s: float = 6.0  # time limit per action
    baseline_s: float = 0.5  # the face's neutral look, before the first action
    lost_s: float = 1.0  # the face may vanish this long (a detector miss, a blink of motion blur)
    template_every_s: float = 0.5
    #: cosine to the first template under which the face is someone else: the engine's 1:1 operating
    #: point (FAR 1e-3 on LFW; the service uses its gallery's calibrated one). A lookalike can get
    #: through: two brothers of the SimpleFR clip score 0.934, while one person turning their head
    #: 38 degrees went down to 0.947, so no threshold tells those apart with a margin
    continuity: float = DEFAULT_VERIFY.threshold
    #: mean MiniFASNet live score under which the session fails (None: no passive check)
    passive_min: float | None = 0.5
    turn_deg: float = 20.0
    mouth_open: float = 0.3  # inner-lip gap over mouth width (about 0.5 wide open)
    mouth_open_rise: float = 0.15  # ... and this much above the baseline
    smile_happy: float = 0.6  # the expression model's "happy" probability
    smile_happy_rise: float = 0.3  # ... and this much above the baseline
    smile_widen: float = 1.12  # or the mouth this many times its baseline width (in eye distances)
    hold_frames: int = 2  # a pose or mouth action must hold on this many frames in a row


@dataclass
class ActionResult:
    action: str
    passed: bool | None = None  # None: not reached or under way
    value: float = 0.0  # the action's measure at its best (degrees turned, closure, happy score, gap)
    time_s: float | None = None  # when it passed (or failed)
    detail: str = ""


@dataclass
class ChallengeState:
    """What the session says after a frame: JSON-ready with :meth:`to_dict`."""

    status: Status
    action: str | None  # the current action (None before the first and after the last)
    instruction: str
    index: int  # of the current action in ``actions``
    actions: list[ActionResult]
    progress: float  # 0-1 towards the current action
    time_left_s: float | None  # for the current step
    reason: str | None  # why the session failed
    face: tuple[int, int, int, int] | None
    passive: float | None  # mean MiniFASNet live score so far
    continuity: float | None  # lowest template similarity to the first

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for key in ("progress", "time_left_s", "passive", "continuity"):
            if out[key] is not None:
                out[key] = round(float(out[key]), 4)
        for a in out["actions"]:
            a["value"] = round(float(a["value"]), 4)
            a["time_s"] = round(float(a["time_s"]), 3) if a["time_s"] is not None else None
        out["face"] = list(self.face) if self.face is not None else None
        return out


@dataclass
class Measure:
    """One frame's reading of the tracked face."""

    time_s: float
    valid: bool
    eye_open: float
    mouth_open: float
    mouth_width: float  # mouth corners apart, in eye-centre distances
    yaw: float
    happy: float | None = None


def measure_face(dense: DenseLandmarks, image_size: tuple[int, int], time_s: float) -> Measure:
    """The numbers the actions read, from one face's mesh."""
    p = dense.points
    size = float(np.linalg.norm(p[list(LEFT_EYE_CORNERS), :2].mean(0) - p[list(RIGHT_EYE_CORNERS), :2].mean(0)))
    width = float(np.linalg.norm(p[MOUTH_CORNERS[1], :2] - p[MOUTH_CORNERS[0], :2])) / max(size, 1e-6)
    return Measure(
        time_s=time_s,
        valid=dense.presence >= MIN_PRESENCE,
        eye_open=(eye_openness(dense.eyes[0]) + eye_openness(dense.eyes[1])) / 2,
        mouth_open=mouth_openness(p),
        mouth_width=width,
        yaw=head_pose(p, image_size).yaw,
    )


class BlinkWatch:
    """Streaming blink detection: closure = 1 - openness / a high quantile of the openness over the
    last BASELINE_WINDOW_S (the causal form of :func:`faceprint.video.series.eye_closure`); a blink
    is a run of closure over BLINK_OPEN_AT that reaches BLINK_CLOSE_AT, from the last open frame
    before it to the first open one after it within a blink's time (cues' BLINK_MIN_S-BLINK_MAX_S,
    plus one frame's gap: at 8-10 frames a second the run's ends are that coarse)."""

    def __init__(self) -> None:
        self.history: deque[tuple[float, float]] = deque()
        self.run_start: float | None = None  # time of the last open frame before the run
        self.run_peak = 0.0
        self.last_open: float | None = None
        self.best = 0.0
        self.gaps: deque[float] = deque(maxlen=16)

    def closure(self, t: float, openness: float) -> float:
        if self.history:
            self.gaps.append(t - self.history[-1][0])
        self.history.append((t, openness))
        while self.history and self.history[0][0] < t - BASELINE_WINDOW_S:
            self.history.popleft()
        baseline = float(np.quantile([o for _, o in self.history], BASELINE_QUANTILE))
        return float(np.clip(1.0 - openness / max(baseline, 1e-6), 0.0, 1.0))

    def update(self, m: Measure) -> bool:
        """Feed a frame (an invalid one breaks a run); True when a blink just ended."""
        if not m.valid:
            self.run_start, self.run_peak = None, 0.0
            return False
        c = self.closure(m.time_s, m.eye_open)
        if c > BLINK_OPEN_AT:
            if self.run_start is None and self.last_open is not None:
                self.run_start, self.run_peak = self.last_open, 0.0
            self.run_peak = max(self.run_peak, c)
            self.best = max(self.best, c)
            return False
        done = False
        if self.run_start is not None and self.run_peak >= BLINK_CLOSE_AT:
            gap = float(np.median(self.gaps)) if self.gaps else 0.0
            done = BLINK_MIN_S <= m.time_s - self.run_start <= BLINK_MAX_S + gap
        self.run_start, self.run_peak = None, 0.0
        self.last_open = m.time_s
        return done


class ChallengeModels:
    """The models a session reads frames with, shared by every session of a process (each is
    serialised by its own lock; the expression model loads on the first smile asked for)."""

    def __init__(self, engine: FaceEngine, passive: PassiveLiveness | None = None) -> None:
        self.engine = engine
        self.landmarks = LandmarkModels()
        self.passive = passive if passive is not None else PassiveLiveness()
        self._expression: ExpressionClassifier | None = None
        self._expression_error: str | None = None
        self._lock = threading.Lock()

    def expression(self) -> ExpressionClassifier | None:
        """The built-in expression model, or None where it is not installed (smiles are then read
        from the mouth's width alone)."""
        with self._lock:
            if self._expression is None and self._expression_error is None:
                from faceprint.analyze.expression import FerExpressionClassifier

                try:
                    self._expression = FerExpressionClassifier()
                except ModelError as exc:
                    self._expression_error = str(exc)
            return self._expression


#: a detection continues the track when it overlaps the last box this much
TRACK_IOU = 0.3
#: another face "takes over" when its box's area is this many times the tracked face's (a margin,
#: so that two people of about the same size do not flap)
TAKEOVER = 1.25


@dataclass
class _Step:
    """The current action's running measures."""

    action: Action
    start_s: float
    deadline_s: float
    hold: int = 0
    best: float = 0.0
    extreme_yaw: float | None = None  # the far end of the yaw in the direction opposite the turn


class ChallengeSession:
    """One challenge: ``update(frame_bgr, time_s)`` per frame, in time order, until the state's
    status is "passed" or "failed". Not thread-safe: one stream per session."""

    def __init__(
        self,
        models: ChallengeModels,
        actions: Sequence[Action] | None = None,
        config: ChallengeConfig | None = None,
        start_s: float = 0.0,
    ) -> None:
        self.models = models
        self.config = config or ChallengeConfig()
        self.actions: list[Action] = list(actions) if actions else random_actions()
        parse_actions(self.actions)  # ValueError for a bad list
        self.results = [ActionResult(a) for a in self.actions]
        self.start_s = start_s
        self.status: Status = "running"
        self.reason: str | None = None
        self.index = -1  # -1: the baseline ("look at the camera")
        self.step_deadline = start_s + self.config.action_s  # a face must show up within one action's time
        self.step: _Step | None = None
        self.box: tuple[int, int, int, int] | None = None
        self.last_seen: float | None = None
        self.baseline: list[Measure] = []
        self.baseline_start: float | None = None
        self.template: np.ndarray | None = None  # the first template: the identity of the session
        self.last_template_s = -np.inf
        self.continuity: float | None = None
        self.passive_scores: list[float] = []
        self.blink = BlinkWatch()  # runs from the first frame: its baseline needs the history
        self.last_time = -np.inf
        self.frames = 0

    # ------------------------------------------------------------------------------ state
    @property
    def current(self) -> Action | None:
        return self.actions[self.index] if 0 <= self.index < len(self.actions) else None

    def state(self, time_s: float | None = None) -> ChallengeState:
        """The state now; with ``time_s``, a running session whose step is past its deadline fails
        (a client that stops sending frames cannot keep a session open)."""
        if time_s is not None and self.status == "running" and time_s > self.step_deadline:
            self._timeout(time_s)
        action = self.current if self.status == "running" else None
        if self.status == "running":
            instruction = INSTRUCTIONS[action] if action else INSTRUCTIONS["look"]
        elif self.status == "passed":
            instruction = "Passed"
        else:
            instruction = f"Failed: {self.reason}"
        left = None
        if self.status == "running":
            now = time_s if time_s is not None else max(self.last_time, self.start_s)
            left = max(0.0, self.step_deadline - now)
        progress = 0.0
        if self.step is not None and self.status == "running":
            progress = self._progress(self.step)
        passive = float(np.mean(self.passive_scores)) if self.passive_scores else None
        return ChallengeState(
            self.status, action, instruction, max(self.index, 0), self.results, progress, left, self.reason,
            self.box, passive, self.continuity,
        )  # fmt: skip

    def fail(self, reason: str, time_s: float | None = None) -> None:
        if self.status != "running":
            return
        self.status, self.reason = "failed", reason
        if 0 <= self.index < len(self.results) and self.results[self.index].passed is None:
            self.results[self.index].passed = False
            self.results[self.index].time_s = time_s
            last = self.results[self.index].detail  # what the action got to (e.g. a turn without parallax)
            self.results[self.index].detail = f"{reason}; last: {last}" if last else reason

    def _timeout(self, time_s: float) -> None:
        if self.index < 0:
            self.fail("no face held still in front of the camera in time" if self.box else "no face seen", time_s)
            return
        reason = f"{self.current} not done within {self.config.action_s:g} s"
        spoof = self._passive_spoof()
        self.fail(f"{reason}; {spoof}" if spoof else reason, time_s)

    def _passive_spoof(self) -> str | None:
        """Why the passive model rejects the face so far (None: it does not, or is not asked)."""
        if self.config.passive_min is None or not self.passive_scores:
            return None
        mean = float(np.mean(self.passive_scores))
        if mean >= self.config.passive_min:
            return None
        return f"the passive model judged the face a spoof (live {mean:.2f})"

    # ---------------------------------------------------------------------------- frames
    def update(self, frame_bgr: np.ndarray, time_s: float) -> ChallengeState:
        """Read one frame (BGR uint8, (H, W, 3)) taken at ``time_s``; frames older than the last
        one are ignored."""
        if self.status != "running" or time_s <= self.last_time:
            return self.state()
        self.last_time = time_s
        self.frames += 1
        if time_s > self.step_deadline:
            self._timeout(time_s)
            return self.state(time_s)
        rgb = np.ascontiguousarray(frame_bgr[..., ::-1])
        face = self._track(self.models.engine.detect(rgb), time_s)
        if face is None:
            return self.state(time_s)
        if time_s - self.last_template_s >= self.config.template_every_s:
            self._check_template(frame_bgr, rgb, face, time_s)
            if self.status != "running":
                return self.state(time_s)
        dense = self.models.landmarks(rgb, face)  # the mesh reads RGB, as the engine does
        m = measure_face(dense, (rgb.shape[1], rgb.shape[0]), time_s)
        if self.current == "smile" or (self.index < 0 and "smile" in self.actions):
            m.happy = self._happy(rgb, face)
        return self.observe(m)

    def observe(self, m: Measure) -> ChallengeState:
        """Move the challenge on with one frame's measures of the tracked face (``update`` calls this
        after tracking and the template check; tests feed it measures of their own)."""
        if self.status != "running":
            return self.state()
        if m.time_s > self.step_deadline:
            self._timeout(m.time_s)
            return self.state(m.time_s)
        self.last_time = max(self.last_time, m.time_s)
        blinked = self.blink.update(m)
        if self.index < 0:
            self._baseline(m)
        elif m.valid:
            self._act(m, blinked)
        return self.state(m.time_s)

    def _track(self, faces: list[Face], time_s: float) -> Face | None:
        """The tracked face on this frame (None: not seen); fails the session when it is lost too
        long or another face takes over."""
        if self.box is None:
            if not faces:
                return None
            chosen = faces[0]  # largest first
        else:
            overlaps = iou_matrix([f.box for f in faces], [self.box])[:, 0]
            best = int(np.argmax(overlaps)) if faces else -1
            if best < 0 or overlaps[best] < TRACK_IOU:
                if self.last_seen is not None and time_s - self.last_seen > self.config.lost_s:
                    self.fail(f"the face was lost for more than {self.config.lost_s:g} s", time_s)
                return None
            chosen = faces[best]
            if faces[0] is not chosen and faces[0].width * faces[0].height > TAKEOVER * chosen.width * chosen.height:
                self.fail("another face came in front of the camera (identity changed)", time_s)
                return None
        if self.last_seen is not None and time_s - self.last_seen > self.config.lost_s:
            self.fail(f"the face was lost for more than {self.config.lost_s:g} s", time_s)
            return None
        self.box, self.last_seen = chosen.box, time_s
        return chosen

    def _check_template(self, bgr: np.ndarray, rgb: np.ndarray, face: Face, time_s: float) -> None:
        self.last_template_s = time_s
        template = self.models.engine.embed(rgb, [face])[0].embedding
        if template is None:
            return
        if self.config.passive_min is not None:
            self.passive_scores.append(self.models.passive.score(bgr, face.box))
        if self.template is None:
            self.template = template
            return
        sim = float(np.dot(self.template, template))
        self.continuity = sim if self.continuity is None else min(self.continuity, sim)
        if sim < self.config.continuity:
            self.fail(f"identity changed (template similarity {sim:.3f} < {self.config.continuity:.3f})", time_s)

    def _happy(self, rgb: np.ndarray, face: Face) -> float | None:
        classifier = self.models.expression()
        if classifier is None:
            return None
        size = getattr(classifier, "input_size", None)
        return float(classifier.classify(face_crop(rgb, face, size=size)).scores.get("happy", 0.0))

    # ------------------------------------------------------------------------- baseline
    def _baseline(self, m: Measure) -> None:
        if not m.valid:
            return
        if self.baseline_start is None:
            self.baseline_start = m.time_s
        self.baseline.append(m)
        if m.time_s - self.baseline_start >= self.config.baseline_s and len(self.baseline) >= 3:
            self._next(m.time_s)

    def _base(self, name: str) -> float:
        values = [getattr(b, name) for b in self.baseline if getattr(b, name) is not None]
        return float(np.median(values)) if values else float("nan")

    def _next(self, time_s: float) -> None:
        self.index += 1
        if self.index >= len(self.actions):
            self._finish(time_s)
            return
        self.step_deadline = time_s + self.config.action_s
        self.step = _Step(self.actions[self.index], time_s, self.step_deadline)

    def _finish(self, time_s: float) -> None:
        spoof = self._passive_spoof()
        if spoof:
            self.index = len(self.actions) - 1  # keep the per-action results as they are
            self.status, self.reason = "failed", spoof
            return
        self.status = "passed"
        self.step = None

    # --------------------------------------------------------------------------- actions
    def _act(self, m: Measure, blinked: bool) -> None:
        step = self.step
        assert step is not None
        cfg = self.config
        result = self.results[self.index]
        done = False
        if step.action == "blink":
            step.best = max(step.best, self.blink.run_peak)
            done = blinked
            if done:
                step.best = max(step.best, BLINK_CLOSE_AT)
        elif step.action in ("turn_left", "turn_right"):
            done = self._turn(step, m)
        elif step.action == "open_mouth":
            need = max(cfg.mouth_open, self._base("mouth_open") + cfg.mouth_open_rise)
            step.best = max(step.best, m.mouth_open)
            done = self._hold(step, m.mouth_open >= need)
        elif step.action == "smile":
            widen = m.mouth_width / max(self._base("mouth_width"), 1e-6)
            happy = m.happy if m.happy is not None else 0.0
            base_happy = self._base("happy")
            base_happy = 0.0 if np.isnan(base_happy) else base_happy
            by_model = m.happy is not None and happy >= max(cfg.smile_happy, base_happy + cfg.smile_happy_rise)
            step.best = max(step.best, happy if m.happy is not None else widen)
            done = self._hold(step, by_model or widen >= cfg.smile_widen)
        result.value = step.best
        if done:
            result.passed, result.time_s = True, m.time_s
            self._next(m.time_s)

    def _hold(self, step: _Step, ok: bool) -> bool:
        step.hold = step.hold + 1 if ok else 0
        return step.hold >= self.config.hold_frames

    def _turn(self, step: _Step, m: Measure) -> bool:
        """Yaw moved turn_deg towards the asked side from its far end on the other side (the
        baseline's yaw to begin with), held for hold_frames frames."""
        sign = 1.0 if step.action == "turn_left" else -1.0  # yaw + = the subject's left
        if step.extreme_yaw is None:
            step.extreme_yaw = min((b.yaw for b in self.baseline), key=lambda yaw: sign * yaw)
        step.extreme_yaw = min(step.extreme_yaw, m.yaw, key=lambda yaw: sign * yaw)  # further the other way
        turned = sign * (m.yaw - step.extreme_yaw)
        step.best = max(step.best, turned)
        return self._hold(step, turned >= self.config.turn_deg)

    def _progress(self, step: _Step) -> float:
        cfg = self.config
        if step.action in ("turn_left", "turn_right"):
            return min(1.0, max(0.0, step.best / cfg.turn_deg))
        if step.action == "blink":
            return min(1.0, step.best / BLINK_CLOSE_AT)
        if step.action == "open_mouth":
            return min(1.0, step.best / cfg.mouth_open)
        return min(1.0, step.best / cfg.smile_happy) if step.best <= 1.0 else min(1.0, step.best / cfg.smile_widen)


def run_challenge(
    models: ChallengeModels,
    source: VideoSource,
    actions: Sequence[Action] | None = None,
    config: ChallengeConfig | None = None,
    on_state: Callable[[ChallengeState], None] | None = None,
) -> ChallengeSession:
    """Run a challenge on a video file, camera index or stream URL until it passes or fails.

    A camera or stream is read live (the newest frame each time: a slow machine skips frames rather
    than fall behind the person); a file frame by frame at its own times. ``on_state`` sees every
    state (to show the instruction). A file that ends first fails the session. Raises VideoError."""
    from faceprint.video.reader import VideoReader

    session = ChallengeSession(models, actions, config)
    with VideoReader(source) as reader:
        start: float | None = None
        for frame in reader:
            start = frame.time_s if start is None else start
            state = session.update(frame.image, frame.time_s - start)
            if on_state is not None:
                on_state(state)
            if state.status != "running":
                break
        if session.status == "running":
            step = session.current or "the first look at the camera"
            session.fail(f"the video ended during {step}", session.last_time)
            if on_state is not None:
                on_state(session.state())
    return session


def passed_template(session: ChallengeSession) -> np.ndarray | None:
    """The template of a passed session's face (what an upload must match), else None."""
    return session.template if session.status == "passed" else None


__all__ = [
    "ACTIONS",
    "INSTRUCTIONS",
    "ActionResult",
    "BlinkWatch",
    "ChallengeConfig",
    "ChallengeModels",
    "ChallengeSession",
    "ChallengeState",
    "Measure",
    "measure_face",
    "parse_actions",
    "passed_template",
    "random_actions",
    "run_challenge",
]
