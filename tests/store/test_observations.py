"""Observations keep their first write and store NaN and infinities exactly, on both databases."""

from __future__ import annotations

import math

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from lrpilot.protocol import JobCreate, TunerConfig, WindowReport
from lrpilot.testing import make_decision
from lrpilot_service.store import JobRepository
from lrpilot_service.store.models import Job
from lrpilot_service.store.observations import (
    decode_float,
    insert_observations,
    load_observations,
    report_columns,
)
from lrpilot_service.store.types import box_non_finite, unbox_non_finite
from tests.plans import CLASSIC_PLAN

CONFIG = TunerConfig(total_steps=2000, search="space_filling", **CLASSIC_PLAN)
SPECIAL = [math.nan, math.inf, -math.inf, 0.0, -1.5, 1e308]


def _same(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return (math.isnan(a) and math.isnan(b)) or a == b


def _job_id(repository: JobRepository, name: str) -> int:
    with Session(repository.engine) as session:
        return session.scalars(select(Job.id).where(Job.name == name)).one()


def test_first_write_wins(repository: JobRepository) -> None:
    repository.create_or_attach("default", JobCreate(name="run", config=CONFIG))
    job_id = _job_id(repository, "run")
    planned = make_decision(steps=10)
    first = report_columns(job_id, 0, WindowReport(start_step=0, losses=[1.0, 2.0, 3.0]), planned)
    later = report_columns(job_id, 5, WindowReport(start_step=1, losses=[9.0] * 4), planned)
    with Session(repository.engine) as session:
        insert_observations(session, first)
        session.commit()
        insert_observations(session, later)
        session.commit()
        rows = load_observations(session, job_id)
    assert [(row.step, row.window, row.loss) for row in rows] == [
        (0, 0, 1.0),
        (1, 0, 2.0),
        (2, 0, 3.0),
        (3, 5, 9.0),
        (4, 5, 9.0),
    ]


def test_non_finite_values_round_trip(repository: JobRepository) -> None:
    decision = repository.create_or_attach("default", JobCreate(name="run", config=CONFIG)).decision
    n = min(decision.steps, len(SPECIAL))
    losses = SPECIAL[:n]
    grads = list(reversed(SPECIAL))[:n]
    lrs = [1e-300, *[0.01] * (n - 1)]  # LRs must be finite and positive; tiny ones round-trip too
    report = WindowReport(
        start_step=decision.start_step, losses=losses, grad_norms=grads, lrs=lrs, val_losses={1: math.nan}
    )
    repository.report_window("default", "run", 0, report)
    with Session(repository.engine) as session:
        rows = load_observations(session, _job_id(repository, "run"))
    assert len(rows) == n
    for index, row in enumerate(rows):
        assert _same(decode_float(row, "loss"), losses[index]), (index, row.loss)
        assert _same(decode_float(row, "grad_norm"), grads[index])
        assert _same(decode_float(row, "lr"), lrs[index])
        assert _same(decode_float(row, "val_loss"), math.nan if index == 1 else None)
    steps = repository.schedule("default", "run").steps
    assert math.isnan(steps[0].loss) and steps[1].loss == math.inf and steps[2].loss == -math.inf


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, 1.25, "NaN", None])
def test_json_boxing_is_exact(value: object) -> None:
    data = {"a": [value, {"b": value}], "c": (value,)}
    boxed = box_non_finite(data)
    assert "NaN" not in repr(boxed).replace("'NaN'", "") and "inf" not in repr(boxed)
    back = unbox_non_finite(boxed)
    for got in (back["a"][0], back["a"][1]["b"], back["c"][0]):
        assert _same(got, value) if isinstance(value, float) else got == value
