"""Plain-text tables for the CLI: no dependency beyond the standard library, readable in any log."""

from __future__ import annotations

import math
from collections.abc import Sequence

from lrpilot.protocol import Forecast, JobView, Schedule


def render(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Columns padded to their widest cell, a rule under the header."""
    cells = [[str(h) for h in headers], *[[_cell(v) for v in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


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
    """One row per candidate, grouped by stage: what was searched, each forecast, what was chosen."""
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
    return f"job {schedule.job}: {summary}\n{render(headers, rows)}"


def _candidate(forecast: Forecast, chosen: float | None) -> tuple[object, object, str]:
    if forecast.method == "diverged":
        return forecast.lr, "", "diverged"
    note = "chosen" if chosen is not None and math.isclose(forecast.lr, chosen, rel_tol=1e-9) else ""
    return forecast.lr, forecast.predicted, note
