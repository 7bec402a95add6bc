"""Every ``FACEPRINT_*`` setting read from the environment, parsed and range-checked in one place.

Values are read on each call (tests and ``faceprint serve --max-pixels`` change them at run time);
front ends call :func:`check` at start-up so that a bad value stops them with one line naming the
variable and the accepted range, instead of a traceback (or a 500) later.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

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

NUMBER_SETTINGS = (MAX_PIXELS, ANN_MIN_IDENTITIES, ANN_PROBE_SCALE, DECODE_BUDGET_PIXELS)
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
    return found


def check() -> None:
    """Raise :class:`SettingError` naming every bad setting, if there is any."""
    found = problems()
    if found:
        raise SettingError("; ".join(found))
