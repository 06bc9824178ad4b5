"""Replay a stored lrpilot schedule without the service: a ``LambdaLR`` over the LRs it kept.

A tuned job's schedule holds every step it trained, search tries included; those tries were
undone by the restore that followed them. So what a re-run should follow is the *kept* path:
every step outside the search phase, in order (warmup, each stage's exploitation, the anneal).
``all_steps=True`` keeps the search steps too (to reproduce the run step for step)::

    from lrpilot.replay import ReplayScheduler, load_schedule

    lrs = load_schedule("run7.json")        # lrpilot export run7 > run7.json, or a job name
    scheduler = ReplayScheduler(optimizer, lrs)
    for batch in loader:
        ...; optimizer.step(); scheduler.step()

``load_schedule`` reads ``lrpilot export`` JSON or CSV, ``lrpilot replay --output`` files, or asks
the service (``$LRPILOT_URL``, else the embedded database) for a job by name.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any

from lrpilot.protocol import DEFAULT_TENANT, Schedule


def kept_lrs(schedule: Schedule, *, all_steps: bool = False) -> list[float]:
    """The LR per step of the path the model kept (or of every step with ``all_steps``)."""
    return [step.lr for step in schedule.steps if all_steps or step.phase != "search"]


def load_schedule(
    source: str | os.PathLike[str] | Schedule,
    *,
    all_steps: bool = False,
    url: str | None = None,
    tenant: str = DEFAULT_TENANT,
) -> list[float]:
    """The LRs to replay from a Schedule, a file (export JSON/CSV, replay output) or a job name."""
    if isinstance(source, Schedule):
        return kept_lrs(source, all_steps=all_steps)
    path = Path(source)
    if path.is_file():
        return _from_file(path, all_steps)
    from lrpilot.transport import make_transport

    transport = make_transport(url, tenant)
    try:
        return kept_lrs(transport.schedule(str(source)), all_steps=all_steps)
    finally:
        transport.close()


def _from_file(path: Path, all_steps: bool) -> list[float]:
    if path.suffix == ".csv":
        with path.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
        return [float(row["lr"]) for row in rows if all_steps or row["phase"] != "search"]
    payload: Any = json.loads(path.read_text())
    if isinstance(payload, dict) and "lrs" in payload:  # `lrpilot replay --output`
        return [float(lr) for lr in payload["lrs"]]
    if isinstance(payload, list):
        return [float(lr) for lr in payload]
    return kept_lrs(Schedule.model_validate(payload), all_steps=all_steps)


def _lambda_lr() -> Any:
    from torch.optim.lr_scheduler import LambdaLR

    return LambdaLR


class ReplayScheduler(_lambda_lr()):  # type: ignore[misc]
    """``LambdaLR`` that sets ``lrs[step]`` on every param group (the last LR once the list ends)."""

    def __init__(self, optimizer: Any, lrs: list[float], last_epoch: int = -1) -> None:
        if not lrs:
            raise ValueError("ReplayScheduler needs at least one LR (the schedule had no kept steps)")
        self.lrs = list(lrs)
        bases = [float(group.get("initial_lr", group["lr"])) or 1.0 for group in optimizer.param_groups]
        for group, base in zip(optimizer.param_groups, bases, strict=True):
            group["lr"] = group["initial_lr"] = base

        def factor(base: float) -> Any:
            return lambda step: self.lrs[min(step, len(self.lrs) - 1)] / base

        super().__init__(optimizer, [factor(base) for base in bases], last_epoch)
