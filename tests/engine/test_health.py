"""Training that stops learning without a NaN is a failure, not a tie (the two wrecked runs)."""

from __future__ import annotations

import math

from lrpilot.protocol import Decision, TunerConfig, WindowReport
from lrpilot_service.engine import advance
from lrpilot_service.engine.health import dead_gradients, level_of, no_progress, worse_than_start


def test_no_progress_means_not_significantly_below_the_stage_level() -> None:
    level = level_of([2.0 + 0.05 * (-1) ** i for i in range(16)])
    assert level is not None and math.isclose(level[0], 2.0)
    assert no_progress(2.0, 0.01, level)  # flat
    assert no_progress(1.98, 0.02, level)  # within noise
    assert not no_progress(1.8, 0.01, level)  # learned
    assert no_progress(2.3, 0.0, level)  # went back up: a dying network
    assert not no_progress(2.3, 0.0, None)  # no level, no judgement


def test_an_exploitation_window_clearly_above_the_start_is_worse() -> None:
    level = (1.0, 0.05)
    assert worse_than_start([1.2] * 20, level) is not None
    assert worse_than_start([1.01] * 20, level) is None  # within 2%
    assert worse_than_start([1.2] * 4, level) is None  # too short to judge


def test_the_levels_own_noise_counts_before_a_window_is_called_worse() -> None:
    # A byte-level LM: minibatch losses with sd 0.18. The level is a mean of 16 of them (standard
    # error 0.045), so a window 0.16 above it is within 3 standard errors of the difference;
    # counting the window's error alone called it "worse" and rewound a healthy stage.
    window = [2.527 + 0.18 * (-1) ** i for i in range(25)]
    assert worse_than_start(window, (2.369, 0.18)) is None
    assert worse_than_start([v + 0.1 for v in window], (2.369, 0.18)) is not None


def test_vanished_gradients_mean_a_dead_network() -> None:
    assert dead_gradients([1e-7] * 10, run_mean=0.5) is not None
    assert dead_gradients([0.4] * 10, run_mean=0.5) is None
    assert dead_gradients(None, run_mean=0.5) is None


CLASSIC = TunerConfig(total_steps=2000, probe="none", warmup_steps=0, candidates=4, lr_min=1e-4, lr_max=1.0)


def _to_exploit(config: TunerConfig, loss_of_lr: object) -> tuple[object, object]:
    state, d = advance(config, None, None)
    while d.phase != "exploit":
        losses = [loss_of_lr(d.lr_at(s)) for s in range(d.start_step, d.start_step + d.steps)]  # type: ignore[operator]
        state, d = advance(config, state, WindowReport(start_step=d.start_step, losses=losses))
    return state, d


def _warmed_up_to_exploit(config: TunerConfig) -> tuple[object, Decision]:
    """Warmup losses at 2.0, then tries whose loss is 1 + LR: the smallest LR learns most."""
    state, d = advance(config, None, None)
    while d.phase != "exploit":
        losses = [
            2.0 if d.phase == "warmup" else 1.0 + d.lr_at(s)
            for s in range(d.start_step, d.start_step + d.steps)
        ]
        state, d = advance(config, state, WindowReport(start_step=d.start_step, losses=losses))
    return state, d


def test_flat_tries_do_not_default_to_the_top_of_the_range() -> None:
    # Every try from the initial weights flat: the tie rule took the largest LR (a dead CNN).
    state, d = _to_exploit(CLASSIC, lambda lr: 2.3)
    assert d.lr < CLASSIC.lr_max * 0.5
    assert "no try made significant progress" in d.reason
    assert state["research"] != "no"  # type: ignore[index]


def test_a_try_that_went_back_up_is_never_chosen_even_when_largest() -> None:
    # Large LRs "tie" with small ones on a short window but end above the stage's starting level.
    config = CLASSIC.model_copy(update={"warmup_steps": 50, "warmup_lr": 1e-3})
    state, d = advance(config, None, None)
    while d.phase != "exploit":
        losses = []
        for s in range(d.start_step, d.start_step + d.steps):
            lr = d.lr_at(s)
            losses.append(2.0 if d.phase == "warmup" else (1.5 if lr < 0.1 else 2.05))
        state, d = advance(config, state, WindowReport(start_step=d.start_step, losses=losses))
    assert d.lr < 0.1


def test_an_exploitation_that_makes_the_loss_worse_is_rewound_and_searched_again() -> None:
    config = CLASSIC.model_copy(update={"warmup_steps": 50, "warmup_lr": 1e-3})
    state, d = _warmed_up_to_exploit(config)
    chosen = d.lr
    state, after = advance(
        config, state, WindowReport(start_step=d.start_step, losses=[2.5] * min(d.steps, 20))
    )
    assert after.action == "restore" and after.lr == chosen / 4
    assert "above the stage's starting level" in after.reason
    assert state["research"] != "no"  # type: ignore[index]


def test_a_stage_backs_off_once_when_a_smaller_lr_is_no_better() -> None:
    # The level the stage started from read low (minibatch noise), so every exploitation window
    # looked "worse", even at a quarter of the LR: the first release kept rewinding and dividing
    # the LR by 4 until it reached lr_min, and a byte-level LM stood still for 1,300 steps.
    config = CLASSIC.model_copy(update={"warmup_steps": 50, "warmup_lr": 1e-3, "total_steps": 2000})
    state, d = _warmed_up_to_exploit(config)
    chosen, restores = d.lr, 0
    while d.phase == "exploit" and d.start_step < 1000:
        state, d = advance(config, state, WindowReport(start_step=d.start_step, losses=[2.5] * d.steps))
        restores += d.action == "restore" and d.phase == "exploit"
    assert restores == 1
    assert d.lr >= chosen / 4 or d.phase != "exploit"


def test_a_stage_is_judged_against_its_snapshot_when_the_level_before_it_read_low() -> None:
    # The training losses before the snapshot read 2.0, but every try's first loss (the snapshot
    # itself on a fresh batch) is 2.5: tries that reach 2.3 made progress, and an exploitation at
    # 2.45 is not "worse than start". Judged against 2.0, the first release rewound it.
    config = CLASSIC.model_copy(update={"warmup_steps": 50, "warmup_lr": 1e-3})
    state, d = advance(config, None, None)
    while d.phase != "exploit":
        losses = []
        for s in range(d.start_step, d.start_step + d.steps):
            first = d.phase == "search" and d.action in ("snapshot", "restore") and s == d.start_step
            losses.append(2.0 if d.phase == "warmup" else 2.5 if first else 2.3 + 0.1 * d.lr_at(s))
        state, d = advance(config, state, WindowReport(start_step=d.start_step, losses=losses))
    assert "no try made significant progress" not in d.reason
    state, after = advance(config, state, WindowReport(start_step=d.start_step, losses=[2.45] * d.steps))
    assert after.action != "restore", after.reason
