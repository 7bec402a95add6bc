"""Advisory liveness reasoning by a local VLM: live capture or presentation attack, which attack, and why.

The FaceShield idea: a multimodal model looks at the face with what surrounds it, judges its
authenticity, names the attack type from a closed list and gives the visual cues behind its answer.
The question goes to the same OpenAI-compatible chat endpoint as the VLM expression backend
(:class:`faceprint.analyze.vlm.VLMClient`: Ollama, llama.cpp's ``llama-server``, vLLM on localhost),
with the same retries, timeouts and error reporting.

**Advisory only.** The answer is never part of the live decision (:mod:`faceprint.liveness.decide`):
it is shown next to it, for a person to read. No accuracy is claimed: no VLM runs in faceprint's
tests or benchmarks, and a model that has not been measured on presentation attacks may be
confidently wrong.

The model must answer one JSON object (:data:`ANSWER_FORMAT`); :func:`parse_judgement` finds it even
when wrapped in prose or a code fence and validates it with pydantic (closed lists, a verdict that
agrees with the attack type). Anything else -- no answer, a cut answer, invalid JSON, values off the
lists -- gives :data:`UNKNOWN` with the reason kept in ``error``, never a guess.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from typing import Any, Literal, get_args

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from faceprint.analyze.vlm import VLMCheck, VLMClient, VLMRequestError, VLMUnreachableError
from faceprint.liveness.passive import Box, patch_box

log = logging.getLogger(__name__)

Verdict = Literal["live", "attack", "unknown"]
AttackType = Literal["none", "print", "screen_replay", "mask", "cutout", "unknown"]
Cue = Literal[
    "moire", "screen_edge", "paper_border", "glare", "flatness", "colour_banding", "depth", "skin_texture", "other"
]
VERDICTS: tuple[str, ...] = get_args(Verdict)
ATTACK_TYPES: tuple[str, ...] = get_args(AttackType)
CUES: tuple[str, ...] = get_args(Cue)
UNKNOWN = "unknown"

#: room for the JSON object with a few short reasons; an answer cut here is unknown
MAX_TOKENS = 400
MAX_REASONS = 5
#: an observation longer than this is cut (it is a note for a person, not evidence)
MAX_OBSERVATION_CHARS = 200
#: the face box enlarged like MiniFASNetV1SE's patch, so a screen's bezel or a paper's edge is in view
CONTEXT_SCALE = 4.0
#: longest side of the image sent (enough detail for moire and texture, bounded request size)
MAX_SIDE = 1024

ANSWER_FORMAT = (
    '{"verdict": "live" | "attack" | "unknown", '
    '"attack_type": "none" | "print" | "screen_replay" | "mask" | "cutout" | "unknown", '
    '"reasons": [{"cue": "<one cue name from the list>", "observation": "<what you see, at most 20 words>"}]}'
)

PROMPT = f"""You are a face anti-spoofing examiner. Decide whether the face in this image is a live person \
in front of the camera or a presentation attack, name the attack type, and give the visual cues behind your answer.

Attack types:
- print: a photo printed on paper or card held up to the camera
- screen_replay: a photo or video shown on a phone, tablet or monitor
- mask: a 3D mask (paper, latex, silicone, resin) worn or held
- cutout: a printed face with holes cut out, or cut to the face's outline and held up
Use "none" for a live face and "unknown" when you cannot tell the kind.

Cues (use these names):
- moire: interference patterns or a pixel grid over the face
- screen_edge: the edge, frame or bezel of a screen
- paper_border: the edge or corner of a sheet of paper or card, fingers holding it
- glare: specular reflection on glass or glossy paper
- flatness: no 3D relief; the face lies flat like a card
- colour_banding: stepped colours, refresh bands, washed-out or shifted colours
- depth: natural 3D relief, shadows and parallax (evidence of a live face)
- skin_texture: pores and fine skin detail (live), or print dots, smoothing or pixels (attack)
- other: anything else, said in the observation

Answer with one JSON object and nothing else:
{ANSWER_FORMAT}
Rules: verdict "live" goes with attack_type "none"; verdict "attack" goes with print, screen_replay, mask, \
cutout, or unknown when the kind is unclear; when you cannot tell, answer verdict "unknown" and attack_type \
"unknown". Give 1 to 4 reasons."""

# the spellings models use for names on the lists (after lower-casing and joining words with "_")
_ALIASES = {
    "cut_out": "cutout",
    "screen": "screen_replay",
    "replay": "screen_replay",
    "printed_photo": "print",
    "color_banding": "colour_banding",
    "screen_edges": "screen_edge",
    "bezel": "screen_edge",
    "paper_edge": "paper_border",
}


def _name(value: Any) -> Any:
    """'Screen replay', 'screen-replay' and 'SCREEN_REPLAY' all read as screen_replay; not strings pass on."""
    if not isinstance(value, str):
        return value
    name = re.sub(r"[\s\-]+", "_", value.strip().casefold())
    return _ALIASES.get(name, name)


class Reason(BaseModel):
    """One cue the model saw, and what it saw."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    cue: Cue
    observation: str = Field(min_length=1)

    @field_validator("cue", mode="before")
    @classmethod
    def _cue(cls, value: Any) -> Any:
        return _name(value)

    @field_validator("observation", mode="before")
    @classmethod
    def _observation(cls, value: Any) -> Any:
        if isinstance(value, str):
            return " ".join(value.split())[:MAX_OBSERVATION_CHARS]
        return value


class Judgement(BaseModel):
    """The answer the model must give (:data:`ANSWER_FORMAT`), validated: names from the closed
    lists, a verdict that agrees with the attack type, and reasons for any live/attack verdict.
    Extra keys (a "confidence" the model adds) are ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    verdict: Verdict
    attack_type: AttackType
    reasons: list[Reason] = Field(default_factory=list, max_length=MAX_REASONS)

    @field_validator("verdict", "attack_type", mode="before")
    @classmethod
    def _names(cls, value: Any) -> Any:
        return _name(value)

    @model_validator(mode="after")
    def _consistent(self) -> Judgement:
        if self.verdict == "live" and self.attack_type != "none":
            raise ValueError(f"verdict live with attack_type {self.attack_type}")
        if self.verdict == "attack" and self.attack_type == "none":
            raise ValueError("verdict attack with attack_type none")
        if self.verdict == UNKNOWN and self.attack_type not in (UNKNOWN, "none"):
            raise ValueError(f"verdict unknown with attack_type {self.attack_type}")
        if self.verdict != UNKNOWN and not self.reasons:
            raise ValueError(f"verdict {self.verdict} without reasons")
        return self


@dataclass(frozen=True)
class Reasoning:
    """What the VLM said about one face: ``verdict`` (live, attack or unknown), ``attack_type``
    (:data:`ATTACK_TYPES`), its ``reasons``, the ``backend`` (``vlm:<model>``) and, when the verdict
    is unknown because no valid answer came, the ``error`` saying why. Advisory, never the decision."""

    verdict: str
    attack_type: str
    reasons: tuple[Reason, ...]
    backend: str
    error: str | None = None

    @classmethod
    def failed(cls, backend: str, error: str) -> Reasoning:
        return cls(UNKNOWN, UNKNOWN, (), backend, error)

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "attack_type": self.attack_type,
            "reasons": [reason.model_dump() for reason in self.reasons],
            "backend": self.backend,
            "error": self.error,
            "advisory": True,  # said in every output: this field never decides "live"
        }


def _json_objects(text: str) -> list[Any]:
    """Every top-level JSON value that starts with '{' in ``text``, in order (prose around it ignored)."""
    decoder = json.JSONDecoder()
    found: list[Any] = []
    at = text.find("{")
    while at != -1:
        try:
            value, end = decoder.raw_decode(text, at)
        except ValueError:
            at = text.find("{", at + 1)
            continue
        found.append(value)
        at = text.find("{", end)
    return found


def parse_judgement(text: str) -> Judgement:
    """The :class:`Judgement` in a model's answer: the one JSON object with a "verdict" key, alone, in a
    code fence, or among prose. Raises ``ValueError`` (pydantic's ValidationError is one) when there is
    none, when there are several that disagree, or when it does not validate."""
    answers = [value for value in _json_objects(text) if isinstance(value, dict) and "verdict" in value]
    if not answers:
        raise ValueError("no JSON object with a verdict in the answer")
    if any(answer != answers[0] for answer in answers[1:]):
        raise ValueError(f"{len(answers)} different JSON answers")
    return Judgement.model_validate(answers[0])


def reasoning_image(image_rgb: np.ndarray, box: Box | None = None) -> np.ndarray:
    """What the model is shown: the face ``box`` (left, top, right, bottom) enlarged :data:`CONTEXT_SCALE`
    times (as the passive model's wider patch), or the whole image without a box, scaled down to at most
    :data:`MAX_SIDE` pixels on its longest side. RGB uint8 in, RGB uint8 out."""
    image = np.asarray(image_rgb)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3 or 0 in image.shape:
        raise ValueError(f"reasoning needs an (H, W, 3) uint8 image, got {image.dtype} {image.shape}")
    h, w = image.shape[:2]
    if box is not None:
        left, top, right, bottom = (int(v) for v in box)
        if right <= left or bottom <= top or right <= 0 or bottom <= 0 or left >= w or top >= h:
            raise ValueError(f"face box {(left, top, right, bottom)} is empty or outside the {w}x{h} image")
        x0, y0, x1, y1 = patch_box(w, h, (left, top, right, bottom), CONTEXT_SCALE)
        image = image[max(y0, 0) : y1 + 1, max(x0, 0) : x1 + 1]
    scale = MAX_SIDE / max(image.shape[:2])
    if scale < 1:
        size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(image)


class LivenessReasoner:
    """Asks a VLM at ``url`` (an OpenAI-compatible API base, e.g. ``http://127.0.0.1:11434/v1``) under
    the name ``model`` for an advisory :class:`Reasoning` about one face. The server arguments are
    :class:`~faceprint.analyze.vlm.VLMClient`'s; the default timeout is longer than the expression
    backend's, as the answer is a paragraph, not a word."""

    def __init__(
        self,
        url: str,
        model: str,
        timeout_s: float = 60.0,
        retries: int = 1,
        api_key: str | None = None,
        *,
        backoff_s: float = 0.5,
    ) -> None:
        self.client = VLMClient(url, model, timeout_s, retries, 1, api_key, backoff_s=backoff_s)
        self.backend = self.client.backend

    def check(self) -> VLMCheck:
        """Whether the server is there and lists the model (see :meth:`VLMClient.check`)."""
        return self.client.check()

    def reason(self, image_rgb: np.ndarray, box: Box | None = None) -> Reasoning:
        """The model's judgement of the face at ``box`` in ``image_rgb`` (the whole image without a
        box). Every failure -- unreachable server, timeout, HTTP error, a cut, malformed or invalid
        answer -- gives an unknown :class:`Reasoning` with ``error`` set; a bad image or box raises
        ``ValueError`` before anything is sent."""
        image = reasoning_image(image_rgb, box)
        try:
            text, finish = self.client.chat(PROMPT, image, MAX_TOKENS)
        except VLMRequestError as failure:
            self.client.warn(failure, "liveness reasoning unknown")
            return Reasoning.failed(self.backend, failure.detail)
        except VLMUnreachableError as error:
            return Reasoning.failed(self.backend, str(error))
        if finish == "length":  # a cut JSON object might have said anything
            return Reasoning.failed(self.backend, f"answer cut at {MAX_TOKENS} tokens")
        try:
            judgement = parse_judgement(text)
        except ValidationError as error:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'answer'}: {e['msg']}" for e in error.errors())
            return self._invalid(text, f"invalid answer ({problems})")
        except ValueError as error:
            return self._invalid(text, str(error))
        return Reasoning(judgement.verdict, judgement.attack_type, tuple(judgement.reasons), self.backend)

    def _invalid(self, text: str, error: str) -> Reasoning:
        log.info("VLM %s answered %r: %s; liveness reasoning unknown", self.backend, text[:300], error)
        return Reasoning.failed(self.backend, error)


class BestViews:
    """The context crop (:func:`reasoning_image`) of each track's largest detector-confirmed face,
    collected while a video is checked (:meth:`update` as ``on_frame`` of
    :meth:`~faceprint.liveness.decide.LivenessChecker.check_video`) or offered for a photo's faces, so
    the model can be asked about a track after it ended without keeping frames. Holds one small RGB
    crop per track."""

    def __init__(self) -> None:
        self._best: dict[int, tuple[int, np.ndarray]] = {}

    def offer(self, track_id: int, image: np.ndarray, box: Box, *, bgr: bool) -> None:
        """Keep the crop of ``box`` in ``image`` (BGR, or RGB with ``bgr=False``) when it is the track's
        largest view so far; a box outside the image is ignored."""
        left, top, right, bottom = (int(v) for v in box)
        area = (right - left) * (bottom - top)
        if area <= self._best.get(track_id, (0,))[0]:
            return
        try:  # crop first, then BGR -> RGB: only the crop is copied
            crop = reasoning_image(image, box)
        except ValueError:
            return
        self._best[track_id] = (area, np.ascontiguousarray(crop[..., ::-1]) if bgr else crop)

    def update(self, result: Any) -> None:
        """Offer the detector-confirmed views of a :class:`~faceprint.video.pipeline.FrameResult` (BGR)."""
        for view in result.tracks:
            if view.detected:
                self.offer(view.track_id, result.image, view.box, bgr=True)

    def crop(self, track_id: int) -> np.ndarray | None:
        """The RGB context crop of the track's largest view, or None when it had none."""
        best = self._best.get(track_id)
        return None if best is None else best[1]
