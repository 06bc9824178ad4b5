"""Check a training loop's wiring: what the optimizer really used, step by step, on every rank.

:class:`StepTrace` hooks ``optimizer.step`` (``Optimizer.register_step_pre_hook``) and records,
just before each step, the LR of every param group and exact fingerprints of the weights and of
the optimizer state. Compared with the job's decisions it shows whether the LR followed lrpilot
on every step and whether each restore really put the stage snapshot back (the fingerprint of
the first step after a restore equals the one at the snapshot); compared across ranks, whether
the replicas stayed identical. The examples write one with ``--trace DIR``::

    trace = StepTrace(model, optimizer)
    ...  # train
    trace.save(directory, tuner)  # DIR/rank0.json, DIR/rank1.json ...
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any


def fingerprint(state: Any) -> str:
    """SHA-256 of every tensor's bytes (and every plain value) of a nested state, in a fixed order."""
    import torch

    digest = hashlib.sha256()

    def feed(value: Any) -> None:
        if isinstance(value, torch.Tensor):
            digest.update(
                value.detach().to("cpu").reshape(-1).contiguous().view(torch.uint8).numpy().tobytes()
            )
        elif isinstance(value, dict):
            for key in sorted(value, key=str):
                digest.update(str(key).encode())
                feed(value[key])
        elif isinstance(value, list | tuple):
            for item in value:
                feed(item)
        else:
            digest.update(repr(value).encode())

    feed(state)
    return digest.hexdigest()[:16]


def _rank() -> int:
    import torch.distributed as dist

    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


class StepTrace:
    """Per optimizer step: LRs, weight and optimizer-state fingerprints (taken before the step)."""

    def __init__(self, model: Any, optimizer: Any) -> None:
        self.model, self.optimizer = model, optimizer
        self.lrs: list[float] = []
        self.weights: list[str] = []
        self.optimizer_states: list[str] = []
        inner = getattr(optimizer, "optimizer", optimizer)  # accelerate's AcceleratedOptimizer wraps one
        self._handle = inner.register_step_pre_hook(self._before_step)

    def _before_step(self, optimizer: Any, args: Any, kwargs: Any) -> None:
        self.lrs.append(float(optimizer.param_groups[0]["lr"]))
        self.weights.append(fingerprint(self.model.state_dict()))
        self.optimizer_states.append(fingerprint(optimizer.state_dict()["state"]))

    def summary(self, tuner: Any = None, rank: int | None = None) -> dict[str, Any]:
        """What one rank saw, plus its final weights and LR and what its tuner says."""
        return {
            "rank": _rank() if rank is None else rank,
            "lrs": self.lrs,
            "weights": self.weights,
            "optimizer_states": self.optimizer_states,
            "final_weights": fingerprint(self.model.state_dict()),
            "final_lr": float(self.optimizer.param_groups[0]["lr"]),
            "job": getattr(tuner, "job", None),
            "done": bool(getattr(tuner, "done", False)),
            "talks_to_service": bool(getattr(tuner, "talks_to_service", tuner is not None)),
        }

    def save(self, directory: str | os.PathLike[str], tuner: Any = None, rank: int | None = None) -> Path:
        """Write ``directory/rank<N>.json`` (``rank``: default the process group's); returns its path."""
        self._handle.remove()
        summary = self.summary(tuner, rank)
        path = Path(directory) / f"rank{summary['rank']}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(summary))
        return path
