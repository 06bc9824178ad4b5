"""A Lightning callback: per optimizer step, the loss (and gradient norm) go to the tuner.

Lightning is not a dependency: the class subclasses ``lightning.pytorch.Callback`` when it is
installed and a stand-in otherwise. The tuner should own the LR: either give it the
``LightningModule`` and optimizer, or let :meth:`on_train_start` bind them; if a Lightning
scheduler is configured too, return ``{"scheduler": LRPilotScheduler(...), "interval": "step"}``
so the two do not fight over ``param_groups``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from lrpilot.integrations._base import framework_base
from lrpilot.optim import apply_lr
from lrpilot.tuner import Tuner

_Callback: Any = framework_base([("lightning.pytorch", "Callback"), ("pytorch_lightning", "Callback")])


def grad_norm(parameters: Any) -> float:
    """Total L2 norm of the gradients (what ``clip_grad_norm_`` would report), without clipping."""
    total = 0.0
    for parameter in parameters:
        grad = getattr(parameter, "grad", None)
        if grad is not None:
            total += float(grad.detach().float().pow(2).sum())
    return math.sqrt(total)


class LRPilotCallback(_Callback):  # type: ignore[misc]
    """Reports each optimizer step's loss; gradient accumulation is handled via ``global_step``."""

    def __init__(self, tuner: Tuner, *, track_grad_norm: bool = True, close_on_end: bool = True) -> None:
        super().__init__()
        self.tuner = tuner
        self.track_grad_norm = track_grad_norm
        self.close_on_end = close_on_end
        self._grad_norm: float | None = None
        self._last_global_step: int | None = None

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        optimizers = list(getattr(trainer, "optimizers", []) or [])
        if self.tuner.optimizer is None and optimizers:
            self.tuner.bind(self.tuner.model or pl_module, optimizers[0])
        self._last_global_step = getattr(trainer, "global_step", 0)
        self._apply(trainer)

    def on_before_optimizer_step(self, trainer: Any, pl_module: Any, optimizer: Any) -> None:
        if self.track_grad_norm:
            self._grad_norm = grad_norm(pl_module.parameters())

    def on_train_batch_end(
        self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        step = getattr(trainer, "global_step", None)
        if step is not None and step == self._last_global_step:
            return  # an accumulation micro-batch: no optimizer step happened
        self._last_global_step = step
        loss = outputs.get("loss") if isinstance(outputs, Mapping) else outputs
        if loss is None:
            return
        self.tuner.next_lr(self.tuner.step, loss, self._grad_norm)
        self._grad_norm = None
        self._apply(trainer)

    def on_fit_end(self, trainer: Any, pl_module: Any) -> None:
        if self.close_on_end:
            self.tuner.close()

    def _apply(self, trainer: Any) -> None:
        """Re-assert the tuner's LR on the trainer's optimizers (a configured scheduler may fight it)."""
        for optimizer in getattr(trainer, "optimizers", []) or []:
            apply_lr(optimizer, self.tuner.lr)
