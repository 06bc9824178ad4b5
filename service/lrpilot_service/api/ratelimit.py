"""Per-token rate limit: a token bucket per caller, in each worker process.

A training job posts once per window, so even a busy token sends a few requests per second; the
limit is there for a runaway client (a loop that posts without training), which then gets 429
with ``Retry-After`` instead of starving everyone else. Buckets live in the process: with N
workers a token may reach N times the rate, which docs/operations.md states. Idle buckets are
forgotten, so the table stays bounded by the callers of the last minute.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Hashable

from lrpilot.errors import TooManyRequestsError

#: Buckets untouched this long are full again and can be dropped.
_IDLE_S = 60.0
_SWEEP_EVERY = 1024


class RateLimiter:
    """``check(key)`` spends one request of ``key``'s bucket or raises TooManyRequestsError."""

    def __init__(self, rate_per_s: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate_per_s = rate_per_s
        self.burst = burst
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[Hashable, tuple[float, float]] = {}  # key -> (tokens, at)
        self._calls = 0

    def check(self, key: Hashable) -> None:
        now = self._clock()
        with self._lock:
            tokens, at = self._buckets.get(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - at) * self.rate_per_s)
            if tokens < 1.0:
                self._buckets[key] = (tokens, now)
                wait = (1.0 - tokens) / self.rate_per_s
                raise TooManyRequestsError(
                    f"rate limit of {self.rate_per_s:g} requests/s (bursts of {self.burst}) reached for this "
                    f"token: retry in {wait:.2f}s",
                    retry_after_s=wait,
                )
            self._buckets[key] = (tokens - 1.0, now)
            self._calls += 1
            if self._calls % _SWEEP_EVERY == 0:
                self._forget_idle(now)

    def _forget_idle(self, now: float) -> None:
        idle = [key for key, (_, at) in self._buckets.items() if now - at > _IDLE_S]
        for key in idle:
            del self._buckets[key]


def retry_after_header(seconds: float) -> str:
    """``Retry-After`` takes whole seconds: round up, never 0."""
    return str(max(1, math.ceil(seconds)))
