"""/metrics of a 2-worker `lrpilot serve`: every scrape shows the totals of both workers.

Each request goes on a new connection, so the kernel spreads them over the two uvicorn worker
processes; with per-process counters a scrape showed one worker's share at random.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from lrpilot.cli.server_process import ServerProcess

CONFIG = {"total_steps": 400, "candidates": 2, "search": "space_filling"}
WINDOW_ROUTE = "/v1/jobs/{job}/windows/{window}"


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_two_workers_scrape_the_same_totals(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LRPILOT_WORKERS", "2")
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    reports = 0
    with ServerProcess(f"sqlite:///{tmp_path / 'm.db'}", log_path=tmp_path / "server.log") as server:
        for job in ("a", "b", "c"):
            decision = httpx.post(f"{server.url}/v1/jobs", json={"name": job, "config": CONFIG}).json()[
                "decision"
            ]
            for window in range(4):
                report = {"start_step": decision["start_step"], "losses": [1.0 + window] * decision["steps"]}
                response = httpx.post(f"{server.url}/v1/jobs/{job}/windows/{window}", json=report)
                assert response.status_code == 200, response.text
                decision, reports = response.json(), reports + 1
        scrapes = [samples(httpx.get(f"{server.url}/metrics").text) for _ in range(12)]
    for scrape in scrapes:
        assert scrape[("lrpilot_http_requests_total", (("method", "POST"), ("route", WINDOW_ROUTE),
                                                       ("status", "200")))] == reports  # fmt: skip
        assert scrape[("lrpilot_http_requests_total", (("method", "POST"), ("route", "/v1/jobs"),
                                                       ("status", "201")))] == 3  # fmt: skip
        assert scrape[("lrpilot_decision_seconds_count", ())] == reports
        assert sum(v for (name, _), v in scrape.items() if name == "lrpilot_decisions_total") == reports
        assert scrape[("lrpilot_jobs", (("status", "active"),))] == 3
    decisions = {
        dict(labels)["phase"]: v
        for (name, labels), v in scrapes[0].items()
        if name == "lrpilot_decisions_total"
    }
    print(
        f"2 workers, {len(scrapes)} scrapes, each: {reports} window reports, decisions by phase {decisions}"
    )
