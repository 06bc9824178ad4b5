"""Snapshot and restore of model + optimizer, the two halves of every search stage.

A stage snapshots once and restores before each candidate after the first, so a snapshot must
stay bit-identical however long training goes on: the memory store keeps detached CPU copies
and hands the optimizer a fresh deep copy on every restore (``Optimizer.load_state_dict`` keeps
same-device tensors by reference, and the next ``step()`` would mutate our copy in place).
torch is imported lazily so ``import lrpilot`` works without it.
"""

from __future__ import annotations

import copy
import os
import re
from pathlib import Path
from typing import Any, Protocol


class Stateful(Protocol):
    """Anything with torch's state_dict protocol: ``nn.Module``, ``Optimizer``."""

    def state_dict(self) -> Any: ...
    def load_state_dict(self, state_dict: Any) -> Any: ...


def _to_cpu(value: Any) -> Any:
    """A deep copy of a state dict with every tensor detached and moved (copied) to CPU."""
    import torch

    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", copy=True)
    if isinstance(value, dict):
        return type(value)((key, _to_cpu(item)) for key, item in value.items())
    if isinstance(value, list | tuple):
        return type(value)(_to_cpu(item) for item in value)
    return copy.deepcopy(value)


#: The label of the one model a best-model store holds (``keep_best``; a store per slot).
BEST_LABEL = -1


class SnapshotStore(Protocol):
    """One snapshot slot per tuner: each stage overwrites the previous stage's snapshot."""

    @property
    def stage(self) -> int | None: ...
    def save(self, stage: int, step: int, model: Stateful | None, optimizer: Stateful | None) -> None: ...
    def restore(self, stage: int, model: Stateful | None, optimizer: Stateful | None) -> bool: ...


class MemorySnapshots:
    """Snapshots held as CPU copies: fast, and gone with the process."""

    def __init__(self) -> None:
        self._stage: int | None = None
        self._step = -1
        self._model: Any = None
        self._optimizer: Any = None

    @property
    def stage(self) -> int | None:
        return self._stage

    def save(self, stage: int, step: int, model: Stateful | None, optimizer: Stateful | None) -> None:
        self._model = _to_cpu(model.state_dict()) if model is not None else None
        self._optimizer = _to_cpu(optimizer.state_dict()) if optimizer is not None else None
        self._stage, self._step = stage, step

    def restore(self, stage: int, model: Stateful | None, optimizer: Stateful | None) -> bool:
        if self._stage != stage:
            return False
        _load(model, optimizer, self._model, self._optimizer)
        return True


class DirectorySnapshots:
    """Snapshots written with ``torch.save`` to a directory: survive a restart of the training process.

    The file is written to a temporary name and renamed, so a crash mid-write leaves the previous
    snapshot intact rather than a truncated one.
    """

    def __init__(self, directory: str | os.PathLike[str], job: str) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.path = self.directory / f"{re.sub(r'[^A-Za-z0-9._-]', '_', job)}.snapshot.pt"

    @property
    def stage(self) -> int | None:
        header = self._load_file()
        return None if header is None else int(header["stage"])

    def save(self, stage: int, step: int, model: Stateful | None, optimizer: Stateful | None) -> None:
        import torch

        payload = {
            "stage": stage,
            "step": step,
            "model": _to_cpu(model.state_dict()) if model is not None else None,
            "optimizer": _to_cpu(optimizer.state_dict()) if optimizer is not None else None,
        }
        partial = self.path.with_suffix(".tmp")
        torch.save(payload, partial)
        os.replace(partial, self.path)

    def restore(self, stage: int, model: Stateful | None, optimizer: Stateful | None) -> bool:
        payload = self._load_file()
        if payload is None or int(payload["stage"]) != stage:
            return False
        _load(model, optimizer, payload["model"], payload["optimizer"])
        return True

    def _load_file(self) -> dict[str, Any] | None:
        import torch

        if not self.path.exists():
            return None
        loaded: dict[str, Any] = torch.load(self.path, map_location="cpu", weights_only=True)
        return loaded


def _load(model: Stateful | None, optimizer: Stateful | None, model_state: Any, optimizer_state: Any) -> None:
    if model is not None and model_state is not None:
        model.load_state_dict(model_state)  # copies into the live parameters, on their device
    if optimizer is not None and optimizer_state is not None:
        optimizer.load_state_dict(copy.deepcopy(optimizer_state))


def make_snapshots(snapshot_dir: str | os.PathLike[str] | None, job: str) -> SnapshotStore:
    """In memory unless a directory is given."""
    if snapshot_dir is None:
        return MemorySnapshots()
    return DirectorySnapshots(snapshot_dir, job)
