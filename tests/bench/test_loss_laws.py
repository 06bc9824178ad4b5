"""The schedule-aware loss laws of the forecaster benchmark, on curves drawn from a known law."""

from __future__ import annotations

import numpy as np

from bench.loss_laws import _lr_aware_features, law_predictions, lr_aware_law_predictions

ETA_C, TOTAL, BRANCH, TRY = 0.1, 600, 100, 40


def _truth(lrs: np.ndarray) -> np.ndarray:
    efficiency, noise = _lr_aware_features(lrs, ETA_C)
    return 1.0 + 2.0 * efficiency ** (-0.5) + 3.0 * noise


def _plan(lr: float) -> list[float]:
    hold = TOTAL - 120
    return [lr if s < hold else lr * (TOTAL - s) / (TOTAL - hold) for s in range(BRANCH, TOTAL)]


def _case() -> tuple[tuple[list[float], list[float]], dict[float, tuple[list[float], list[float]]]]:
    h_lrs = np.full(BRANCH, 0.05)
    history = (list(h_lrs), list(_truth(h_lrs)))
    tries = {}
    for lr in (0.01, 0.03, 0.1, 0.3, 1.0):
        t_lrs = np.array([lr] * 28 + [lr * (1 - k / 12) for k in range(12)])
        tries[lr] = (list(t_lrs), list(_truth(np.concatenate([h_lrs, t_lrs]))[-TRY:]))
    return history, tries


def _realised(history: tuple[list[float], list[float]], lr: float) -> float:
    return float(_truth(np.concatenate([history[0], _plan(lr)]))[-1])


def test_the_lr_aware_law_ranks_candidates_past_the_optimum() -> None:
    history, tries = _case()
    predicted = lr_aware_law_predictions(history, tries, _plan)
    realised = {lr: _realised(history, lr) for lr in tries}
    assert sorted(tries, key=predicted.__getitem__) == sorted(tries, key=realised.__getitem__)
    for lr in tries:
        assert abs(predicted[lr] / realised[lr] - 1) < 0.02


def test_the_annealing_law_cannot_prefer_a_smaller_lr() -> None:
    """Why the LR-aware law exists: Tissue et al.'s law falls with the LR's area, so it ranks the
    largest LR best even where it realises the worst loss."""
    history, tries = _case()
    predicted = law_predictions(history, tries, _plan)
    realised = {lr: _realised(history, lr) for lr in tries}
    assert min(tries, key=predicted.__getitem__) == max(tries)
    assert min(tries, key=realised.__getitem__) != max(tries)
