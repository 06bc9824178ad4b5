"""`lrpilot demo` end to end in a subprocess, and the thin parts of the CLI."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from lrpilot.cli import main


@pytest.mark.slow
def test_demo_runs_to_completion(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    result = subprocess.run(
        [sys.executable, "-m", "lrpilot", "demo", "--steps", "300", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "chosen lr" in result.stdout and "final validation loss" in result.stdout
    assert (out / "demo.png").stat().st_size > 10_000
    assert (out / "demo.db").exists()
    # the tuner scores LRs on the held-out loss: its job's objective is "val"
    with sqlite3.connect(out / "demo.db") as db:
        (config,) = db.execute("select config from jobs").fetchone()
    assert '"objective": "val"' in config


def test_cli_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for command in ("serve", "db", "jobs", "show", "export", "plot", "replay", "demo", "bench"):
        assert command in out


def test_export_prints_schedule_json_from_the_embedded_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from lrpilot import Tuner, embedded_transport

    url = f"sqlite:///{tmp_path / 'cli.db'}"
    with Tuner("cli-job", transport=embedded_transport(url), total_steps=40, candidates=2) as tuner:
        for step in range(5):
            tuner.next_lr(step, 1.0)
    assert main(["export", "cli-job", "--database-url", url]) == 0
    assert '"job": "cli-job"' in capsys.readouterr().out
    assert main(["jobs", "--database-url", url]) == 0
    assert "cli-job" in capsys.readouterr().out


def test_demo_without_matplotlib_reports_and_says_what_to_install(tmp_path: Path) -> None:
    """A `[server]` install has no matplotlib: the demo still trains and reports, then says why no plot."""
    out = tmp_path / "demo"
    probe = (
        "import sys; sys.modules['matplotlib'] = None\nfrom lrpilot.cli import main\n"
        f"sys.exit(main(['demo', '--steps', '60', '--out', {str(out)!r}]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "final validation loss" in result.stdout and "pip install 'lrpilot[plot]'" in result.stdout
    assert not (out / "demo.png").exists()
