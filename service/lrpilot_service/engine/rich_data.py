"""A larger hold where the model does not memorise (on by default; levers ``no-rich``, ``no-reach``).

Short tries understate what a larger LR gains over a long hold (short-horizon bias, Wu et al.
2018). That gain is real where more steps keep paying and a cost where the model overfits, and the
two are told apart by the gap between validation and training loss at a stage's start. Measured at
stage 1 on the benchmark (docs/engine.md, round 13): validation / training 0.94-1.0 on the three
workloads with large data (lm_bytes, teacher_cnn, friedman_mlp), 1.2-5.8 on the four small ones
that memorise (digits, cancer, diabetes).

The rule: a later stage (a refinement, or a re-search of the whole range) of a job scored on
validation loss, that started with validation at most ``RICH_GAP`` times training, holds
``RICH_FACTOR`` times its pick, but never more than its largest try that learned: a try above the
pick that failed from this very snapshot is evidence against the larger LR.

The reach (round 14): when nothing above the pick was tried in the stage, there is no such
evidence, and the pick is raised all the same; when the nearest try above it diverged (a jump
from the snapshot, which a rise need not repeat), it is raised at most halfway to that try in
log-LR. The exploitation rises to it over ``RICH_REACH`` of its length, because a jump above
every LR tried spikes the loss. A larger LR still spikes a few steps at a time and recovers (a
catapult: friedman_mlp at 2x its pick reads 3-20x its loss for 1-5 steps, then ends 2-4% lower).
So in a reach the loss guard is ``REACH_GUARD`` times wider, the gradient-norm guard is off, and
neither a validation rise (overfitting, the overfit stop) nor, during the rise, a training loss
above the stage's start ends it. A lasting rise after the rise still fails the worse-than-start
check, and a non-finite loss still diverges. A reach that fails falls back to the pick, which the
tries proved, and searches no more: not a quarter of the raised LR and a re-search, as a failed
choice gets. The pick is recorded in the state (``reach``), so only a reach gets these guards (a
refinement that learned nothing keeps the LR it refined, which may also lie above its tries).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from lrpilot.protocol import TunerConfig
from lrpilot_service.engine.budget import lr_of
from lrpilot_service.engine.state import SearchState, State

#: Validation at most this many times training at the stage's start: a job that does not memorise.
#: None: off. Measured on 10 paired seeds (docs/engine.md, round 13): lm_bytes 1.045 -> 1.030 of the
#: tuned cosine, teacher_cnn 1.013 -> 1.018, the other six workloads unchanged run for run.
RICH_GAP: float | None = 1.1
#: How far the pick is raised, at most to the largest try that learned (lever ``rich-x3``: 3).
RICH_FACTOR = 2.0
#: The reach's rise, as a share of the exploitation (None: no reach, lever ``no-reach``).
RICH_REACH: float | None = 0.5
#: ... also when the nearest try above the pick diverged: at most halfway to it, in log-LR.
REACH_BELOW_DIVERGED = True
#: In a reach, the loss guard is this many times the usual ``divergence_factor``.
REACH_GUARD = 10.0
#: LRs within this relative distance are the same LR (a stage summary rounds nothing, but be safe).
_SAME = 1e-4


def does_not_memorise(state: State, config: TunerConfig) -> bool:
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
    """The LR a later stage holds, and why when it differs from its pick ``lr``.

    Records a reach in ``state["reach"]`` (the pick), and clears the last stage's.
    """
    state["reach"] = None
    if search["kind"] not in ("refine", "all") or not does_not_memorise(state, config):
        return lr, ""
    tried = [lr_of(x, search["low"], search["high"]) for x in search["xs"]]
    safe = [x for x, y in zip(tried, learned, strict=True) if y is not None]
    higher = min(lr * RICH_FACTOR, max(safe, default=lr))
    learned_pick = max(safe, default=0.0) * (1 + _SAME) >= lr  # a stage that learned nothing: no reach
    above = sorted((x, y) for x, y in zip(tried, search["ys"], strict=True) if x > lr * (1 + _SAME))
    if RICH_REACH is not None and learned_pick and not above:
        higher = min(lr * RICH_FACTOR, config.lr_max)  # nothing above the pick was tried: reach
    elif RICH_REACH is not None and learned_pick and above[0][1] is None and REACH_BELOW_DIVERGED:
        higher = min(lr * RICH_FACTOR, math.sqrt(lr * above[0][0]), config.lr_max)
    if higher <= lr:
        return lr, ""
    if higher > max(safe, default=lr) * (1 + _SAME):  # above every try that learned: a reach
        state["reach"] = lr
    return higher, f"; x{higher / lr:.3g} (validation tracks training: a long hold rewards more)"


def reach_rise(state: State, lr: float, from_lr: float | None) -> tuple[int, float] | None:
    """The rise of an exploitation at ``lr`` from ``from_lr``: over ``RICH_REACH`` of the stage's
    length when the stage reached above its tries to ``lr``, else None."""
    if RICH_REACH is None or from_lr is None or proven(state, lr) is None or lr <= from_lr:
        return None
    steps = round(RICH_REACH * state["tau"])
    return (steps, from_lr) if steps > 0 else None


def proven(state: State, lr: float | None = None) -> float | None:
    """In a reach (exploiting above the pick it raised), that pick: what a failed reach falls back
    to, since the tries proved it. None outside a reach. ``lr``: the LR held (default: the
    exploitation's)."""
    pick = state["reach"]
    if lr is None:
        lr = state["segment"]["lr"] if state["phase"] == "exploit" else None
    if RICH_REACH is None or pick is None or lr is None:
        return None
    return pick if lr > pick * (1 + _SAME) else None


def reaching(state: State) -> bool:
    """Exploiting above the pick a reach raised (a catapult may follow)."""
    return proven(state) is not None


def rising(state: State, start_step: int) -> bool:
    """A window that starts inside a reach's rise: its losses may sit above the stage's start."""
    return reaching(state) and start_step < state["segment"].get("rise", 0)


def guard_factor(state: State, config: TunerConfig) -> float:
    """The loss guard's multiple of recent losses: ``REACH_GUARD`` times wider in a reach."""
    return config.divergence_factor * (REACH_GUARD if reaching(state) else 1.0)
