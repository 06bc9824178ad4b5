"""Successive halving inside a stage (lever ``halving``): screen short, run the best two again."""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest

from lrpilot.protocol import Decision, TunerConfig, WindowReport
from lrpilot_service.engine import advance, halving
from lrpilot_service.engine.state import State

CONFIG = TunerConfig(
    total_steps=2000, probe="none", warmup_steps=20, warmup_lr=1e-3, candidates=5, tau_ratio=0.2
)
BEST_LR = 3e-3


def _loss(lr: float) -> float:
    """A bowl in log-LR around BEST_LR, well below the warmup's level of 2.0."""
    return 1.0 + 0.1 * math.log10(lr / BEST_LR) ** 2


def _first_search(config: TunerConfig) -> tuple[list[list[float]], Decision, State]:
    """Run the first stage's search: each try's [lr, steps], the decision after it, the state."""
    state, d = advance(config, None, None)
    state, d = advance(config, state, WindowReport(start_step=d.start_step, losses=[2.0] * d.steps))
    tries: list[list[float]] = []
    while d.phase == "search":
        current = state["search"]["try"] if state["search"] else None
        assert current is not None
        if d.action in ("snapshot", "restore"):
            tries.append([current["lr"], 0])
        tries[-1][1] += d.steps
        losses = [_loss(current["lr"])] * d.steps
        state, d = advance(config, state, WindowReport(start_step=d.start_step, losses=losses))
    return tries, d, state


@pytest.fixture
def halving_on(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(halving, "HALVING", True)
    yield


def test_without_halving_every_try_runs_its_full_length() -> None:
    tries, _, state = _first_search(CONFIG)
    assert len(tries) == 5 and {steps for _, steps in tries} == {round(0.2 * state["tau"])}


@pytest.mark.usefixtures("halving_on")
def test_the_best_two_screened_tries_run_again_at_full_length_the_best_last() -> None:
    tries, exploit, state = _first_search(CONFIG)
    full = round(0.2 * state["tau"])
    screen, final = tries[:5], tries[5:]
    assert {steps for _, steps in screen} == {full // 2}
    ranked = sorted(screen, key=lambda t: _loss(t[0]))
    assert [lr for lr, _ in final] == [ranked[1][0], ranked[0][0]]
    assert {steps for _, steps in final} == {full}
    # the best finalist won again and ran last: it goes straight on into the exploitation
    assert (exploit.phase, exploit.action) == ("exploit", "continue")
    assert state["best_lr"] == pytest.approx(ranked[0][0])
    candidates = state["stages"][-1]["candidates"]
    assert len(candidates) == 7 and sum(c["steps"] for c in candidates) == 5 * (full // 2) + 2 * full


@pytest.mark.usefixtures("halving_on")
def test_a_refinement_of_three_tries_does_not_halve() -> None:
    assert halving.lengths(3, 20) == (20, None)
    assert halving.lengths(5, 20) == (10, 20)
    assert halving.lengths(5, 10) == (10, 20)  # half a try would be too short: the finalists run longer
