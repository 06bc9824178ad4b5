"""Living without the service: a conservative schedule, knocking in the background, then a replay.

The rules, in order: a boundary retries transient failures for ``retry_deadline_s`` under the one
policy of :mod:`lrpilot.retry` (a restart of the service fits in that); then the tuner trains on
alone, on :class:`FallbackSchedule`, while a :class:`Prober` thread knocks at jittered, growing
intervals (the training loop never waits on the network); when the service answers, the buffered
steps are replayed as the windows an online client would have posted.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass

from lrpilot.errors import LrpilotError, ServiceUnavailableError
from lrpilot.protocol import Decision, JobCreate, JobView, TunerConfig
from lrpilot.retry import RetryPolicy
from lrpilot.transport import Transport
from lrpilot.window import StepBuffer, next_chunk


@dataclass
class FallbackPolicy:
    """How long the tuner waits for the service at construction, and how it knocks afterwards."""

    attach_wait_s: float = 2.0
    """``Tuner()`` waits at most this long for its first answer (a refused connection: at once)."""
    first_wait_s: float = 1.0
    max_wait_s: float = 60.0
    """Knocks come at random waits that double from ``first_wait_s`` up to ``max_wait_s``."""


#: Warmup of a run that never reached the service: the config's, else this share of the budget...
FALLBACK_WARMUP_SHARE = 0.02
#: ... at most this many steps (or exactly this many without a budget).
FALLBACK_WARMUP_MAX = 1000


@dataclass(frozen=True)
class FallbackSchedule:
    """The LR without the service (docs/operations.md, "When the service is away").

    ``peak`` is held, then decays linearly to ``lr_min`` over the last ``anneal_fraction`` of
    ``total_steps`` (warmup-stable-decay, the engine's own finish), so a run that never sees the
    service still anneals. A run that never reached the service first warms up linearly to
    ``peak`` (the range's geometric quarter point, or ``warmup_lr``) from ``warmup_from`` on.
    """

    config: TunerConfig
    peak: float
    warmup_from: int = 0
    warmup_steps: int = 0

    @classmethod
    def from_start(cls, config: TunerConfig, peak: float, step: int) -> FallbackSchedule:
        """The schedule of a run that has had no decision at all, starting at ``step``."""
        warmup = config.warmup_steps or 0
        if warmup <= 0:
            budget = config.total_steps
            share = math.ceil(FALLBACK_WARMUP_SHARE * budget) if budget else FALLBACK_WARMUP_MAX
            warmup = min(FALLBACK_WARMUP_MAX, max(1, share))
        return cls(config, peak, warmup_from=step, warmup_steps=warmup)

    def lr(self, step: int) -> float:
        into_warmup = step - self.warmup_from
        if 0 <= into_warmup < self.warmup_steps:
            return self.peak * (into_warmup + 1) / self.warmup_steps
        config, total = self.config, self.config.total_steps
        if total is None or config.anneal == "none":
            return self.peak
        reserve = max(1, math.ceil(config.anneal_fraction * total))
        into_decay = step - (total - reserve)
        if into_decay <= 0:
            return self.peak
        floor = min(config.lr_min, self.peak)
        return max(floor, self.peak + (floor - self.peak) * min(1.0, into_decay / reserve))


class Prober:
    """A daemon thread that calls ``knock`` until it answers, at the waits of ``policy``.

    ``answered`` is set when it is over: ``view`` holds the answer, or ``refusal`` the service's
    considered "no" (401, 409...), after which knocking again would get the same answer.
    ``tried`` is set once the first knock is over, whatever its outcome. ``on_failure`` sees every
    transient failure (the tuner logs the first one, loudly).
    """

    def __init__(
        self,
        knock: Callable[[], JobView],
        policy: FallbackPolicy,
        on_failure: Callable[[ServiceUnavailableError], None] = lambda error: None,
    ) -> None:
        self._knock, self._on_failure = knock, on_failure
        self._retry = RetryPolicy(first_wait_s=policy.first_wait_s, max_wait_s=policy.max_wait_s)
        self._stopped = threading.Event()
        self.tried = threading.Event()
        self.answered = threading.Event()
        self.view: JobView | None = None
        self.refusal: LrpilotError | None = None
        self._thread = threading.Thread(target=self._run, name="lrpilot-knock", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()

    def _run(self) -> None:
        try:
            self.view = self._retry.call(self._attempt, self._transient, sleep=self._sleep)
        except LrpilotError as error:
            if not self._stopped.is_set():
                self.refusal = error
        except _Stopped:
            pass
        except Exception as error:  # never let a bug end the thread silently
            self.refusal = LrpilotError(f"unexpected {type(error).__name__}: {error}")
        finally:
            self.answered.set()
            self.tried.set()

    def _sleep(self, seconds: float) -> None:
        self._stopped.wait(seconds)  # returns at once when stopped

    def _attempt(self) -> JobView:
        if self._stopped.is_set():
            raise _Stopped
        return self._knock()

    def _transient(self, error: BaseException) -> bool:
        if isinstance(error, ServiceUnavailableError):
            self._on_failure(error)
            self.tried.set()
            return not self._stopped.is_set()
        return False


class _Stopped(Exception):
    """The prober was told to stop between two knocks."""


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


def placeholder_decision(lr: float, step: int = 0) -> Decision:
    """What the tuner follows before it could ever reach the service."""
    return Decision(
        window=0, start_step=step, steps=0, lr=lr, lr_end=lr, action="continue", phase="warmup", stage=-1,
        reason="service unreachable at start: fallback schedule",
    )  # fmt: skip
