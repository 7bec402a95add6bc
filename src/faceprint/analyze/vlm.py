"""Facial expression, zero-shot, from a vision-language model behind an OpenAI-compatible endpoint.

The face crop goes to ``POST {url}/chat/completions`` (Ollama, llama.cpp's ``llama-server``, vLLM,
LM Studio all speak it) with a multiple-choice question; the answer is read strictly: only one
option, by its word or its letter, counts, and anything else is :data:`UNKNOWN`, never a guess.

Error policy (one face never kills a batch, a wrong URL is said at once):

- timeouts, HTTP 5xx and 429, and connection errors are retried ``retries`` times, with a short
  doubling backoff (``backoff_s``, then twice that, ...);
- a server that still cannot be reached (refused, unknown host, connection reset) raises
  :class:`VLMUnreachableError`, naming the URL: every later face would fail the same way;
- a timeout or 5xx after the retries, any other HTTP error (401, 404 ...), a body that is not the
  protocol's JSON, or a truncated answer gives ``Expression(UNKNOWN, {}, backend)`` and a logged
  warning (once per kind of problem per classifier; repeats go to DEBUG).

Standard library HTTP only (urllib), so this backend adds no runtime dependency.
"""

from __future__ import annotations

import base64
import http.client
import io
import ipaddress
import json
import logging
import re
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from faceprint.analyze.types import EXPRESSIONS, UNKNOWN, Expression
from faceprint.errors import FaceprintError

log = logging.getLogger(__name__)

#: answer budget: enough for "D) surprise", too little for an essay (a cut answer counts as unknown)
MAX_TOKENS = 16
#: a reply larger than this is not a one-word answer; stop reading rather than hold it in memory
MAX_REPLY_BYTES = 1 << 20
_JPEG_QUALITY = 90

# what went wrong with one request; decides retrying and what the caller sees
_UNREACHABLE, _TIMEOUT, _SERVER, _HTTP, _MALFORMED = "unreachable", "timeout", "server", "http", "malformed"


class VLMUnreachableError(FaceprintError):
    """The VLM server at the given URL could not be reached, even after retries."""

    code = "vlm_unreachable"


@dataclass(frozen=True)
class VLMCheck:
    """What :meth:`VLMExpressionClassifier.check` found: ``ok`` when the server lists the model."""

    ok: bool
    message: str
    models: tuple[str, ...] = ()


class VLMRequestError(Exception):
    """One request that got no usable answer (:meth:`VLMClient.chat` raises it after the retries);
    ``kind`` is one of unreachable, timeout, server, http, malformed and ``detail`` says what happened."""

    def __init__(self, kind: str, detail: str, status: int | None = None) -> None:
        super().__init__(detail)
        self.kind, self.detail, self.status = kind, detail, status

    @property
    def retry(self) -> bool:
        return self.kind in (_UNREACHABLE, _TIMEOUT, _SERVER)


def _tokens(text: str) -> tuple[str, ...]:
    # case, punctuation and markdown never matter: "Happy.", "**happy**", "(D)" read as their words
    return tuple(re.sub(r"[\W_]+", " ", text.casefold()).split())


def _letter(index: int) -> str:
    return chr(ord("a") + index)


def build_question(labels: tuple[str, ...] = EXPRESSIONS) -> str:
    """The multiple-choice question sent with every face: lettered options, one answer asked for."""
    options = "\n".join(f"{_letter(i).upper()}) {label}" for i, label in enumerate(labels))
    return (
        "Which facial expression does the face in this image show?\n"
        f"{options}\n"
        "Answer with exactly one option, its letter or its word, and nothing else."
    )


def parse_answer(text: str, labels: tuple[str, ...] = EXPRESSIONS) -> str:
    """The option ``text`` names unambiguously, else :data:`UNKNOWN`.

    Accepted, ignoring case and punctuation: the option's word(s) ("happy", "Happy."), its letter
    ("D", "(d)"), or both in either order ("D) happy", "happy (D)"). Anything more or different
    ("I think happy", "happy or sad", "joyful", "D) sad") is unknown.
    """
    answer = _tokens(text)
    for i, label in enumerate(labels):
        words, letter = _tokens(label), (_letter(i),)
        if answer in (words, letter, letter + words, words + letter):
            return label
    return UNKNOWN


def _check_labels(labels: tuple[str, ...]) -> tuple[str, ...]:
    labels = tuple(labels)
    if not 2 <= len(labels) <= 26:
        raise ValueError(f"a VLM question needs 2 to 26 options, got {len(labels)}")
    letters = {(_letter(i),) for i in range(len(labels))}
    seen: set[tuple[str, ...]] = set()
    for label in labels:
        words = _tokens(label)
        # a label that reads as a letter, another label or "unknown" would make answers ambiguous
        if not words or words in letters or words in seen or words == (UNKNOWN,):
            raise ValueError(f"unusable expression label {label!r} among {labels}")
        seen.add(words)
    return labels


def _base_url(url: str) -> str:
    url = url.strip().rstrip("/")
    # a user who pastes the full endpoint means its base
    url = url.removesuffix("/chat/completions")
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {url!r} (expected the API base, e.g. http://127.0.0.1:11434/v1)")
    return url


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # a redirected POST silently turns into a GET; better to say so and let the user fix the URL
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _jpeg_data_url(face_rgb: np.ndarray) -> str:
    face = np.asarray(face_rgb)
    if face.dtype != np.uint8 or face.size == 0 or not (face.ndim == 2 or (face.ndim == 3 and face.shape[2] == 3)):
        raise ValueError(f"a face must be an HxWx3 (or HxW) uint8 array, got {face.dtype} {face.shape}")
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(face)).save(buffer, format="JPEG", quality=_JPEG_QUALITY)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _answer_text(reply: Any) -> tuple[str, str | None]:
    """(answer text, finish_reason) of a chat completion; ValueError when it is not one."""
    try:
        choice = reply["choices"][0]
        content = choice["message"]["content"]
        finish = choice.get("finish_reason")
    except (KeyError, IndexError, TypeError, AttributeError):
        raise ValueError("no choices[0].message.content in the reply") from None
    if isinstance(content, list):  # some servers send content parts even for plain text
        texts = [part.get("text") for part in content if isinstance(part, dict) and part.get("type") == "text"]
        content = "".join(t for t in texts if isinstance(t, str)) if texts else None
    if not isinstance(content, str):
        raise ValueError("the reply's message content is not text")
    return content, finish if isinstance(finish, str) else None


def _error_detail(error: urllib.error.HTTPError) -> str:
    """``HTTP <code>`` plus what the server said (OpenAI-style ``error.message`` when present)."""
    detail = f"HTTP {error.code}"
    if 300 <= error.code < 400:
        return f"{detail}, redirected to {error.headers.get('Location')!r}; give the final URL"
    try:
        body = error.read(2000).decode("utf-8", "replace")
    except (OSError, http.client.HTTPException):
        return detail
    message: Any = body
    try:
        parsed = json.loads(body)
        message = parsed.get("error", parsed) if isinstance(parsed, dict) else parsed
        if isinstance(message, dict):
            message = message.get("message", message)
    except ValueError:
        pass
    message = " ".join(str(message).split())[:200]
    return f"{detail}: {message}" if message else detail


class VLMClient:
    """One image and one question to a VLM served at ``url`` (an OpenAI-compatible API base such as
    ``http://127.0.0.1:11434/v1``) under the name ``model``; :meth:`chat` returns its answer's text.

    ``timeout_s`` bounds each attempt (connecting, waiting for the answer, reading it); a question
    takes at most about ``(retries + 1) * timeout_s`` plus the backoff. At most ``max_concurrency``
    requests of this instance are in flight at once, whichever threads call it. ``api_key`` is sent
    as a bearer token. Loopback URLs bypass any ``http_proxy`` setting; others honour it.
    """

    def __init__(
        self,
        url: str,
        model: str,
        timeout_s: float = 30.0,
        retries: int = 2,
        max_concurrency: int = 2,
        api_key: str | None = None,
        *,
        backoff_s: float = 0.5,
    ) -> None:
        if not model.strip():
            raise ValueError("a VLM model name is needed")
        if not timeout_s > 0 or retries < 0 or max_concurrency < 1 or backoff_s < 0:
            raise ValueError("timeout_s must be > 0, retries >= 0, max_concurrency >= 1, backoff_s >= 0")
        self.url = _base_url(url)
        self.model = model
        self.timeout_s = float(timeout_s)
        self.retries = int(retries)
        self.max_concurrency = int(max_concurrency)
        self.backoff_s = float(backoff_s)
        self.backend = f"vlm:{model}"
        self._headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        handlers: list[urllib.request.BaseHandler] = [_NoRedirect()]
        if _is_loopback(urllib.parse.urlsplit(self.url).hostname or ""):
            handlers.append(urllib.request.ProxyHandler({}))  # a local server is never behind the proxy
        self._opener = urllib.request.build_opener(*handlers)
        self._slots = threading.BoundedSemaphore(self.max_concurrency)
        self._warned: set[tuple[str, int | None]] = set()
        self._warned_lock = threading.Lock()

    def chat(self, question: str, image_rgb: np.ndarray, max_tokens: int) -> tuple[str, str | None]:
        """(answer text, finish_reason) of ``question`` about ``image_rgb`` (HxWx3 or HxW uint8, sent
        as JPEG), at temperature 0. Raises :class:`VLMRequestError` when no usable answer came
        after the retries, :class:`VLMUnreachableError` when the server cannot be reached, and
        ``ValueError`` for an image that is not uint8 (before anything is sent)."""
        payload = {
            "model": self.model,
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": question},
                        {"type": "image_url", "image_url": {"url": _jpeg_data_url(image_rgb)}},
                    ],
                }
            ],
            "temperature": 0,
            "max_tokens": max_tokens,
            "stream": False,
        }
        reply = self._fetch("/chat/completions", payload)
        try:
            return _answer_text(reply)
        except ValueError as error:
            raise VLMRequestError(_MALFORMED, f"not a chat completion: {error}") from None

    def check(self) -> VLMCheck:
        """Ask ``GET {url}/models`` whether the server is there and lists the model. Never raises
        for the endpoint's problems: ``ok`` is False and ``message`` says what is wrong."""
        try:
            reply = self._fetch("/models", None)
        except VLMUnreachableError as error:
            return VLMCheck(False, str(error))
        except VLMRequestError as failure:
            return VLMCheck(False, f"{self.url}/models did not answer the model list: {failure.detail}")
        try:
            models = tuple(str(entry["id"]) for entry in reply["data"])
        except (KeyError, TypeError):
            return VLMCheck(False, f"{self.url}/models did not answer an OpenAI-style model list")
        # Ollama serves "llava" as "llava:latest"
        if self.model in models or f"{self.model}:latest" in models:
            return VLMCheck(True, f"{self.url} serves {self.model}", models)
        listed = ", ".join(models[:20]) + (", ..." if len(models) > 20 else "") if models else "none"
        return VLMCheck(
            False,
            f"{self.url} does not list the model {self.model!r} (it lists: {listed}); pull or load it, or fix "
            "the name (llama.cpp's server answers with its one loaded model whatever the name)",
            models,
        )

    # -- HTTP ---------------------------------------------------------------------------------

    def _fetch(self, path: str, payload: dict[str, Any] | None) -> Any:
        """The JSON reply to one request, retried per the policy; raises VLMRequestError (final) or
        VLMUnreachableError."""
        attempt = 0
        while True:
            try:
                return self._request(path, payload)
            except VLMRequestError as failure:
                if failure.retry and attempt < self.retries:
                    log.debug("VLM %s%s: %s; retrying", self.url, path, failure.detail)
                    time.sleep(self.backoff_s * 2**attempt)
                    attempt += 1
                    continue
                if failure.kind == _UNREACHABLE:
                    raise VLMUnreachableError(
                        f"cannot reach the VLM server at {self.url} ({failure.detail}) after {attempt + 1} "
                        "attempt(s); is it running, and is the URL its API base (e.g. http://127.0.0.1:11434/v1)?"
                    ) from None
                raise

    def _request(self, path: str, payload: dict[str, Any] | None) -> Any:
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(
            self.url + path, data=data, headers=self._headers, method="GET" if data is None else "POST"
        )
        deadline = time.monotonic() + self.timeout_s
        try:
            with self._slots, self._opener.open(request, timeout=self.timeout_s) as response:
                body = self._read(response, deadline)
        except urllib.error.HTTPError as error:
            kind = _SERVER if error.code >= 500 or error.code == 429 else _HTTP
            raise VLMRequestError(kind, _error_detail(error), error.code) from None
        except urllib.error.URLError as error:
            if isinstance(error.reason, TimeoutError):
                raise VLMRequestError(_TIMEOUT, f"no answer within {self.timeout_s:g} s") from None
            raise VLMRequestError(_UNREACHABLE, str(error.reason)) from None
        except TimeoutError:
            raise VLMRequestError(_TIMEOUT, f"no answer within {self.timeout_s:g} s") from None
        except ConnectionError as error:  # refused or reset after the request went out
            raise VLMRequestError(_UNREACHABLE, str(error) or type(error).__name__) from None
        except http.client.HTTPException as error:  # not HTTP at all, or a cut body
            raise VLMRequestError(_MALFORMED, f"broken HTTP reply ({type(error).__name__})") from None
        try:
            return json.loads(body)
        except ValueError:  # UnicodeDecodeError is one too
            raise VLMRequestError(_MALFORMED, f"reply is not JSON: {body[:80]!r}") from None

    def _read(self, response: http.client.HTTPResponse, deadline: float) -> bytes:
        # read1 returns what has arrived, so a server dripping bytes cannot stretch the timeout
        chunks: list[bytes] = []
        size = 0
        while chunk := response.read1(65536):
            size += len(chunk)
            if size > MAX_REPLY_BYTES:
                raise VLMRequestError(_MALFORMED, f"reply larger than {MAX_REPLY_BYTES} bytes")
            if time.monotonic() > deadline:
                raise VLMRequestError(_TIMEOUT, f"no full answer within {self.timeout_s:g} s")
            chunks.append(chunk)
        return b"".join(chunks)

    def warn(self, failure: VLMRequestError, outcome: str = "face labelled unknown") -> None:
        """Log a request that got no usable answer: a warning once per kind of problem, then DEBUG."""
        key = (failure.kind, failure.status)
        with self._warned_lock:
            first = key not in self._warned
            self._warned.add(key)
        level = logging.WARNING if first else logging.DEBUG
        hint = " (is the URL the API base, e.g. http://127.0.0.1:11434/v1?)" if failure.status == 404 else ""
        log.log(level, "VLM %s at %s: %s%s; %s", self.backend, self.url, failure.detail, hint, outcome)


class VLMExpressionClassifier(VLMClient):
    """Expression of an aligned face crop, asked of a VLM (see :class:`VLMClient` for the server
    arguments) as a multiple-choice question over ``labels``."""

    def __init__(
        self,
        url: str,
        model: str,
        timeout_s: float = 30.0,
        retries: int = 2,
        max_concurrency: int = 2,
        api_key: str | None = None,
        labels: tuple[str, ...] = EXPRESSIONS,
        *,
        backoff_s: float = 0.5,
    ) -> None:
        self.labels = _check_labels(labels)
        super().__init__(url, model, timeout_s, retries, max_concurrency, api_key, backoff_s=backoff_s)
        self.question = build_question(self.labels)

    def classify(self, face_rgb: np.ndarray) -> Expression:
        """The expression of one face crop (RGB uint8); ``label`` is UNKNOWN when the model's answer
        is not exactly one option or no answer came (see the module's error policy)."""
        try:
            text, finish = self.chat(self.question, face_rgb, MAX_TOKENS)
        except VLMRequestError as failure:
            self.warn(failure)
            return Expression(UNKNOWN, {}, self.backend)
        if finish == "length":  # a cut answer may be the start of a longer one; never guess
            log.info("VLM %s answer %r was cut at max_tokens; labelled unknown", self.backend, text[:200])
            return Expression(UNKNOWN, {}, self.backend)
        label = parse_answer(text, self.labels)
        if label == UNKNOWN:
            log.info("VLM %s answered %r, not exactly one option; labelled unknown", self.backend, text[:200])
        return Expression(label, {}, self.backend)

    def classify_many(self, faces: list[np.ndarray]) -> list[Expression]:
        """:meth:`classify` for each face, in order, at most ``max_concurrency`` at a time.
        Raises :class:`VLMUnreachableError` (the faces not yet sent are dropped) when the server
        cannot be reached."""
        if not faces:
            return []
        with ThreadPoolExecutor(min(self.max_concurrency, len(faces)), thread_name_prefix="faceprint-vlm") as pool:
            futures = [pool.submit(self.classify, face) for face in faces]
            try:
                return [future.result() for future in futures]
            except BaseException:
                for future in futures:
                    future.cancel()
                raise
