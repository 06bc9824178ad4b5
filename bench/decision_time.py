"""How long one engine decision takes: ``advance`` at the end of a stage's 10th try.

That call is the most expensive one the engine makes: a forecast fit, then a GP fit on 10 points
and the posterior-mean choice of the stage's LR. Run: ``python -m bench.decision_time``.
"""

from __future__ import annotations

import argparse
import statistics
import time

from lrpilot.protocol import TunerConfig, WindowReport
from lrpilot_service.engine import advance
from lrpilot_service.engine.state import State


def state_before_last_try(config: TunerConfig) -> tuple[State, WindowReport]:
    """Drive a job to its 10th try and return the state plus that try's report."""
    state, decision = advance(config, None, None)
    while True:
        losses = [
            2.0 / (1 + 0.02 * (decision.start_step + i)) + 0.3 * decision.lr for i in range(decision.steps)
        ]
        report = WindowReport(start_step=decision.start_step, losses=losses)
        if decision.phase == "search" and decision.candidate == config.candidates - 1:
            return state, report
        state, decision = advance(config, state, report)


def measure(calls: int) -> list[float]:
    config = TunerConfig(total_steps=20_000, candidates=10, lr_min=1e-5, lr_max=1.0)
    state, report = state_before_last_try(config)
    advance(config, state, report)  # warm-up: imports, first-call caches
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        _, decision = advance(config, state, report)
        times.append(time.perf_counter() - start)
    assert decision.phase == "exploit", decision.reason
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=50)
    args = parser.parse_args(argv)
    times = sorted(measure(args.calls))
    p90 = times[int(0.9 * (len(times) - 1))]
    print(f"advance() ending a 10-try stage (forecast + GP fit on 10 points + choice), {len(times)} calls:")
    print(
        f"  median {statistics.median(times) * 1e3:.1f} ms   p90 {p90 * 1e3:.1f} ms"
        f"   max {times[-1] * 1e3:.1f} ms"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
