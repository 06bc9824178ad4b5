"""The CLI a person uses: --version, show (why the choice), export, plot, replay, and its messages."""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lrpilot import Tuner, embedded_transport
from lrpilot.cli import main
from lrpilot.replay import ReplayScheduler, load_schedule


@pytest.fixture(scope="module")
def finished_job(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A job that searched, exploited and finished, in an embedded SQLite database."""
    url = f"sqlite:///{tmp_path_factory.mktemp('cli') / 'jobs.db'}"
    with Tuner("cli-job", transport=embedded_transport(url), lr_min=1e-3, lr_max=1.0, total_steps=60,
               candidates=2) as tuner:  # fmt: skip
        for step in range(60):
            tuner.next_lr(step, 2.0 / (1 + step * tuner.lr) + 0.01 * math.sin(step))
        assert tuner.done
    return url


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0 and capsys.readouterr().out.startswith("lrpilot 0.")


def test_show_marks_the_chosen_candidate_and_why(
    finished_job: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["show", "cli-job", "--database-url", finished_job]) == 0
    out = capsys.readouterr().out
    assert "<- chosen" in out and "stage 0: chose" in out and "because" in out


def test_export_csv_and_json(finished_job: str, tmp_path: Path) -> None:
    assert (
        main(
            [
                "export",
                "cli-job",
                "--database-url",
                finished_job,
                "--format",
                "csv",
                "-o",
                str(tmp_path / "s.csv"),
            ]
        )
        == 0
    )
    rows = list(csv.DictReader((tmp_path / "s.csv").open()))
    assert len(rows) == 60 and set(rows[0]) == {"step", "lr", "loss", "window", "phase", "stage", "candidate"}
    assert main(["export", "cli-job", "--database-url", finished_job, "-o", str(tmp_path / "s.json")]) == 0
    payload = json.loads((tmp_path / "s.json").read_text())
    assert payload["job"] == "cli-job" and len(payload["steps"]) == 60
    assert [float(r["lr"]) for r in rows] == [s["lr"] for s in payload["steps"]]


def test_plot_writes_a_png(finished_job: str, tmp_path: Path) -> None:
    out = tmp_path / "job.png"
    assert main(["plot", "cli-job", "--database-url", finished_job, "-o", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000


def test_replay_gives_a_scheduler_that_follows_the_kept_path(finished_job: str, tmp_path: Path) -> None:
    exported = tmp_path / "s.json"
    assert main(["export", "cli-job", "--database-url", finished_job, "-o", str(exported)]) == 0
    steps = json.loads(exported.read_text())["steps"]
    kept = [s["lr"] for s in steps if s["phase"] != "search"]
    assert 0 < len(kept) < len(steps)  # the search tries are not replayed
    output = tmp_path / "lrs.json"
    assert main(["replay", "cli-job", "--database-url", finished_job, "-o", str(output)]) == 0
    assert load_schedule(output) == load_schedule(exported) == kept
    assert len(load_schedule(exported, all_steps=True)) == len(steps)
    model = torch.nn.Linear(2, 1)
    optimizer = torch.optim.SGD([{"params": [model.weight]}, {"params": [model.bias], "lr": 5.0}], lr=0.1)
    scheduler = ReplayScheduler(optimizer, kept)
    seen = []
    for _ in range(len(kept) + 2):
        seen.append([group["lr"] for group in optimizer.param_groups])
        optimizer.step()
        scheduler.step()
    assert seen == [[pytest.approx(lr)] * 2 for lr in kept + [kept[-1]] * 2]


def test_missing_job_speaks_cli(finished_job: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", "ghost", "--database-url", finished_job]) == 1
    err = capsys.readouterr().err
    assert "no job 'ghost'" in err and "lrpilot jobs" in err and "/v1/" not in err


@pytest.mark.parametrize(
    ("blocked", "argv", "message"),
    [
        ("lrpilot_service", ["serve"], "pip install 'lrpilot[server]'"),
        ("lrpilot_service", ["jobs"], "pip install lrpilot[server]"),
        ("matplotlib", ["plot", "x", "--url", "http://127.0.0.1:9"], None),
    ],
)
def test_a_client_only_install_says_what_to_install(
    blocked: str, argv: list[str], message: str | None
) -> None:
    probe = (
        f"import sys; sys.modules[{blocked!r}] = None\nfrom lrpilot.cli import main\nsys.exit(main({argv!r}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert (message or "lrpilot") in done.stderr


def test_plotting_without_matplotlib_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    from lrpilot.cli.plot import pyplot

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match=r"pip install 'lrpilot\[plot\]'"):
        pyplot()
