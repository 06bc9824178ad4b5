"""kill -9 the service mid-search, restart it on the same database: the run does not notice.

The training is a deterministic simulation (a noisy quadratic trained by SGD in numpy, with its
own snapshot/restore through the state_dict protocol), so an interrupted run and an uninterrupted
one must produce bit-identical schedules when the service keeps its promise: nothing reported is
lost and decisions equal those of a run that was never interrupted.
"""

from __future__ import annotations

import copy
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from lrpilot import Tuner
from lrpilot.cli.server_process import ServerProcess, free_port
from lrpilot.protocol import Schedule

TOTAL = 300


class Quadratic:
    """``loss = 0.5 * sum(h * w**2)`` with gradient noise; the state_dict protocol for snapshots."""

    def __init__(self) -> None:
        self.w = np.linspace(1.0, 2.0, 8)
        self.h = np.geomspace(0.1, 1.5, 8)
        self.rng = np.random.default_rng(1)

    def step(self, lr: float) -> float:
        loss = float(0.5 * np.sum(self.h * self.w**2))
        grad = self.h * self.w + 0.05 * self.rng.standard_normal(8)
        self.w = self.w - lr * grad
        return loss

    def state_dict(self) -> dict[str, Any]:
        return {"w": self.w.copy()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.w = copy.deepcopy(state["w"])


class Groups:
    """The optimizer-shaped object the tuner sets the LR on."""

    def __init__(self) -> None:
        self.param_groups: list[dict[str, float]] = [{"lr": 0.0}]

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


def train(url: str, on_step: Any = None) -> Schedule:
    model, groups = Quadratic(), Groups()
    tuner = Tuner(
        "restart", url=url, lr_min=1e-3, lr_max=3.0, total_steps=TOTAL, model=model, optimizer=groups,
        candidates=4, seed=7, retry_deadline_s=60,
    )  # fmt: skip
    step = 0
    while not tuner.done:
        assert step < TOTAL + 5
        loss = model.step(groups.param_groups[0]["lr"])
        tuner.next_lr(step, loss)
        step += 1
        if on_step is not None:
            on_step(tuner)
    assert not tuner.in_fallback
    schedule = tuner.schedule()
    tuner.close()
    return schedule


def test_kill_9_mid_search_and_restart_loses_nothing(tmp_path: Path) -> None:
    with ServerProcess(f"sqlite:///{tmp_path / 'reference.db'}", log_path=tmp_path / "ref.log") as server:
        reference = train(server.url)

    port = free_port()
    server = ServerProcess(
        f"sqlite:///{tmp_path / 'crash.db'}", port, log_path=tmp_path / "crash.log"
    ).start()
    killed: dict[str, int] = {}
    restarter: list[threading.Thread] = []

    def restart() -> None:
        time.sleep(1.0)
        server.start()

    def maybe_kill(tuner: Tuner) -> None:
        d = tuner.decision
        in_middle = 0 < tuner.step - d.start_step < d.steps - 1
        if not killed and d.phase == "search" and d.candidate == 2 and in_middle:
            server.kill()
            killed.update(step=tuner.step, window=d.window)
            restarter.append(threading.Thread(target=restart, daemon=True))
            restarter[0].start()

    try:
        interrupted = train(server.url, maybe_kill)
    finally:
        for thread in restarter:
            thread.join(timeout=60)
        server.stop()

    assert killed, "the run never reached a search phase to interrupt"
    assert [s.step for s in interrupted.steps] == list(range(len(interrupted.steps)))
    assert interrupted.model_dump() == {**reference.model_dump(), "job": interrupted.job}
