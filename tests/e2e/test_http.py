"""End to end over HTTP: a real `lrpilot serve` process, a real torch MLP on digits, a Tuner.

The stored schedule must be the truth about the run: the LR per step equals what the optimizer
had, and snapshots/restores happened exactly at the windows whose decisions asked for them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from lrpilot import Tuner
from lrpilot.cli.server_process import ServerProcess

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("e2e")
    with ServerProcess(f"sqlite:///{root / 'lrpilot.db'}", log_path=root / "server.log") as process:
        yield process


class SnapshotSpy:
    """Wraps the tuner's snapshot store to record where it saved and restored."""

    def __init__(self, inner: Any, tuner: Tuner) -> None:
        self.inner, self.tuner = inner, tuner
        self.saves: list[int] = []
        self.restores: list[int] = []

    @property
    def stage(self) -> int | None:
        stage: int | None = self.inner.stage
        return stage

    def save(self, stage: int, step: int, model: Any, optimizer: Any) -> None:
        self.saves.append(step)
        self.inner.save(stage, step, model, optimizer)

    def restore(self, stage: int, model: Any, optimizer: Any) -> bool:
        self.restores.append(self.tuner.step)
        restored: bool = self.inner.restore(stage, model, optimizer)
        return restored


def digits() -> tuple[torch.Tensor, torch.Tensor]:
    x, y = load_digits(return_X_y=True)
    x = (x - x.mean(0)) / (x.std(0) + 1e-6)
    return torch.tensor(x, dtype=torch.float32), torch.tensor(y)


def test_mlp_on_digits_schedule_is_the_truth(server: ServerProcess) -> None:
    torch.manual_seed(0)
    x, y = digits()
    model = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    tuner = Tuner(
        "e2e-digits", url=server.url, lr_min=1e-3, lr_max=1.0, total_steps=400,
        model=model, optimizer=optimizer, candidates=4, retry_deadline_s=20,
    )  # fmt: skip
    spy = SnapshotSpy(tuner._snapshots, tuner)
    tuner._snapshots = spy
    # the first decision was applied at construction: record it by hand
    if tuner.decision.action == "snapshot":
        spy.saves.append(0)
    rng = np.random.default_rng(0)
    used: list[float] = []
    decisions = {tuner.decision.window: tuner.decision}
    step = 0
    while not tuner.done and step < 500:
        batch = torch.from_numpy(rng.integers(0, len(x), 64))
        loss = torch.nn.functional.cross_entropy(model(x[batch]), y[batch])
        optimizer.zero_grad()
        loss.backward()
        used.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        tuner.next_lr(step, loss)
        decisions[tuner.decision.window] = tuner.decision
        step += 1
    assert tuner.done and tuner.decision.action == "done"
    schedule = tuner.schedule()
    tuner.close()

    assert [s.step for s in schedule.steps] == list(range(len(used)))
    assert [s.lr for s in schedule.steps] == pytest.approx(used, rel=1e-12)
    snapshot_steps = sorted(d.start_step for d in decisions.values() if d.action == "snapshot")
    restore_steps = sorted(d.start_step for d in decisions.values() if d.action == "restore")
    assert spy.saves == snapshot_steps and snapshot_steps
    assert spy.restores == restore_steps and restore_steps
    assert schedule.stages and all(stage.candidates for stage in schedule.stages[:1])


def test_jobs_and_show_print_tables(server: ServerProcess, capsys: pytest.CaptureFixture[str]) -> None:
    from lrpilot.cli import main

    assert main(["jobs", "--url", server.url]) == 0
    out = capsys.readouterr().out
    assert "e2e-digits" in out and "status" in out
    assert main(["show", "e2e-digits", "--url", server.url]) == 0
    out = capsys.readouterr().out
    assert "candidate lr" in out and "chosen" in out
    assert main(["show", "no-such-job", "--url", server.url]) == 1


def test_cli_db_upgrade(tmp_path: Path) -> None:
    from lrpilot.cli import main

    assert main(["db", "upgrade", "--database-url", f"sqlite:///{tmp_path / 'x.db'}"]) == 0
    assert (tmp_path / "x.db").exists()
