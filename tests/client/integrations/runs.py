"""Run an example (or a script) as users do, and check what every rank really did against the job.

The examples write per-rank traces (``--trace DIR``, :class:`lrpilot.trace.StepTrace`): the LR
and exact fingerprints of the weights and optimizer state before every optimizer step. The job's
decisions and per-step windows come from its database (embedded mode, SQLite). :func:`check_run`
asserts what issue 10 asks of every integration and returns the figures for the report.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select

from lrpilot.cli.server_process import free_port
from lrpilot.protocol import Decision

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = ROOT / "examples"
TORCHRUN = [
    sys.executable,
    "-m",
    "torch.distributed.run",
    "--nproc-per-node",
    "2",
    "--master-addr",
    "127.0.0.1",
]


@dataclass
class Run:
    seconds: float
    stdout: str
    stderr: str
    returncode: int
    database_url: str
    traces: Path


def run_script(script: Path, tmp: Path, *args: str, torchrun: bool = False, timeout: float = 180) -> Run:
    """``python SCRIPT ARGS --trace DIR`` (or under torchrun) on a fresh embedded SQLite database."""
    database_url = f"sqlite:///{tmp / 'jobs.db'}"
    env = {**os.environ, "LRPILOT_DATABASE_URL": database_url, "OMP_NUM_THREADS": "1"}
    env.pop("LRPILOT_URL", None)
    env.setdefault("GLOO_SOCKET_IFNAME", "lo")
    launcher = [*TORCHRUN, "--master-port", str(free_port())] if torchrun else [sys.executable]
    command = [*launcher, str(script), *args, "--trace", str(tmp / "traces")]
    started = time.perf_counter()
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=timeout, env=env, cwd=tmp, check=False
    )
    seconds = time.perf_counter() - started
    return Run(seconds, done.stdout, done.stderr, done.returncode, database_url, tmp / "traces")


def job_record(database_url: str, job: str) -> tuple[str, dict[int, Decision], dict[int, int]]:
    """The job's status, its decisions by window and the window of every reported step."""
    from lrpilot_service.store import open_repository
    from lrpilot_service.store.models import DecisionRecord, Job, Observation

    repository = open_repository(database_url)
    try:
        with repository.engine.connect() as connection:
            (job_id, status) = connection.execute(select(Job.id, Job.status).where(Job.name == job)).one()
            decisions = {
                window: Decision.model_validate(payload)
                for window, payload in connection.execute(
                    select(DecisionRecord.window, DecisionRecord.decision).where(
                        DecisionRecord.job_id == job_id
                    )
                )
            }
            rows = connection.execute(
                select(Observation.step, Observation.window).where(Observation.job_id == job_id)
            )
            windows = {step: window for step, window in rows}
    finally:
        repository.close()
    return status, decisions, windows


def check_run(run: Run, job: str, ranks: int, steps: int) -> dict[str, Any]:
    """Assert: LR = decision on every step, restores real, ranks identical, job done, rank 0 talks."""
    assert run.returncode == 0, run.stderr[-3000:]
    traces = [json.loads((run.traces / f"rank{rank}.json").read_text()) for rank in range(ranks)]
    status, decisions, windows = job_record(run.database_url, job)
    assert status == "done", f"job {job} is {status}"
    assert sorted(windows) == list(range(steps)), "every step was reported once"
    first = traces[0]
    assert len(first["lrs"]) == steps
    for step, lr in enumerate(first["lrs"]):
        planned = decisions[windows[step]].lr_at(step)
        assert abs(lr - planned) <= 1e-12 * planned, (
            f"step {step}: optimizer LR {lr}, lrpilot decided {planned}"
        )
    snapshots = sorted(d.start_step for d in decisions.values() if d.action == "snapshot")
    restores = [d for d in decisions.values() if d.action == "restore" and d.start_step < steps]
    assert restores, "the run searched (it restored at least once)"
    for decision in restores:
        # the one slot holds the latest snapshot: the stage's, or its final hold's best model
        at = decision.start_step
        snapshot = max(s for s in snapshots if s <= at)
        for trace in traces:  # every rank restored its own replica to that snapshot
            assert trace["weights"][at] == trace["weights"][snapshot], f"weights after the restore at {at}"
            assert trace["optimizer_states"][at] == trace["optimizer_states"][snapshot], f"optimizer at {at}"
            assert trace["weights"][at - 1] != trace["weights"][snapshot], (
                "the candidate had moved the weights"
            )
    for trace in traces[1:]:
        assert trace["lrs"] == first["lrs"] and trace["weights"] == first["weights"]
        assert (trace["final_weights"], trace["final_lr"]) == (first["final_weights"], first["final_lr"])
    assert all(trace["done"] for trace in traces)
    assert [trace["talks_to_service"] for trace in traces] == [True] + [False] * (ranks - 1)
    return {"seconds": round(run.seconds, 1), "steps": steps, "restores": len(restores),
            "final_weights": first["final_weights"], "final_lr": first["final_lr"]}  # fmt: skip
