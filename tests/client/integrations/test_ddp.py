"""DistributedTuner on a gloo world of two CPU processes: every rank follows rank 0 in lockstep."""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from lrpilot.cli.server_process import free_port
from lrpilot.integrations.ddp import DistributedTuner
from lrpilot.testing import ScriptedTransport, Window

PLAN = [
    Window(4, 0.1, phase="exploit"),
    Window(3, 0.3, action="snapshot", phase="search", stage=0, eval_at=(2,)),
    Window(3, 0.2, action="restore", phase="search", stage=0, keep="save"),  # keeps try 1's model
    Window(4, 0.05, action="restore", phase="exploit", stage=0, max_loss=1e9, eval_at=(3,)),
]


def _worker(rank: int, port: int, out: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    try:
        torch.manual_seed(rank)  # different replicas: each must restore its own snapshot
        model = torch.nn.Linear(3, 1)
        optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
        transport = ScriptedTransport(PLAN, end_keep="load") if rank == 0 else None
        tuner = DistributedTuner(
            "ddp", model, optimizer, transport=transport, retry_deadline_s=0, average_loss=True,
            val_fn=iter([0.5, 0.9]).__next__,  # rank 0 measures: try 1's end, then the last model
        )  # fmt: skip
        lrs, weights, trained = [], [], []
        for step in range(14):
            lrs.append(optimizer.param_groups[0]["lr"])
            weights.append(model.weight.detach().flatten().tolist())
            loss = model(torch.ones(2, 3)).pow(2).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            trained.append(model.weight.detach().flatten().tolist())
            tuner.next_lr(step, loss)
        final = model.weight.detach().flatten().tolist()
        reported = sorted(transport.reports) if transport is not None else []
        Path(out, f"{rank}.json").write_text(
            json.dumps(
                {"lrs": lrs, "weights": weights, "trained": trained, "final": final, "reported": reported}
            )
        )
        tuner.close()
    finally:
        dist.destroy_process_group()


def test_two_ranks_follow_rank_zero(tmp_path: Path) -> None:
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    # fork, not spawn: the children inherit the imported torch (CPU only, no CUDA state to break)
    mp.start_processes(_worker, args=(free_port(), str(tmp_path)), nprocs=2, join=True, start_method="fork")
    ranks = [json.loads((tmp_path / f"{rank}.json").read_text()) for rank in (0, 1)]
    assert ranks[0]["lrs"] == ranks[1]["lrs"] == [0.1] * 4 + [0.3] * 3 + [0.2] * 3 + [0.05] * 4
    assert ranks[0]["reported"] == [0, 1, 2, 3]
    for rank in ranks:  # each replica came back to its own snapshot at steps 7 and 10
        assert rank["weights"][7] == rank["weights"][4] == rank["weights"][10]
        assert rank["weights"][8] != rank["weights"][4]
    assert ranks[0]["weights"][4] != ranks[1]["weights"][4]
    for rank in ranks:  # ... and each ended with its own best model: the one try 1 ended with
        assert rank["final"] == rank["trained"][6] != rank["trained"][13]
