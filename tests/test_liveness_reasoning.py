"""Advisory liveness reasoning by a VLM, against the scripted OpenAI-compatible server of test_vlm (no model)."""

from __future__ import annotations

import base64
import io
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from PIL import Image

from faceprint.liveness.reasoning import (
    ATTACK_TYPES,
    CUES,
    MAX_SIDE,
    MAX_TOKENS,
    PROMPT,
    BestViews,
    LivenessReasoner,
    Reasoning,
    parse_judgement,
    reasoning_image,
)

from .conftest import faceprint
from .test_vlm import ScriptedVLM, completion, free_port, send, slow

FAST = {"timeout_s": 2.0, "retries": 1, "backoff_s": 0.01}
SCREEN = {
    "verdict": "attack",
    "attack_type": "screen_replay",
    "reasons": [
        {"cue": "moire", "observation": "a fine grid pattern over the cheeks"},
        {"cue": "screen_edge", "observation": "a black bezel at the left edge"},
    ],
}
LIVE = {"verdict": "live", "attack_type": "none", "reasons": [{"cue": "depth", "observation": "natural shadows"}]}


def answer(content: str, finish: str = "stop") -> Callable[..., None]:
    return lambda server, handler, body, count: send(handler, 200, completion(content, finish))


BEHAVIOURS: dict[str, Callable[..., None]] = {
    "screen": answer(json.dumps(SCREEN)),
    "live": answer(json.dumps(LIVE)),
    "fenced": answer("Here is my assessment:\n```json\n" + json.dumps(SCREEN, indent=2) + "\n```\nHope it helps."),
    "prose": answer("Looking closely, " + json.dumps(LIVE) + " -- the face looks real."),
    "off-list": answer(json.dumps({**SCREEN, "attack_type": "deepfake"})),
    "inconsistent": answer(json.dumps({**LIVE, "attack_type": "print"})),
    "not-json": answer("This is clearly a printed photo held up to the camera."),
    "cut": answer('{"verdict": "attack", "attack_type": "print", "reasons": [{"cue": "paper_bor', finish="length"),
    "down": lambda server, handler, body, count: send(handler, 503, b"busy"),
    "slow": slow,
}


@pytest.fixture()
def server() -> Iterator[ScriptedVLM]:
    vlm = ScriptedVLM(BEHAVIOURS)
    vlm.models = ["screen"]
    vlm.thread.start()
    yield vlm
    vlm.release.set()
    vlm.httpd.shutdown()
    vlm.httpd.server_close()


def reasoner(server: ScriptedVLM, model: str, **kwargs: Any) -> LivenessReasoner:
    return LivenessReasoner(server.url, model, **{**FAST, **kwargs})


def frame(h: int = 480, w: int = 640) -> np.ndarray:
    """A frame whose columns carry their index (red) and rows theirs (green), so a crop shows where it came from."""
    image = np.zeros((h, w, 3), np.uint8)
    image[..., 0] = (np.arange(w) % 256)[None, :]
    image[..., 1] = (np.arange(h) % 256)[:, None]
    return image


# -- the prompt and the parser --------------------------------------------------------------------


def test_prompt_names_the_closed_lists_and_asks_for_json_only() -> None:
    for name in ATTACK_TYPES + CUES:
        assert f'"{name}"' in PROMPT or f"- {name}:" in PROMPT, name
    assert "one JSON object and nothing else" in PROMPT
    assert '"verdict"' in PROMPT and '"attack_type"' in PROMPT and '"reasons"' in PROMPT


@pytest.mark.parametrize(
    "text",
    [
        json.dumps(SCREEN),
        "```json\n" + json.dumps(SCREEN) + "\n```",
        "```\n" + json.dumps(SCREEN, indent=2) + "\n```",
        "My answer: " + json.dumps(SCREEN) + ". The {bezel} is obvious.",
        # an echoed answer template is not JSON; the real answer after it counts
        'Format: {"verdict": "live" | "attack"}\nAnswer: ' + json.dumps(SCREEN),
        # the same answer twice is one answer
        json.dumps(SCREEN) + "\n" + json.dumps(SCREEN),
    ],
)
def test_the_answer_is_found_alone_in_a_fence_or_in_prose(text: str) -> None:
    judgement = parse_judgement(text)
    assert (judgement.verdict, judgement.attack_type) == ("attack", "screen_replay")
    assert [(r.cue, r.observation) for r in judgement.reasons] == [
        ("moire", "a fine grid pattern over the cheeks"),
        ("screen_edge", "a black bezel at the left edge"),
    ]


def test_names_are_read_whatever_their_case_and_separators() -> None:
    text = json.dumps(
        {
            "verdict": " Attack",
            "attack_type": "Cut-out",
            "reasons": [{"cue": "Color banding", "observation": "  stepped\n colours "}],
            "confidence": 0.9,  # extra keys are ignored
        }
    )
    judgement = parse_judgement(text)
    assert (judgement.verdict, judgement.attack_type) == ("attack", "cutout")
    assert judgement.reasons[0].cue == "colour_banding" and judgement.reasons[0].observation == "stepped colours"


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("", "no JSON object"),
        ("It is a print.", "no JSON object"),
        ('{"verdict": "attack", "attack_type": "print"', "no JSON object"),  # cut
        ('{"attack_type": "print"}', "no JSON object"),  # no verdict
        (json.dumps({**SCREEN, "attack_type": "deepfake"}), "attack_type"),
        (json.dumps({**SCREEN, "verdict": "spoof"}), "verdict"),
        (json.dumps({**LIVE, "attack_type": "print"}), "verdict live with attack_type print"),
        (json.dumps({**SCREEN, "attack_type": "none"}), "verdict attack with attack_type none"),
        (json.dumps({**SCREEN, "reasons": []}), "without reasons"),
        (json.dumps({**SCREEN, "reasons": [{"cue": "vibes", "observation": "x"}]}), "cue"),
        (json.dumps({**SCREEN, "reasons": [{"cue": "moire", "observation": ""}]}), "observation"),
        (json.dumps({**SCREEN, "reasons": "moire"}), "reasons"),
        (json.dumps(SCREEN) + " or maybe " + json.dumps(LIVE), "2 different JSON answers"),
    ],
)
def test_bad_answers_are_refused_with_the_reason(text: str, said: str) -> None:
    with pytest.raises(ValueError, match=said):
        parse_judgement(text)


def test_an_unknown_verdict_needs_no_reasons() -> None:
    judgement = parse_judgement('{"verdict": "unknown", "attack_type": "unknown", "reasons": []}')
    assert (judgement.verdict, judgement.attack_type, judgement.reasons) == ("unknown", "unknown", [])


# -- the image ------------------------------------------------------------------------------------


def test_the_face_is_shown_with_its_surroundings() -> None:
    image = frame()
    crop = reasoning_image(image, (300, 200, 340, 250))  # 40 x 50 box, enlarged 4x about its centre
    assert crop.shape == (201, 161, 3)
    assert crop[0, 0, 0] == 240 and crop[0, 0, 1] == 125  # top-left corner: x 240, y 125
    whole = reasoning_image(frame(3000, 2000))
    assert whole.shape == (MAX_SIDE, round(2000 * MAX_SIDE / 3000), 3)


@pytest.mark.parametrize("box", [(10, 10, 10, 40), (700, 10, 760, 60), (-50, -50, -10, -10)])
def test_a_box_outside_the_image_is_refused(box: tuple[int, int, int, int]) -> None:
    with pytest.raises(ValueError, match="face box"):
        reasoning_image(frame(), box)


def test_best_views_keep_each_tracks_largest_detected_face_in_rgb() -> None:
    views = BestViews()

    def view(track_id: int, box: tuple[int, int, int, int], detected: bool = True) -> SimpleNamespace:
        return SimpleNamespace(track_id=track_id, box=box, detected=detected)

    bgr = frame()[..., ::-1].copy()
    views.update(SimpleNamespace(image=bgr, tracks=[view(1, (100, 100, 140, 150)), view(2, (10, 10, 30, 30))]))
    views.update(SimpleNamespace(image=bgr, tracks=[view(1, (296, 195, 344, 255)), view(2, (0, 0, 200, 200), False)]))
    views.update(SimpleNamespace(image=bgr, tracks=[view(1, (400, 300, 420, 320))]))  # smaller: ignored
    crop = views.crop(1)
    assert crop is not None and np.array_equal(crop, reasoning_image(frame(), (296, 195, 344, 255)))
    assert views.crop(2) is not None and views.crop(2).shape[0] < 100  # the predicted big box did not count
    assert views.crop(3) is None


# -- the protocol ---------------------------------------------------------------------------------


def test_request_carries_the_prompt_and_the_image(server: ScriptedVLM) -> None:
    result = reasoner(server, "screen").reason(frame(), (300, 200, 340, 250))
    assert result.error is None
    (body,) = server.requests
    assert body["model"] == "screen" and body["temperature"] == 0 and body["max_tokens"] == MAX_TOKENS
    (message,) = body["messages"]
    text, image = message["content"]
    assert text == {"type": "text", "text": PROMPT}
    prefix, data = image["image_url"]["url"].split(",", 1)
    assert image["type"] == "image_url" and prefix == "data:image/jpeg;base64"
    sent = Image.open(io.BytesIO(base64.b64decode(data)))
    assert sent.format == "JPEG" and sent.size == (161, 201)


@pytest.mark.parametrize(
    ("model", "verdict", "attack_type", "cues"),
    [
        ("screen", "attack", "screen_replay", ["moire", "screen_edge"]),
        ("live", "live", "none", ["depth"]),
        ("fenced", "attack", "screen_replay", ["moire", "screen_edge"]),
        ("prose", "live", "none", ["depth"]),
    ],
)
def test_good_answers(server: ScriptedVLM, model: str, verdict: str, attack_type: str, cues: list[str]) -> None:
    result = reasoner(server, model).reason(frame())
    assert (result.verdict, result.attack_type, result.error) == (verdict, attack_type, None)
    body = result.to_dict()
    assert [r["cue"] for r in body["reasons"]] == cues
    assert body["backend"] == f"vlm:{model}" and body["advisory"] is True
    assert set(body) == {"verdict", "attack_type", "reasons", "backend", "error", "advisory"}


@pytest.mark.parametrize(
    ("model", "said"),
    [
        ("off-list", "attack_type"),
        ("inconsistent", "verdict live with attack_type print"),
        ("not-json", "no JSON object"),
        ("cut", f"answer cut at {MAX_TOKENS} tokens"),
        ("down", "HTTP 503: busy"),
    ],
)
def test_bad_answers_and_errors_are_unknown_with_the_error_kept(server: ScriptedVLM, model: str, said: str) -> None:
    result = reasoner(server, model).reason(frame())
    assert (result.verdict, result.attack_type, result.reasons) == ("unknown", "unknown", ())
    assert result.error is not None and said in result.error
    assert result.to_dict()["error"] == result.error


def test_a_timeout_is_unknown_within_the_time_bound(server: ScriptedVLM) -> None:
    start = time.monotonic()
    result = reasoner(server, "slow", timeout_s=0.3, retries=1).reason(frame())
    assert time.monotonic() - start < 0.3 * 2 + 1.0
    assert result.verdict == "unknown" and "no answer within 0.3 s" in (result.error or "")
    assert server.counts["slow"] == 2  # a timeout is retried, as for expressions


def test_an_unreachable_server_is_unknown_not_an_exception() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    result = LivenessReasoner(url, "m", retries=0).reason(frame())
    assert result == Reasoning("unknown", "unknown", (), "vlm:m", result.error)
    assert result.error is not None and "cannot reach the VLM server at " + url in result.error


# -- the CLI --------------------------------------------------------------------------------------


def test_cli_usage_errors(tmp_path: Path) -> None:
    photo = tmp_path / "face.jpg"
    Image.fromarray(frame()).save(photo)
    url = f"http://127.0.0.1:{free_port()}/v1"
    cases = [
        (["--reason"], "--reason needs --vlm-url"),
        (["--vlm-url", url], "go with --reason"),
        (["--reason", "--vlm-url", url, "--vlm-model", "m", "--challenge", "blink"], "not with --challenge"),
        (["--reason", "--vlm-url", "127.0.0.1:1/v1", "--vlm-model", "m"], "not an http(s) URL"),
        (["--reason", "--vlm-url", url, "--vlm-model", "m"], "cannot reach the VLM server at " + url),
    ]
    for args, said in cases:
        proc = faceprint(tmp_path / "g.db", "liveness", *args, str(photo))
        assert proc.returncode == 2, (args, proc.stderr)
        assert said in " ".join(proc.stderr.split()) and "Traceback" not in proc.stderr, (args, proc.stderr)


def test_cli_reasons_about_a_photo_without_changing_the_decision(
    tmp_path: Path, data_dir: Path, server: ScriptedVLM
) -> None:
    photo = str(data_dir / "antispoof_minifasnet" / "sample" / "image_T1.jpg")
    plain = json.loads(faceprint(tmp_path / "g.db", "liveness", "--json", photo, check=True).stdout)
    # the server's only model ("screen") is taken when --vlm-model is not given
    proc = faceprint(tmp_path / "g.db", "liveness", "--json", "--reason", "--vlm-url", server.url, photo, check=True)
    body = json.loads(proc.stdout)
    assert body.pop("reasoning") == {
        "verdict": "attack",
        "attack_type": "screen_replay",
        "reasons": SCREEN["reasons"],
        "backend": "vlm:screen",
        "error": None,
        "advisory": True,
    }
    assert body == plain and plain["live"] is True  # advisory: a live face stays live whatever the VLM says
    (request,) = server.requests
    url = request["messages"][0]["content"][1]["image_url"]["url"]
    assert Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).size[0] > 80  # the face with context

    server.models = ["screen", "live"]
    many = faceprint(tmp_path / "g.db", "liveness", "--reason", "--vlm-url", server.url, photo)
    assert many.returncode == 2 and "give --vlm-model" in many.stderr and "screen, live" in many.stderr
    text = faceprint(
        tmp_path / "g.db", "liveness", "--reason", "--vlm-url", server.url, "--vlm-model", "live", photo, check=True
    )
    assert "advisory, NOT part of the live decision" in text.stdout and "depth: natural shadows" in text.stdout


def test_cli_reasons_about_the_longest_track_of_a_video(tmp_path: Path, data_dir: Path, server: ScriptedVLM) -> None:
    clip = str(data_dir / "videos" / "face_recognition_short_hamilton_clip.mp4")
    args = ("liveness", "--json", "--max-frames", "30", clip)
    plain = json.loads(faceprint(tmp_path / "g.db", *args, check=True).stdout)
    reasoned = faceprint(
        tmp_path / "g.db", *args, "--reason", "--vlm-url", server.url, "--vlm-model", "live", check=True
    )
    body = json.loads(reasoned.stdout)
    assert body.pop("reasoning")["verdict"] == "live"
    assert body["live"] == plain["live"] and [t["track_id"] for t in body["tracks"]] == [
        t["track_id"] for t in plain["tracks"]
    ]
    (request,) = server.requests  # one question, about the longest track's largest view
    url = request["messages"][0]["content"][1]["image_url"]["url"]
    sent = np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))))
    assert min(sent.shape[:2]) > 80 and max(sent.shape[:2]) <= MAX_SIDE
