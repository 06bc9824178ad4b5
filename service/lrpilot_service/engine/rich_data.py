"""A larger hold where the model does not memorise (on by default; lever ``no-rich`` turns it off).

Short tries understate what a larger LR gains over a long hold (short-horizon bias, Wu et al.
2018). That gain is real where more steps keep paying and a cost where the model overfits, and the
two are told apart by the gap between validation and training loss at a stage's start. Measured at
stage 1 on the benchmark (docs/engine.md, round 13): validation / training 0.94-1.0 on the three
workloads with large data (lm_bytes, teacher_cnn, friedman_mlp), 1.2-5.8 on the four small ones
that memorise (digits, cancer, diabetes).

The rule: a later stage (a refinement, or a re-search of the whole range) of a job scored on
validation loss, that started with validation at most ``RICH_GAP`` times training, holds
``RICH_FACTOR`` times its pick, but never more than its largest try that learned. The cap is what
a try proved from this very snapshot: an uncapped doubling of friedman's 0.1 diverged, with or
without a rise to it.
"""

from __future__ import annotations

from collections.abc import Sequence

from lrpilot.protocol import TunerConfig
from lrpilot_service.engine.budget import lr_of
from lrpilot_service.engine.state import SearchState, State

#: Validation at most this many times training at the stage's start: a job that does not memorise.
#: None: off. Measured on 10 paired seeds (docs/engine.md, round 13): lm_bytes 1.045 -> 1.030 of the
#: tuned cosine, teacher_cnn 1.013 -> 1.018, the other six workloads unchanged run for run.
RICH_GAP: float | None = 1.1
#: How far the pick is raised, at most to the largest try that learned.
RICH_FACTOR = 2.0


def _does_not_memorise(state: State, config: TunerConfig) -> bool:
    """The stage started with a validation loss close to its training loss."""
    if RICH_GAP is None or config.objective != "val":
        return False
    level, val = state["stage_level"], state["stage_val"]
    if level is None or val is None or level[0] <= 0:
        return False
    return val <= RICH_GAP * level[0]


def raised(
    state: State, config: TunerConfig, search: SearchState, learned: Sequence[float | None], lr: float
) -> tuple[float, str]:
    """The LR a later stage holds, and why when it differs from its pick ``lr``."""
    if search["kind"] not in ("refine", "all") or not _does_not_memorise(state, config):
        return lr, ""
    safe = [
        lr_of(x, search["low"], search["high"])
        for x, y in zip(search["xs"], learned, strict=True)
        if y is not None
    ]
    higher = min(lr * RICH_FACTOR, max(safe, default=lr))
    if higher <= lr:
        return lr, ""
    return higher, f"; x{higher / lr:.3g} (validation tracks training: a long hold rewards more)"
