"""The service's liveness challenge sessions, in memory: :class:`LivenessSessions` on ``app.state.liveness``.

A session is created by a key (``POST /v1/liveness/sessions``), fed frames by that key only, and
forgotten ``ttl_s`` after its creation. The server picks the actions: at random, or a fixed list
(``faceprint serve --liveness-actions``, for a kiosk or a test); a client never chooses them. At most
``max_sessions`` are held at once (429 beyond), so a flood of sessions cannot grow memory.

With ``required`` (``faceprint serve --require-liveness``), identify and enrol need a *passed*
session of the same key (:meth:`LivenessSessions.claim`): single use, within ``claim_s`` of passing,
and the uploaded face must be the session's face (its template within the session's continuity
threshold of the session's first template).
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from faceprint.engine import FaceEngine
from faceprint.errors import LivenessError
from faceprint.liveness.challenge import Action, ChallengeConfig, ChallengeModels, ChallengeSession, ChallengeState
from faceprint.settings import liveness_action_s, liveness_sessions

#: a frame's own time (the page's clock) may lag the server's by this much: upload time. It may not
#: run ahead, and no more lag is taken, so a client cannot stretch an action's time limit.
MAX_FRAME_LAG_S = 1.0


@dataclass
class Held:
    """One session and what the service keeps around it."""

    id: str
    key_id: int
    session: ChallengeSession
    created: float  # time.monotonic()
    lock: threading.Lock = field(default_factory=threading.Lock)
    passed_at: float | None = None
    used: bool = False

    def clock(self, now: float | None = None) -> float:
        """Seconds since the session was created (the session's clock)."""
        return (time.monotonic() if now is None else now) - self.created


class LivenessSessions:
    """Sessions by id. Thread-safe (routes run in FastAPI's thread pool); each session's frames
    are read one at a time under its own lock."""

    def __init__(
        self,
        engine: FaceEngine,
        *,
        actions: Sequence[Action] | None = None,
        required: bool = False,
        max_sessions: int | None = None,
        action_s: float | None = None,
        ttl_s: float = 120.0,
        claim_s: float = 60.0,
        continuity: float | None = None,
        models: ChallengeModels | None = None,
    ) -> None:
        self.engine = engine
        self.actions = list(actions) if actions else None
        self.required = required
        self.max_sessions = max_sessions if max_sessions is not None else liveness_sessions()
        self.config = ChallengeConfig(action_s=action_s if action_s is not None else liveness_action_s())
        if continuity is not None:
            self.config = ChallengeConfig(action_s=self.config.action_s, continuity=continuity)
        self.ttl_s = ttl_s
        self.claim_s = claim_s
        self._models = models
        self._sessions: dict[str, Held] = {}
        self._lock = threading.Lock()

    @property
    def models(self) -> ChallengeModels:
        """The mesh, passive and expression models, loaded on the first session."""
        with self._lock:
            if self._models is None:
                self._models = ChallengeModels(self.engine)
            return self._models

    def _prune(self, now: float, full: bool = False) -> None:
        """Forget expired sessions; when ``full``, also those that are over and of no more use
        (failed, or passed and used), so that the cap counts sessions still running or claimable."""
        for sid, h in list(self._sessions.items()):
            spent = h.session.status == "failed" or h.used
            if now - h.created > self.ttl_s or (full and spent):
                del self._sessions[sid]

    def create(self, key_id: int) -> Held:
        """A new session for ``key_id``; LivenessError("too_many_sessions") at the cap."""
        models = self.models
        now = time.monotonic()
        with self._lock:
            self._prune(now, full=len(self._sessions) >= self.max_sessions)
            if len(self._sessions) >= self.max_sessions:
                raise LivenessError(
                    f"{self.max_sessions} liveness sessions are open already; try again in a minute",
                    "too_many_sessions",
                )
            held = Held(secrets.token_urlsafe(16), key_id, ChallengeSession(models, self.actions, self.config), now)
            self._sessions[held.id] = held
        return held

    def get(self, session_id: str, key_id: int) -> Held:
        """The session (LivenessError "unknown_session" when there is none, it expired, or another
        key made it: a session id is not a capability to share)."""
        with self._lock:
            self._prune(time.monotonic())
            held = self._sessions.get(session_id)
        if held is None or held.key_id != key_id:
            raise LivenessError(f"no liveness session {session_id!r} (unknown or expired)", "unknown_session")
        return held

    def frame(self, held: Held, frame_bgr: np.ndarray, client_t: float | None) -> ChallengeState:
        """Read one frame; ``client_t`` is when the page took it, on the session's clock (seconds)."""
        with held.lock:
            now = held.clock()
            t = now if client_t is None else min(now, max(client_t, now - MAX_FRAME_LAG_S))
            state = held.session.update(frame_bgr, t)
            if state.status == "passed" and held.passed_at is None:
                held.passed_at = time.monotonic()
            return state

    def state(self, held: Held) -> ChallengeState:
        with held.lock:
            return held.session.state(held.clock())

    def claim(self, session_id: str | None, key_id: int) -> np.ndarray:
        """Use a passed session once: its face's template. LivenessError (403) otherwise."""
        if not session_id:
            raise LivenessError(
                "this server requires a passed liveness challenge: create one with POST /v1/liveness/sessions "
                "and send its id as the liveness_session field or the X-Liveness-Session header"
            )
        try:
            held = self.get(session_id, key_id)
        except LivenessError:
            raise LivenessError(f"liveness session {session_id!r} is unknown or expired", "liveness_failed") from None
        with held.lock:
            status = held.session.status
            if status != "passed" or held.passed_at is None or held.session.template is None:
                reason = f": {held.session.reason}" if held.session.reason else ""
                message = f"liveness session {session_id!r} has not passed ({status}{reason})"
                raise LivenessError(message, "liveness_failed")
            if held.used:
                raise LivenessError(f"liveness session {session_id!r} was used already", "liveness_failed")
            if time.monotonic() - held.passed_at > self.claim_s:
                raise LivenessError(
                    f"liveness session {session_id!r} passed over {self.claim_s:g} s ago; run a new one",
                    "liveness_failed",
                )
            held.used = True  # single use, even if the upload then does not match
            return held.session.template

    def check_face(self, template: np.ndarray, embedding: np.ndarray | None, source: str) -> None:
        """LivenessError("liveness_mismatch") unless ``embedding`` is the session's face."""
        if embedding is None:
            raise LivenessError(f"{source}: no face to compare with the liveness session's", "liveness_mismatch")
        sim = float(np.dot(template, embedding))
        if sim < self.config.continuity:
            raise LivenessError(
                f"{source}: the face is not the one that passed the liveness challenge "
                f"(similarity {sim:.3f} < {self.config.continuity:.3f})",
                "liveness_mismatch",
            )


__all__ = ["MAX_FRAME_LAG_S", "Held", "LivenessSessions"]
