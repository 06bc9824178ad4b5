"""Statistics for few-seed comparisons: IQM, bootstrap intervals, paired ratios, steps-to-target.

Why these (rliable, Agarwal et al. 2021): with 3-5 seeds a mean is hostage to one bad run and a
median throws most of the data away; the interquartile mean sits between. Intervals come from a
percentile bootstrap over seeds (stratified by workload for the aggregate, so every workload keeps
its weight). A win is claimed only when the interval says so.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
from scipy import stats as scipy_stats

Stat = Callable[[np.ndarray], float]


def iqm(values: Sequence[float] | np.ndarray) -> float:
    """Interquartile mean: the mean of the middle half (trim 25% each side; rliable's definition).

    With n values, floor(n/4) are dropped from each end, so n < 4 gives the plain mean.
    """
    x = np.sort(np.asarray(values, dtype=float))
    if x.size == 0:
        return math.nan
    k = int(0.25 * x.size)
    return float(x[k : x.size - k].mean())


def bootstrap_ci(
    values: Sequence[float], stat: Stat = iqm, reps: int = 2000, level: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``stat`` over resampled values (seeds)."""
    return stratified_bootstrap_ci([values], stat, reps, level, seed)


def stratified_bootstrap_ci(
    groups: Sequence[Sequence[float]], stat: Stat = iqm, reps: int = 2000, level: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap of ``stat`` over the pooled values, resampling within each group.

    Groups are workloads (strata) and values their seeds: resampling inside each group keeps
    every workload's share of the pool fixed, as rliable's stratified bootstrap does. That is
    ``scipy.stats.bootstrap`` with one sample per group (each is resampled on its own) and a
    statistic of the pooled resample. A group of one value cannot be resampled (scipy refuses
    it); it enters every resample as itself.
    """
    arrays = [np.asarray(g, dtype=float) for g in groups if len(g) > 0]
    if not arrays:
        return (math.nan, math.nan)
    fixed = [a for a in arrays if a.size == 1]
    samples = [a for a in arrays if a.size > 1]
    if not samples:
        value = stat(np.concatenate(fixed))
        return (value, value)

    def pooled_stat(*resampled: np.ndarray, axis: int = -1) -> np.ndarray:
        rows = np.concatenate(resampled, axis=-1)
        if fixed:
            extra = np.concatenate(fixed)
            rows = np.concatenate([rows, np.broadcast_to(extra, (*rows.shape[:-1], extra.size))], axis=-1)
        if stat is iqm:  # vectorised: a report computes ~1000 intervals
            ordered = np.sort(rows, axis=-1)
            k = int(0.25 * ordered.shape[-1])
            return np.asarray(ordered[..., k : ordered.shape[-1] - k].mean(axis=-1))
        flat = rows.reshape(-1, rows.shape[-1])
        return np.array([stat(r) for r in flat]).reshape(rows.shape[:-1])

    result = scipy_stats.bootstrap(
        samples,
        pooled_stat,
        n_resamples=reps,
        confidence_level=level,
        method="percentile",
        vectorized=True,
        random_state=np.random.default_rng(seed),
    )
    interval = result.confidence_interval
    return (float(interval.low), float(interval.high))


def probability_of_improvement(ours: Sequence[float], theirs: Sequence[float]) -> float:
    """Share of paired seeds where ours is lower (better); ties count half."""
    pairs = list(zip(ours, theirs, strict=True))
    if not pairs:
        return math.nan
    return sum(1.0 if a < b else 0.5 if a == b else 0.0 for a, b in pairs) / len(pairs)


def steps_to_target(curve: Sequence[Sequence[float | None]], target: float) -> int | None:
    """First consumed-step count at which the validation loss is at or below ``target``.

    ``curve`` is [[steps_consumed, val_loss], ...] in increasing steps; None means not reached.
    Resolution is the evaluation interval (about T/20), which the report states.
    """
    for step, loss in curve:
        if loss is not None and math.isfinite(loss) and loss <= target:
            return int(step if step is not None else 0)
    return None


def median_steps(steps: Sequence[int | None]) -> float | None:
    """Median over seeds with 'not reached' as +inf; None when the median itself is not reached."""
    if not steps:
        return None
    med = float(np.median([math.inf if s is None else s for s in steps]))
    return None if math.isinf(med) else med


def score(final: float | None, initial: float | None) -> float:
    """The value a run is ranked by: its final validation loss, where a diverged run counts as
    no progress at all (the untrained model's loss), so one NaN cannot wreck a mean."""
    start = math.inf if initial is None else initial
    if final is None or not math.isfinite(final) or final > start:
        return start
    return final
