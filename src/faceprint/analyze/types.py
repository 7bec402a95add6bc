"""What face analysis says about one face (shared by every analyser and front end)."""

from __future__ import annotations

from dataclasses import dataclass, field

#: the 7 classes of the built-in expression model (fer's), in its output order
EXPRESSIONS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
#: what a backend answers when it cannot tell (a VLM's answer off the list, a timeout)
UNKNOWN = "unknown"


@dataclass(frozen=True)
class Expression:
    """``label`` is one of :data:`EXPRESSIONS` or :data:`UNKNOWN`; ``scores`` maps labels to
    probabilities (empty when the backend gives none)."""

    label: str
    scores: dict[str, float] = field(default_factory=dict)
    backend: str = ""


@dataclass(frozen=True)
class Pose:
    """Head pose in degrees: yaw (left/right, + = the subject's left), pitch (+ = up), roll."""

    yaw: float
    pitch: float
    roll: float
