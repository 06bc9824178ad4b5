"""The stage state machine: phases, budget rule, report checks, divergence handling."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import pytest

from lrpilot.protocol import Decision, TunerConfig, WindowReport
from lrpilot_service.engine import ReportRejected, advance, current_decision, planner, summarize
from lrpilot_service.engine.budget import MIN_TRY_STEPS, resolve
from lrpilot_service.engine.state import State

# The stage mechanics as AutoLRS had them: no range test, no warmup, tries at one held LR.
CLASSIC: dict[str, object] = {"probe": "none", "warmup_steps": 0, "try_cooldown": 0.0}


def classic(**fields: object) -> TunerConfig:
    return TunerConfig.model_validate({**CLASSIC, **fields})


def default_loss(d: Decision, step: int) -> float:
    return 1.0 / (1 + step) + d.lr


def run(config: TunerConfig, loss_of: Callable[[Decision, int], float] = default_loss) -> list[Decision]:
    return run_with_state(config, loss_of)[0]


def run_with_state(
    config: TunerConfig, loss_of: Callable[[Decision, int], float] = default_loss
) -> tuple[list[Decision], State]:
    """Drive a job to the end with a loss given as a function of the decision and the step."""
    state, decision = advance(config, None, None)
    decisions = [decision]
    while decision.action != "done":
        losses = []
        for step in range(decision.start_step, decision.start_step + decision.steps):
            losses.append(loss_of(decision, step))
            if decision.should_stop(losses[-1]):
                break
        state, decision = advance(config, state, WindowReport(start_step=decision.start_step, losses=losses))
        decisions.append(decision)
    return decisions, state


def steps_by_phase(decisions: list[Decision]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for d in decisions:
        totals[d.phase] = totals.get(d.phase, 0) + d.steps
    return totals


@pytest.mark.parametrize("total", [1_000, 20_000, 1_000_000])
def test_budget_rule_keeps_plan_shape_across_scales(total: int) -> None:
    budget = resolve(TunerConfig(total_steps=total))
    probe = min(100, max(30, round(0.03 * total)))
    assert (budget.probe_steps, budget.warmup_steps) == (probe, round(0.03 * total))
    assert budget.tau == max(100, round((total - budget.warmup_steps - probe) / 20))
    assert budget.try_steps(budget.tau, 0.1) >= MIN_TRY_STEPS
    assert budget.anneal_reserve == math.ceil(0.2 * total)


def test_small_budgets_skip_the_range_test_and_keep_room_after_the_warmup() -> None:
    assert resolve(TunerConfig(total_steps=200)).probe_steps == 0
    budget = resolve(TunerConfig(total_steps=300, warmup_steps=290))
    assert budget.probe_steps == 30 and budget.warmup_steps == 300 - 30 - 1


def test_unbudgeted_job_uses_autolrs_sizes() -> None:
    budget = resolve(TunerConfig())
    assert (budget.tau, budget.tau_max, budget.anneal_reserve, budget.probe_steps) == (1000, 8000, 0, 0)


def test_explicit_sizes_win_over_derived_ones() -> None:
    budget = resolve(TunerConfig(total_steps=5000, tau=300, tau_max=600))
    assert (budget.tau, budget.tau_max) == (300, 600)


def test_job_consumes_exactly_its_budget_and_ends_with_anneal() -> None:
    decisions = run(TunerConfig(total_steps=2000, candidates=4, seed=1))
    assert decisions[-1].action == "done"
    assert decisions[-1].start_step == 2000  # every step consumed, none past the budget
    assert all(d.start_step + d.steps <= 2000 for d in decisions)
    anneal = [d for d in decisions if d.phase == "anneal"]
    assert anneal and anneal[-1].start_step + anneal[-1].steps == 2000
    assert anneal[-1].lr_end == pytest.approx(1e-6)
    assert steps_by_phase(decisions)["anneal"] >= 0.2 * 2000


@pytest.mark.parametrize("shape", ["linear", "cosine", "sqrt"])
def test_every_anneal_shape_runs_over_the_reserve(shape: str) -> None:
    # The reserve was once kept for a linear anneal only: cosine and 1-sqrt held the LR to the end.
    decisions = run(classic(total_steps=2000, candidates=4, anneal=shape))
    anneal = [d for d in decisions if d.phase == "anneal"]
    assert anneal and anneal[0].start_step == 2000 - 400
    assert anneal[-1].start_step + anneal[-1].steps == 2000
    assert anneal[-1].lr_end == pytest.approx(1e-6)


def test_search_restores_before_every_try_after_the_first_and_before_exploiting() -> None:
    decisions = run(classic(total_steps=2000, candidates=4, seed=2))
    stage0 = [d for d in decisions if d.stage == 0]
    tries = [d for d in stage0 if d.phase == "search"]
    assert tries[0].action == "snapshot"
    assert all(d.action == "restore" for d in tries[1:])
    exploit = next(d for d in stage0 if d.phase == "exploit")
    assert exploit.action in ("restore", "continue")
    assert len({d.lr for d in tries}) == len(tries), "a candidate LR was repeated"


def test_warmup_ramps_linearly_to_warmup_lr() -> None:
    config = classic(total_steps=2000, warmup_steps=100, warmup_lr=0.01, window_max=40)
    decisions = run(config)
    warm = [d for d in decisions if d.phase == "warmup"]
    assert sum(d.steps for d in warm) == 100
    lrs = [d.lr_at(s) for d in warm for s in range(d.start_step, d.start_step + d.steps)]
    assert lrs[0] == pytest.approx(0.0001)
    assert lrs[-1] == pytest.approx(0.01)
    assert all(b > a for a, b in itertools.pairwise(lrs))


def test_windows_never_exceed_window_max() -> None:
    decisions = run(TunerConfig(total_steps=3000, candidates=3, window_max=64))
    assert max(d.steps for d in decisions) <= 64


def test_small_budget_never_ends_inside_a_search() -> None:
    decisions = run(TunerConfig(total_steps=300, candidates=10))
    last_search = max(d.start_step + d.steps for d in decisions if d.phase == "search")
    assert any(d.phase in ("exploit", "anneal") and d.start_step >= last_search for d in decisions)
    assert decisions[-1].start_step == 300


def test_tiny_budget_skips_search_holds_then_anneals() -> None:
    decisions = run(classic(total_steps=40))
    assert [d.phase for d in decisions] == ["exploit", "anneal", "done"]
    assert decisions[1].start_step == 32 and decisions[1].lr_end == pytest.approx(1e-6)


def test_finish_holds_the_chosen_lr_then_anneals_over_the_reserve() -> None:
    # Warmup-stable-decay shape: no long decay from the last stage, only over the reserve.
    decisions = run(classic(total_steps=2000, candidates=4, seed=1))
    anneal = [d for d in decisions if d.phase == "anneal"]
    assert anneal[0].start_step == 2000 - 400
    hold = [d for d in decisions if d.phase == "exploit" and d.start_step < 1600]
    assert hold[-1].lr == pytest.approx(anneal[0].lr)


def test_diverging_try_is_stopped_early_and_never_chosen() -> None:
    def loss(d: Decision, step: int) -> float:
        return float("nan") if d.lr > 0.05 else 1.0 / (1 + step) + 0.1 * d.lr

    config = classic(total_steps=4000, candidates=5, lr_min=1e-4, lr_max=1.0)
    _, state = run_with_state(config, loss)
    stages = summarize(state)
    diverged = [c for s in stages for c in s.candidates if c.method == "diverged"]
    assert diverged, "expected at least one LR above 0.05 to be tried"
    assert all(c.steps == 1 for c in diverged), "a NaN must end the try at its first step"
    assert all(s.chosen_lr is not None and s.chosen_lr <= 0.05 for s in stages)


def test_exploit_divergence_restores_at_quarter_lr() -> None:
    config = classic(total_steps=2000, candidates=3, lr_min=1e-4, lr_max=1.0)
    state, decision = advance(config, None, None)
    while decision.phase != "exploit":
        losses = [1.0] * decision.steps
        state, decision = advance(config, state, WindowReport(start_step=decision.start_step, losses=losses))
    chosen = decision.lr
    state, after = advance(
        config, state, WindowReport(start_step=decision.start_step, losses=[1.0, math.inf])
    )
    assert after.action == "restore" and after.phase == "exploit"
    assert after.lr == pytest.approx(max(1e-4, chosen / 4))
    assert "diverged" in after.reason


@pytest.mark.parametrize(
    ("start", "losses", "message"),
    [
        (5, [1.0], "starts at step 0"),
        (0, [], "no losses"),
        (0, [1.0] * 10_000, "planned"),
    ],
)
def test_reports_that_do_not_fit_the_window_are_rejected(
    start: int, losses: list[float], message: str
) -> None:
    config = TunerConfig(total_steps=1000)
    state, _ = advance(config, None, None)
    with pytest.raises(ReportRejected, match=message):
        advance(config, state, WindowReport(start_step=start, losses=losses))


def test_partial_window_is_continued_not_lost() -> None:
    config = classic(total_steps=1000, warmup_steps=50, window_max=50)
    state, first = advance(config, None, None)
    state, second = advance(config, state, WindowReport(start_step=0, losses=[2.0] * 20))
    assert (second.phase, second.start_step, second.steps) == ("warmup", 20, 30)
    assert second.lr == pytest.approx(first.lr_at(20))


def test_report_after_done_is_rejected() -> None:
    config = TunerConfig(total_steps=40)
    decisions, state = run_with_state(config)
    assert decisions[-1].action == "done"
    assert current_decision(state).action == "done"
    with pytest.raises(ReportRejected, match="done"):
        advance(config, state, WindowReport(start_step=40, losses=[1.0]))


def test_small_budget_searches_with_fewer_tries_rather_than_not_at_all() -> None:
    decisions = run(classic(total_steps=100, candidates=10))
    tries = [d for d in decisions if d.phase == "search" and d.action in ("snapshot", "restore")]
    assert 3 <= len(tries) <= 4
    assert sum(d.steps for d in decisions if d.phase == "search") <= 50
    assert decisions[-1].start_step == 100


def exploit_with_val(config: TunerConfig) -> tuple[State, Decision]:
    """Drive a val-objective job (flat losses) to its first exploitation window."""
    state, decision = advance(config, None, None)
    while decision.phase != "exploit":
        vals = {s: 1.0 for s in decision.eval_at}
        report = WindowReport(start_step=decision.start_step, losses=[1.0] * decision.steps, val_losses=vals)
        state, decision = advance(config, state, report)
    return state, decision


def test_val_objective_evaluates_the_end_of_every_exploit_window() -> None:
    config = classic(total_steps=2000, candidates=3, objective="val", window_max=50)
    _, decision = exploit_with_val(config)
    assert decision.eval_at == [decision.start_step + decision.steps - 1]
    assert decision.action in ("evaluate", "restore", "continue")


def test_validation_loss_rising_in_a_stage_rewinds_it_at_a_quarter_lr() -> None:
    # Small data overfits: the training loss falls while the validation loss climbs.
    config = classic(total_steps=2000, candidates=3, objective="val", window_max=50)
    state, decision = exploit_with_val(config)
    chosen, last = decision.lr, decision.start_step + decision.steps - 1
    report = WindowReport(
        start_step=decision.start_step, losses=[0.5] * decision.steps, val_losses={last: 1.0}
    )
    state, decision = advance(config, state, report)  # the stage's reference level: 1.0
    assert decision.action != "restore"
    for val in (1.2, 1.25):  # two windows in a row above it: a trend, not a spike
        last = decision.start_step + decision.steps - 1
        report = WindowReport(
            start_step=decision.start_step, losses=[0.4] * decision.steps, val_losses={last: val}
        )
        state, decision = advance(config, state, report)
    assert decision.action == "restore" and "overfitting" in decision.reason
    assert decision.lr == pytest.approx(max(config.lr_min, chosen / 4))


def test_one_spike_of_the_validation_loss_does_not_rewind_two_windows_in_a_row_do() -> None:
    config = classic(total_steps=4000, candidates=3, objective="val", window_max=50)
    state, decision = exploit_with_val(config)
    actions = []
    for val in (1.0, 1.2, 1.0, 1.2, 1.25):  # reference, spike, recovery, then a sustained rise
        last = decision.start_step + decision.steps - 1
        report = WindowReport(
            start_step=decision.start_step, losses=[0.5] * decision.steps, val_losses={last: val}
        )
        state, decision = advance(config, state, report)
        actions.append(decision.action)
    assert "restore" not in actions[:4]
    assert actions[4] == "restore" and "overfitting" in decision.reason


def test_train_objective_ignores_validation_losses() -> None:
    config = classic(total_steps=2000, candidates=3, window_max=50)
    state, decision = advance(config, None, None)
    while decision.phase != "exploit":
        report = WindowReport(start_step=decision.start_step, losses=[1.0] * decision.steps)
        state, decision = advance(config, state, report)
    assert decision.eval_at == []


@pytest.mark.parametrize("research", ["no", "below"])
def test_after_overfitting_the_next_stage_searches_the_bracket_or_below_the_lr(
    research: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(planner, "OVERFIT_RESEARCH", research)  # lever overfit-below: "below"
    config = classic(total_steps=4000, candidates=3, objective="val", window_max=50, search_stages=2)
    state, decision = exploit_with_val(config)
    chosen, vals = decision.lr, iter((1.0, 1.2, 1.25))  # the level, then overfitting
    while decision.phase != "search":
        last = decision.start_step + decision.steps - 1
        report = WindowReport(
            start_step=decision.start_step, losses=[0.5] * decision.steps, val_losses={last: next(vals, 1.0)}
        )
        state, decision = advance(config, state, report)
    search = state["search"]
    assert search is not None and decision.stage == 1
    expected = config.lr_max if research == "no" else chosen / 2
    assert search["high"] == pytest.approx(expected)
