"""What lrpilot costs a training loop: ``python -m bench.overhead``.

Two numbers matter. Per step, :meth:`Tuner.next_lr` between window boundaries (pure client
arithmetic, no I/O): measured in nanoseconds with a scripted transport whose window never ends.
Per window, the HTTP round trip to a real local ``lrpilot serve`` (SQLite, loopback): measured on
a whole job driven by a synthetic loss (engine work included: search windows fit forecasts and a
GP) and on idempotent retries of decided windows (HTTP + database only). Only one job runs at a
time, so these are latencies of an idle service, not of a loaded one. The benchmark report
quotes :func:`measure`; :func:`measure_step_times` compares real training steps with and without
the tuner.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lrpilot.cli.server_process import ServerProcess
from lrpilot.protocol import Decision, JobCreate, JobView, Schedule, WindowReport
from lrpilot.testing import ScriptedTransport, Window
from lrpilot.transport import HttpTransport, Transport
from lrpilot.tuner import Tuner

if TYPE_CHECKING:
    from bench.analysis import WorkloadAnalysis


class _Groups:
    def __init__(self, groups: int) -> None:
        self.param_groups = [{"lr": 0.0} for _ in range(groups)]


def next_lr_ns(calls: int = 200_000, repeats: int = 7, *, ramp: bool, groups: int) -> float:
    """Median ns per next_lr call inside one long window."""
    end = 0.5 if ramp else 0.1
    transport = ScriptedTransport([Window(10**9, 0.1, end)])
    optimizer = _Groups(groups) if groups else None
    tuner = Tuner("bench", transport=transport, optimizer=optimizer, retry_deadline_s=0)
    samples = []
    step = 0
    for _ in range(repeats):
        started = time.perf_counter_ns()
        for _ in range(calls):
            tuner.next_lr(step, 0.5)
            step += 1
        samples.append((time.perf_counter_ns() - started) / calls)
    assert transport.network_calls == 1  # the attach: nothing between boundaries
    return statistics.median(samples)


class _Timed:
    """Times every report_window call of the transport it wraps."""

    def __init__(self, inner: HttpTransport) -> None:
        self.inner = inner
        self.seconds: list[float] = []
        self.posted: dict[int, WindowReport] = {}

    def create_or_attach(self, body: JobCreate) -> JobView:
        return self.inner.create_or_attach(body)

    def report_window(self, name: str, window: int, report: WindowReport) -> Decision:
        self.posted[window] = report
        started = time.perf_counter()
        try:
            return self.inner.report_window(name, window, report)
        finally:
            self.seconds.append(time.perf_counter() - started)

    def schedule(self, name: str) -> Schedule:
        return self.inner.schedule(name)

    def close(self) -> None:
        self.inner.close()


@dataclass
class HttpFigures:
    window_s: list[float]  # per window over a whole job
    retry_s: list[float]  # per idempotent retry of a decided window
    loop_s: float  # the whole loop: next_lr calls and window posts
    steps: int


def http_round_trips(total_steps: int, retries: int) -> HttpFigures:
    """Round trips against a fresh local ``lrpilot serve`` (SQLite), driven by a synthetic loss."""
    with (
        tempfile.TemporaryDirectory() as folder,
        ServerProcess(f"sqlite:///{Path(folder) / 'b.db'}") as server,
    ):
        timed = _Timed(HttpTransport(server.url))
        transport: Transport = timed
        tuner = Tuner("bench", transport=transport, lr_min=1e-3, lr_max=1.0, total_steps=total_steps)
        weight, step = 3.0, 0
        started = time.perf_counter()
        while not tuner.done:
            loss = 0.5 * weight * weight
            weight -= tuner.lr * weight
            tuner.next_lr(step, loss)
            step += 1
        loop_s = time.perf_counter() - started
        job_times = list(timed.seconds)
        retry_times = []
        posted = sorted(timed.posted.items())
        for i in range(retries):
            window, report = posted[i % len(posted)]
            started = time.perf_counter()
            timed.inner.report_window("bench", window, report)
            retry_times.append(time.perf_counter() - started)
        tuner.close()
        return HttpFigures(job_times, retry_times, loop_s, step)


def measure(total_steps: int = 5000, calls: int = 200_000, retries: int = 200) -> dict[str, Any]:
    """The figures the benchmark report quotes, as a flat dict."""
    http = http_round_trips(total_steps, retries)
    lat = np.array(http.window_s) * 1e3
    return {
        "source": "bench.overhead (lrpilot serve subprocess, SQLite, loopback HTTP)",
        "next_lr hot path median (ns), constant window": round(next_lr_ns(calls, ramp=False, groups=0)),
        "next_lr hot path median (ns), linear window, 2 param groups": round(
            next_lr_ns(calls, ramp=True, groups=2)
        ),
        "windows measured": len(lat),
        "window decision latency median (ms)": round(float(np.median(lat)), 2),
        "window decision latency p90 (ms)": round(float(np.quantile(lat, 0.9)), 2),
        "window decision latency p99 (ms)": round(float(np.quantile(lat, 0.99)), 2),
        "window decision latency max (ms)": round(float(lat.max()), 2),
        "idempotent retry round trip median (ms)": round(1e3 * float(np.median(http.retry_s)), 2),
        "next_lr_us_per_step": round(1e6 * http.loop_s / max(http.steps, 1), 2),  # window posts included
        "steps timed": http.steps,
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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.overhead", description=__doc__)
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--total-steps", type=int, default=5000)
    parser.add_argument("--retries", type=int, default=200)
    parser.add_argument("--skip-http", action="store_true")
    args = parser.parse_args(argv)
    for ramp, groups, label in (
        (False, 0, "constant window, no optimizer"),
        (True, 2, "linear window, 2 groups"),
    ):
        ns = next_lr_ns(args.calls, ramp=ramp, groups=groups)
        print(f"next_lr between boundaries ({label}): median {ns:.0f} ns/call")
    if not args.skip_http:
        http = http_round_trips(args.total_steps, args.retries)
        ms, retry = sorted(1e3 * s for s in http.window_s), http.retry_s
        p90 = ms[int(0.9 * (len(ms) - 1))]
        print(
            f"HTTP round trip per window, whole job ({len(ms)} windows, engine work included): "
            f"median {statistics.median(ms):.1f} ms, p90 {p90:.1f} ms, max {ms[-1]:.1f} ms"
        )
        print(
            f"HTTP round trip per window, idempotent retry ({len(retry)} posts, HTTP + database only): "
            f"median {1e3 * statistics.median(retry):.2f} ms"
        )
        per_step_us = 1e6 * http.loop_s / http.steps
        print(
            f"amortised over the job ({http.steps} steps, posts included): {per_step_us:.1f} us per next_lr"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
