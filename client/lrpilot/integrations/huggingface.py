"""A Hugging Face ``TrainerCallback``: each optimizer step's loss to the tuner, whatever ``logging_steps``.

transformers is not a dependency: the class subclasses ``transformers.TrainerCallback`` when it is
installed and a stand-in otherwise::

    trainer = Trainer(model=model, args=args, train_dataset=data,
                      callbacks=[LRPilotHFCallback("run-7", total_steps=args.max_steps)])

Where the loss comes from. The Trainer hands callbacks the loss only in ``on_log``, averaged over
``logging_steps`` (500 by default), and passes no outputs to ``on_step_end``
(``TrainerCallback`` in transformers 5.x: ``on_step_begin``, ``on_pre_optimizer_step``,
``on_optimizer_step``, ``on_step_end`` get ``model``, ``optimizer``, ``lr_scheduler`` and the data
loaders, never the loss). So in ``on_train_begin`` the callback registers a forward hook on the
model (``register_forward_hook(..., with_kwargs=True)``) and reads the ``loss`` that a Hugging
Face model returns when the inputs hold ``labels``, the value ``Trainer.compute_loss`` itself
takes (``outputs["loss"]``, or ``outputs[0]`` for tuples). Micro-batches of one optimizer step
(gradient accumulation) are combined as the Trainer combines them for its logged loss: averaged,
or summed when the model was given ``num_items_in_batch`` (its loss is then already a share of
the whole step's). ``on_step_end`` reports the step. A Trainer that computes the loss outside the
model (``compute_loss_func``, ``label_smoothing_factor``) must hand it over with
:meth:`LRPilotHFCallback.record_loss`; a step with no loss at all raises ``WiringError``.

The tuner owns the LR: ``on_step_end`` runs after the Trainer's own ``lr_scheduler.step()``, so the
tuner's LR is the one the next ``optimizer.step()`` uses. Under ``torchrun`` the callback builds a
``DistributedTuner`` (rank 0 alone talks to the service) once the Trainer has started the process
group, and every rank follows it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from lrpilot.errors import WiringError
from lrpilot.integrations._base import framework_base
from lrpilot.integrations._wiring import (
    Follower,
    make_follower,
    reject_prebuilt_tuner_under_ddp,
    require_model,
    total_grad_norm,
    world_size,
)
from lrpilot.optim import apply_lr
from lrpilot.tuner import Tuner

log = logging.getLogger("lrpilot")
_TrainerCallback: Any = framework_base([("transformers", "TrainerCallback")])


class LRPilotHFCallback(_TrainerCallback):  # type: ignore[misc]
    """One loss per optimizer step to the tuner; the tuner's LR on the optimizer after every step.

    ``LRPilotHFCallback("job", **tuner_kwargs)`` builds the tuner in ``on_train_begin`` (the
    right thing under ``torchrun``); ``LRPilotHFCallback(tuner)`` uses a prebuilt one (single
    process only).
    """

    def __init__(self, job: str | Tuner, *, close_on_end: bool = True, **tuner_kwargs: Any) -> None:
        super().__init__()
        self._prebuilt = job if isinstance(job, Tuner) else None
        self.job = job.job if isinstance(job, Tuner) else job
        self._tuner_kwargs = tuner_kwargs
        self.tuner: Follower | None = self._prebuilt
        self.close_on_end = close_on_end
        self._optimizer: Any = None
        self._hook: Any = None
        self._losses: list[Any] = []
        self._summed = False  # the model got num_items_in_batch: micro-batch losses add up
        self._grad_norm: float | None = None

    # -- the loss ----------------------------------------------------------------------------------

    def record_loss(self, loss: Any, *, share_of_step: bool = False) -> None:
        """Hand over a micro-batch's training loss computed outside the model (``compute_loss_func``).

        ``share_of_step=True`` when the losses of a step's micro-batches add up to the step's loss.
        """
        self._losses.append(loss.detach() if hasattr(loss, "detach") else loss)
        self._summed = self._summed or share_of_step

    def _on_forward(self, module: Any, args: Sequence[Any], kwargs: Mapping[str, Any], output: Any) -> None:
        import torch

        if not (module.training and torch.is_grad_enabled()):
            return  # evaluation or prediction
        loss = _loss_of(output)
        if loss is not None:
            self.record_loss(loss, share_of_step=kwargs.get("num_items_in_batch") is not None)

    def _step_loss(self, args: Any, step: int) -> float:
        losses, self._losses = self._losses, []
        if not losses:
            raise WiringError(
                f"LRPilotHFCallback saw no training loss in optimizer step {step}: the model's forward "
                "returned none. Pass `labels` in the inputs so the model computes its loss, or, when the "
                "Trainer computes it outside the model (compute_loss_func, label_smoothing_factor), "
                "call callback.record_loss(loss) there."
            )
        total = sum(float(value) for value in losses)
        if not self._summed:
            return total / len(losses)
        # With num_items_in_batch over all devices, each rank's sum is its share of the global mean.
        return total * (world_size() if getattr(args, "average_tokens_across_devices", False) else 1)

    # -- Trainer hooks -----------------------------------------------------------------------------

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        model, self._optimizer = kwargs.get("model"), kwargs.get("optimizer")
        if self._prebuilt is not None:
            reject_prebuilt_tuner_under_ddp(self._prebuilt, "The Trainer")
            if self._prebuilt.model is None or self._prebuilt.optimizer is None:
                require_model(self._prebuilt.model or model, "the Trainer passed no model")
                self._prebuilt.bind(
                    self._prebuilt.model or model, self._prebuilt.optimizer or self._optimizer
                )
        elif self.tuner is None:
            self.tuner = make_follower(self.job, model, self._optimizer, self._tuner_kwargs)
        if model is not None and hasattr(model, "register_forward_hook"):
            self._hook = model.register_forward_hook(self._on_forward, with_kwargs=True)
        self._apply()

    def on_pre_optimizer_step(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        # The Trainer clips before this hook: a norm measured now is the clipped one, which is no
        # divergence signal, so gradient norms are reported only when the Trainer does not clip.
        model = kwargs.get("model")
        if model is not None and not getattr(args, "max_grad_norm", 0):
            self._grad_norm = total_grad_norm(model.parameters())

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        tuner = self.tuner
        if tuner is None:
            raise WiringError("LRPilotHFCallback.on_step_end before on_train_begin: pass the callback to "
                              "Trainer(callbacks=[...]) rather than calling its hooks by hand")  # fmt: skip
        self._optimizer = kwargs.get("optimizer", self._optimizer)
        loss = self._step_loss(args, tuner.step)
        tuner.next_lr(tuner.step, loss, self._grad_norm)
        self._grad_norm = None
        self._apply()

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self._hook is not None:
            self._hook.remove()
            self._hook = None
        if self.close_on_end and self.tuner is not None:
            self.tuner.close()

    def _apply(self) -> None:
        """Re-assert the tuner's LR: the Trainer's own scheduler has just rewritten it."""
        if self.tuner is not None:
            apply_lr(self._optimizer, self.tuner.lr)


def _loss_of(output: Any) -> Any:
    """The loss in a model's output, as ``Trainer.compute_loss`` reads it; None if there is none."""
    if isinstance(output, Mapping):
        return output.get("loss")
    loss = getattr(output, "loss", None)
    if loss is None and isinstance(output, tuple | list) and output:
        first = output[0]
        loss = first if getattr(first, "ndim", None) == 0 else None
    return loss
