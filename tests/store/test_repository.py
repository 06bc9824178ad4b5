"""JobRepository on SQLite and PostgreSQL: create/attach, windows, idempotency, conflicts, delete."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from lrpilot.protocol import Decision, JobCreate, TunerConfig, WindowReport
from lrpilot_service.engine import ReportRejected
from lrpilot_service.store import JobConflict, JobNotFound, JobRepository, WindowConflict
from tests.plans import CLASSIC_PLAN

# Windows 0..8 are search tries of 10 steps, placed space-filling: no GP fit, so tests stay fast.
CONFIG = TunerConfig(total_steps=2000, lr_min=1e-4, lr_max=1.0, search="space_filling", **CLASSIC_PLAN)
Rows = Callable[[Any], dict[str, list[tuple[Any, ...]]]]


def losses_for(decision: Decision, base: float = 2.0) -> WindowReport:
    return WindowReport(
        start_step=decision.start_step, losses=[base - 0.01 * i for i in range(decision.steps)]
    )


def test_create_then_attach_returns_the_same_job(repository: JobRepository) -> None:
    created, was_created = repository.open_job("default", JobCreate(name="run-1", config=CONFIG))
    attached, again = repository.open_job("default", JobCreate(name="run-1", config=CONFIG))
    assert was_created and not again
    assert created.decision.window == 0 and created.decision.job == "run-1"
    assert attached.decision == created.decision
    assert attached.created_at == created.created_at and attached.created_at.tzinfo is not None
    assert created.status == "running" and created.steps_reported == 0
    assert repository.create_or_attach("default", JobCreate(name="run-1", config=CONFIG)).name == "run-1"


def test_attach_with_another_config_names_the_differing_fields(repository: JobRepository) -> None:
    repository.create_or_attach("default", JobCreate(name="run-1", config=CONFIG))
    other = CONFIG.model_copy(update={"lr_max": 0.5, "seed": 3})
    with pytest.raises(JobConflict) as caught:
        repository.create_or_attach("default", JobCreate(name="run-1", config=other))
    assert "lr_max" in str(caught.value) and "seed" in str(caught.value) and "lr_min" not in str(caught.value)


def test_tenants_are_separate_namespaces(repository: JobRepository) -> None:
    repository.create_or_attach("team-a", JobCreate(name="run", config=CONFIG))
    repository.create_or_attach("team-b", JobCreate(name="run", config=CONFIG.model_copy(update={"seed": 1})))
    assert [job.tenant for job in repository.list_jobs("team-a")] == ["team-a"]
    assert [job.name for job in repository.list_jobs("team-b")] == ["run"]
    assert repository.list_jobs("nobody") == []
    with pytest.raises(JobNotFound):
        repository.get_job("team-c", "run")


def test_report_advances_and_a_retry_replays_the_stored_decision(
    repository: JobRepository, db_rows: Rows
) -> None:
    first = repository.create_or_attach("default", JobCreate(name="run", config=CONFIG)).decision
    report = losses_for(first)
    second = repository.report_window("default", "run", 0, report)
    assert second.window == 1 and second.start_step == first.start_step + first.steps
    before = db_rows(repository)
    assert repository.report_window("default", "run", 0, report) == second
    # Even a different body for a decided window is answered from the store, changing nothing.
    assert repository.report_window("default", "run", 0, losses_for(first, base=9.0)) == second
    assert db_rows(repository) == before
    view = repository.get_job("default", "run")
    assert view.decision == second and view.steps_reported == first.steps
    assert view.updated_at >= view.created_at


def test_a_window_ahead_is_a_conflict_naming_the_expected_window(
    repository: JobRepository, db_rows: Rows
) -> None:
    first = repository.create_or_attach("default", JobCreate(name="run", config=CONFIG)).decision
    before = db_rows(repository)
    with pytest.raises(WindowConflict) as caught:
        repository.report_window("default", "run", 3, losses_for(first))
    assert caught.value.expected_window == 0 and "window 0" in str(caught.value)
    assert db_rows(repository) == before


def test_rejected_report_changes_nothing(repository: JobRepository, db_rows: Rows) -> None:
    first = repository.create_or_attach("default", JobCreate(name="run", config=CONFIG)).decision
    before = db_rows(repository)
    too_long = WindowReport(start_step=0, losses=[1.0] * (first.steps + 5))
    with pytest.raises(ReportRejected, match="planned"):
        repository.report_window("default", "run", 0, too_long)
    with pytest.raises(ReportRejected, match="starts at step"):
        repository.report_window("default", "run", 0, WindowReport(start_step=7, losses=[1.0]))
    assert db_rows(repository) == before
    assert repository.report_window("default", "run", 0, losses_for(first)).window == 1


def test_unknown_job_is_not_found(repository: JobRepository) -> None:
    with pytest.raises(JobNotFound, match="ghost"):
        repository.report_window("default", "ghost", 0, WindowReport(start_step=0, losses=[1.0]))
    for call in (repository.get_job, repository.schedule, repository.delete_job):
        with pytest.raises(JobNotFound):
            call("default", "ghost")


def test_schedule_shows_the_lr_used_per_step(repository: JobRepository) -> None:
    decision = repository.create_or_attach("default", JobCreate(name="run", config=CONFIG)).decision
    used: list[float] = []
    for window in range(3):
        report = losses_for(decision)
        if window == 1:  # the loop ran a fallback LR: the schedule must show what it really used
            report = report.model_copy(update={"lrs": [0.123] * len(report.losses)})
        used += report.lrs or [decision.lr_at(decision.start_step + i) for i in range(len(report.losses))]
        decision = repository.report_window("default", "run", window, report)
    schedule = repository.schedule("default", "run")
    assert [step.step for step in schedule.steps] == list(range(len(used)))
    assert [step.lr for step in schedule.steps] == pytest.approx(used)
    assert {step.window for step in schedule.steps} == {0, 1, 2}
    assert schedule.search_share == pytest.approx(1.0) and schedule.steps[0].phase == "search"
    assert schedule.stages and schedule.stages[0].stage == 0


def test_delete_removes_job_and_rows(repository: JobRepository, db_rows: Rows) -> None:
    first = repository.create_or_attach("default", JobCreate(name="run", config=CONFIG)).decision
    repository.report_window("default", "run", 0, losses_for(first))
    repository.delete_job("default", "run")
    rows = db_rows(repository)
    assert rows["jobs"] == [] and rows["observations"] == [] and rows["decisions"] == []
    assert len(rows["tenants"]) == 1
    assert repository.create_or_attach("default", JobCreate(name="run", config=CONFIG)).decision == first


def test_concurrent_creation_of_one_job_yields_one_row(repository: JobRepository, db_rows: Rows) -> None:
    results: list[bool] = []
    errors: list[BaseException] = []

    def create() -> None:
        try:
            results.append(repository.open_job("default", JobCreate(name="race", config=CONFIG))[1])
        except BaseException as error:  # collected: a thread's exception would be lost
            errors.append(error)

    threads = [threading.Thread(target=create) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and sorted(results) == [False, False, False, True]
    assert len(db_rows(repository)["jobs"]) == 1


def test_job_counts_by_status(repository: JobRepository) -> None:
    repository.create_or_attach("a", JobCreate(name="x", config=CONFIG))
    repository.create_or_attach("b", JobCreate(name="y", config=CONFIG))
    assert repository.job_counts() == {"running": 2}
