"""Every ``FACEPRINT_*`` setting read from the environment, parsed and range-checked in one place.

Values are read on each call (tests and ``faceprint serve --max-pixels`` change them at run time);
front ends call :func:`check` at start-up so that a bad value stops them with one line naming the
variable and the accepted range, instead of a traceback (or a 500) later.
"""

from __future__ import annotations

import base64
import binascii
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

from faceprint.errors import SettingError


@dataclass(frozen=True)
class NumberSetting:
    """A numeric environment variable with a default and an inclusive range."""

    env: str
    default: float
    lo: float
    hi: float
    integer: bool
    what: str

    def describe(self) -> str:
        kind = "a whole number" if self.integer else "a number"
        return f"{kind} from {_fmt(self.lo)} to {_fmt(self.hi)} ({self.what})"

    def parse(self, raw: str) -> float:
        text = raw.strip().replace("_", "")
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        ok = math.isfinite(value) and self.lo <= value <= self.hi and (not self.integer or value == int(value))
        if not ok:
            shown = raw if len(raw) <= 40 else raw[:40] + "..."
            raise SettingError(f"{self.env}={shown!r} is not valid: expected {self.describe()}")
        return int(value) if self.integer else value

    def get(self) -> float:
        raw = os.environ.get(self.env)
        if raw is None or raw.strip() == "":
            return self.default
        return self.parse(raw)


def _fmt(value: float) -> str:
    return f"{int(value):,}" if value == int(value) else f"{value:g}"


MAX_PIXELS = NumberSetting(
    "FACEPRINT_MAX_PIXELS", 64_000_000, 10_000, 1_000_000_000, True, "largest image accepted, in pixels"
)
ANN_MIN_IDENTITIES = NumberSetting(
    "FACEPRINT_ANN_MIN_IDENTITIES", 20_000, 1, 1_000_000_000, True, "identities from which search uses the index"
)
ANN_PROBE_SCALE = NumberSetting(
    "FACEPRINT_ANN_PROBE_SCALE", 4.0, 0.1, 1000.0, False, "lists scanned per query, times sqrt(lists)"
)
DECODE_BUDGET_PIXELS = NumberSetting(
    "FACEPRINT_DECODE_BUDGET_PIXELS",
    64_000_000,
    1_000_000,
    10_000_000_000,
    True,
    "pixels `faceprint serve` decodes at once, all requests together",
)

AUDIT_RETENTION_DAYS = NumberSetting(
    "FACEPRINT_AUDIT_RETENTION_DAYS", 90, 0, 36_500, True, "days `faceprint serve` keeps its audit log; 0 = forever"
)
RATE_LIMIT = NumberSetting(
    "FACEPRINT_RATE_LIMIT", 0, 0, 1_000_000, False, "requests a minute each API key may make; 0 = no limit"
)
RATE_BURST = NumberSetting(
    "FACEPRINT_RATE_BURST", 0, 0, 1_000_000, True, "requests a key may make at once; 0 = the per-minute limit"
)
LIVENESS_SESSIONS = NumberSetting(
    "FACEPRINT_LIVENESS_SESSIONS", 32, 1, 10_000, True, "liveness challenge sessions `faceprint serve` holds at once"
)
LIVENESS_ACTION_S = NumberSetting(
    "FACEPRINT_LIVENESS_ACTION_S", 6, 2, 60, False, "seconds a liveness challenge allows for each action"
)

NUMBER_SETTINGS = (
    MAX_PIXELS,
    ANN_MIN_IDENTITIES,
    ANN_PROBE_SCALE,
    DECODE_BUDGET_PIXELS,
    AUDIT_RETENTION_DAYS,
    RATE_LIMIT,
    RATE_BURST,
    LIVENESS_SESSIONS,
    LIVENESS_ACTION_S,
)
#: path settings: only an empty value is wrong (an unset one takes the default)
PATH_SETTINGS = ("FACEPRINT_GALLERY", "FACEPRINT_CACHE", "FACEPRINT_EMBEDDING_CACHE")


def max_pixels() -> int:
    return int(MAX_PIXELS.get())


def ann_min_identities() -> int:
    return int(ANN_MIN_IDENTITIES.get())


def ann_probe_scale() -> float:
    return float(ANN_PROBE_SCALE.get())


def decode_budget_pixels() -> int:
    return int(DECODE_BUDGET_PIXELS.get())


def audit_retention_days() -> int:
    return int(AUDIT_RETENTION_DAYS.get())


def liveness_sessions() -> int:
    return int(LIVENESS_SESSIONS.get())


def liveness_action_s() -> float:
    return float(LIVENESS_ACTION_S.get())


def rate_limit() -> tuple[float, int]:
    """(requests a minute, burst) for each API key: 0 requests for no limit, a 0 burst for the default."""
    return float(RATE_LIMIT.get()), int(RATE_BURST.get())


#: gallery encryption keys (encryption at rest): the key, and the new one for ``faceprint gallery rekey``
KEY_ENV, KEY_FILE_ENV, NEW_KEY_ENV = "FACEPRINT_KEY", "FACEPRINT_KEY_FILE", "FACEPRINT_NEW_KEY"
KEY_BYTES = 32
KEY_FORMAT = "32 random bytes as 64 hex digits or as base64 (make one with: faceprint gallery new-key)"


def parse_key(text: str, source: str) -> bytes:
    """A gallery key from its text; ``source`` names where it came from (the key itself is never shown)."""
    raw = text.strip()
    key: bytes | None = None
    if re.fullmatch(r"[0-9a-fA-F]{64}", raw):
        key = bytes.fromhex(raw)
    elif re.fullmatch(r"[A-Za-z0-9+/_-]+={0,2}", raw):  # standard or URL-safe base64, padded or not
        try:
            body = raw.rstrip("=").replace("+", "-").replace("/", "_")
            key = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        except (binascii.Error, ValueError):
            key = None
    if key is None or len(key) != KEY_BYTES:
        raise SettingError(f"{source} is not a valid key: expected {KEY_FORMAT}")
    return key


def read_key_file(path: str | Path) -> bytes:
    """The key in a key file (its text: hex or base64, surrounding white space ignored)."""
    try:
        text = Path(path).read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not a text file"
        raise SettingError(f"{path}: cannot read the key file ({reason})") from None
    return parse_key(text, f"key file {path}")


def gallery_key(env: str = KEY_ENV) -> bytes | None:
    """The key in ``env`` (FACEPRINT_KEY, or FACEPRINT_NEW_KEY), else in the file FACEPRINT_KEY_FILE
    names (for FACEPRINT_KEY only); None when no key is set."""
    raw = os.environ.get(env, "")
    key_file = os.environ.get(KEY_FILE_ENV, "") if env == KEY_ENV else ""
    if raw and key_file:
        raise SettingError(f"{KEY_ENV} and {KEY_FILE_ENV} are both set: set one of them")
    if raw:
        return parse_key(raw, env)
    return read_key_file(key_file) if key_file else None


#: the secret of protected templates (faceprint.privacy.protect), in the same formats as the gallery keys
PROTECT_KEY_ENV, PROTECT_KEY_FILE_ENV = "FACEPRINT_PROTECT_KEY", "FACEPRINT_PROTECT_KEY_FILE"


def protect_key() -> bytes | None:
    """The template protection key in FACEPRINT_PROTECT_KEY, else in the file FACEPRINT_PROTECT_KEY_FILE
    names; None when neither is set."""
    raw = os.environ.get(PROTECT_KEY_ENV, "")
    key_file = os.environ.get(PROTECT_KEY_FILE_ENV, "")
    if raw and key_file:
        raise SettingError(f"{PROTECT_KEY_ENV} and {PROTECT_KEY_FILE_ENV} are both set: set one of them")
    if raw:
        return parse_key(raw, PROTECT_KEY_ENV)
    return read_key_file(key_file) if key_file else None


def problems() -> list[str]:
    """One message per bad setting in the environment (empty when all are fine)."""
    found: list[str] = []
    for setting in NUMBER_SETTINGS:
        try:
            setting.get()
        except SettingError as exc:
            found.append(str(exc))
    for env in PATH_SETTINGS:
        raw = os.environ.get(env)
        if raw is not None and raw != "" and not raw.strip():
            found.append(f"{env} is blank: expected a path (or unset it for the default)")
        elif raw is not None and "\x00" in raw:
            found.append(f"{env} contains a NUL character: expected a path")
    for env in (KEY_ENV, NEW_KEY_ENV):
        try:
            gallery_key(env)
        except SettingError as exc:
            found.append(str(exc))
    try:
        protect_key()
    except SettingError as exc:
        found.append(str(exc))
    return found


def check() -> None:
    """Raise :class:`SettingError` naming every bad setting, if there is any."""
    found = problems()
    if found:
        raise SettingError("; ".join(found))
