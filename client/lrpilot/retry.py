"""The one retry policy of lrpilot: jittered exponential backoff, bounded by attempts or a deadline.

Client and service retry different things (an HTTP call while the service restarts, a database
transaction that lost a deadlock, a SQLite file another process is switching to WAL) but the
rules are the same: retry only what is known to be transient, wait a random time that doubles
from ``first_wait_s`` up to ``max_wait_s`` ("full jitter": concurrent retriers spread out instead
of colliding again), never sooner than the server asked (an error's ``retry_after_s``, from a
429/503's ``Retry-After``), and give up when the next wait would pass the deadline or the attempts
are spent. The mechanics are tenacity's; this module only fixes the policy in one place, so that no
layer retries inside another's retries.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_any,
    stop_before_delay,
    stop_never,
    wait_random_exponential,
)
from tenacity.stop import stop_base

T = TypeVar("T")

MAX_RETRY_AFTER_S = 300.0
"""A server's Retry-After is followed up to this long (a deadline still ends the waiting sooner)."""


@dataclass(frozen=True)
class RetryPolicy:
    """When to try again. ``deadline_s`` and ``attempts`` may both bound it (whichever comes first)."""

    deadline_s: float | None = None
    attempts: int | None = None
    first_wait_s: float = 0.05
    max_wait_s: float = 2.0

    def call(
        self,
        work: Callable[[], T],
        transient: Callable[[BaseException], bool],
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> T:
        """``work()``, retried while it raises an exception ``transient`` accepts; the last one re-raised."""
        retrying = Retrying(
            retry=retry_if_exception(transient),
            stop=self._stop(),
            wait=self._wait,
            sleep=sleep,
            reraise=True,
        )
        return retrying(work)

    def _wait(self, retry_state: RetryCallState) -> float:
        """Full jitter, but at least the ``retry_after_s`` the failure carries (capped)."""
        jitter = wait_random_exponential(multiplier=self.first_wait_s, max=self.max_wait_s)(retry_state)
        outcome = retry_state.outcome
        hint = getattr(outcome.exception(), "retry_after_s", None) if outcome is not None else None
        if isinstance(hint, int | float) and hint > jitter:
            return float(min(hint, MAX_RETRY_AFTER_S))
        return jitter

    def _stop(self) -> stop_base:
        stops: list[stop_base] = []
        if self.deadline_s is not None:
            stops.append(stop_before_delay(self.deadline_s))
        if self.attempts is not None:
            stops.append(stop_after_attempt(self.attempts))
        if not stops:
            return stop_never
        return stops[0] if len(stops) == 1 else stop_any(*stops)


NO_RETRY = RetryPolicy(attempts=1)
"""One attempt: for calls whose caller already retries (the tuner's deadline loop)."""
