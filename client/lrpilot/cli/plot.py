"""``lrpilot plot JOB``: one PNG with the LR and the loss per step, and every stage's candidates.

matplotlib is optional (``pip install 'lrpilot[plot]'``); without it the command says so.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from lrpilot.cli.source import add_source_options, fetch_schedule
from lrpilot.protocol import Schedule

PHASE_COLORS = {"warmup": "#9e9e9e", "search": "#ff9800", "exploit": "#1976d2", "anneal": "#388e3c"}


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    command = sub.add_parser("plot", help="PNG of a job's LR, loss and candidates (needs lrpilot[plot])")
    command.add_argument("job")
    command.add_argument("--output", "-o", default=None, help="PNG to write; default JOB.png")
    add_source_options(command)
    command.set_defaults(run=run)


def pyplot() -> Any:
    try:
        import matplotlib
    except ImportError as exc:
        raise ImportError(
            "plotting needs matplotlib: pip install 'lrpilot[plot]'", name="matplotlib"
        ) from exc
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_schedule(schedule: Schedule, path: Path) -> Path:
    """LR (log) and loss per step coloured by phase, and each stage's candidates with forecasts."""
    plt = pyplot()
    figure, (lr_axis, loss_axis, candidate_axis) = plt.subplots(3, 1, figsize=(9, 9))
    for phase, color in PHASE_COLORS.items():
        steps = [s for s in schedule.steps if s.phase == phase]
        if steps:
            lr_axis.scatter([s.step for s in steps], [s.lr for s in steps], s=3, color=color, label=phase)
            finite = [s for s in steps if math.isfinite(s.loss)]
            loss_axis.scatter([s.step for s in finite], [s.loss for s in finite], s=3, color=color)
    lr_axis.set(yscale="log", ylabel="learning rate", title=f"lrpilot job {schedule.job}")
    lr_axis.legend(loc="best", markerscale=3)
    loss_axis.set(ylabel="training loss", xlabel="step (search steps included)")
    for stage in schedule.stages:
        tried = [f for f in stage.candidates if f.method != "diverged"]
        line = candidate_axis.plot(
            [f.lr for f in tried], [f.predicted for f in tried], "o", label=f"stage {stage.stage}"
        )
        color = line[0].get_color()
        for forecast in stage.candidates:
            if forecast.method == "diverged":
                candidate_axis.axvline(forecast.lr, color=color, linestyle=":", linewidth=1)
        if stage.chosen_lr is not None:
            candidate_axis.axvline(stage.chosen_lr, color=color, linewidth=1.5)
    candidate_axis.set(xscale="log", xlabel="candidate LR (solid: chosen, dotted: diverged)",
                       ylabel="forecast loss at end of stage")  # fmt: skip
    if schedule.stages:
        candidate_axis.legend(loc="best")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def run(args: argparse.Namespace) -> int:
    schedule = fetch_schedule(args, args.job)
    path = Path(args.output or f"{args.job.replace('/', '_')}.png")
    plot_schedule(schedule, path)
    print(f"wrote {path} ({len(schedule.steps)} steps, {len(schedule.stages)} stages)")
    return 0
