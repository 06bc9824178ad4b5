"""Assemble a job's ``Schedule`` from stored rows: what LR each reported step really used, and why.

The "why" (phase, stage, candidate) is taken from the decision of the step's window rather than
recomputed, so the schedule shows exactly what the training loop was told at the time.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from lrpilot.protocol import Decision, Schedule, ScheduleStep, StageSummary
from lrpilot_service.store.models import Observation
from lrpilot_service.store.observations import decode_float


def build_schedule(
    name: str,
    observations: Sequence[Observation],
    decisions: Mapping[int, Decision],
    stages: list[StageSummary],
) -> Schedule:
    """One ``ScheduleStep`` per observation; ``search_share`` counts steps in the search phase."""
    steps = []
    for row in observations:
        decision = decisions.get(row.window)
        lr = decode_float(row, "lr")
        loss = decode_float(row, "loss")
        steps.append(
            ScheduleStep(
                step=row.step,
                lr=lr if lr is not None else math.nan,
                loss=loss if loss is not None else math.nan,
                window=row.window,
                phase=decision.phase if decision else "done",
                stage=decision.stage if decision else -1,
                candidate=decision.candidate if decision else None,
            )
        )
    searched = sum(1 for step in steps if step.phase == "search")
    share = searched / len(steps) if steps else 0.0
    return Schedule(job=name, steps=steps, stages=stages, search_share=share)
