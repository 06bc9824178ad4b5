"""A Hugging Face ``TrainerCallback``: the Trainer's logged loss goes to the tuner.

transformers is not a dependency: the class subclasses ``transformers.TrainerCallback`` when it is
installed and a stand-in otherwise. The loss reaches callbacks only in ``on_log``, every
``logging_steps`` steps and averaged over them, so set ``logging_steps=1`` for one loss per step
(with a larger value each step of the interval is reported with the interval's mean). Pass
``optimizers=(optimizer, LRPilotScheduler(optimizer, tuner))`` to the Trainer, or its own
scheduler rewrites the LR every step.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lrpilot.integrations._base import framework_base
from lrpilot.optim import apply_lr
from lrpilot.tuner import Tuner

_TrainerCallback: Any = framework_base([("transformers", "TrainerCallback")])


class LRPilotHFCallback(_TrainerCallback):  # type: ignore[misc]
    """Feeds ``on_log`` losses to the tuner and keeps the optimizer on the tuner's LR."""

    def __init__(self, tuner: Tuner, *, close_on_end: bool = True) -> None:
        super().__init__()
        self.tuner = tuner
        self.close_on_end = close_on_end
        self._reported_until = 0
        self._optimizer: Any = None

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._optimizer = kwargs.get("optimizer")
        if self.tuner.optimizer is None and self._optimizer is not None:
            self.tuner.bind(self.tuner.model or kwargs.get("model"), self._optimizer)
        self._reported_until = int(getattr(state, "global_step", 0))
        self._apply()

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._optimizer = kwargs.get("optimizer", self._optimizer)
        self._apply()

    def on_log(
        self, args: Any, state: Any, control: Any, logs: Mapping[str, Any] | None = None, **kwargs: Any
    ) -> None:
        if not logs or "loss" not in logs:
            return  # eval or summary logs
        global_step = int(getattr(state, "global_step", self._reported_until + 1))
        grad = logs.get("grad_norm")
        for _ in range(max(global_step - self._reported_until, 0)):
            self.tuner.next_lr(self.tuner.step, logs["loss"], grad)
        self._reported_until = global_step
        self._apply()

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.close_on_end:
            self.tuner.close()

    def _apply(self) -> None:
        """Re-assert the tuner's LR: the Trainer's own scheduler may have rewritten it."""
        apply_lr(self._optimizer, self.tuner.lr)
