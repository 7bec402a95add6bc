"""Per-key rate limits: a token bucket for each API key, in this process.

Each key may make up to ``burst`` requests at once, then ``per_minute`` a minute (a token comes back
every 60 / per_minute seconds). The buckets live in the process's memory: every replica of the
service limits on its own, so behind a load balancer over N replicas a key gets up to N times the
rate. GuardMiddleware takes a token once it has checked the key, before the body is read, and
answers 429 with ``Retry-After`` when there is none.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from faceprint.errors import SettingError
from faceprint.settings import rate_limit


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """Token buckets by key; thread-safe. ``clock``: seconds, monotonic (tests pass a fake one)."""

    def __init__(
        self, per_minute: float, burst: int | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if not per_minute > 0:
            raise SettingError(f"a rate limit must be above 0 requests a minute, not {per_minute:g}")
        self.per_minute = float(per_minute)
        self.burst = int(burst) if burst else max(1, math.ceil(per_minute))
        self.clock = clock
        self._buckets: dict[Hashable, _Bucket] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls) -> RateLimiter | None:
        """The limiter $FACEPRINT_RATE_LIMIT and $FACEPRINT_RATE_BURST ask for (None: no limit)."""
        per_minute, burst = rate_limit()
        return cls(per_minute, burst) if per_minute else None

    def take(self, key: Hashable) -> float:
        """Spend one of ``key``'s tokens: 0 when there was one, else the seconds until there is."""
        rate = self.per_minute / 60.0
        now = self.clock()
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = _Bucket(float(self.burst), now)
            bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.updated) * rate)
            bucket.updated = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return 0.0
            return (1.0 - bucket.tokens) / rate

    def describe(self) -> str:
        return f"{self.per_minute:g} requests a minute, bursts of {self.burst}"


def retry_after(wait: float) -> str:
    """``Retry-After`` in whole seconds, rounded up (a client that waits that long gets a token)."""
    return str(max(1, math.ceil(wait)))


__all__ = ["RateLimiter", "retry_after"]
