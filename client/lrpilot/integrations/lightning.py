"""A Lightning callback: per optimizer step, the loss (and gradient norm) go to the tuner.

Lightning is not a dependency: the class subclasses ``lightning.pytorch.Callback`` when it is
installed and a stand-in otherwise. Give the callback the job's settings and it builds the tuner
itself in ``on_train_start``, on every rank once the process group exists: with
``strategy="ddp"`` rank 0 alone talks to the service and every rank follows its decisions
(``DistributedTuner``), so the replicas stay identical::

    trainer = lightning.Trainer(max_steps=2000, callbacks=[LRPilotCallback("run-7", total_steps=2000)])

The tuner owns the LR. A Lightning LR scheduler would rewrite it after every step, so one in
``configure_optimizers`` is refused (return the optimizer alone). Hooks used, from Lightning's
``Callback`` API: ``on_train_start``, ``on_before_optimizer_step`` (gradients accumulated, not yet
clipped: the norm the guard wants) and ``on_train_batch_end`` (the ``training_step`` output).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lrpilot.errors import WiringError
from lrpilot.integrations._base import framework_base
from lrpilot.integrations._wiring import (
    Follower,
    make_follower,
    reject_prebuilt_tuner_under_ddp,
    total_grad_norm,
)
from lrpilot.optim import apply_lr
from lrpilot.tuner import Tuner

_Callback: Any = framework_base([("lightning.pytorch", "Callback"), ("pytorch_lightning", "Callback")])


class LRPilotCallback(_Callback):  # type: ignore[misc]
    """Reports each optimizer step's loss (the mean over its accumulated micro-batches).

    ``LRPilotCallback("job", **tuner_kwargs)`` builds the tuner (``lr_min``, ``lr_max``,
    ``total_steps``, ``url`` ... as for :class:`~lrpilot.Tuner`); ``LRPilotCallback(tuner)``
    uses a prebuilt one, which is only right in a single process.
    """

    def __init__(
        self,
        job: str | Tuner,
        *,
        track_grad_norm: bool = True,
        close_on_end: bool = True,
        **tuner_kwargs: Any,
    ) -> None:
        super().__init__()
        self._prebuilt = job if isinstance(job, Tuner) else None
        self.job = job.job if isinstance(job, Tuner) else job
        self._tuner_kwargs = tuner_kwargs
        self.tuner: Follower | None = self._prebuilt
        self.track_grad_norm = track_grad_norm
        self.close_on_end = close_on_end
        self._grad_norm: float | None = None
        self._last_global_step: int | None = None
        self._pending: list[Any] = []

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        optimizers = list(getattr(trainer, "optimizers", []) or [])
        _refuse_foreign_schedulers(trainer)
        if self._prebuilt is not None:
            reject_prebuilt_tuner_under_ddp(self._prebuilt, "Lightning")
            if self._prebuilt.optimizer is None and optimizers:
                self._prebuilt.bind(self._prebuilt.model or pl_module, optimizers[0])
        elif self.tuner is None:
            optimizer = optimizers[0] if optimizers else None
            self.tuner = make_follower(self.job, pl_module, optimizer, self._tuner_kwargs)
        self._last_global_step = getattr(trainer, "global_step", 0)
        self._apply(trainer)

    def on_before_optimizer_step(self, trainer: Any, pl_module: Any, optimizer: Any) -> None:
        if self.track_grad_norm:
            self._grad_norm = total_grad_norm(pl_module.parameters())

    def on_train_batch_end(
        self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        tuner = self._require_tuner()
        loss = outputs.get("loss") if isinstance(outputs, Mapping) else outputs
        if loss is None:
            raise WiringError(
                "LRPilotCallback got no loss from training_step (it returned "
                f"{type(outputs).__name__}): return the loss, or a dict with a 'loss' key, from "
                "training_step, also with manual optimization; lrpilot needs one loss per step."
            )
        self._pending.append(loss.detach() if hasattr(loss, "detach") else loss)
        step = getattr(trainer, "global_step", None)
        if step is not None and step == self._last_global_step:
            return  # an accumulation micro-batch: no optimizer step happened yet
        self._last_global_step = step
        losses, self._pending = self._pending, []
        tuner.next_lr(tuner.step, sum(float(value) for value in losses) / len(losses), self._grad_norm)
        self._grad_norm = None
        self._apply(trainer)

    def on_fit_end(self, trainer: Any, pl_module: Any) -> None:
        if self.close_on_end and self.tuner is not None:
            self.tuner.close()

    def _require_tuner(self) -> Follower:
        if self.tuner is None:
            raise WiringError("LRPilotCallback saw a training batch before on_train_start: add it to "
                              "Trainer(callbacks=[...]) rather than calling its hooks by hand")  # fmt: skip
        return self.tuner

    def _apply(self, trainer: Any) -> None:
        """Put the tuner's LR on every optimizer of the trainer."""
        if self.tuner is not None:
            for optimizer in getattr(trainer, "optimizers", []) or []:
                apply_lr(optimizer, self.tuner.lr)


def _refuse_foreign_schedulers(trainer: Any) -> None:
    from lrpilot.integrations.torch import LRPilotScheduler

    for config in getattr(trainer, "lr_scheduler_configs", []) or []:
        scheduler = getattr(config, "scheduler", None)
        if scheduler is not None and not isinstance(scheduler, LRPilotScheduler):
            raise WiringError(
                f"configure_optimizers returned an LR scheduler ({type(scheduler).__name__}) that would "
                "rewrite lrpilot's LR after every step: return the optimizer alone and let "
                "LRPilotCallback set the LR"
            )
