"""A job's life on both databases: stale without reports (database clock), running again on the next,
failed or done when the client says so, pruned when old; one job's slow decision never holds up
another's; transient database errors are told apart from the rest."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError, ProgrammingError

from lrpilot.protocol import Decision, JobCreate, TunerConfig, WindowReport
from lrpilot_service.store import JobRepository, QuotaExceeded
from lrpilot_service.store import decide as decide_module
from lrpilot_service.store.db import is_transient
from tests.plans import CLASSIC_PLAN

CONFIG = TunerConfig(total_steps=2000, lr_min=1e-4, lr_max=1.0, search="space_filling", **CLASSIC_PLAN)
# SQLite's CURRENT_TIMESTAMP has whole seconds: ages are checked with a margin of two.
AGE_S = 2.2


def report(decision: Decision) -> WindowReport:
    return WindowReport(start_step=decision.start_step, losses=[1.0] * decision.steps)


def test_no_report_for_stale_after_makes_a_job_stale_and_the_next_report_resumes_it(
    repository: JobRepository,
) -> None:
    decision = repository.create_or_attach("t", JobCreate(name="run", config=CONFIG)).decision
    repository.create_or_attach("t", JobCreate(name="done-early", config=CONFIG))
    repository.set_status("t", "done-early", "done", "stopped at step 0")
    assert repository.mark_stale(3600) == 0
    time.sleep(AGE_S)
    assert repository.mark_stale(1.0) == 1  # only running jobs turn stale
    stale = repository.get_job("t", "run")
    assert stale.status == "stale" and repository.get_job("t", "done-early").status == "done"
    repository.report_window("t", "run", 0, report(decision))
    resumed = repository.get_job("t", "run")
    assert resumed.status == "running" and resumed.updated_at > stale.updated_at
    assert repository.job_counts() == {"running": 1, "done": 1}


def test_the_client_marks_a_job_failed_with_its_reason(repository: JobRepository) -> None:
    decision = repository.create_or_attach("t", JobCreate(name="run", config=CONFIG)).decision
    failed = repository.set_status("t", "run", "failed", "RuntimeError: CUDA out of memory")
    assert failed.status == "failed" and failed.reason == "RuntimeError: CUDA out of memory"
    repository.report_window("t", "run", 0, report(decision))  # restarted from a checkpoint
    assert (
        repository.get_job("t", "run").status == "running" and repository.get_job("t", "run").reason is None
    )


def test_prune_deletes_old_jobs_only(
    repository: JobRepository, db_rows: Callable[[Any], dict[str, Any]]
) -> None:
    decision = repository.create_or_attach("t", JobCreate(name="old", config=CONFIG)).decision
    repository.report_window("t", "old", 0, report(decision))
    repository.create_or_attach("u", JobCreate(name="old-too", config=CONFIG))
    time.sleep(AGE_S)
    repository.create_or_attach("t", JobCreate(name="new", config=CONFIG))
    assert repository.prune(1.0, tenant="t", statuses=["done"]) == 0
    assert repository.prune(1.0, tenant="t") == 1
    assert [job.name for job in repository.list_jobs("t")] == ["new"]
    assert repository.prune(1.0) == 1  # every tenant
    rows = db_rows(repository)
    assert len(rows["jobs"]) == 1 and all(row[0] == rows["jobs"][0][0] for row in rows["job_states"])
    assert rows["observations"] == []


def test_a_tenant_quota_counts_its_jobs(repository: JobRepository) -> None:
    for name in ("a", "b"):
        repository.open_job("t", JobCreate(name=name, config=CONFIG), max_jobs=2)
    with pytest.raises(QuotaExceeded, match="quota"):
        repository.open_job("t", JobCreate(name="c", config=CONFIG), max_jobs=2)
    assert repository.open_job("t", JobCreate(name="a", config=CONFIG), max_jobs=2)[1] is False  # attach
    repository.access.set_tenant("t", 3)  # the tenant's own quota wins over the default
    assert repository.open_job("t", JobCreate(name="c", config=CONFIG), max_jobs=2)[1] is True


def test_a_slow_decision_of_one_job_never_holds_up_another(
    repository: JobRepository, monkeypatch: pytest.MonkeyPatch
) -> None:
    slow_one = repository.create_or_attach("t", JobCreate(name="slow", config=CONFIG)).decision
    fast_one = repository.create_or_attach("t", JobCreate(name="fast", config=CONFIG)).decision
    inner = decide_module.advance
    entered = threading.Event()

    def advance(config: TunerConfig, state: Any, rep: WindowReport | None) -> Any:
        if rep is not None and rep.losses[0] == 9.0:  # the slow job's report: a long GP fit, say
            entered.set()
            time.sleep(2.0)
        return inner(config, state, rep)

    monkeypatch.setattr(decide_module, "advance", advance)
    slow_report = WindowReport(start_step=0, losses=[9.0] * slow_one.steps)
    slow = threading.Thread(target=repository.report_window, args=("t", "slow", 0, slow_report))
    slow.start()
    assert entered.wait(10)
    started = time.perf_counter()
    repository.report_window("t", "fast", 0, report(fast_one))
    waited = time.perf_counter() - started
    slow.join()
    assert waited < 1.0, f"the fast job's decision waited {waited:.2f}s behind the slow one"
    assert repository.get_job("t", "slow").decision.window == 1


def test_transient_database_errors_are_told_apart() -> None:
    class Orig(Exception):
        def __init__(self, sqlstate: str | None) -> None:
            super().__init__("x")
            self.sqlstate = sqlstate

    def operational(sqlstate: str | None, invalidated: bool = False) -> OperationalError:
        return OperationalError("SELECT 1", {}, Orig(sqlstate), connection_invalidated=invalidated)

    assert is_transient(operational("40001")) and is_transient(operational("40P01"))
    assert is_transient(operational("57P01"))  # pg_terminate_backend
    assert is_transient(operational("08006"))  # connection failure
    assert is_transient(operational(None))  # a connection that broke without a SQLSTATE
    assert is_transient(operational("42P01", invalidated=True))
    assert not is_transient(ProgrammingError("SELECT 1", {}, Orig("42P01")))
    assert not is_transient(ValueError("no"))
