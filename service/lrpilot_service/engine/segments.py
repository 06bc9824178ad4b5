"""Segments: a stretch of steps with one LR rule, and the windows the client is told to run.

A segment's LR is held at ``lr`` from ``start`` until ``hold``, then moves to ``lr_end`` at ``end``:
linearly, geometrically (the range test's sweep), or along an anneal curve. That one rule covers
a constant stretch (hold = end), a warmup or a sweep (hold = start), a try with a cooldown, and
the finish (hold, then anneal). A segment may first *rise*: move linearly from the LR the model
was trained at (``lr_from``) to ``lr`` until step ``rise``, so a try or an exploitation never
jumps to a much larger LR in one step. The client interpolates each window linearly (or geometrically)
between the two LRs its decision names, so a window never straddles ``hold``, and a curved anneal
is sent as short windows (at most 1/:data:`CURVE_PIECES` of the anneal each): a piecewise-linear
curve, exact at the window boundaries, with no curve arithmetic on the client.
"""

from __future__ import annotations

import math

from lrpilot.protocol import Phase, Ramp, ramp_lr
from lrpilot_service.engine.state import Segment, State

#: A curved anneal is sent in at least this many windows.
CURVE_PIECES = 16

ANNEAL_SHAPES = ("linear", "cosine", "sqrt")


def shape_fraction(shape: str, progress: float) -> float:
    """How much of the anneal's starting LR is left at ``progress`` in [0, 1] (1 -> 0)."""
    p = min(max(progress, 0.0), 1.0)
    if shape == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * p))
    if shape == "sqrt":  # WSD's 1-sqrt cooldown (Hägele et al. 2024)
        return 1.0 - math.sqrt(p)
    return 1.0 - p


def set_segment(
    st: State,
    phase: Phase,
    start: int,
    end: int,
    lr: float,
    lr_end: float | None = None,
    *,
    ramp: Ramp = "linear",
    shape: str = "linear",
    hold: int | None = None,
    rise: tuple[int, float] | None = None,
) -> None:
    """Enter ``phase`` for steps [start, end); ``hold``: the LR stays ``lr`` until then (default start).

    ``rise``: (steps, LR to start from): the first steps move linearly from that LR to ``lr``.
    """
    st["phase"] = phase
    hold_at = start if hold is None else min(max(hold, start), end)
    st["segment"] = {
        "start": start,
        "end": end,
        "lr": lr,
        "lr_end": lr if lr_end is None else lr_end,
        "ramp": ramp,
        "shape": shape,
        "hold": hold_at,
    }
    limit = end if st["segment"]["lr_end"] == lr else hold_at  # a rise never overlaps the move
    if rise is not None and min(start + rise[0], limit) > start and rise[1] != lr:
        st["segment"]["rise"] = min(start + rise[0], limit)
        st["segment"]["lr_from"] = rise[1]


def lr_at(seg: Segment, step: int) -> float:
    """The segment's LR at absolute ``step``."""
    rise = seg.get("rise", seg["start"])
    if step < rise:
        progress = (step - seg["start"]) / (rise - seg["start"])
        return ramp_lr(seg.get("lr_from", seg["lr"]), seg["lr"], progress, "linear")
    span = seg["end"] - seg["hold"]
    if step < seg["hold"] or span <= 0 or seg["lr_end"] == seg["lr"]:
        return seg["lr"]
    progress = (step - seg["hold"]) / span
    if seg["shape"] != "linear":
        return seg["lr_end"] + (seg["lr"] - seg["lr_end"]) * shape_fraction(seg["shape"], progress)
    return ramp_lr(seg["lr"], seg["lr_end"], progress, seg["ramp"])


def window_steps(seg: Segment, step: int, window_max: int) -> int:
    """Steps in the next window from ``step``: to ``rise``, ``hold`` or the end, within ``window_max``."""
    rise = seg.get("rise", seg["start"])
    if step < rise:
        return min(rise - step, window_max)
    if step < seg["hold"]:
        return min(seg["hold"] - step, window_max)
    steps = min(seg["end"] - step, window_max)
    if seg["shape"] != "linear":
        steps = min(steps, max(1, math.ceil((seg["end"] - seg["hold"]) / CURVE_PIECES)))
    return max(steps, 0)
