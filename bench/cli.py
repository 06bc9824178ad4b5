"""``lrpilot bench``: run the benchmark suite, check its machinery, write the report.

    lrpilot bench --quick                 one seed, short budgets, 3-point grids: machinery checks
    lrpilot bench --report                5 seeds, full budgets: docs/benchmarks.md + docs/bench/*.png
    lrpilot bench --report --seeds 3 --workloads digits_mlp,char_lm --jobs 2

Runs are cached under bench/results/, so an interrupted report resumes; ``--rerun lrpilot,autolrs``
retrains chosen methods after the engine changed (their cached results would be stale).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from bench.analysis import WorkloadAnalysis, analyse
from bench.decompose import Decomposition, decompose, extra_specs
from bench.methods import RunSpec
from bench.report import write_report
from bench.runner import RESULTS_DIR, check, lrpilot_fingerprint, plan, run_all, tuner_available
from bench.summary import MAIN, lrpilot_section
from bench.workloads import WORKLOADS

ROOT = Path(__file__).resolve().parent.parent
REPORT = ROOT / "docs" / "benchmarks.md"
QUICK_REPORT = RESULTS_DIR / "quick" / "benchmarks.md"
OVERHEAD = RESULTS_DIR / "overhead.json"


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="lrpilot bench", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="machinery check: 1 seed, short budgets, small grids")
    p.add_argument("--report", action="store_true", help="write the markdown report and plots")
    p.add_argument("--seeds", type=int, default=None, help="seeds per method (default 5; quick: 1)")
    p.add_argument("--workloads", default=",".join(WORKLOADS), help=f"comma list of {', '.join(WORKLOADS)}")
    p.add_argument("--jobs", type=int, default=2, help="worker processes (one torch thread each)")
    p.add_argument(
        "--methods",
        default="",
        help="comma list of methods to run and report (default: all); e.g. cosine,wsd,lrpilot,lrpilot-own",
    )
    p.add_argument("--rerun", default="", help="comma list of methods whose cached results are ignored")
    p.add_argument("--no-cache", action="store_true", help="neither read nor write bench/results/")
    p.add_argument("--out", type=Path, default=None, help="report path (default docs/benchmarks.md)")
    p.add_argument("--no-overhead", action="store_true", help="skip the HTTP service speed measurement")
    return p.parse_args(argv)


def overhead(now: bool, workloads: list[str]) -> dict[str, Any] | None:
    """Service speed figures: measured now (a real `lrpilot serve`) or the last cached ones."""
    if now:
        try:
            from bench.overhead import measure, measure_step_times

            figures = measure()
            figures["step_times"] = measure_step_times(workloads)
            OVERHEAD.parent.mkdir(parents=True, exist_ok=True)
            OVERHEAD.write_text(json.dumps(figures, indent=1))
            return figures
        except Exception as exc:
            print(f"bench: overhead measurement failed: {exc}", file=sys.stderr)
    if OVERHEAD.exists():
        cached: dict[str, Any] = json.loads(OVERHEAD.read_text())
        return cached
    return None


def decompositions(
    analyses: list[WorkloadAnalysis], results: dict[RunSpec, dict[str, Any]], jobs: int, cache: bool
) -> dict[str, Decomposition | None]:
    """Run the best tuned shape at lrpilot's LR (whole budget, and lrpilot's kept steps), decompose."""
    per_workload = {}
    for wa in analyses:
        row = wa.row("tuner", MAIN)
        if row is not None:
            per_workload[wa.workload] = (wa, dict(enumerate(row.runs)))
    extra = [s for wa, runs in per_workload.values() for s in extra_specs(wa.workload, wa.best.method, runs)]
    done = run_all(extra, jobs=jobs, use_cache=cache)
    return {
        name: decompose(name, wa.best.method, wa.best.scores, runs, done)
        for name, (wa, runs) in per_workload.items()
    }


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status (1 when a machinery check fails)."""
    if argv is not None and "--load" in argv:  # the service load benchmark: bench/load.py
        from bench.load import main as load_main

        return load_main([arg for arg in argv if arg != "--load"])
    args = parse(argv)
    names = [n.strip() for n in args.workloads.split(",") if n.strip()]
    unknown = [n for n in names if n not in WORKLOADS]
    if unknown:
        print(f"bench: unknown workload(s) {unknown}; choose from {list(WORKLOADS)}", file=sys.stderr)
        return 2
    seeds = args.seeds or (1 if args.quick else 5)
    notes: list[str] = []
    missing_tuner = tuner_available()
    if missing_tuner:
        notes.append(f"lrpilot could not be imported ({missing_tuner}): its rows are missing.")
        print(f"bench: lrpilot.Tuner unavailable ({missing_tuner}); running baselines only", file=sys.stderr)
    else:
        notes.append(f"lrpilot source fingerprint {lrpilot_fingerprint()} (client + service).")
    specs = plan(names, seeds, args.quick, with_tuners=missing_tuner is None)
    if args.methods:
        chosen = {m.strip() for m in args.methods.split(",") if m.strip()}
        known = {s.method for s in specs}
        if chosen - known:
            print(
                f"bench: unknown method(s) {sorted(chosen - known)}; choose from {sorted(known)}",
                file=sys.stderr,
            )
            return 2
        specs = [s for s in specs if s.method in chosen]
        notes.append(f"Methods run: {', '.join(sorted(chosen))} (a subset: `--methods`).")
    start = time.perf_counter()
    results = run_all(specs, jobs=args.jobs, use_cache=not args.no_cache, rerun=args.rerun.split(","))
    elapsed = time.perf_counter() - start
    problems = check(specs, results)
    for line in problems:
        print(f"CHECK FAILED: {line}", file=sys.stderr)
    n_methods = len({s.method for s in specs})
    print(
        f"bench: {len(specs)} runs ({n_methods} methods x {len(names)} workloads x {seeds} seed(s)) in "
        f"{elapsed:.0f}s; machinery checks: {'OK' if not problems else f'{len(problems)} FAILED'}"
    )
    analyses = [analyse(results, n, seeds, args.quick) for n in names]
    if args.methods:  # methods left out on purpose are not "missing"
        ran = {s.method for s in specs}
        for wa in analyses:
            wa.missing = [key for key in wa.missing if key.split("__")[1] in ran]
    for wa in analyses:
        print(
            f"  {wa.workload:14s} T={wa.budget:5d}  tuned cosine {wa.cosine.iqm:.4f}  best {wa.best.label} "
            f"{wa.best.iqm:.4f}",
            end="",
        )
        for name in ("lrpilot", "lrpilot-own", "lrpilot-train", "autolrs", "schedulefree", "prodigy"):
            row = wa.row("tuner", name) or wa.row("lr-free", name)
            if row is not None:
                print(f"  {name} {row.iqm:.4f}", end="")
        print()
    if args.report:
        out = args.out or (QUICK_REPORT if args.quick else REPORT)
        speed = overhead(not args.quick and not args.no_overhead, names)
        parts = {} if args.quick else decompositions(analyses, results, args.jobs, not args.no_cache)
        write_report(
            analyses,
            out,
            seeds=seeds,
            quick=args.quick,
            notes=notes,
            overhead=speed,
            wall_s=elapsed,
            lrpilot=lrpilot_section(analyses, parts),
        )
        print(f"bench: wrote {out} and plots under {out.parent / 'bench'}")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
