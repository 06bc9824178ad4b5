"""How long one engine decision takes, by kind: ``python -m bench.decision_time``.

Three kinds of ``advance`` call, each timed on the same stored state many times:

* ``plain``: an exploitation window's report (guards and bookkeeping only);
* ``try-end``: the report that ends a search try, which scores it and proposes the next LR
  (a GP fit and LogEI over 201 grid points: the "GP decision");
* ``stage-end``: the report of the stage's last try, which picks the stage's LR (a GP fit on all
  the stage's tries and the posterior mean at each).

The service adds its database work to these (see ``lrpilot bench --load``).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

from lrpilot.protocol import Decision, TunerConfig, WindowReport
from lrpilot_service.engine import State, advance

CONFIG = TunerConfig(total_steps=20_000, candidates=10, lr_min=1e-5, lr_max=1.0, probe="none", warmup_steps=0)


def _losses(d: Decision) -> list[float]:
    return [2.0 / (1 + 0.02 * (d.start_step + i)) + 0.3 * d.lr_at(d.start_step + i) for i in range(d.steps)]


def states_by_kind(config: TunerConfig) -> dict[str, tuple[State, WindowReport]]:
    """Drive a job until each kind of decision is next; keep its state and the report."""
    state, decision = advance(config, None, None)
    found: dict[str, tuple[State, WindowReport]] = {}
    while len(found) < 3 and decision.action != "done":
        report = WindowReport(start_step=decision.start_step, losses=_losses(decision))
        after_state, after = advance(config, state, report)
        kind = None
        if decision.phase == "search" and after.phase == "search" and after.candidate != decision.candidate:
            kind = "try-end" if after.candidate and after.candidate >= 3 else None
        elif decision.phase == "search" and after.phase == "exploit":
            kind = "stage-end"
        elif decision.phase == "exploit" and after.phase == "exploit":
            kind = "plain"
        if kind is not None and kind not in found:
            found[kind] = (state, report)
        state, decision = after_state, after
    return found


def timings(call: Callable[[], object], calls: int) -> list[float]:
    call()  # warm-up: imports, first-call caches
    out = []
    for _ in range(calls):
        start = time.perf_counter()
        call()
        out.append(time.perf_counter() - start)
    return sorted(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=200)
    args = parser.parse_args(argv)
    for kind, (state, report) in states_by_kind(CONFIG).items():

        def decide(state: State = state, report: WindowReport = report) -> object:
            return advance(CONFIG, state, report)

        times = timings(decide, args.calls)
        p90 = times[int(0.9 * (len(times) - 1))]
        print(
            f"{kind:10s} median {statistics.median(times) * 1e3:6.2f} ms   p90 {p90 * 1e3:6.2f} ms"
            f"   max {times[-1] * 1e3:6.2f} ms   ({len(times)} calls)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
