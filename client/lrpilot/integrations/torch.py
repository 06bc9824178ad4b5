"""A PyTorch ``LRScheduler`` driven by a Tuner, for code that expects a scheduler object.

``scheduler.step(loss)`` after ``optimizer.step()`` reports the step's loss (like
ReduceLROnPlateau's ``step(metrics)``) and sets the next LR. ``scheduler.step()`` without a loss
reports nothing and only re-applies the tuner's current LR: that is what frameworks which call
``step()`` on their own (the Hugging Face Trainer) need, while the loss reaches the tuner through
their callback. A scheduler stepped again and again while no loss reaches the tuner from anywhere
is a mis-wiring (the LR would never move) and raises :class:`~lrpilot.errors.WiringError`.
"""

from __future__ import annotations

from typing import Any, SupportsFloat

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from lrpilot.errors import WiringError
from lrpilot.integrations._wiring import require_model
from lrpilot.optim import apply_lr
from lrpilot.torch_state import Stateful
from lrpilot.tuner import Tuner

#: ``step()`` calls without a loss tolerated before the tuner must have heard of one: a framework
#: steps the scheduler just before its callback reports the same step's loss.
_LOSSLESS_SLACK = 2


class LRPilotScheduler(LRScheduler):
    """The tuner's LR on every param group. The tuner is not part of ``state_dict()``: the job is.

    The tuner restores the model at every search candidate, so it needs the model: pass it to the
    Tuner or here (``model=``); without one the constructor raises. Resuming is by job name (a new
    Tuner re-attaches), so a checkpoint holds only plain numbers and never an HTTP session.
    """

    def __init__(
        self, optimizer: Optimizer, tuner: Tuner, last_epoch: int = -1, *, model: Stateful | None = None
    ) -> None:
        self.tuner = tuner
        model = model if model is not None else tuner.model
        require_model(model, "the Tuner was built without model= and none was given to LRPilotScheduler")
        if tuner.optimizer is None or tuner.model is None:  # snapshot/restore need both
            tuner.bind(model, tuner.optimizer if tuner.optimizer is not None else optimizer)
        self._tuner_origin = tuner.step
        super().__init__(optimizer, last_epoch)  # calls step() once: no metric, so no network

    def step(  # type: ignore[override]
        self, metrics: SupportsFloat | None = None, grad_norm: SupportsFloat | None = None
    ) -> None:
        """Report ``metrics`` (the step's training loss) if given, then apply the tuner's LR."""
        self._step_count += 1
        self.last_epoch += 1
        if metrics is not None:
            self.tuner.next_lr(self.tuner.step, metrics, grad_norm)
        elif self.last_epoch - (self.tuner.step - self._tuner_origin) > _LOSSLESS_SLACK:
            raise WiringError(
                f"LRPilotScheduler.step() was called {self.last_epoch} times but the tuner received "
                f"{self.tuner.step - self._tuner_origin} losses: pass the loss, scheduler.step(loss), "
                "or add the framework's lrpilot callback (LRPilotHFCallback, LRPilotCallback) that reports it"
            )
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
        self._tuner_origin = self.tuner.step - self.last_epoch  # count losses from the checkpoint on
