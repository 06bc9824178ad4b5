"""Write docs/benchmarks.md and the per-workload plots under docs/bench/.

Why tables of ratios to the tuned cosine: losses of different workloads are not comparable, but
"x% above the best tuned cosine on the same seed" is, and it is what a user would give up by
switching. Every claim carries its bootstrap interval; a row "wins" only when the whole interval
is on its side.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench.analysis import Row, WorkloadAnalysis
from bench.overhead import speed_lines
from bench.stats import bootstrap_ci, iqm, stratified_bootstrap_ci
from bench.workloads import WORKLOADS

PLOTTED = (
    "tuned:cosine",
    "best",
    "default:cosine",
    "lr-free:schedulefree",
    "lr-free:prodigy",
    "tuner:autolrs",
    "tuner:lrpilot",
)


def _f(x: float | None, digits: int = 4) -> str:
    return "—" if x is None or not math.isfinite(x) else f"{x:.{digits}g}"


def _ci(ci: tuple[float, float], digits: int = 3) -> str:
    return f"[{_f(ci[0], digits)}, {_f(ci[1], digits)}]"


def verdict(ci: tuple[float, float], n: int) -> str:
    """'better' / 'worse' only when the whole interval of a ratio (ours / theirs) is on one side of 1.

    Fewer than 3 paired values give no verdict at all: their bootstrap interval is degenerate.
    """
    if n < 3:
        return "n/a (< 3 seeds)"
    if ci[1] < 1.0:
        return "better"
    if ci[0] > 1.0:
        return "worse"
    return "tie"


def workload_table(wa: WorkloadAnalysis) -> list[str]:
    """One workload's table: every method, its loss, its ratio to the tuned cosine, its cost."""
    w = WORKLOADS[wa.workload]
    d = w.data()
    lines = [
        f"### {wa.workload}",
        "",
        f"{w.description}; {w.family.upper()}{' (momentum 0.9)' if w.family == 'sgd' else ''}, weight decay "
        f"{w.weight_decay:g}, batch {w.batch_size}, T = {wa.budget} steps, {d.train_x.shape[0]} train / "
        f"{d.val_x.shape[0]} validation rows; grid {', '.join(f'{x:g}' for x in wa.grid)}; "
        f"target: tuned cosine (peak {_f(wa.cosine.peak_lr, 3)}), final val loss IQM {_f(wa.cosine.iqm)}; "
        f"best tuned schedule: {wa.best.label} at {_f(wa.best.peak_lr, 3)}.",
        "",
        "| method | peak LR | val loss IQM [95% CI] | ratio to tuned cosine [95% CI] | P(better) | "
        "steps to target (reached) | steps charged / seed | s / run | search share |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in sorted(wa.rows, key=lambda r: r.iqm):
        s = wa.summary(row)
        lr = _f(row.peak_lr, 3) + (" (edge)" if row.at_grid_edge else "")
        div = f" ({s['diverged']} diverged)" if s["diverged"] else ""
        name = f"**{row.label}**" if row.kind == "tuner" else row.label
        lines.append(
            f"| {name}{div} | {lr} | {_f(s['iqm'])} {_ci(s['ci'])} | "
            f"{_f(s['ratio'], 3)} {_ci(s['ratio_ci'])} | "
            f"{s['p_better']:.2f} | {_f(s['steps'], 5)} ({s['reached']}/{wa.seeds}) | {row.charged_steps} | "
            f"{s['wall']:.1f} | {_f(s['search_share'], 2)} |"
        )
    if wa.missing:
        lines += ["", f"Missing or failed runs: {', '.join(wa.missing)}."]
    return [*lines, "", f"![{wa.workload}](bench/{wa.workload}.png)", ""]


def workloads_table(analyses: Sequence[WorkloadAnalysis]) -> list[str]:
    """The workloads' sizes and per-run cost, so a reader can judge what the numbers stand for."""
    lines = [
        "| workload | model | optimiser | params | train / val rows | batch | T | default LR | s / run |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for wa in analyses:
        w, d = WORKLOADS[wa.workload], WORKLOADS[wa.workload].data()
        params = sum(p.numel() for p in w.model(0).parameters())
        wall = wa.summary(wa.cosine)["wall"]
        lines.append(
            f"| {wa.workload} | {w.description} | {w.family} (wd {w.weight_decay:g}) | {params:,} | "
            f"{d.train_x.shape[0]} / {d.val_x.shape[0]} | {w.batch_size} | {wa.budget} | {w.default_lr:g} | "
            f"{wall:.1f} |"
        )
    return lines


def _keys(analyses: Sequence[WorkloadAnalysis]) -> list[tuple[str, str]]:
    seen: dict[tuple[str, str], None] = {}
    for wa in analyses:
        for r in wa.rows:
            seen[(r.kind, r.method)] = None
    return sorted(seen, key=lambda k: ("tuner", "lr-free", "tuned", "default").index(k[0]))


def _pick(wa: WorkloadAnalysis, key: str) -> Row | None:
    if key == "best":
        return wa.best
    kind, method = key.split(":")
    return wa.row(kind, method)


def aggregate_table(analyses: Sequence[WorkloadAnalysis]) -> list[str]:
    """Ratios to the tuned cosine pooled over workloads x seeds, stratified bootstrap by workload."""
    lines = [
        "| method | workloads | IQM ratio to tuned cosine [95% CI] | verdict | P(better than tuned cosine) |",
        "|---|---|---|---|---|",
    ]
    entries: list[tuple[str, list[list[float]], list[float]]] = [
        ("best tuned schedule (per workload)", [wa.ratio(wa.best) for wa in analyses], [])
    ]
    for kind, method in _keys(analyses):
        groups = [wa.ratio(r) for wa in analyses if (r := wa.row(kind, method)) is not None]
        label = {"tuned": f"{method} (tuned)", "default": f"{method} @ default"}.get(kind, method)
        entries.append((label, groups, []))
    for label, groups, _ in entries:
        pooled = [x for g in groups for x in g]
        ci = stratified_bootstrap_ci(groups)
        p = float(np.mean([1.0 if x < 1 else 0.5 if x == 1 else 0.0 for x in pooled])) if pooled else math.nan
        lines.append(
            f"| {label} | {len(groups)} | {_f(iqm(pooled), 3)} {_ci(ci)} | "
            f"{verdict(ci, min((len(g) for g in groups), default=0))} | {p:.2f} |"
        )
    return lines


def defaults_matrix(analyses: Sequence[WorkloadAnalysis], tuner: str = "lrpilot") -> list[str]:
    """Is the tuner better than every method run once at its default LR? Per workload, paired."""
    rivals = [k for k in _keys(analyses) if k[0] in ("default", "lr-free")]
    head = " | ".join(f"{m} @ default" if k == "default" else m for k, m in rivals)
    lines = [f"| workload | {head} |", "|---" * (len(rivals) + 1) + "|"]
    for wa in analyses:
        ours = wa.row("tuner", tuner)
        if ours is None:
            continue
        cells = []
        for kind, method in rivals:
            other = wa.row(kind, method)
            if other is None:
                cells.append("—")
                continue
            ratio = wa.ratio(ours, other)
            ci = bootstrap_ci(ratio)
            cells.append(f"{verdict(ci, len(ratio))} ({_f(iqm(ratio), 3)})")
        lines.append(f"| {wa.workload} | {' | '.join(cells)} |")
    return lines


def plot(wa: WorkloadAnalysis, out: Path) -> None:
    """LR schedule (seed 0) and median validation loss over seeds against consumed steps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_lr, ax_val) = plt.subplots(1, 2, figsize=(12, 4.2))
    drawn: set[int] = set()
    for key in PLOTTED:
        row = _pick(wa, key)
        if row is None or id(row) in drawn:
            continue
        drawn.add(id(row))
        label = row.label + (f" {row.peak_lr:g}" if row.peak_lr is not None else "")
        lrs = [x if x is not None and x > 0 else math.nan for x in row.runs[0]["lrs"]]
        width = 2.0 if row.kind == "tuner" else 1.0
        ax_lr.plot(range(len(lrs)), lrs, label=label, lw=width)
        steps = [p[0] for p in row.runs[0]["curve"]]
        vals = [[p[1] if p[1] is not None else math.nan for p in r["curve"]] for r in row.runs]
        n = min(len(v) for v in vals)
        ax_val.plot(steps[:n], np.nanmedian(np.array([v[:n] for v in vals]), axis=0), label=label, lw=width)
    ax_lr.set(
        yscale="log", xlabel="steps consumed", ylabel="learning rate", title=f"{wa.workload}: LR (seed 0)"
    )
    ax_val.set(
        yscale="log",
        xlabel="steps consumed",
        ylabel="validation loss",
        title=f"{wa.workload}: validation loss (median of {wa.seeds} seeds)",
    )
    ax_val.axhline(wa.cosine.iqm, color="grey", ls=":", lw=0.8)
    ax_lr.legend(fontsize=7)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    plt.close(fig)


def write_report(
    analyses: Sequence[WorkloadAnalysis],
    path: Path,
    *,
    seeds: int,
    quick: bool,
    notes: Sequence[str],
    overhead: dict[str, Any] | None,
    wall_s: float,
    lrpilot: Sequence[str] = (),
) -> None:
    """Write the markdown report and the plots next to it (plots under <dir>/bench/)."""
    lines = [
        "# lrpilot benchmarks",
        "",
        "Generated by `lrpilot bench --report` (`python -m bench.cli --report`); do not edit by hand.",
        f"{'QUICK MODE (machinery check, not quality). ' if quick else ''}{seeds} seed(s) per method, paired "
        f"(same init and batch order per seed); {len(analyses)} workloads; runs not in the cache took "
        f"{wall_s / 60:.1f} min of wall time.",
        "",
        "## How to read this",
        "",
        "- Every step a method trains is charged: lrpilot's search candidates and re-runs after a restore "
        "are part of its T steps; grid-tuned schedules are charged the whole grid (steps charged / seed).",
        "- Losses are final validation losses (held-out split; the test split is never used). A diverged run "
        "counts as the untrained model's loss. IQM = interquartile mean over seeds; intervals are percentile "
        f"bootstraps over seeds (stratified by workload in the aggregate); {seeds} seeds make them coarse.",
        "- ratio = loss / tuned cosine's loss on the same seed (< 1 is better); P(better) = share of seeds "
        "where the method beats the tuned cosine. A verdict 'better'/'worse' needs the whole interval on "
        "one side of 1.",
        "- Steps to target: consumed steps until the validation loss first reaches the tuned cosine's final "
        "loss on that seed (median over seeds; resolution = the evaluation interval, T/20).",
        "- Tuned grid points are chosen on the same validation loss that is reported, which flatters them.",
        "- Validation curves show the model each method holds at that consumed step; for the tuners that is "
        "the model after any restore, so lrpilot's curve stays near its start during its first search.",
        *(f"- {n}" for n in notes),
        "",
        "## Workloads",
        "",
        *workloads_table(analyses),
        "",
        "s / run: IQM wall time of one tuned-cosine run on one CPU thread, evaluations included, with "
        "two runs in parallel on a shared 2-core machine.",
        "",
        "## lrpilot, untuned: every workload, worst first",
        "",
        "lrpilot with its one wide default range [1e-6, 1] and a validation function (the held-out loss the "
        "grid baselines are selected on). Collapses: final validation loss at or above 90% of the untrained "
        "model's. Kept share: the share of the T steps in the final model's lineage (the range test, losing "
        "tries and rewound stages are not). LR choice x search cost x shape = the ratio to the best tuned "
        "schedule (bench/decompose.py): the best tuned shape at lrpilot's held LR against its grid optimum; "
        "the same with only the kept steps; and what lrpilot's own schedule adds. lrpilot ends with the best "
        "model it measured (keep_best), which on small data can be an early one: its kept share is then "
        "small, and the search cost and shape factors carry that early stop between them. The column "
        "\"/ tuned cosine's best checkpoint\" compares with the lowest point of the tuned cosine's own "
        "validation curve (every T/20 steps), as if it had kept its best model too.",
        "",
        *(lrpilot or ["(not computed in quick mode)"]),
        "",
        "## Aggregate (all workloads)",
        "",
        *aggregate_table(analyses),
        "",
        "## lrpilot against every method at its default LR (ratio lrpilot / method, IQM over seeds)",
        "",
        *defaults_matrix(analyses),
        "",
        "## Per workload",
        "",
    ]
    for wa in analyses:
        lines += workload_table(wa)
        plot(wa, path.parent / "bench" / f"{wa.workload}.png")
    lines += ["## Service speed", "", *speed_lines(overhead, analyses), ""]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))
