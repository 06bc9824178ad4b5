"""Prometheus metrics in the text exposition format, hand-written to avoid a dependency.

Counters live in the process: with several uvicorn workers each worker reports its own, which is
what Prometheus expects from a scrape target per process. Job counts come from the database, so
they are the same whichever worker answers.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Mapping

from starlette.types import ASGIApp, Message, Receive, Scope, Send

DECISION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """Request counts by (method, route, status) and a histogram of decision latency."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: Counter[tuple[str, str, int]] = Counter()
        self._buckets = [0] * len(DECISION_BUCKETS)
        self._decisions = 0
        self._decision_seconds = 0.0

    def count_request(self, method: str, route: str, status: int) -> None:
        with self._lock:
            self._requests[(method, route, status)] += 1

    def observe_decision(self, seconds: float) -> None:
        with self._lock:
            self._decisions += 1
            self._decision_seconds += seconds
            for index, bound in enumerate(DECISION_BUCKETS):
                if seconds <= bound:
                    self._buckets[index] += 1

    def render(self, jobs_by_status: Mapping[str, int]) -> str:
        """The exposition text; ``jobs_by_status`` is read from the database by the caller."""
        with self._lock:
            requests = sorted(self._requests.items())
            buckets, count, total = list(self._buckets), self._decisions, self._decision_seconds
        lines = [
            "# HELP lrpilot_http_requests_total HTTP requests by method, route template and status.",
            "# TYPE lrpilot_http_requests_total counter",
        ]
        for (method, route, status), value in requests:
            labels = _labels(method=method, route=route, status=str(status))
            lines.append(f"lrpilot_http_requests_total{labels} {value}")
        lines += [
            "# HELP lrpilot_decision_seconds Report-to-decision time (lock, engine, commit).",
            "# TYPE lrpilot_decision_seconds histogram",
        ]
        for bound, value in zip(DECISION_BUCKETS, buckets, strict=True):
            lines.append(f'lrpilot_decision_seconds_bucket{{le="{bound}"}} {value}')
        lines += [
            f'lrpilot_decision_seconds_bucket{{le="+Inf"}} {count}',
            f"lrpilot_decision_seconds_sum {total}",
            f"lrpilot_decision_seconds_count {count}",
            "# HELP lrpilot_jobs Jobs in the database by status.",
            "# TYPE lrpilot_jobs gauge",
        ]
        for job_status in sorted({"running", "done", *jobs_by_status}):
            lines.append(f"lrpilot_jobs{_labels(status=job_status)} {jobs_by_status.get(job_status, 0)}")
        return "\n".join(lines) + "\n"


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


def _labels(**labels: str) -> str:
    return "{" + ",".join(f'{key}="{_escape(value)}"' for key, value in labels.items()) + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
