"""The job's best model (``keep_best``, objective ``"val"``): end with it, not with the last one.

A run's last model is not its best when the data is small. On the benchmark's defaults of round
11 (10 seeds), the lowest point of lrpilot's validation curve sat a median 4.5% below its final
loss on cancer_logreg, 4.4% on diabetes_mlp and 3.8% on digits_cnn: a large LR early, a
back-off, or a hold that memorises slowly (below the overfit stop's 3%) costs loss that no later
stage wins back (docs/engine.md, round 12). Every practitioner keeps the best checkpoint; a tuner
that scores on a validation loss can do it for them.

- After each report whose validation loss was measured at the window's last step (the model the
  client holds now), a loss ``KEEP_MARGIN`` below the kept one makes the next decision ``keep:
  "save"``. The client copies model and optimizer into a second slot (the stage snapshot's slot is
  untouched) before the decision's own snapshot or restore, so a try's cooled model counts too.
- The anneal measures its last step, so the final model's validation loss is known.
- The last decision (``done``) loads the kept model when its loss is ``LOAD_MARGIN`` below the
  final one.
"""

from __future__ import annotations

from lrpilot.protocol import Action, Keep, TunerConfig, WindowReport
from lrpilot_service.engine.state import State

#: A model is kept when its validation loss is this share below the kept one's: a slowly improving
#: run saves every few windows, not every window (a save copies the model off the device).
KEEP_MARGIN = 0.01
#: The kept model replaces the last one only when its validation loss is this share lower.
LOAD_MARGIN = 0.01


def after_report(
    st: State, config: TunerConfig, report: WindowReport, action: Action
) -> tuple[Keep | None, str]:
    """Save the model as it stands when it is the best so far; load the best at the job's end.

    Returns the decision's ``keep`` and the words to add to its reason.
    """
    if not config.keep_best:
        return None, ""
    value, kept = report.val_at_end(), st["kept_val"]
    if action == "done":
        if kept is not None and value is not None and kept < value * (1 - LOAD_MARGIN):
            return "load", f"; end with the best model (validation loss {kept:.4g}, the last {value:.4g})"
        return None, ""
    if value is not None and (kept is None or value < kept * (1 - KEEP_MARGIN)):
        st["kept_val"] = value
        return "save", f"; keep this model as the job's best (validation loss {value:.4g})"
    return None, ""
