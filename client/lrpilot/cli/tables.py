"""The CLI's tables, drawn by rich (plain, readable text when the output is a file or a pipe)."""

from __future__ import annotations

import io
import math
from collections.abc import Sequence

from rich import box
from rich.console import Console
from rich.table import Table

from lrpilot.protocol import Forecast, JobView, Schedule, StageSummary


def render(headers: Sequence[str], rows: Sequence[Sequence[object]], title: str | None = None) -> str:
    """A rich table as text: right-aligned numbers, '-' for missing values."""
    table = Table(*headers, title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for row in rows:
        table.add_row(*(_cell(value) for value in row))
    buffer = io.StringIO()
    Console(file=buffer, width=160, force_terminal=False, color_system=None).print(table)
    lines = [line.rstrip() for line in buffer.getvalue().splitlines()]
    return "\n".join(line for line in lines if line)


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def jobs_table(jobs: Sequence[JobView]) -> str:
    rows = [
        (
            job.name,
            job.status,
            job.steps_reported,
            job.config.total_steps,
            job.decision.phase,
            job.decision.stage,
            job.decision.lr,
            job.updated_at.strftime("%Y-%m-%d %H:%M:%S"),
        )
        for job in jobs
    ]
    return render(["job", "status", "steps", "budget", "phase", "stage", "lr", "updated"], rows)


def stages_table(schedule: Schedule) -> str:
    """One row per candidate, grouped by stage, the chosen one marked; then why it was chosen."""
    rows: list[tuple[object, ...]] = []
    for stage in schedule.stages:
        head: tuple[object, ...] = (stage.stage, stage.tau, f"[{stage.lr_low:.3g}, {stage.lr_high:.3g}]")
        blank: tuple[object, ...] = ("", "", "")
        if not stage.candidates:
            rows.append((*head, "", "", "", "", stage.chosen_lr))
        for i, forecast in enumerate(stage.candidates):
            rows.append((*(head if i == 0 else blank), i, *_candidate(forecast, stage.chosen_lr),
                         stage.chosen_lr if i == 0 else ""))  # fmt: skip
    headers = ["stage", "tau", "range", "#", "candidate lr", "forecast loss", "note", "chosen lr"]
    summary = f"{len(schedule.steps)} steps reported, {schedule.search_share:.0%} of them on search"
    reasons = [_reason(stage) for stage in schedule.stages if stage.reason]
    return "\n".join([f"job {schedule.job}: {summary}", render(headers, rows), *reasons])


def _reason(stage: StageSummary) -> str:
    return f"stage {stage.stage}: chose {_cell(stage.chosen_lr)} because {stage.reason}"


def _candidate(forecast: Forecast, chosen: float | None) -> tuple[object, object, str]:
    if forecast.method == "diverged":
        return forecast.lr, "", "diverged"
    note = "<- chosen" if chosen is not None and math.isclose(forecast.lr, chosen, rel_tol=1e-9) else ""
    return forecast.lr, forecast.predicted, note
