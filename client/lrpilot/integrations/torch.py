"""A PyTorch ``LRScheduler`` driven by a Tuner, for code that expects a scheduler object.

``scheduler.step(loss)`` after ``optimizer.step()`` reports the step's loss (like
ReduceLROnPlateau's ``step(metrics)``) and sets the next LR. ``scheduler.step()`` without a loss
reports nothing and only re-applies the tuner's current LR: that is what frameworks which call
``step()`` on their own (the Hugging Face Trainer) need, while the loss reaches the tuner through
their callback.
"""

from __future__ import annotations

from typing import Any, SupportsFloat

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from lrpilot.optim import apply_lr
from lrpilot.tuner import Tuner


class LRPilotScheduler(LRScheduler):
    """The tuner's LR on every param group. The tuner is not part of ``state_dict()``: the job is.

    Resuming is by job name (a new Tuner re-attaches), so a checkpoint holds only plain numbers
    and never an HTTP session.
    """

    def __init__(self, optimizer: Optimizer, tuner: Tuner, last_epoch: int = -1) -> None:
        self.tuner = tuner
        if tuner.optimizer is None:  # the tuner needs the optimizer for snapshot/restore
            tuner.bind(tuner.model, optimizer)
        super().__init__(optimizer, last_epoch)  # calls step() once: no metric, so no network

    def step(  # type: ignore[override]
        self, metrics: SupportsFloat | None = None, grad_norm: SupportsFloat | None = None
    ) -> None:
        """Report ``metrics`` (the step's training loss) if given, then apply the tuner's LR."""
        self._step_count += 1
        self.last_epoch += 1
        if metrics is not None:
            self.tuner.next_lr(self.tuner.step, metrics, grad_norm)
        lr = self.tuner.lr
        apply_lr(self.optimizer, lr)
        self._last_lr = [lr for _ in self.optimizer.param_groups]

    def get_lr(self) -> list[float]:  # type: ignore[override]
        return [self.tuner.lr for _ in self.optimizer.param_groups]

    def state_dict(self) -> dict[str, Any]:
        """Plain data only: the job's name and counters, never the tuner or its transport."""
        return {
            "job": self.tuner.job,
            "last_epoch": self.last_epoch,
            "_step_count": self._step_count,
            "_last_lr": list(self._last_lr),
            "base_lrs": list(self.base_lrs),
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        state = {key: value for key, value in state_dict.items() if key != "job"}
        self.__dict__.update(state)
