"""The decomposition's held LR: the LR before the final anneal, or before an overfit stop."""

from __future__ import annotations

from bench.decompose import held_lr


def test_the_held_lr_is_read_just_before_the_anneal() -> None:
    lrs = [0.01] * 20 + [0.1] * 60 + [0.1 * (1 - i / 20) + 1e-6 for i in range(20)]
    assert held_lr({"lrs": lrs}) == 0.1


def test_after_an_overfit_stop_the_held_lr_is_the_one_before_it() -> None:
    # the stop restored the best model at step 50 and held lr_min to the end
    lrs = [0.01] * 20 + [0.1] * 30 + [1e-6] * 50
    assert held_lr({"lrs": lrs}) == 0.1


def test_a_run_without_lrs_has_no_held_lr() -> None:
    assert held_lr({"lrs": []}) is None
