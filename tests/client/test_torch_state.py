"""Snapshots stay what they were when taken, in memory and on disk."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from lrpilot.torch_state import DirectorySnapshots, MemorySnapshots, SnapshotStore

torch.set_num_threads(1)


def train(model: torch.nn.Module, optimizer: torch.optim.Optimizer, steps: int) -> None:
    for _ in range(steps):
        loss = model(torch.ones(4, 3)).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


@pytest.mark.parametrize("kind", ["memory", "directory"])
def test_restore_brings_back_weights_and_momentum_every_time(kind: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    train(model, optimizer, 2)
    store: SnapshotStore = MemorySnapshots() if kind == "memory" else DirectorySnapshots(tmp_path, "a/b job")
    store.save(3, 2, model, optimizer)
    assert store.stage == 3
    weight = model.weight.detach().clone()
    momentum = optimizer.state[model.weight]["momentum_buffer"].clone()
    for _ in range(2):  # twice: the first restore must not let training mutate the snapshot
        train(model, optimizer, 3)
        optimizer.param_groups[0]["lr"] = 0.7
        assert store.restore(3, model, optimizer)
        assert torch.equal(model.weight, weight)
        assert torch.equal(optimizer.state[model.weight]["momentum_buffer"], momentum)
        assert (
            optimizer.param_groups[0]["lr"] == 0.1
        )  # restored with the state: the tuner sets the new LR after
    assert not store.restore(4, model, optimizer)  # another stage's snapshot is never restored


def test_directory_snapshot_survives_a_new_store(tmp_path: Path) -> None:
    model = torch.nn.Linear(2, 1)
    DirectorySnapshots(tmp_path, "job").save(1, 0, model, None)
    fresh = torch.nn.Linear(2, 1)
    assert DirectorySnapshots(tmp_path, "job").restore(1, fresh, None)
    assert torch.equal(fresh.weight, model.weight)
