"""Plan the runs (grids x schedules x seeds, LR-free methods, tuners), cache them, run them in a pool.

Why a cache keyed by (workload, method, peak LR, seed, budget): a full report is about a thousand
runs on two shared cores; an interrupted report must resume where it stopped, and the untuned
"textbook default" runs are the grid's centre point, so they are the same runs and cost nothing.
Why a process pool of spawned workers with one torch thread each: runs are tiny, so two
independent runs use two cores far better than one run with two threads.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import itertools
import json
import math
import sys
import time
import traceback
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from bench.methods import LR_FREE, TUNERS, RunSpec, is_tuner, train, tuner_method
from bench.schedules import SCHEDULES
from bench.workloads import WORKLOADS

RESULTS_DIR = Path(__file__).resolve().parent / "results"
CACHE_VERSION = "v1"  # bump when the training loop or a workload changes meaning


def tuner_available() -> str | None:
    """None when ``lrpilot.Tuner`` imports, else why not (the report then says so)."""
    try:
        from lrpilot import Tuner  # noqa: F401
    except Exception as exc:  # the client may not have landed yet
        return f"{type(exc).__name__}: {exc}"
    return None


def plan(workloads: Sequence[str], seeds: int, quick: bool, with_tuners: bool = True) -> list[RunSpec]:
    """Every run a report needs, each once (the default-LR runs coincide with grid points)."""
    specs: list[RunSpec] = []
    for name in workloads:
        w = WORKLOADS[name]
        budget = w.budget(quick)
        others = (*LR_FREE, *TUNERS) if with_tuners else LR_FREE
        for seed in range(seeds):
            # tuners first: they are the slowest and the least predictable, so start them early
            specs += [RunSpec(name, m, None, seed, budget) for m in others[::-1]]
            lrs = [*w.grid(quick), w.default_lr]  # the default is normally a grid point (deduplicated)
            specs += [RunSpec(name, s, lr, seed, budget) for s in SCHEDULES for lr in lrs]
    return list(dict.fromkeys(specs))


@functools.cache
def lrpilot_fingerprint() -> str:
    """Short hash of the lrpilot client and service sources.

    Tuner results depend on engine code that changes far more often than the baselines, so their
    cache entries carry this hash: a changed engine is retrained, never reported from stale runs.
    """
    root = Path(__file__).resolve().parent.parent
    digest = hashlib.sha1()
    for base in (root / "client" / "lrpilot", root / "service" / "lrpilot_service"):
        for path in sorted(base.rglob("*.py")):
            digest.update(str(path.relative_to(root)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:10]


def cache_path(spec: RunSpec) -> Path:
    suffix = f"__{lrpilot_fingerprint()}" if is_tuner(spec.method) else ""
    return RESULTS_DIR / CACHE_VERSION / spec.workload / f"{spec.key()}{suffix}.json"


def load_cached(spec: RunSpec) -> dict[str, Any] | None:
    path = cache_path(spec)
    if not path.exists():
        return None
    try:
        result: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return result


def _store(spec: RunSpec, result: dict[str, Any]) -> None:
    """Write atomically (rename), so a killed report never leaves a half-written result."""
    path = cache_path(spec)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(_json_safe(result)))
    tmp.replace(path)


def _json_safe(value: Any) -> Any:
    """NaN/inf become None: plain JSON, and a missing number reads as 'diverged' downstream."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def run_one(spec: RunSpec) -> dict[str, Any]:
    """Train one run in this process; failures become a record (never lose the whole report)."""
    method = tuner_method(spec.method)
    try:
        with method.patched() if method is not None else contextlib.nullcontext():
            return train(WORKLOADS[spec.workload], spec)
    except Exception:
        return {"spec": spec.__dict__, "error": traceback.format_exc()}


def run_all(
    specs: Iterable[RunSpec],
    jobs: int = 2,
    use_cache: bool = True,
    rerun: Sequence[str] = (),
    verbose: bool = True,
) -> dict[RunSpec, dict[str, Any]]:
    """Results for every spec, from the cache where possible, else trained (in a pool if jobs > 1)."""
    results: dict[RunSpec, dict[str, Any]] = {}
    todo: list[RunSpec] = []
    for spec in specs:
        cached = load_cached(spec) if use_cache and spec.method not in rerun else None
        if cached is not None:
            results[spec] = cached
        else:
            todo.append(spec)
    if verbose and todo:
        print(f"bench: {len(results)} cached, {len(todo)} to run on {jobs} worker(s)", file=sys.stderr)
    start, done = time.perf_counter(), 0

    def finish(spec: RunSpec, result: dict[str, Any]) -> None:
        nonlocal done
        done += 1
        results[spec] = _json_safe(result)
        if "error" not in result and use_cache:
            _store(spec, result)
        if verbose:
            status = (
                "FAILED"
                if "error" in result
                else f"val {result['final_val_loss']!s:.8} {result['wall_s']:.1f}s"
            )
            lr = "" if spec.peak_lr is None else f" lr={spec.peak_lr:g}"
            elapsed = time.perf_counter() - start
            print(
                f"[{done}/{len(todo)} {elapsed:.0f}s] {spec.workload} {spec.method}{lr} "
                f"s{spec.seed}: {status}",
                file=sys.stderr,
            )

    if jobs <= 1:
        for spec in todo:
            finish(spec, run_one(spec))
    elif todo:
        with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn")) as pool:
            futures = {pool.submit(run_one, spec): spec for spec in todo}
            for future in as_completed(futures):
                finish(futures[future], future.result())
    return results


def check(specs: Sequence[RunSpec], results: dict[RunSpec, dict[str, Any]]) -> list[str]:
    """Machinery checks of quick mode: every run finished, curves and accounting are consistent.

    Not quality: these catch a loop that skips steps, a curve out of order, a tuner that consumed
    more or fewer than T steps, or a method that silently failed.
    """
    problems: list[str] = []
    for spec in specs:
        r = results.get(spec)
        name = spec.key()
        if r is None or "error" in r:
            tail = (r or {}).get("error", "no result").strip().splitlines()[-1:]
            problems.append(f"{name}: did not run ({' '.join(tail)})")
            continue
        steps = [p[0] for p in r["curve"]]
        if steps[0] != 0 or steps[-1] != spec.budget or any(b <= a for a, b in itertools.pairwise(steps)):
            problems.append(f"{name}: curve steps not increasing from 0 to T: {steps}")
        if r["steps_consumed"] != spec.budget:
            problems.append(f"{name}: consumed {r['steps_consumed']} steps, budget {spec.budget}")
        trained = r["steps_trained"]
        if len(r["lrs"]) != trained or (r["stopped_at"] is None and trained != spec.budget):
            problems.append(
                f"{name}: trained {trained} steps, recorded {len(r['lrs'])} LRs, budget {spec.budget}"
            )
        if is_tuner(spec.method):
            share = r.get("search_share")
            if share is None or not 0.0 <= share <= 1.0:
                problems.append(f"{name}: search share {share!r} not in [0, 1]")
            if r["stopped_at"] is not None:
                problems.append(f"{name}: a tuner run stopped early at {r['stopped_at']}")
    return problems
