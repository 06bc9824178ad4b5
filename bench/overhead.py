"""Service speed: window-decision latency over HTTP and the per-step cost of ``next_lr``.

Why a real ``lrpilot serve`` subprocess on a loopback port: the number users care about is what
one training process pays, serialisation, HTTP, the database write and the engine included. If the
client engineer's ``lrpilot.bench_overhead`` exists, its measurement is used instead (one source).
Synthetic losses drive the job, so the figures do not depend on any model. Only one job runs at a
time, so these are latencies of an idle service, not of a loaded one.
"""

from __future__ import annotations

import importlib
import math
import tempfile
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from bench.analysis import WorkloadAnalysis

TOTAL_STEPS = 20_000  # the engine plans full-size stages, as for a real run of that length


def _loss(step: int) -> float:
    """A plausible decreasing, noisy training loss (deterministic)."""
    return 2.0 / (1.0 + 0.002 * step) + 0.05 * math.sin(1.7 * step) ** 2


def measure_overhead(steps: int = 6_000, total_steps: int = TOTAL_STEPS) -> dict[str, Any]:
    """Median/p99 window latency over HTTP and ``next_lr`` cost per step (hot path and amortised)."""
    try:
        ext = importlib.import_module("lrpilot.bench_overhead")
    except ImportError:
        ext = None
    if ext is not None and hasattr(ext, "http_round_trips") and hasattr(ext, "next_lr_ns"):
        return _from_client_module(ext, total_steps=5_000)
    from lrpilot import HttpTransport, Tuner
    from lrpilot.server_process import ServerProcess

    with (
        tempfile.TemporaryDirectory(prefix="lrpilot-overhead-") as tmp,
        ServerProcess(f"sqlite:///{tmp}/overhead.db") as server,
    ):
        transport = HttpTransport(server.url)
        latencies: list[float] = []
        original = transport.report_window

        def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                latencies.append(time.perf_counter() - t0)

        transport.report_window = timed  # type: ignore[method-assign]
        tuner = Tuner(job="overhead", url=server.url, total_steps=total_steps, transport=transport)
        per_step: list[float] = []
        t_all = time.perf_counter()
        for step in range(steps):
            t0 = time.perf_counter()
            tuner.next_lr(step, _loss(step))
            per_step.append(time.perf_counter() - t0)
        total = time.perf_counter() - t_all
        tuner.close()
    lat = np.array(latencies) * 1e3
    hot = np.array(per_step) * 1e6
    boundary = len(latencies)
    return {
        "source": "bench.overhead (lrpilot serve subprocess, SQLite, loopback HTTP)",
        "windows measured": boundary,
        "window decision latency median (ms)": round(float(np.median(lat)), 2) if boundary else None,
        "window decision latency p90 (ms)": round(float(np.quantile(lat, 0.9)), 2) if boundary else None,
        "window decision latency p99 (ms)": round(float(np.quantile(lat, 0.99)), 2) if boundary else None,
        "window decision latency max (ms)": round(float(lat.max()), 2) if boundary else None,
        "next_lr hot path median (us)": round(float(np.median(hot)), 2),
        "next_lr_us_per_step": round(1e6 * total / steps, 2),  # amortised: window posts included
        "steps timed": steps,
    }


def measure_step_times(workloads: Sequence[str]) -> dict[str, dict[str, float]]:
    """Per workload, ms per training step for cosine and for embedded lrpilot, back to back.

    The benchmark runs themselves are timed under whatever load the shared machine had at the
    time; comparing two of them taken an hour apart measured the neighbours, not lrpilot. Here
    both run in this process one after the other (seed 0, evaluations excluded).
    """
    from bench.methods import RunSpec, train
    from bench.workloads import WORKLOADS

    times: dict[str, dict[str, float]] = {}
    for name in workloads:
        w = WORKLOADS[name]
        runs = {
            m: train(w, RunSpec(name, m, w.default_lr if m == "cosine" else None, 0, w.total_steps))
            for m in ("cosine", "lrpilot", "cosine")  # cosine twice: the second one is warm
        }
        times[name] = {m: round(float(r["step_ms"]), 4) for m, r in runs.items()}
    return times


def _from_client_module(ext: Any, total_steps: int) -> dict[str, Any]:
    """The client engineer's measurement functions, summarised with the p99 the report needs."""
    http = ext.http_round_trips(total_steps, 200)
    lat = np.array(http.window_s) * 1e3
    return {
        "source": "lrpilot.bench_overhead (lrpilot serve subprocess, SQLite, loopback HTTP)",
        "windows measured": len(lat),
        "window decision latency median (ms)": round(float(np.median(lat)), 2),
        "window decision latency p90 (ms)": round(float(np.quantile(lat, 0.9)), 2),
        "window decision latency p99 (ms)": round(float(np.quantile(lat, 0.99)), 2),
        "window decision latency max (ms)": round(float(lat.max()), 2),
        "idempotent retry round trip median (ms)": round(1e3 * float(np.median(http.retry_s)), 2),
        "next_lr hot path median (ns)": round(ext.next_lr_ns(200_000, ramp=False, groups=1)),
        "next_lr_us_per_step": round(1e6 * http.loop_s / max(http.steps, 1), 2),  # window posts included
        "steps timed": http.steps,
    }


def speed_lines(overhead: dict[str, Any] | None, analyses: Sequence[WorkloadAnalysis]) -> list[str]:
    """The report's speed section: HTTP figures, and lrpilot's cost against each workload's step."""
    if not overhead:
        return ["HTTP figures not measured for this report (full `--report` without `--no-overhead`)."]
    lines = [f"- {k}: {v}" for k, v in overhead.items() if not isinstance(v, dict | list)]
    lines += [
        "",
        "One synthetic job against an idle `lrpilot serve` on loopback; with a few dozen windows the p99 is "
        "close to the maximum. `next_lr_us_per_step` is the whole loop's time per step (window posts and "
        "engine decisions included) divided by its steps; the hot path is the cost between windows.",
    ]
    per_step_us = overhead.get("next_lr_us_per_step")
    times: dict[str, dict[str, float]] = overhead.get("step_times") or {}
    if not times:
        return lines
    lines += [
        "",
        "| workload | ms / step, cosine | ms / step, lrpilot embedded | embedded overhead | "
        "amortised HTTP next_lr / step |",
        "|---|---|---|---|---|",
    ]
    for wa in analyses:
        t = times.get(wa.workload)
        if not t:
            continue
        base, ours = t["cosine"], t["lrpilot"]
        share = f"{per_step_us / 1e3 / base:.1%}" if per_step_us else "—"
        lines.append(f"| {wa.workload} | {base:.3f} | {ours:.3f} | {(ours - base) / base:+.0%} | {share} |")
    lines += [
        "",
        "Step times: seed 0 of cosine and of lrpilot (embedded mode), run back to back in one process on "
        "one thread, evaluations excluded. The embedded overhead includes snapshots, restores, SQLite "
        "writes and the engine's decisions in-process; on millisecond steps the decisions dominate it.",
    ]
    return lines


if __name__ == "__main__":
    for key, value in measure_overhead().items():
        print(f"{key}: {value}")
