"""The step buffer and the hot path's inlined guard, which must equal Decision.should_stop exactly."""

from __future__ import annotations

import itertools
import math

from lrpilot.protocol import Decision
from lrpilot.testing import make_decision
from lrpilot.window import StepBuffer, guard_limits, next_chunk

SPECIAL = [-math.inf, -1e308, -5.0, 0.0, 2.0, 5.0, 1e308, math.inf, math.nan]


def decision(max_loss: float | None, max_grad: float | None, steps: int = 10) -> Decision:
    return make_decision(steps=steps, max_loss=max_loss, max_grad_norm=max_grad)


def test_inlined_guard_equals_should_stop() -> None:
    bounds: list[float | None] = [None, -5.0, 2.0, 5.0, math.inf, math.nan]
    grads: list[float | None] = [None, *SPECIAL]
    for max_loss, max_grad in itertools.product(bounds, bounds):
        d = decision(max_loss, max_grad)
        loss_limit, grad_limit = guard_limits(d)
        for loss, grad in itertools.product(SPECIAL, grads):
            inlined = not -math.inf < loss <= loss_limit or (
                grad is not None and grad_limit is not None and not -math.inf < grad <= grad_limit
            )
            assert inlined == d.should_stop(loss, grad), (max_loss, max_grad, loss, grad)


def test_buffer_reports_drops_and_chunks() -> None:
    buffer = StepBuffer(10)
    for i, loss in enumerate([1.0, 2.0, 50.0, 1.0, 1.0]):
        buffer.losses.append(loss)
        buffer.grad_norms.append(None if i == 1 else 0.5)
        buffer.lrs.append(0.1)
    buffer.val_losses = {11: 0.3, 13: 0.2}
    report = buffer.report(3)
    assert report.start_step == 10 and report.losses == [1.0, 2.0, 50.0]
    assert report.grad_norms is None  # one step had none: send none rather than invent one
    assert report.val_losses == {11: 0.3}
    assert next_chunk(buffer, decision(10.0, None, steps=4)) == 3  # the guard fires on 50.0
    assert next_chunk(buffer, decision(None, None, steps=4)) == 4
    buffer.drop(3)
    assert buffer.start == 13 and buffer.val_losses == {13: 0.2} and len(buffer) == 2
    buffer.drop_until(100)
    assert len(buffer) == 0 and buffer.end == 15
