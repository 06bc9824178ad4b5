"""The dashboard at ``/`` and ``/jobs/{job}``, and ``/docs``: served offline, scoped to the caller's tenant.

The browser test drives Debian's Chromium (headless, through playwright) against a real
``lrpilot serve`` process: it opens the page of a job the test is running, checks that the page
refreshes while the job runs, that the plotted series are exactly the API's schedule, that the
diverged candidate is marked, and saves a screenshot to docs/img/dashboard.png.
"""

from __future__ import annotations

import os
import shutil
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from lrpilot import Tuner
from lrpilot.cli.server_process import ServerProcess

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("LRPILOT_CHROMIUM", "/usr/bin/chromium")
CONFIG = {"total_steps": 90, "candidates": 3, "lr_min": 1e-3, "lr_max": 1.0}


class Simulated:
    """A loss that converges for small LRs and explodes above 0.2; restores bring back the snapshot's."""

    def __init__(self) -> None:
        self.loss = self.snapshot = 3.0

    def train(self, tuner: Tuner, step: int) -> None:
        decision = tuner.decision
        if decision.start_step == step and decision.action == "snapshot":
            self.snapshot = self.loss
        elif decision.start_step == step and decision.action == "restore":
            self.loss = self.snapshot
        lr = tuner.lr
        self.loss = self.loss * (1 - 0.5 * min(lr, 0.3)) + 0.02 if lr < 0.2 else self.loss * 4
        tuner.next_lr(step, self.loss)


def test_pages_and_assets_are_served_without_a_cdn(api_client: TestClient) -> None:
    for page in ("/", "/jobs/some-job"):
        response = api_client.get(page)
        assert response.status_code == 200 and "/static/dashboard.js" in response.text
    vendor = "/static/vendor"
    assets = ["/static/dashboard.js", f"{vendor}/uplot/uPlot.iife.min.js"]
    for asset in [
        *assets,
        f"{vendor}/swagger-ui/swagger-ui-bundle.js",
        f"{vendor}/swagger-ui/swagger-ui.css",
    ]:
        assert api_client.get(asset).status_code == 200, asset
    docs = api_client.get("/docs").text
    assert "/static/vendor/swagger-ui/swagger-ui-bundle.js" in docs and "cdn" not in docs.lower()
    assert 'credentials: "same-origin"' in api_client.get("/static/dashboard.js").text


def test_job_summaries_are_the_callers_tenant_only(api_client: TestClient) -> None:
    api_client.post("/v1/jobs", json={"name": "mine", "config": CONFIG}, headers={"X-Lrpilot-Tenant": "a"})
    decision = api_client.post("/v1/jobs", json={"name": "theirs", "config": CONFIG}).json()["decision"]
    report = {"start_step": 0, "losses": [2.0] * (decision["steps"] - 1) + ["NaN"]}
    api_client.post("/v1/jobs/theirs/windows/0", json=report)
    [summary] = api_client.get("/v1/dashboard/jobs", headers={"X-Lrpilot-Tenant": "a"}).json()
    assert summary["job"]["name"] == "mine" and summary["last_loss"] is None and summary["last_step"] is None
    [other] = api_client.get("/v1/dashboard/jobs").json()
    assert other["job"]["name"] == "theirs" and other["last_step"] == decision["steps"] - 1
    assert other["last_loss"] == "NaN"


@pytest.fixture
def browser() -> Any:
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium; .ci/run installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


def test_dashboard_in_chromium_plots_the_api_schedule(browser: Any, tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        server = ServerProcess(f"sqlite:///{tmp_path / 'dash.db'}", log_path=tmp_path / "server.log").start()
    try:
        tuner = Tuner("dash-demo", url=server.url, **CONFIG)
        model, step = Simulated(), 0
        while step < 40:
            model.train(tuner, step)
            step += 1
        page = browser.new_page(viewport={"width": 1100, "height": 1500})
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on("requestfailed", lambda request: errors.append(f"failed: {request.url}"))
        page.goto(f"{server.url}/")
        page.wait_for_selector("a[href='/jobs/dash-demo']")
        assert "running" in page.inner_text("main")
        page.click("a[href='/jobs/dash-demo']")
        page.wait_for_function("window.lrpilot.plotted.job !== undefined")
        first = page.evaluate("window.lrpilot.refreshes")
        while not tuner.done:  # the job goes on while the page is open
            model.train(tuner, step)
            step += 1
        tuner.close()
        page.wait_for_function("window.lrpilot.plotted.job.job.status === 'done'", timeout=15_000)
        assert page.evaluate("window.lrpilot.refreshes") > first
        schedule = httpx.get(f"{server.url}/v1/jobs/dash-demo/schedule").json()
        plotted = page.evaluate("(c => ({lr: c.lr.plot.data, loss: c.loss.plot.data}))(lrpilot.charts)")
        steps = schedule["steps"]
        assert plotted["lr"][0] == [s["step"] for s in steps] == list(range(CONFIG["total_steps"]))
        assert plotted["lr"][1] == [s["lr"] for s in steps]
        assert plotted["loss"][1] == [s["loss"] for s in steps]
        diverged = [
            f for stage in schedule["stages"] for f in stage["candidates"] if f["method"] == "diverged"
        ]
        assert (
            diverged and sum(v is not None for v in plotted["lr"][3]) > 0
        )  # diverged tries marked on the chart
        text = page.inner_text("main")
        assert "✗ diverged" in text and "✓ chosen" in text
        assert schedule["stages"][0]["reason"] in text
        assert errors == []
        page.screenshot(path=str(ROOT / "docs" / "img" / "dashboard.png"), full_page=True)
    finally:
        server.stop()
