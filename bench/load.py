"""``lrpilot bench --load``: N simulated jobs (no torch) posting windows to 1 and 2 workers on PostgreSQL.

Each job is created over HTTP with a bearer token (ten jobs per tenant), then posts the windows
its decisions ask for, with losses from a noisy synthetic curve whose best LR is known, at a fixed
offered rate (``--rate`` windows/s in all, spread evenly over the jobs: an open loop, so the
latencies are those a training job would see, not those of a queue the benchmark made itself);
``--rate 0`` posts as fast as answers come (a closed loop: the service's saturation throughput).
A 429 or 503 is waited out as its ``Retry-After`` says, and counted.

It prints decisions/s, p50/p95/p99 per decision kind (what the engine had to do), 429s, 503s, other
5xx and client timeouts, then checks the database: one decision per (job, window), windows and
steps without gaps, every decision a client received equal to the stored one. Loopback only,
bounded in time (``--duration`` per run), and every database it creates is dropped.

    lrpilot bench --load                         200 jobs, 200 windows/s, 1 then 2 workers, 30 s each
    lrpilot bench --load --rate 0 --workers 2     saturation throughput of 2 workers
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import random
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from lrpilot.cli.server_process import ServerProcess
from lrpilot.protocol import Decision, JobCreate, TunerConfig, WindowReport

ADMIN_URL = os.environ.get("LRPILOT_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
JOBS_PER_TENANT = 10
REQUEST_TIMEOUT_S = 10.0
#: A 100k-step job. Jobs start with warmups spread over ``--spread`` steps, so that, as on a real
#: cluster, they are at different points of their lives: most windows plain, some searching.
CONFIG = TunerConfig(total_steps=100_000, candidates=6, lr_min=1e-4, lr_max=1.0)


def config_for(index: int, spread: int) -> TunerConfig:
    warmup = random.Random(index).randrange(0, spread + 1, CONFIG.window_max) if spread else 0
    return CONFIG.model_copy(update={"warmup_steps": warmup})


KINDS = ("plain", "try", "try-end", "stage-end", "stage-start", "other", "create")


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="lrpilot bench --load", description=__doc__.split("\n")[0])
    p.add_argument("--jobs", type=int, default=200)
    p.add_argument("--workers", default="1,2", help="comma list of worker counts, one run each")
    p.add_argument("--rate", type=float, default=200.0, help="offered windows/s in all; 0: closed loop")
    p.add_argument("--duration", type=float, default=30.0, help="seconds of load per run")
    p.add_argument(
        "--spread", type=int, default=40_000, help="warmups of 0..SPREAD steps (0: all search first)"
    )
    p.add_argument("--no-auth", action="store_true", help="serve without tokens (tenant header instead)")
    p.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment of the service only (e.g. PYTHONPATH of another checkout, to compare)",
    )
    p.add_argument("--admin-url", default=ADMIN_URL, help="PostgreSQL database to create the test one from")
    return p.parse_args(argv)


@dataclass
class Results:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: Counter[int] = field(default_factory=Counter)
    timeouts: int = 0
    connection_errors: int = 0
    throttled: int = 0
    received: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)
    decisions: int = 0
    all_decisions: int = 0
    measure_from: float = 0.0
    cpu_s: dict[str, float] = field(default_factory=dict)


def kind_of(before: Decision, after: Decision) -> str:
    """What the engine had to do for a report: a plain window, a try's step, a try's end, a stage's end."""
    if before.phase == "search":
        if after.phase == "search":
            return "try" if after.candidate == before.candidate else "try-end"
        return "stage-end"
    if after.phase == "search":
        return "stage-start"
    return "plain" if after.phase == before.phase else "other"


def losses_for(decision: Decision, rng: random.Random) -> list[float]:
    """A noisy decaying curve whose level is lowest near lr = 1e-2 (so the search has a right answer)."""
    level = 0.2 * (math.log10(decision.lr) + 2.0) ** 2
    return [
        2.0 / (1.0 + 0.002 * (decision.start_step + i)) + level + 0.01 * rng.random()
        for i in range(decision.steps)
    ]


async def post(
    client: httpx.AsyncClient, results: Results, method: str, path: str, body: str, headers: dict[str, str]
) -> httpx.Response | None:
    """One request, retried after a 429/503 as its Retry-After says; None after a timeout."""
    while True:
        try:
            response = await client.request(method, path, content=body, headers=headers)
        except httpx.TimeoutException:
            results.timeouts += 1
            return None
        except httpx.TransportError:
            results.connection_errors += 1
            return None
        results.statuses[response.status_code] += 1
        if response.status_code not in (429, 503):
            return response
        results.throttled += 1
        await asyncio.sleep(float(response.headers.get("retry-after", "1")))


async def run_job(
    client: httpx.AsyncClient,
    index: int,
    token: str | None,
    config: TunerConfig,
    period: float,
    stop_at: float,
    results: Results,
) -> None:
    name = f"load-{index}"
    headers = {"content-type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    else:
        headers["X-Lrpilot-Tenant"] = f"tenant-{index // JOBS_PER_TENANT}"
    rng = random.Random(index)
    await asyncio.sleep(rng.random() * period)  # spread the jobs over one period
    started = time.perf_counter()
    response = await post(
        client, results, "POST", "/v1/jobs", JobCreate(name=name, config=config).model_dump_json(), headers
    )
    if response is None or response.status_code >= 400:
        return
    results.latencies["create"].append(time.perf_counter() - started)
    decision = Decision.model_validate(response.json()["decision"])
    next_at = time.perf_counter() + period
    while decision.action != "done" and time.perf_counter() < stop_at:
        if period:
            await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
            next_at += period
        report = WindowReport(start_step=decision.start_step, losses=losses_for(decision, rng))
        started = time.perf_counter()
        response = await post(
            client,
            results,
            "POST",
            f"/v1/jobs/{name}/windows/{decision.window}",
            report.model_dump_json(),
            headers,
        )
        if response is None or response.status_code >= 400:
            return
        after = Decision.model_validate_json(response.content)
        if results.measure_from <= time.perf_counter() <= stop_at:  # inside the measured interval
            results.latencies[kind_of(decision, after)].append(time.perf_counter() - started)
            results.decisions += 1
        results.received[(name, after.window)] = after.model_dump(mode="json")
        results.all_decisions += 1
        decision = after


async def load(url: str, tokens: list[str | None], args: argparse.Namespace) -> Results:
    """Run every job until the measured interval (after one period of ramp-up) is over."""
    results = Results()
    period = args.jobs / args.rate if args.rate > 0 else 0.0
    limits = httpx.Limits(max_connections=args.jobs, max_keepalive_connections=args.jobs)
    async with httpx.AsyncClient(base_url=url, timeout=REQUEST_TIMEOUT_S, limits=limits) as client:
        results.measure_from = time.perf_counter() + max(period, 1.0)
        stop_at = results.measure_from + args.duration
        jobs = (
            run_job(
                client, i, tokens[i // JOBS_PER_TENANT], config_for(i, args.spread), period, stop_at, results
            )
            for i in range(args.jobs)
        )
        await asyncio.gather(*jobs)
    return results


_DUPLICATES = """SELECT count(*) FROM (SELECT job_id, window_index FROM decisions
    GROUP BY 1, 2 HAVING count(*) > 1) d"""
_WINDOW_GAPS = """SELECT count(*) FROM (SELECT job_id FROM decisions
    GROUP BY 1 HAVING max(window_index) + 1 <> count(*)) g"""
_STEP_GAPS = """SELECT count(*) FROM jobs j LEFT JOIN
    (SELECT job_id, count(*) AS n, max(step) AS top FROM observations GROUP BY 1) o ON o.job_id = j.id
    WHERE coalesce(o.n, 0) <> j.steps_reported OR coalesce(o.top + 1, 0) <> coalesce(o.n, 0)"""
_STORED = "SELECT j.name, d.window_index, d.decision FROM decisions d JOIN jobs j ON j.id = d.job_id"
TABLES = ("jobs", "job_states", "observations", "decisions")


def _cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of these processes so far (Linux /proc), in seconds."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rpartition(")")[2].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def _processes() -> list[tuple[int, int, str]]:
    """(pid, parent pid, command name) of every process."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    head, _, tail = stat.read().rpartition(")")
            except OSError:
                continue
            found.append((int(entry), int(tail.split()[1]), head.partition("(")[2]))
    return found


def cpu_snapshot(server_pid: int) -> dict[str, float]:
    """CPU seconds of the service (its process and its workers) and of every PostgreSQL process."""
    processes = _processes()
    family = {server_pid}
    for _ in range(3):  # the supervisor's workers, and theirs
        family |= {pid for pid, parent, _ in processes if parent in family}
    postgres = [pid for pid, _, name in processes if name == "postgres"]
    return {"service": _cpu_seconds(sorted(family)), "postgres": _cpu_seconds(postgres)}


def check_database(database_url: str, received: dict[tuple[str, int], dict[str, Any]]) -> dict[str, int]:
    """Duplicates, gaps, decisions that differ from what a client was told, and table sizes."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            counts = {
                "duplicates": connection.execute(text(_DUPLICATES)).scalar_one(),
                "window gaps": connection.execute(text(_WINDOW_GAPS)).scalar_one(),
                "step gaps": connection.execute(text(_STEP_GAPS)).scalar_one(),
            }
            stored = {
                (name, window): decision for name, window, decision in connection.execute(text(_STORED))
            }
            for table in TABLES:
                if connection.execute(text(f"SELECT to_regclass('{table}')")).scalar_one() is not None:
                    size = connection.execute(text(f"SELECT pg_total_relation_size('{table}')")).scalar_one()
                    counts[f"{table} KiB"] = size // 1024
    finally:
        engine.dispose()
    counts["differing from the client's"] = sum(
        1 for key, value in received.items() if stored.get(key) != value
    )
    return counts


@contextmanager
def fresh_database(admin_url: str) -> Iterator[str]:
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    name = f"lrpilot_load_{uuid.uuid4().hex[:12]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def make_tokens(database_url: str, tenants: int) -> list[str | None]:
    """One token per tenant of ten jobs, written to the database directly (as an operator would)."""
    from lrpilot_service.store import open_repository

    repository = open_repository(database_url, pool_size=1)
    try:
        return [repository.access.create_token(f"tenant-{i}", label="bench").token for i in range(tenants)]
    finally:
        repository.close()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def report(workers: int, args: argparse.Namespace, results: Results, checks: dict[str, int]) -> None:
    offered = "closed loop" if args.rate <= 0 else f"{args.rate:g} windows/s offered"
    server_errors = sum(n for status, n in results.statuses.items() if status >= 500 and status != 503)
    print(f"\n{workers} worker(s), {args.jobs} jobs, {offered}, {args.duration:g}s:")
    print(f"  decisions/s {results.decisions / args.duration:.1f}   ({results.decisions} decisions)")
    print(f"  {'kind':12s} {'count':>7s} {'p50 ms':>8s} {'p95 ms':>8s} {'p99 ms':>8s}")
    for kind in KINDS:
        values = results.latencies.get(kind, [])
        if values:
            p50, p95, p99 = (percentile(values, q) * 1e3 for q in (0.5, 0.95, 0.99))
            print(f"  {kind:12s} {len(values):7d} {p50:8.1f} {p95:8.1f} {p99:8.1f}")
    statuses = results.statuses
    print(f"  429: {statuses.get(429, 0)}   503: {statuses.get(503, 0)}   other 5xx: {server_errors}", end="")
    print(f"   timeouts: {results.timeouts}   connection errors: {results.connection_errors}", end="")
    print(f"   statuses: {dict(sorted(statuses.items()))}")
    print("  database: " + ", ".join(f"{name} {value}" for name, value in checks.items()))
    if results.all_decisions:
        per = {name: seconds / results.all_decisions * 1e3 for name, seconds in results.cpu_s.items()}
        print(
            f"  CPU per decision ({results.all_decisions}, ramp-up too): service {per['service']:.1f} ms, "
            f"PostgreSQL {per['postgres']:.1f} ms (every postgres process: an upper bound); load average "
            f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
        )


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    failed = False
    for workers in [int(w) for w in args.workers.split(",")]:
        with fresh_database(args.admin_url) as database_url:
            tenants = math.ceil(args.jobs / JOBS_PER_TENANT)
            tokens: list[str | None] = (
                [None] * tenants if args.no_auth else make_tokens(database_url, tenants)
            )
            env = {"LRPILOT_AUTH": "off" if args.no_auth else "required"}
            env.update(item.split("=", 1) for item in args.server_env)
            with ServerProcess(database_url, workers=workers, env=env) as server:
                assert server.process is not None
                before = cpu_snapshot(server.process.pid)
                results = asyncio.run(load(server.url, tokens, args))
                after = cpu_snapshot(server.process.pid)
                results.cpu_s = {name: after[name] - before[name] for name in after}
            checks = check_database(database_url, results.received)
            report(workers, args, results, checks)
            server_errors = sum(
                n for status, n in results.statuses.items() if status >= 500 and status != 503
            )
            failed |= bool(
                server_errors or checks["duplicates"] or checks["window gaps"] or checks["step gaps"]
            )
            failed |= bool(checks["differing from the client's"])
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
