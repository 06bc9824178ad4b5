"""Distributed data parallel: rank 0 talks to the service, every rank follows its decisions.

Only rank ``src`` holds a real :class:`~lrpilot.tuner.Tuner`. After each step it broadcasts a
two-number tensor (the next LR, and whether anything else happened); only when something did (a
new decision, a snapshot, a restore) does a ``broadcast_object_list`` follow, so the per-step cost
is one tiny collective next to DDP's gradient all-reduce, and the ranks can never disagree about
when a window ended, even while rank 0 is in fallback.
Every rank snapshots and restores its own replica (and keeps its best model), in memory, exactly
when rank 0 did.
"""

from __future__ import annotations

from typing import Any, SupportsFloat

import torch
import torch.distributed as dist

from lrpilot.optim import apply_lr
from lrpilot.protocol import Decision
from lrpilot.torch_state import MemorySnapshots, SnapshotStore, Stateful
from lrpilot.tuner import DecisionFollower, Tuner


class _Recorder:
    """A snapshot store that remembers what it was asked to do, for the followers to repeat.

    The stage snapshot's store and the best model's (``slot`` "best") append to one shared
    ``events`` list, so the followers repeat both in the order rank ``src`` did them.
    """

    def __init__(self, inner: SnapshotStore, events: list[tuple[str, str, int]], slot: str) -> None:
        self.inner, self.events, self.slot = inner, events, slot

    @property
    def stage(self) -> int | None:
        return self.inner.stage

    def save(self, stage: int, step: int, model: Stateful | None, optimizer: Stateful | None) -> None:
        self.events.append((self.slot, "snapshot", stage))
        self.inner.save(stage, step, model, optimizer)

    def restore(self, stage: int, model: Stateful | None, optimizer: Stateful | None) -> bool:
        self.events.append((self.slot, "restore", stage))
        return self.inner.restore(stage, model, optimizer)


class DistributedTuner(DecisionFollower):
    """``next_lr`` on every rank, in lockstep; rank ``src``'s loss is the one reported.

    Pass the same arguments as to :class:`Tuner` on every rank (``transport``/``url`` are used on
    rank ``src`` only). With ``average_loss=True`` the reported loss is the mean over ranks, at
    the price of one more small collective per step.
    """

    def __init__(
        self,
        job: str,
        model: Stateful | None = None,
        optimizer: Any = None,
        *,
        src: int = 0,
        group: Any = None,
        average_loss: bool = False,
        **tuner_kwargs: Any,
    ) -> None:
        self.job = job
        self.src, self.group, self.average_loss = src, group, average_loss
        self.rank = dist.get_rank(group)
        self._model, self._optimizer = model, optimizer
        backend = dist.get_backend(group)
        self._device = (
            torch.device("cuda", torch.cuda.current_device()) if backend == "nccl" else torch.device("cpu")
        )
        self._packet = torch.zeros(2, dtype=torch.float64, device=self._device)
        self.tuner: Tuner | None = None
        self._events: list[tuple[str, str, int]] = []
        self._stores = {"stage": MemorySnapshots(), "best": MemorySnapshots()}
        self._step = 0
        self._lr = 0.0
        failure: BaseException | None = None
        if self.rank == src:
            stage = _Recorder(tuner_kwargs.pop("snapshots", None) or MemorySnapshots(), self._events, "stage")
            best = _Recorder(
                tuner_kwargs.pop("best_snapshots", None) or MemorySnapshots(), self._events, "best"
            )
            try:
                self.tuner = Tuner(
                    job,
                    model=model,
                    optimizer=optimizer,
                    snapshots=stage,
                    best_snapshots=best,
                    **tuner_kwargs,
                )
            except BaseException as exc:  # the other ranks must hear about it, or they wait forever
                failure = exc
        payload = self._share(failure)
        if payload[0] is not None:
            raise payload[0]

    def next_lr(self, step: int, loss: SupportsFloat, grad_norm: SupportsFloat | None = None) -> float:
        """Every rank calls this once per step, in the same order as the optimizer steps."""
        if self.average_loss:
            total = torch.tensor([float(loss)], dtype=torch.float64, device=self._device)
            dist.all_reduce(total, group=self.group)
            loss = float(total) / dist.get_world_size(self.group)
        self._step += 1
        changed = False
        if self.tuner is not None:
            before = self.tuner.decision
            self.tuner.next_lr(step, loss, grad_norm)
            changed = bool(self._events) or self.tuner.decision is not before
            self._packet[0], self._packet[1] = self.tuner.lr, float(changed)
        dist.broadcast(self._packet, src=self.src, group=self.group)
        if bool(self._packet[1]):
            self._share(None)
        else:
            self._set_lr(float(self._packet[0]))
        return self._lr

    @property
    def done(self) -> bool:
        """The job is finished (every rank knows: the final decision is broadcast)."""
        return self._decision.action == "done"

    @property
    def talks_to_service(self) -> bool:
        """True on rank ``src`` only: the one rank with a Tuner and a connection."""
        return self.tuner is not None

    def close(self) -> None:
        if self.tuner is not None:
            self.tuner.close()

    def _share(self, failure: BaseException | None) -> list[Any]:
        """Broadcast rank 0's failure, decision, LR and recorded events; followers replay the events."""
        payload: list[Any] = [failure, None, 0.0, [], 0]
        if self.tuner is not None:
            payload = [failure, self.tuner.decision, self.tuner.lr, list(self._events), self.tuner.step]
            self._events.clear()
        dist.broadcast_object_list(payload, src=self.src, group=self.group)
        failure, decision, lr, events, step = payload
        if failure is not None:
            return payload
        self._decision, self._step = Decision.model_validate(decision), int(step)
        if self.tuner is None:
            for slot, action, stage in events:
                store = self._stores[slot]
                if action == "snapshot":
                    store.save(stage, step, self._model, self._optimizer)
                else:
                    store.restore(stage, self._model, self._optimizer)
        self._set_lr(lr)
        return payload

    def _set_lr(self, lr: float) -> None:
        self._lr = lr
        apply_lr(self._optimizer, lr)
