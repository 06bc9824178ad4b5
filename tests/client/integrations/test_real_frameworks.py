"""Every integration against the real library, run as users run it (the examples/ scripts).

Each run is a tiny job (80 steps, 2 candidates, CPU) on an embedded SQLite database, and
:func:`tests.client.integrations.runs.check_run` asserts that the optimizer's LR equals lrpilot's
decision on every step, that every restore put the weights and optimizer state back to the stage
snapshot, that all ranks end identical, that rank 0 alone talked to the service, and that the job
reached ``done``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.client.integrations.runs import EXAMPLES, check_run, run_script

STEPS = 80
ARGS = ("--steps", str(STEPS), "--candidates", "2")

pytest.importorskip("lightning")
pytest.importorskip("transformers")


@pytest.mark.parametrize(
    ("example", "ranks"),
    [
        pytest.param("plain_loop.py", 1, id="plain-loop"),
        pytest.param("torch_scheduler.py", 1, id="lrscheduler"),
        pytest.param("lightning_example.py", 1, id="lightning"),
        pytest.param("lightning_example.py", 2, id="lightning-ddp"),
        pytest.param("huggingface_trainer.py", 1, id="hf-trainer"),
        pytest.param("huggingface_trainer.py", 2, id="hf-trainer-torchrun"),
        pytest.param("ddp_example.py", 2, id="raw-ddp"),
    ],
)
def test_integration_follows_lrpilot(example: str, ranks: int, tmp_path: Path) -> None:
    job = f"it-{example.removesuffix('.py')}-{ranks}"
    args = (*ARGS, "--job", job)
    if example == "lightning_example.py":
        args = (*args, "--devices", str(ranks))
    torchrun = ranks > 1 and example != "lightning_example.py"  # Lightning launches its own processes
    run = run_script(EXAMPLES / example, tmp_path, *args, torchrun=torchrun)
    figures = check_run(run, job, ranks, STEPS)
    print(f"{example} x{ranks}: {figures}")
