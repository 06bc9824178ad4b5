"""Where to try the next learning rate within a stage, and which tried one won.

Points live in [0, 1] (the normalised log-LR of the stage's search range); values are forecast
losses, lower is better, ``None`` for a diverged try. Everything here is pure and deterministic:
the planner replays it from stored state, so the same inputs must give the same answer and
nothing may leak between calls (no caches, no global RNG disturbance).

AutoLRS drove a GP with LCB at kappa = 1e6, which made its "BO" a space-filling design; we keep
that behaviour as the ``space_filling`` peer and offer a real exploit/explore trade-off (LogEI on a
GP) as ``bo``. The GP is BoTorch's default model computed in closed form (:mod:`.gp`): the same
posterior and acquisition in about a millisecond instead of BoTorch's 31-45 ms.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Literal

import numpy as np

from lrpilot_service.engine import gp

__all__ = ["Choice", "Proposal", "choose_best", "propose_next"]

# 0.5 first: later stages are centred on the previous best, so the centre is the best prior guess.
INITIAL_DESIGN: tuple[float, ...] = (0.5, 0.2, 0.8)
# A dense, exact grid (i / 200) so proposals are reproducible decimal-looking numbers.
GRID: tuple[float, ...] = tuple(i / 200 for i in range(201))
# Two grid steps: closer than this to a tried point counts as a repeat (wasted window).
MIN_DISTANCE = 0.01
# Tries whose posterior mean is within this many posterior sds of the best count as tied.
TIE_SDS = 1.0
# Initial design points closer than this to the incumbent are left out: too close to tell apart.
INCUMBENT_CLEARANCE = 0.15
# Fewer finite points than this and a GP mean is not worth trusting over the raw observation.
MIN_POINTS_FOR_GP = 3
# With fewer points the tie rule applies to the observed values themselves (else the lowest wins).
TIE_FEW_POINTS = False
# The tie rule moves this share of the way (in log-LR) from the lowest mean to the largest tied try
# (lever ``tie-half``: 0.5; 1.0 takes the largest tied try itself).
TIE_TOWARD = 1.0


@dataclass(frozen=True)
class Proposal:
    """The next point and how it was found, so the schedule can explain every candidate.

    ``method`` is "initial", "bo-logei", "space-filling" or "fallback".
    """

    x: float
    method: str
    reason: str
    #: BO's expected improvement at x, as a share of the tries' spread (worst finite to best): how
    #: much the next try can be expected to beat the best one. None outside BO.
    gain: float | None = None


@dataclass(frozen=True)
class Choice:
    """The stage winner: one of the tried xs, with the value that justified it.

    ``mean`` is the GP posterior mean in the units of ys, the observed value when no GP was used,
    or NaN when every try diverged (there is nothing to report).
    """

    x: float
    mean: float
    reason: str


def _clean(xs: Sequence[float], ys: Sequence[float | None]) -> tuple[list[float], list[float | None]]:
    """Clip xs into [0, 1] and treat non-finite ys as diverged, so callers cannot crash us."""
    if len(xs) != len(ys):
        raise ValueError(f"xs and ys differ in length ({len(xs)} != {len(ys)})")
    cx = [min(1.0, max(0.0, float(x))) for x in xs]
    cy: list[float | None] = [None if y is None or not math.isfinite(y) else float(y) for y in ys]
    return cx, cy


def _is_tried(x: float, xs: Sequence[float]) -> bool:
    return any(abs(x - t) < MIN_DISTANCE for t in xs)


def diverged_penalty(ys: Sequence[float | None]) -> float | None:
    """A stand-in value for diverged tries: worse than every finite one, on the same scale.

    AutoLRS used 1e6, which wrecks a GP fitted to losses of order 1 (everything else looks flat).
    Half the observed spread above the worst keeps the GP's scale intact and is scale-equivariant;
    the relative guard keeps it strictly worse when all finite values are equal. None when no
    try was finite (there is no scale to borrow).
    """
    finite = [y for y in ys if y is not None]
    if not finite:
        return None
    hi, lo = max(finite), min(finite)
    spread = max(hi - lo, 1e-3 * abs(hi))
    if spread == 0.0:  # all exactly zero: any positive value is a valid scale
        spread = 1.0
    return hi + 0.5 * spread


def space_filling(xs: Sequence[float]) -> float:
    """Midpoint of the largest gap between tried points and the ends 0 and 1 (ties: lowest x).

    The largest gap is at least 1/(n+1) wide, so its midpoint is never a tried point.
    """
    edges = sorted({0.0, 1.0, *(min(1.0, max(0.0, x)) for x in xs)})
    best_gap, best_mid = -1.0, 0.5
    for lo, hi in pairwise(edges):
        if hi - lo > best_gap + 1e-12:
            best_gap, best_mid = hi - lo, (lo + hi) / 2
    return best_mid


def initial_design(incumbent: float | None) -> tuple[float, ...]:
    """The first tries: the incumbent (the LR being trained) first when there is one, then the
    default design's points that are not next to it (a refinement must see its own LR to know
    whether moving away from it pays)."""
    if incumbent is None:
        return INITIAL_DESIGN
    rest = [x for x in INITIAL_DESIGN if abs(x - incumbent) > INCUMBENT_CLEARANCE]
    return (incumbent, *rest)[: len(INITIAL_DESIGN)]


def _initial(
    xs: Sequence[float], ys: Sequence[float | None], design: Sequence[float] = INITIAL_DESIGN
) -> float | None:
    """Next untried entry of the initial design, skipping those at or above a diverged try.

    Divergence is (nearly) monotone in the LR, so trying above a point that diverged wastes a window.
    """
    diverged = [x for x, y in zip(xs, ys, strict=True) if y is None]
    ceiling = min(diverged, default=math.inf)
    for x in design:
        if not _is_tried(x, xs) and x < ceiling - MIN_DISTANCE / 2:
            return x
    return None


def _all_diverged(xs: Sequence[float]) -> Proposal:
    """Nothing converged: move toward smaller LRs (half the smallest tried x)."""
    x = min(xs) / 2
    if _is_tried(x, xs):  # the smallest try is already at the bottom of the range
        return Proposal(space_filling(xs), "fallback", "all tries diverged, even the lowest: space-filling")
    return Proposal(x, "fallback", "all tries diverged: halving the smallest tried point")


def _scaled(ys: Sequence[float | None], penalty: float) -> tuple[list[float], float, float]:
    """Diverged tries filled with the penalty, then mapped affinely so the best is 0, the penalty ~1.5.

    Standardising alone is not enough: the posterior variance is floored at an absolute 1e-12, so
    losses of order 1e-6 would behave differently from the same losses times 1e6. Returns
    (values, offset, scale): original = offset + scale * v.
    """
    finite = [y for y in ys if y is not None]
    lo = min(finite)
    scale = (penalty - lo) / 1.5
    if not (math.isfinite(scale) and scale > 0.0):
        raise FloatingPointError("loss values span no finite, positive range")
    return [((penalty if y is None else y) - lo) / scale for y in ys], lo, scale


def _bo(xs: list[float], ys: list[float | None], penalty: float) -> Proposal:
    """LogEI (minimisation, best_f = best observed) maximised over the grid, tried points excluded."""
    candidates = [g for g in GRID if not _is_tried(g, xs)]
    if not candidates:
        return Proposal(space_filling(xs), "fallback", "grid exhausted: space-filling")
    values_in, _, _ = _scaled(ys, penalty)
    with np.errstate(all="ignore"):
        mean, sd = gp.fit(xs, values_in).predict(candidates)
        values = gp.log_expected_improvement(mean, sd, min(values_in))
    if bool(np.isnan(values).any()) or not math.isfinite(float(values.max())):
        raise FloatingPointError("acquisition values are not finite")
    best = int(np.argmax(values))  # grid ascends: the first maximum is the lowest x
    n_div = sum(y is None for y in ys)
    note = f", {n_div} diverged penalised" if n_div else ""
    gain = math.exp(float(values[best]))  # scaled units: the finite tries' spread is 1
    return Proposal(
        candidates[best], "bo-logei", f"LogEI max over {len(candidates)} grid points{note}", gain=gain
    )


def propose_next(
    xs: Sequence[float],
    ys: Sequence[float | None],
    *,
    method: Literal["bo", "space_filling"],
    incumbent: float | None = None,
) -> Proposal:
    """Next point to try; never a repeat of a tried one, never raises on finite/None data.

    ``incumbent``: the point of the LR being trained, tried first (see :func:`initial_design`).
    """
    cx, cy = _clean(xs, ys)
    if len(cx) < len(INITIAL_DESIGN):
        x0 = _initial(cx, cy, initial_design(incumbent))
        if x0 is not None:
            return Proposal(x0, "initial", f"initial design point {len(cx) + 1}")
    penalty = diverged_penalty(cy)
    if penalty is None:
        return _all_diverged(cx)
    if method == "space_filling":
        return Proposal(space_filling(cx), "space-filling", "midpoint of the largest untried gap")
    try:
        return _bo(cx, cy, penalty)
    except Exception as err:  # any GP/acquisition failure must degrade, never stop the job
        return Proposal(space_filling(cx), "fallback", f"BO failed ({type(err).__name__}): space-filling")


def choose_best(
    xs: Sequence[float],
    ys: Sequence[float | None],
    *,
    sds: Sequence[float] | None = None,
    prefer_large: bool = True,
    tolerance: float = 0.0,
) -> Choice:
    """The tried point with the lowest GP posterior mean among non-diverged tries.

    The posterior mean pools neighbouring tries, so one lucky noisy forecast does not win the
    stage (AutoLRS took the raw argmin). ``sds`` are the tries' forecast uncertainties, used to
    decide which tries are statistically tied with the best (the largest tied LR wins, unless
    ``prefer_large`` is False). With too few finite points, or if the fit fails, the raw observed
    minimum is used. ``tolerance``: a difference in the units of ys that also counts as a tie
    (a practical margin, on top of the statistical one). Raises ValueError only for empty or
    mismatched input.
    """
    cx, cy = _clean(xs, ys)
    if not cx:
        raise ValueError("choose_best needs at least one tried point")
    finite = {i: y for i, y in enumerate(cy) if y is not None}
    if not finite:
        return Choice(min(cx), math.nan, "all diverged: smallest tried point")
    ok = sorted(finite)
    best_i = min(ok, key=lambda i: (finite[i], cx[i]))
    x_obs, y_obs = cx[best_i], finite[best_i]
    own = [0.0] * len(cx) if sds is None else [abs(float(v)) if math.isfinite(v) else 0.0 for v in sds]

    def margin(a: int, b: int, posterior_sd: float = 0.0) -> float:
        """How far above try ``a``'s value try ``b``'s may be and still tie with it."""
        return max(tolerance, TIE_SDS * max(posterior_sd, math.hypot(own[a], own[b])))

    if len(ok) < MIN_POINTS_FOR_GP:
        tied = [i for i in ok if finite[i] <= y_obs + margin(best_i, i)]
        top = max(tied, key=lambda i: cx[i]) if prefer_large and TIE_FEW_POINTS else best_i
        if top != best_i:
            return Choice(
                cx[top], finite[top], f"largest LR tied with the lowest observed value ({len(tied)} tied)"
            )
        return Choice(x_obs, y_obs, f"lowest observed value (only {len(ok)} finite tries)")
    penalty = diverged_penalty(cy)
    assert penalty is not None  # finite values exist
    try:
        values_in, offset, scale = _scaled(cy, penalty)
        with np.errstate(all="ignore"):
            mean, sd = gp.fit(cx, values_in).predict([cx[i] for i in ok])
        means = [offset + scale * float(m) for m in mean]
        stds = [scale * float(v) for v in sd]
    except Exception as err:  # degrade to the raw minimum rather than stall the stage
        return Choice(x_obs, y_obs, f"lowest observed value (GP failed: {type(err).__name__})")
    if not all(math.isfinite(m) for m in means + stds):
        return Choice(x_obs, y_obs, "lowest observed value (GP mean not finite)")
    j = min(range(len(ok)), key=lambda k: (means[k], cx[ok[k]]))
    # Short windows understate what a larger LR gains over the stage (short-horizon bias), so
    # among tries the GP cannot tell from the best (mean within one posterior sd), take the largest.
    # A try's own forecast sd counts too: a GP that interpolates has ~0 posterior sd at tried points.
    ties = [k for k in range(len(ok)) if means[k] <= means[j] + margin(ok[j], ok[k], stds[j])]
    t = max(ties, key=lambda k: cx[ok[k]]) if prefer_large else j
    if t == j:
        return Choice(cx[ok[j]], float(means[j]), "lowest GP posterior mean")
    if TIE_TOWARD < 1.0:
        x = round(cx[ok[j]] + TIE_TOWARD * (cx[ok[t]] - cx[ok[j]]), 6)
        return Choice(
            x, float(means[j]), f"{TIE_TOWARD:.0%} of the way to the largest tied LR ({len(ties)} tied)"
        )
    return Choice(
        cx[ok[t]],
        float(means[t]),
        f"largest LR tied with the lowest GP posterior mean ({len(ties)} tied)",
    )
