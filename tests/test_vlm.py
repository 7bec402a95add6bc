"""The VLM expression backend against a scripted OpenAI-compatible server on 127.0.0.1 (no model)."""

from __future__ import annotations

import base64
import io
import json
import logging
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import pytest
from PIL import Image

from faceprint.analyze.types import EXPRESSIONS, UNKNOWN, Expression
from faceprint.analyze.vlm import (
    MAX_TOKENS,
    VLMExpressionClassifier,
    VLMUnreachableError,
    build_question,
    parse_answer,
)

LOGGER = "faceprint.analyze.vlm"
FAST = {"timeout_s": 2.0, "retries": 2, "backoff_s": 0.01}


class ScriptedVLM:
    """An OpenAI-style chat server whose answer is scripted by the request's model name (a key of
    ``behaviours``, by default :data:`BEHAVIOURS`); it records every request and the most requests it
    ever had in flight at once."""

    def __init__(self, behaviours: dict[str, Callable[..., None]] | None = None) -> None:
        self.behaviours = BEHAVIOURS if behaviours is None else behaviours
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.counts: Counter[str] = Counter()
        self.in_flight = 0
        self.max_in_flight = 0
        self.lock = threading.Lock()
        self.release = threading.Event()  # ends the slow behaviours at teardown
        self.models = ["llava:latest", "word", "qwen2.5vl:7b"]
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep pytest's output clean
                pass

            def do_GET(self) -> None:
                if self.path == "/v1/models":
                    send(self, 200, {"object": "list", "data": [{"id": m, "object": "model"} for m in server.models]})
                elif self.path == "/bad/v1/models":
                    send(self, 200, {"models": "not a list"})
                else:
                    send(self, 404, {"error": {"message": "not found"}})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server.lock:
                    server.requests.append(body)
                    server.headers.append(dict(self.headers))
                    server.counts[body["model"]] += 1
                    count = server.counts[body["model"]]
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                self.answered = lambda: answered(server, self)  # type: ignore[attr-defined]
                try:
                    if self.path != "/v1/chat/completions":
                        send(self, 404, {"error": {"message": f"no route {self.path}"}})
                    else:
                        server.behaviours[body["model"]](server, self, body, count)
                finally:
                    answered(server, self)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)

    def classifier(self, model: str, **kwargs: Any) -> VLMExpressionClassifier:
        return VLMExpressionClassifier(self.url, model, **{**FAST, **kwargs})


def answered(server: Any, handler: BaseHTTPRequestHandler) -> None:
    """A request stops counting as in flight once its answer starts: a client may send its next
    request as soon as it has read this one's, before this handler's thread has returned."""
    with server.lock:
        if not getattr(handler, "done", False):
            handler.done = True  # type: ignore[attr-defined]
            server.in_flight -= 1


def send(handler: BaseHTTPRequestHandler, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
    if hasattr(handler, "answered"):
        handler.answered()
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    for name, value in (headers or {}).items():
        handler.send_header(name, value)
    handler.end_headers()
    handler.wfile.write(data)


def completion(content: Any, finish: str = "stop") -> dict[str, Any]:
    message = {"role": "assistant", "content": content}
    return {"object": "chat.completion", "choices": [{"index": 0, "message": message, "finish_reason": finish}]}


def answer(content: Any, finish: str = "stop") -> Callable[..., None]:
    return lambda server, handler, body, count: send(handler, 200, completion(content, finish))


def fails_once(status: int, then: str) -> Callable[..., None]:
    """Answers ``status`` to the first request, then ``then``."""

    def behaviour(server: ScriptedVLM, handler: BaseHTTPRequestHandler, body: dict[str, Any], count: int) -> None:
        if count == 1:
            send(handler, status, {"error": {"message": "model is loading"}})
        else:
            send(handler, 200, completion(then))

    return behaviour


def slow(server: ScriptedVLM, handler: BaseHTTPRequestHandler, body: dict[str, Any], count: int) -> None:
    server.release.wait(5)
    send(handler, 200, completion("happy"))


def drip(server: ScriptedVLM, handler: BaseHTTPRequestHandler, body: dict[str, Any], count: int) -> None:
    """Headers at once, then the body a byte at a time: each read is quick, the whole is not."""
    data = json.dumps(completion("happy")).encode()
    handler.send_response(200)
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    for byte in data:
        if server.release.wait(0.05):
            return
        handler.wfile.write(bytes([byte]))
        handler.wfile.flush()


def auth(server: ScriptedVLM, handler: BaseHTTPRequestHandler, body: dict[str, Any], count: int) -> None:
    if handler.headers.get("Authorization") != "Bearer sekrit":
        send(handler, 401, {"error": {"message": "invalid api key"}})
    else:
        send(handler, 200, completion("neutral"))


def by_image(server: ScriptedVLM, handler: BaseHTTPRequestHandler, body: dict[str, Any], count: int) -> None:
    """Answers the option whose index is the image's grey level / 30, after a pause (so requests overlap)."""
    url = body["messages"][0]["content"][1]["image_url"]["url"]
    pixels = np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))))
    time.sleep(0.15)
    send(handler, 200, completion(EXPRESSIONS[round(float(pixels.mean()) / 30)]))


def hang_up(server: ScriptedVLM, handler: BaseHTTPRequestHandler, body: dict[str, Any], count: int) -> None:
    handler.close_connection = True  # no status line at all


BEHAVIOURS: dict[str, Callable[..., None]] = {
    "word": answer("Happy."),
    "letter": answer("E"),
    "letter-word": answer("**D) happy**"),
    "parts": answer([{"type": "text", "text": "neutral"}]),
    "off-list": answer("joyful"),
    "ambiguous": answer("I think happy or sad"),
    "cut": answer("happy", finish="length"),
    "not-json": lambda server, handler, body, count: send(handler, 200, b"{not json"),
    "no-choices": lambda server, handler, body, count: send(handler, 200, {"object": "chat.completion"}),
    "gone": lambda server, handler, body, count: send(
        handler, 404, {"error": {"message": 'model "gone" not found, try pulling it first'}}
    ),
    "moved": lambda server, handler, body, count: send(handler, 307, b"", {"Location": "https://elsewhere/v1"}),
    "down": lambda server, handler, body, count: send(handler, 503, b"busy"),
    "flaky": fails_once(500, "surprise"),
    "throttled": fails_once(429, "fear"),
    "slow": slow,
    "drip": drip,
    "auth": auth,
    "by-image": by_image,
    "hang-up": hang_up,
}


@pytest.fixture()
def server() -> Iterator[ScriptedVLM]:
    vlm = ScriptedVLM()
    vlm.thread.start()
    yield vlm
    vlm.release.set()
    vlm.httpd.shutdown()
    vlm.httpd.server_close()


def face(level: int = 128) -> np.ndarray:
    return np.full((64, 48, 3), level, np.uint8)


def free_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- the parser ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("happy", "happy"),
        ("Happy.", "happy"),
        ("  HAPPY!\n", "happy"),
        ("**happy**", "happy"),
        ('"sad"', "sad"),
        ("D", "happy"),
        ("(d)", "happy"),
        ("g.", "neutral"),
        ("D) happy", "happy"),
        ("happy (D)", "happy"),
        ("A: angry", "angry"),
        ("I think happy or sad", UNKNOWN),
        ("happy or sad", UNKNOWN),
        ("happy, sad", UNKNOWN),
        ("D) sad", UNKNOWN),
        ("joyful", UNKNOWN),
        ("surprised", UNKNOWN),
        ("not happy", UNKNOWN),
        ("The answer is D", UNKNOWN),
        ("H", UNKNOWN),
        ("D E", UNKNOWN),
        ("", UNKNOWN),
        ("...", UNKNOWN),
    ],
)
def test_parser_takes_only_one_option_by_word_or_letter(text: str, label: str) -> None:
    assert parse_answer(text) == label


def test_question_lists_every_option_with_its_letter() -> None:
    question = build_question()
    for letter, label in zip("ABCDEFG", EXPRESSIONS, strict=True):
        assert f"{letter}) {label}" in question
    assert "exactly one" in question


def test_custom_labels_and_their_letters() -> None:
    labels = ("smiling", "not smiling")
    assert parse_answer("B", labels) == "not smiling"
    assert parse_answer("Not smiling.", labels) == "not smiling"
    assert parse_answer("smiling", labels) == "smiling"
    assert parse_answer("happy", labels) == UNKNOWN


@pytest.mark.parametrize(
    "labels", [("happy",), ("happy", "Happy!"), ("b", "happy"), ("happy", "unknown"), ("happy", "..."), ()]
)
def test_ambiguous_label_sets_are_refused(labels: tuple[str, ...]) -> None:
    with pytest.raises(ValueError):
        VLMExpressionClassifier("http://127.0.0.1:1/v1", "m", labels=labels)


@pytest.mark.parametrize("url", ["file:///etc/passwd", "127.0.0.1:11434/v1", "ftp://127.0.0.1/v1", "http://"])
def test_only_http_urls_are_taken(url: str) -> None:
    with pytest.raises(ValueError, match="http"):
        VLMExpressionClassifier(url, "m")


def test_full_endpoint_url_is_read_as_its_base() -> None:
    vlm = VLMExpressionClassifier("http://127.0.0.1:8080/v1/chat/completions/", "m")
    assert vlm.url == "http://127.0.0.1:8080/v1"
    assert vlm.backend == "vlm:m"


def test_a_face_must_be_an_rgb_uint8_array(server: ScriptedVLM) -> None:
    with pytest.raises(ValueError, match="uint8"):
        server.classifier("word").classify(np.zeros((8, 8, 3), np.float32))
    assert server.requests == []


# -- the protocol -------------------------------------------------------------------------------


def test_request_follows_the_chat_protocol(server: ScriptedVLM) -> None:
    result = server.classifier("word").classify(face(77))
    assert result == Expression("happy", {}, "vlm:word")
    (body,) = server.requests
    assert body["model"] == "word"
    assert body["temperature"] == 0 and body["max_tokens"] == MAX_TOKENS
    (message,) = body["messages"]
    assert message["role"] == "user"
    text, image = message["content"]
    assert text == {"type": "text", "text": build_question()}
    prefix, data = image["image_url"]["url"].split(",", 1)
    assert image["type"] == "image_url" and prefix == "data:image/jpeg;base64"
    sent = Image.open(io.BytesIO(base64.b64decode(data)))
    assert sent.format == "JPEG" and sent.size == (48, 64)
    assert abs(float(np.asarray(sent).mean()) - 77) < 2
    assert "Authorization" not in server.headers[0]


@pytest.mark.parametrize(
    ("model", "label"),
    [("word", "happy"), ("letter", "sad"), ("letter-word", "happy"), ("parts", "neutral")],
)
def test_answers_on_the_list(server: ScriptedVLM, model: str, label: str) -> None:
    assert server.classifier(model).classify(face()).label == label


@pytest.mark.parametrize("model", ["off-list", "ambiguous", "cut"])
def test_answers_off_the_list_are_unknown_without_retry(server: ScriptedVLM, model: str) -> None:
    assert server.classifier(model).classify(face()) == Expression(UNKNOWN, {}, f"vlm:{model}")
    assert server.counts[model] == 1


@pytest.mark.parametrize(("model", "said"), [("not-json", "not JSON"), ("no-choices", "not a chat completion")])
def test_malformed_replies_are_unknown_and_warned(
    server: ScriptedVLM, caplog: pytest.LogCaptureFixture, model: str, said: str
) -> None:
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert server.classifier(model).classify(face()).label == UNKNOWN
    assert server.counts[model] == 1
    assert said in caplog.text and server.url in caplog.text


@pytest.mark.parametrize(("model", "label"), [("flaky", "surprise"), ("throttled", "fear")])
def test_a_500_or_429_is_retried_then_answered(server: ScriptedVLM, model: str, label: str) -> None:
    assert server.classifier(model).classify(face()).label == label
    assert server.counts[model] == 2


def test_a_server_error_that_persists_is_unknown_after_the_retries(
    server: ScriptedVLM, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert server.classifier("down", retries=2).classify(face()).label == UNKNOWN
    assert server.counts["down"] == 3
    assert "HTTP 503: busy" in caplog.text


def test_a_slow_answer_is_unknown_within_the_time_bound(server: ScriptedVLM) -> None:
    vlm = server.classifier("slow", timeout_s=0.3, retries=1)
    start = time.monotonic()
    assert vlm.classify(face()).label == UNKNOWN
    assert time.monotonic() - start < 0.3 * 2 + 1.0
    assert server.counts["slow"] == 2  # a timeout is retried


def test_a_dripping_answer_cannot_stretch_the_timeout(server: ScriptedVLM) -> None:
    vlm = server.classifier("drip", timeout_s=0.5, retries=0)
    start = time.monotonic()
    assert vlm.classify(face()).label == UNKNOWN
    assert time.monotonic() - start < 1.5  # the whole body would take about 4 s


def test_a_401_is_unknown_not_retried_and_warned_once(server: ScriptedVLM, caplog: pytest.LogCaptureFixture) -> None:
    vlm = server.classifier("auth")
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert [e.label for e in vlm.classify_many([face(), face()])] == [UNKNOWN, UNKNOWN]
    assert server.counts["auth"] == 2
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "HTTP 401: invalid api key" in warnings[0].getMessage()


def test_the_api_key_is_sent_as_a_bearer_token(server: ScriptedVLM) -> None:
    assert server.classifier("auth", api_key="sekrit").classify(face()).label == "neutral"


def test_a_missing_model_is_unknown_with_the_servers_reason(
    server: ScriptedVLM, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert server.classifier("gone").classify(face()).label == UNKNOWN
    assert 'model "gone" not found' in caplog.text and "API base" in caplog.text


def test_a_redirect_is_not_followed(server: ScriptedVLM, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert server.classifier("moved").classify(face()).label == UNKNOWN
    assert server.counts["moved"] == 1 and "redirected to 'https://elsewhere/v1'" in caplog.text


def test_a_wrong_path_is_unknown_with_a_hint(server: ScriptedVLM, caplog: pytest.LogCaptureFixture) -> None:
    vlm = VLMExpressionClassifier(server.url.removesuffix("/v1"), "word", **FAST)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert vlm.classify(face()).label == UNKNOWN
    assert "HTTP 404" in caplog.text and "http://127.0.0.1:11434/v1" in caplog.text


def test_a_refused_connection_raises_one_error_naming_the_url() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    vlm = VLMExpressionClassifier(url, "m", timeout_s=2.0, retries=1, backoff_s=0.01)
    start = time.monotonic()
    with pytest.raises(VLMUnreachableError, match="cannot reach the VLM server at " + url) as caught:
        vlm.classify_many([face() for _ in range(5)])
    assert "2 attempt(s)" in str(caught.value)
    assert time.monotonic() - start < 3.0


def test_a_server_that_hangs_up_is_retried_then_unreachable(server: ScriptedVLM) -> None:
    with pytest.raises(VLMUnreachableError, match=server.url):
        server.classifier("hang-up", retries=1).classify(face())
    assert server.counts["hang-up"] == 2


def test_a_proxy_setting_is_not_used_for_a_local_server(server: ScriptedVLM, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{free_port()}")
    assert server.classifier("word").classify(face()).label == "happy"


# -- concurrency --------------------------------------------------------------------------------


def test_classify_many_keeps_order_and_the_concurrency_limit(server: ScriptedVLM) -> None:
    faces = [face(30 * i) for i in (3, 0, 6, 4, 1, 5)]
    results = server.classifier("by-image", max_concurrency=2).classify_many(faces)
    assert [e.label for e in results] == [EXPRESSIONS[i] for i in (3, 0, 6, 4, 1, 5)]
    assert server.counts["by-image"] == 6
    assert server.max_in_flight == 2


def test_the_limit_is_shared_by_every_caller_of_one_instance(server: ScriptedVLM) -> None:
    vlm = server.classifier("by-image", max_concurrency=2)
    results: list[list[Expression]] = []
    callers = [threading.Thread(target=lambda: results.append(vlm.classify_many([face(150)] * 3))) for _ in range(2)]
    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join(10)
    assert len(results) == 2 and all(e.label == "surprise" for batch in results for e in batch)
    assert server.counts["by-image"] == 6
    assert server.max_in_flight <= 2


def test_classify_many_of_nothing_sends_nothing(server: ScriptedVLM) -> None:
    assert server.classifier("word").classify_many([]) == []
    assert server.requests == []


# -- check() ------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["word", "llava", "llava:latest", "qwen2.5vl:7b"])
def test_check_finds_a_listed_model(server: ScriptedVLM, model: str) -> None:
    result = server.classifier(model).check()
    assert result.ok and model in result.message
    assert "llava:latest" in result.models


def test_check_names_the_models_when_one_is_missing(server: ScriptedVLM) -> None:
    result = server.classifier("llama3.2-vision").check()
    assert not result.ok
    assert "'llama3.2-vision'" in result.message and "llava:latest, word, qwen2.5vl:7b" in result.message


def test_check_says_when_nothing_listens() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    result = VLMExpressionClassifier(url, "m", retries=0).check()
    assert not result.ok and url in result.message and result.models == ()


@pytest.mark.parametrize(("base", "said"), [("/nope", "HTTP 404"), ("/bad/v1", "OpenAI-style model list")])
def test_check_says_when_the_url_is_not_an_openai_api(server: ScriptedVLM, base: str, said: str) -> None:
    url = server.url.removesuffix("/v1") + base
    result = VLMExpressionClassifier(url, "word", **FAST).check()
    assert not result.ok and said in result.message and url in result.message
