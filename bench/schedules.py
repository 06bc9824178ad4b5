"""Hand-written LR schedules: the baselines a user would pick instead of a tuner.

Each schedule is a pure function ``lr(step, total, peak)`` for steps 0..total-1, so the shapes are
testable without training and every baseline applies its LR the same way (set before each step).
Formulas follow docs/references.md; OneCycle follows PyTorch's OneCycleLR (cosine phases,
pct_start 0.3, div 25, final div 1e4) without its momentum cycling, so only the LR differs.
"""

from __future__ import annotations

import math
from collections.abc import Callable

Schedule = Callable[[int, int, float], float]

WARMUP_FRACTION = 0.05  # cosine, linear and WSD warm up linearly over the first 5% of steps
WSD_DECAY_FRACTION = 0.2


def warmup_steps(total: int) -> int:
    """Warmup length used by the warmup schedules: 5% of the budget, at least one step."""
    return max(1, round(WARMUP_FRACTION * total))


def _warm(step: int, total: int, peak: float) -> float | None:
    """The warmup LR (linear from peak/W up to peak), or None once warmup is over."""
    w = warmup_steps(total)
    return peak * (step + 1) / w if step < w else None


def constant(step: int, total: int, peak: float) -> float:
    """The peak LR throughout: the default of most training scripts."""
    return peak


def step_decay(step: int, total: int, peak: float) -> float:
    """x0.1 at one third and again at two thirds of the budget."""
    drops = (step >= total // 3) + (step >= 2 * total // 3)
    return peak * 0.1**drops


def cosine(step: int, total: int, peak: float) -> float:
    """Linear warmup, then half a cosine from the peak toward zero at ``total``."""
    warm = _warm(step, total, peak)
    if warm is not None:
        return warm
    w = warmup_steps(total)
    return peak * 0.5 * (1.0 + math.cos(math.pi * (step - w) / max(1, total - w)))


def linear(step: int, total: int, peak: float) -> float:
    """Linear warmup, then linear decay to zero at ``total`` (Defazio et al.'s worst-case optimum)."""
    warm = _warm(step, total, peak)
    if warm is not None:
        return warm
    w = warmup_steps(total)
    return peak * (1.0 - (step - w) / max(1, total - w))


def wsd(step: int, total: int, peak: float) -> float:
    """Warmup-stable-decay: constant after warmup, 1-sqrt decay to zero over the last 20%."""
    warm = _warm(step, total, peak)
    if warm is not None:
        return warm
    decay = max(1, round(WSD_DECAY_FRACTION * total))
    start = total - decay
    if step < start:
        return peak
    return peak * (1.0 - math.sqrt((step - start) / decay))


def rex(step: int, total: int, peak: float) -> float:
    """REX (Chen et al. 2021): eta * (1-p) / (0.5 + 0.5 (1-p)), p = step / total."""
    q = 1.0 - step / total
    return peak * q / (0.5 + 0.5 * q)


def onecycle(step: int, total: int, peak: float, pct_start: float = 0.3) -> float:
    """PyTorch OneCycleLR: cosine from peak/25 up to peak, then cosine down to peak/25/1e4."""
    initial = peak / 25.0
    final = initial / 1e4
    up_end = pct_start * total - 1.0
    if step <= up_end:
        start, end, frac = initial, peak, step / up_end if up_end > 0 else 1.0
    else:
        start, end, frac = peak, final, (step - up_end) / (total - 1 - up_end)
    return end + (start - end) / 2.0 * (math.cos(math.pi * frac) + 1.0)


SCHEDULES: dict[str, Schedule] = {
    "constant": constant,
    "step": step_decay,
    "cosine": cosine,
    "linear": linear,
    "wsd": wsd,
    "rex": rex,
    "onecycle": onecycle,
}
