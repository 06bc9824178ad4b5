"""Schedule-aware loss laws, fitted on a branch's history and its tries (the forecaster benchmark's
``law`` and ``law-lr`` scorers; docs/engine.md says why neither is in the engine).

Each returns, per candidate LR, the loss it predicts at the end of that candidate's plan (hold,
then anneal); a candidate whose try did not finish is predicted ``inf``.
"""

from __future__ import annotations

import math
from typing import Any

LAW_MOMENTUM = 0.99  # lambda of the annealing law, per step (short runs: a short memory)


def _areas(lrs: Any) -> tuple[Any, Any]:
    """S1 (the LR's running sum) and S2 (the momentum-smoothed sum of LR decreases), per step."""
    import numpy as np

    lrs = np.asarray(lrs, dtype=np.float64)
    s1 = np.cumsum(lrs)
    m, s2, prev, out = 0.0, 0.0, lrs[0], []
    for lr in lrs:
        m = LAW_MOMENTUM * m + max(prev - lr, 0.0)
        s2 += m
        prev = lr
        out.append(s2)
    return s1, np.asarray(out)


def _complete(lrs: Any, losses: Any) -> bool:
    """Did a try report a finite loss for every LR it was given (the laws fit only such tries)?"""
    return len(losses) == len(lrs) and all(math.isfinite(v) for v in losses)


def law_predictions(history: Any, tries: dict[float, Any], plan: Any) -> dict[float, float]:
    """Tissue et al.'s LR-annealing law fitted on the branch's history and every try, then evaluated
    at the end of each candidate's plan: L = L0 + A * S1^-alpha - C * S2 (see docs/references.md).

    ``history`` is (lrs, losses) up to the branch point, ``tries`` per candidate LR (lrs, losses)
    after it, ``plan(lr)`` the LRs from the branch point to the end of the budget.
    """
    import numpy as np
    from scipy.optimize import least_squares

    h_lrs, h_losses = (np.asarray(x, dtype=np.float64) for x in history)
    rows = []  # (S1, S2, loss) for every observed step
    s1, s2 = _areas(h_lrs)
    rows += list(zip(s1, s2, h_losses, strict=True))
    for t_lrs, t_losses in tries.values():
        if not _complete(t_lrs, t_losses):
            continue
        ts1, ts2 = _areas(np.concatenate([h_lrs, t_lrs]))
        n = len(t_lrs)
        rows += list(zip(ts1[-n:], ts2[-n:], t_losses, strict=True))
    data = np.asarray(rows)
    data = data[np.isfinite(data[:, 2]) & (data[:, 0] > 0)]
    scale = float(np.median(data[:, 2]))

    def residual(p: Any) -> Any:
        l0, log_a, alpha, c = p
        return (l0 + np.exp(log_a) * data[:, 0] ** (-alpha) - c * data[:, 1] - data[:, 2]) / scale

    fit = least_squares(
        residual,
        x0=[0.5 * scale, math.log(scale), 0.5, 0.0],
        bounds=([-np.inf, -50, 0.0, 0.0], [np.inf, 50, 3.0, np.inf]),
    )
    l0, log_a, alpha, c = fit.x
    out = {}
    for lr, (t_lrs, t_losses) in tries.items():
        if not _complete(t_lrs, t_losses):
            out[lr] = math.inf
            continue
        s1, s2 = _areas(np.concatenate([h_lrs, plan(lr)]))
        out[lr] = float(l0 + math.exp(log_a) * s1[-1] ** (-alpha) - c * s2[-1])
    return out


#: The LR-aware law's noise memory, per step: the loss sits above its noise-free level in
#: proportion to the recent LR, which an anneal removes.
NOISE_MOMENTUM = 0.9


def _lr_aware_features(lrs: Any, eta_c: float) -> tuple[Any, Any]:
    """E (the running sum of LR * exp(-LR / eta_c): progress per step peaks at eta_c and falls
    beyond it) and the momentum-smoothed LR (the noise an anneal removes), per step."""
    import numpy as np
    from scipy.signal import lfilter

    lrs = np.asarray(lrs, dtype=np.float64)
    efficiency = np.cumsum(lrs * np.exp(-lrs / eta_c))
    noise = lfilter([1 - NOISE_MOMENTUM], [1, -NOISE_MOMENTUM], lrs)
    return efficiency, noise


def lr_aware_law_predictions(history: Any, tries: dict[float, Any], plan: Any) -> dict[float, float]:
    """A law that can rank peak LRs: L = L0 + A * E^-alpha + D * m, with E the LR's area counted at
    an efficiency that peaks at eta_c, and m the smoothed LR (the noise level an anneal removes).

    The annealing laws (Tissue et al.; the multi-power law) make the loss fall with the LR's area,
    so a larger peak LR always predicts lower: they rank LRs backwards past the optimum. Here the
    efficiency eta * exp(-eta / eta_c) gives progress an optimum that the tries locate, and the
    noise term lets a cooled try and a held one disagree by how much the LR still costs.
    Fitted on the branch's history and every try; evaluated at the end of each candidate's plan.
    """
    import numpy as np
    from scipy.optimize import least_squares

    h_lrs, h_losses = (np.asarray(x, dtype=np.float64) for x in history)
    series = [(h_lrs, h_losses, len(h_lrs))]
    for t_lrs, t_losses in tries.values():
        if _complete(t_lrs, t_losses):
            series.append((np.concatenate([h_lrs, t_lrs]), np.asarray(t_losses), len(t_lrs)))
    observed = np.concatenate([losses for _, losses, _ in series])
    keep = np.isfinite(observed)
    scale = float(np.median(observed[keep]))
    top = float(max(max(t) for t, _ in tries.values()))

    def predict(p: Any, lrs: Any) -> Any:
        l0, log_a, alpha, log_eta_c, d = p
        efficiency, noise = _lr_aware_features(lrs, math.exp(log_eta_c))
        return l0 + np.exp(log_a) * np.maximum(efficiency, 1e-12) ** (-alpha) + d * noise

    def residual(p: Any) -> Any:
        fitted = np.concatenate([predict(p, lrs)[-n:] for lrs, _, n in series])
        return (fitted - observed)[keep] / scale

    fit = least_squares(
        residual,
        x0=[0.5 * scale, math.log(scale), 0.5, math.log(top), 0.0],
        bounds=([-np.inf, -50, 0.0, math.log(top) - 12, 0.0], [np.inf, 50, 3.0, math.log(top) + 5, np.inf]),
    )
    out = {}
    for lr, (t_lrs, t_losses) in tries.items():
        complete = _complete(t_lrs, t_losses)
        out[lr] = float(predict(fit.x, np.concatenate([h_lrs, plan(lr)]))[-1]) if complete else math.inf
    return out
