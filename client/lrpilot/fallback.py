"""Living without the service: retry until a deadline, knock again later, replay what was missed.

The rules, in order: a boundary retries transient failures for ``retry_deadline_s`` under the
one policy of :mod:`lrpilot.retry` (a restart of the service fits in that), then the tuner
trains on alone and knocks again at growing step
intervals (never per step, and not more often than ``min_interval_s``), and when the service
answers the buffered steps are replayed as the windows an online client would have posted.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from lrpilot.protocol import Decision, JobCreate
from lrpilot.transport import Transport
from lrpilot.window import StepBuffer, next_chunk


@dataclass
class FallbackPolicy:
    """When to knock on the service's door again: growing step intervals, not too often in time."""

    first_interval: int = 10
    growth: float = 2.0
    max_interval: int = 1000
    min_interval_s: float = 1.0


@dataclass
class RetryClock:
    """The next step at which fallback tries the service again."""

    policy: FallbackPolicy = field(default_factory=FallbackPolicy)
    due_step: float = math.inf
    interval: int = 0
    last_try: float = 0.0

    def start(self, step: int) -> None:
        self.interval = self.policy.first_interval
        self.failed(step)

    def failed(self, step: int) -> None:
        self.due_step = step + self.interval
        self.last_try = time.monotonic()
        self.interval = min(int(self.interval * self.policy.growth), self.policy.max_interval)

    def due(self, step: int) -> bool:
        """Called only once ``step >= due_step``: also wait for the time floor (steps can be fast)."""
        if time.monotonic() - self.last_try < self.policy.min_interval_s:
            self.due_step = step + 1
            return False
        return True

    def stop(self) -> None:
        self.due_step = math.inf


class ReplayImpossible(Exception):
    """The service's position is outside the buffered steps: nothing can be reconciled."""


def replay(
    transport: Transport, create: JobCreate, buffer: StepBuffer, log_stale: Callable[[Decision], None]
) -> Decision:
    """Re-attach, post the buffered steps as consecutive windows, return the decision now due.

    Steps the service already has (a lost response) are dropped first; the service's idempotency
    makes a replay that dies half-way safe to start over. Buffer entries are dropped as the
    service accepts them, so a later attempt resumes where this one stopped.
    """
    decision = transport.create_or_attach(create).decision
    if decision.action != "done" and not buffer.start <= decision.start_step <= buffer.end:
        raise ReplayImpossible(
            f"the service is at step {decision.start_step}, the buffer has steps {buffer.start}..{buffer.end}"
        )
    buffer.drop_until(decision.start_step)
    while len(buffer) and decision.action != "done":
        if decision.action in ("snapshot", "restore"):
            log_stale(decision)
        count = next_chunk(buffer, decision)
        decision = transport.report_window(create.name, decision.window, buffer.report(count))
        buffer.drop(count)
    return decision


def placeholder_decision(lr: float) -> Decision:
    """What the tuner follows before it could ever reach the service."""
    return Decision(
        window=0, start_step=0, steps=0, lr=lr, lr_end=lr, action="continue", phase="warmup", stage=-1,
        reason="service unreachable at start: fallback",
    )  # fmt: skip
