"""Prometheus metrics that are true whatever worker answers the scrape (prometheus_client).

``lrpilot serve`` runs uvicorn workers as separate processes. With per-process counters a scrape
reads one worker's share at random, so ``lrpilot serve`` turns on prometheus_client's
multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``, set by ``api/serve.py``): every
worker writes its samples to memory-mapped files in one directory and a scrape sums them all.
An app built without that variable (tests, the embedded mode) keeps its own registry.

Job counts (active, stale, done) are not counters at all: they are read from the database at
scrape time, so every worker reports the same numbers.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lrpilot.protocol import Decision, WindowReport
from lrpilot_service.store import JobRepository

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
DECISION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
#: A running job whose last report is older than this is counted as stale (heartbeats are reports).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Metrics:
    """The service's counters and histograms; ``render`` adds the database's job counts."""

    def __init__(self) -> None:
        self.multiprocess = bool(os.environ.get(MULTIPROC_ENV))
        # Multiprocess samples live in files, not in a registry: register nowhere, collect at scrape.
        self._registry = None if self.multiprocess else CollectorRegistry()
        registry = self._registry
        self.requests = Counter(
            "lrpilot_http_requests", "HTTP requests by method, route template and status.",
            ["method", "route", "status"], registry=registry,
        )  # fmt: skip
        self.decisions = Counter(
            "lrpilot_decisions",
            "Decisions returned for window reports, by phase.",
            ["phase"],
            registry=registry,
        )
        self.decision_seconds = Histogram(
            "lrpilot_decision_seconds", "Report-to-decision time (lock, engine, commit).",
            buckets=DECISION_BUCKETS, registry=registry,
        )  # fmt: skip
        self.gp_fit_seconds = Histogram(
            "lrpilot_gp_fit_seconds",
            "Time of the report calls that scored a search try (forecast, then the GP fit of the "
            "next proposal or of the stage's choice).",
            buckets=DECISION_BUCKETS, registry=registry,
        )  # fmt: skip
        self.fallback_windows = Counter(
            "lrpilot_client_fallback_windows",
            "Reported windows whose LRs were not the planned ones (a client replaying its fallback).",
            registry=registry,
        )
        self.fallback_steps = Counter(
            "lrpilot_client_fallback_steps", "Reported steps trained at a fallback LR.", registry=registry
        )

    def count_request(self, method: str, route: str, status: int) -> None:
        self.requests.labels(method, route, str(status)).inc()

    def observe_decision(self, seconds: float, decision: Decision | None = None) -> None:
        """One report answered in ``seconds``; a restore follows a scored search try (GP at work)."""
        self.decision_seconds.observe(seconds)
        if decision is not None:
            self.decisions.labels(decision.phase).inc()
            if decision.action == "restore":
                self.observe_gp_fit(seconds)

    def observe_gp_fit(self, seconds: float) -> None:
        """The hook for GP fit time (the engine is pure and keeps no clock: its caller times it)."""
        self.gp_fit_seconds.observe(seconds)

    def observe_report(self, planned: Decision, report: WindowReport) -> None:
        """Count the steps whose LR differs from the plan: the client trained them in fallback."""
        if report.lrs is None:
            return
        start = report.start_step
        off = sum(
            not math.isclose(lr, planned.lr_at(start + i), rel_tol=1e-9, abs_tol=1e-15)
            for i, lr in enumerate(report.lrs)
        )
        if off:
            self.fallback_windows.inc()
            self.fallback_steps.inc(off)

    def render(self, repository: JobRepository) -> bytes:
        """The exposition text of every worker's samples plus the database's job counts."""
        registry = CollectorRegistry()
        if self.multiprocess:
            from prometheus_client import multiprocess

            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        else:
            assert self._registry is not None
            registry.register(_Forward(self._registry))
        registry.register(JobCounts(repository))
        return generate_latest(registry)


class _Forward(Collector):
    """Collects another registry (the app's own, outside multiprocess mode)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def collect(self) -> Iterable[Metric]:
        return self.registry.collect()


class JobCounts(Collector):
    """Jobs by status, read from the database at scrape time (the same whichever worker answers).

    ``running`` jobs are reported as ``active``; a running job with no report for ``stale_after_s``
    is marked ``stale`` by the store's sweep (the database clock), so the two never overlap.
    """

    def __init__(self, repository: JobRepository) -> None:
        self.repository = repository

    def collect(self) -> Iterator[Metric]:
        counts = self.repository.job_counts()
        jobs = GaugeMetricFamily("lrpilot_jobs", "Jobs in the database by status.", labels=["status"])
        shown = {"active": counts.get("running", 0), **{k: v for k, v in counts.items() if k != "running"}}
        for name in sorted({"active", "stale", "done", "failed", *shown}):
            jobs.add_metric([name], shown.get(name, 0))
        yield jobs


class RequestMetrics:
    """ASGI middleware counting every HTTP response by its route *template* (bounded labels)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.count_request(scope["method"], route, status)
