"""What every framework integration shares: one tuner per job (rank 0's), grad norms, wiring checks.

A framework that runs one process per device (Lightning's ``strategy="ddp"``, the Hugging Face
Trainer under ``torchrun``) calls the user's callback on every rank. A :class:`~lrpilot.Tuner`
built on each rank would post each rank's reports to the same job: the ranks would restore at
different steps and drift apart. So the integrations build the tuner themselves, once the process
group exists: a :class:`~lrpilot.integrations.ddp.DistributedTuner` (rank 0 alone talks to the
service, every rank follows) when there is more than one process, a plain Tuner otherwise.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol, SupportsFloat

from lrpilot.errors import WiringError
from lrpilot.protocol import Decision
from lrpilot.tuner import Tuner


class Follower(Protocol):
    """What a framework callback drives: a :class:`Tuner` or a ``DistributedTuner``."""

    job: str

    @property
    def lr(self) -> float: ...
    @property
    def step(self) -> int: ...
    @property
    def done(self) -> bool: ...
    @property
    def decision(self) -> Decision: ...
    def next_lr(self, step: int, loss: SupportsFloat, grad_norm: SupportsFloat | None = None) -> float: ...
    def close(self) -> None: ...


def world_size() -> int:
    """Processes in the default group; 1 when torch.distributed is absent or not initialised."""
    try:
        import torch.distributed as dist
    except ImportError:  # pragma: no cover - torch built without distributed support
        return 1
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def make_follower(job: str, model: Any, optimizer: Any, tuner_kwargs: dict[str, Any]) -> Follower:
    """Rank 0's tuner, followed by every other rank; a plain Tuner in a single process."""
    require_model(model, "the framework passed no model")
    if world_size() > 1:
        from lrpilot.integrations.ddp import DistributedTuner

        options = {"average_loss": True, **tuner_kwargs}  # report the mean loss over the ranks
        return DistributedTuner(job, model, optimizer, **options)
    return Tuner(job, model=model, optimizer=optimizer, **tuner_kwargs)


def reject_prebuilt_tuner_under_ddp(tuner: Tuner | None, framework: str) -> None:
    """A Tuner made before the framework started its processes exists once per rank: refuse it."""
    if tuner is not None and world_size() > 1:
        raise WiringError(
            f"{framework} runs {world_size()} processes and each built its own Tuner for job "
            f"{tuner.job!r}: the ranks would report to the same job, restore at different steps and "
            "end with different weights. Give the callback the job's settings instead of a Tuner, "
            f"e.g. LRPilotCallback(job={tuner.job!r}, total_steps=..., lr_min=..., lr_max=...): it "
            "builds one tuner on rank 0 once the process group exists, and every rank follows it."
        )


def require_model(model: Any, why: str) -> None:
    if model is None:
        raise WiringError.no_model(why)


def total_grad_norm(parameters: Iterable[Any]) -> float | None:
    """The L2 norm of all gradients together (what ``clip_grad_norm_`` reports), or None without any.

    ``torch.nn.utils.get_total_norm`` (torch >= 2.6) does it with fused per-device kernels; it is
    what ``clip_grad_norm_`` itself calls.
    """
    import torch

    grads = [p.grad for p in parameters if getattr(p, "grad", None) is not None]
    if not grads:
        return None
    return float(torch.nn.utils.get_total_norm(grads))
