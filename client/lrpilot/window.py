"""The step buffer: what the loop observed since the last report the service accepted.

In normal operation it holds one window; in fallback it holds everything since the service was
lost, and :func:`next_chunk` cuts it back into windows the way an online client would have (at
most the decision's planned steps, ending early where the decision's guard would have fired), so
the replayed history reads like an uninterrupted one.
"""

from __future__ import annotations

import math
import sys

from lrpilot.protocol import Decision, WindowReport


class StepBuffer:
    """Consecutive steps from ``start`` on: loss, gradient norm (or None), LR used; sparse val losses."""

    __slots__ = ("grad_norms", "losses", "lrs", "start", "val_losses")

    def __init__(self, start: int) -> None:
        self.start = start
        self.losses: list[float] = []
        self.grad_norms: list[float | None] = []
        self.lrs: list[float] = []
        self.val_losses: dict[int, float] = {}

    def __len__(self) -> int:
        return len(self.losses)

    @property
    def end(self) -> int:
        """The absolute step after the last one buffered."""
        return self.start + len(self.losses)

    def report(self, count: int | None = None) -> WindowReport:
        """The first ``count`` steps (all by default) as a report; the buffer is left unchanged."""
        n = len(self.losses) if count is None else count
        grads = self.grad_norms[:n]
        vals = {step: value for step, value in self.val_losses.items() if step < self.start + n}
        return WindowReport(
            start_step=self.start,
            losses=self.losses[:n],
            grad_norms=None if not grads or None in grads else [g for g in grads if g is not None],
            lrs=self.lrs[:n],
            val_losses=vals or None,
        )

    def drop(self, count: int) -> None:
        """Forget the first ``count`` steps: the service has them."""
        del self.losses[:count], self.grad_norms[:count], self.lrs[:count]
        self.start += count
        self.val_losses = {step: value for step, value in self.val_losses.items() if step >= self.start}

    def drop_until(self, step: int) -> None:
        """Forget every step before absolute ``step``."""
        self.drop(max(0, min(step, self.end) - self.start))

    def clear(self, start: int) -> None:
        self.drop(len(self.losses))
        self.start = start


def next_chunk(buffer: StepBuffer, decision: Decision) -> int:
    """How many buffered steps form ``decision``'s window: its planned length, or up to its guard."""
    limit = min(len(buffer), decision.steps) if decision.steps > 0 else len(buffer)
    for i in range(limit):
        if decision.should_stop(buffer.losses[i], buffer.grad_norms[i]):
            return i + 1
    return limit


_LARGEST = sys.float_info.max


def _limit(bound: float | None) -> float:
    return _LARGEST if bound is None or math.isnan(bound) else min(bound, _LARGEST)


def guard_limits(decision: Decision) -> tuple[float, float | None]:
    """Bounds such that ``decision.should_stop(loss, g)`` is exactly ``not -inf < loss <= loss_limit
    or (g is not None and grad_limit is not None and not -inf < g <= grad_limit)``: two chained
    comparisons in the hot path instead of a method call (NaN fails every comparison).
    """
    grad_limit = None if decision.max_grad_norm is None else _limit(decision.max_grad_norm)
    return _limit(decision.max_loss), grad_limit
