"""Assemble a job's ``Schedule`` from stored rows: what LR each reported step really used, and why.

The "why" (phase, stage, candidate) is taken from the decision of the step's window rather than
recomputed, so the schedule shows exactly what the training loop was told at the time. A long job
is read a page at a time (``from_step``, ``limit``): only that page's observations and decisions are
loaded, so a million-step job never becomes one 100 MB response.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from lrpilot.protocol import Decision, Schedule, ScheduleStep, StageSummary
from lrpilot_service.store.models import DecisionRecord, Observation
from lrpilot_service.store.observations import decode_float, load_observations

#: Steps in these phases are search: the range test and the tries, none of which the final model keeps
#: (except a winning try that ran last).
SEARCH_PHASES = frozenset({"probe", "search"})


def load_schedule(
    session: Session, job_id: int, name: str, stages: list[StageSummary], from_step: int, limit: int | None
) -> Schedule:
    """One page of the schedule (every step when ``limit`` is None); ``next_step`` if more follow."""
    rows = load_observations(session, job_id, from_step, None if limit is None else limit + 1)
    more = limit is not None and len(rows) > limit
    rows = rows[:limit] if more else rows
    windows = {row.window for row in rows}
    records = session.scalars(
        select(DecisionRecord).where(DecisionRecord.job_id == job_id, DecisionRecord.window.in_(windows))
    )
    decisions = {record.window: Decision.model_validate(record.decision) for record in records}
    schedule = build_schedule(name, rows, decisions, stages)
    schedule.search_share = _search_share(session, job_id)
    schedule.next_step = rows[-1].step + 1 if more else None
    return schedule


def _search_share(session: Session, job_id: int) -> float:
    """Share of all the job's reported steps (not only this page's) spent searching (range test, tries)."""
    per_window = dict(
        session.execute(
            select(Observation.window, func.count())
            .where(Observation.job_id == job_id)
            .group_by(Observation.window)
        ).all()
    )
    total = sum(per_window.values())
    if not total:
        return 0.0
    phases = session.execute(
        select(DecisionRecord.window, DecisionRecord.decision["phase"].as_string()).where(
            DecisionRecord.job_id == job_id
        )
    )
    searched = sum(per_window.get(window, 0) for window, phase in phases if phase in SEARCH_PHASES)
    return searched / total


def build_schedule(
    name: str,
    observations: Sequence[Observation],
    decisions: Mapping[int, Decision],
    stages: list[StageSummary],
) -> Schedule:
    """One ``ScheduleStep`` per observation; ``search_share`` counts the range test and the tries."""
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
    searched = sum(1 for step in steps if step.phase in SEARCH_PHASES)
    share = searched / len(steps) if steps else 0.0
    return Schedule(job=name, steps=steps, stages=stages, search_share=share)
