"""One maximal report (10,000 steps of loss, gradient norm, LR and validation loss: ~0.9 MB), four
at once, and a junk body at the size limit keep a real service's memory within a stated bound.

Before the caps, one 2 MB report of 1e6 losses took the service from 151 MB to 2,035 MB for 11-21 s.
The bound checked here is the growth of the process's peak resident set (VmHWM) over its peak
after start-up and a first decision: at most BOUND_MB.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import httpx

from lrpilot.bounds import MAX_REPORT_STEPS
from lrpilot.cli.server_process import ServerProcess
from lrpilot_service.api.settings import DEFAULT_MAX_BODY_BYTES

BOUND_MB = 100
CONFIG = {
    "total_steps": 10_000_000,
    "warmup_steps": 5_000_000,
    "window_max": MAX_REPORT_STEPS,
    "probe": "none",
}


def peak_mb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) // 1024
    raise AssertionError("no VmHWM in /proc")


def maximal_report(client: httpx.Client, job: str) -> tuple[int, int]:
    """Create ``job``, then post its first window in full: every optional field, 10,000 steps."""
    decision = client.post("/v1/jobs", json={"name": job, "config": CONFIG}).json()["decision"]
    n, start = decision["steps"], decision["start_step"]
    assert n == MAX_REPORT_STEPS
    body = {
        "start_step": start,
        "losses": [1.2345678901234567 + i * 1e-9 for i in range(n)],
        "grad_norms": [0.1234567890123456] * n,
        "lrs": [1.23456789012345e-4] * n,
        "val_losses": {str(start + i): 2.345678901234567 for i in range(n)},
    }
    raw = json.dumps(body)
    response = client.post(
        f"/v1/jobs/{job}/windows/0", content=raw, headers={"content-type": "application/json"}
    )
    return response.status_code, len(raw)


def test_maximal_reports_keep_the_service_within_its_memory_bound(tmp_path: Path) -> None:
    with ServerProcess(f"sqlite:///{tmp_path / 'memory.db'}") as server:
        assert server.process is not None
        pid = server.process.pid
        client = httpx.Client(base_url=server.url, timeout=60)
        client.post("/v1/jobs", json={"name": "warm", "config": CONFIG})
        baseline = peak_mb(pid)
        status, size = maximal_report(client, "one")
        assert status == 200 and size > 800_000
        one = peak_mb(pid) - baseline
        results: list[int] = []
        threads = [
            threading.Thread(target=lambda i=i: results.append(maximal_report(client, f"four-{i}")[0]))
            for i in range(4)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert results == [200] * 4
        junk = ("[" + ",".join(["1"] * DEFAULT_MAX_BODY_BYTES))[: DEFAULT_MAX_BODY_BYTES - 1]
        refused = client.post(
            "/v1/jobs/one/windows/1", content=junk, headers={"content-type": "application/json"}
        )
        assert refused.status_code == 422
        assert client.get("/v1/jobs/one/schedule").status_code == 200  # one page of 10,000 steps
        growth = peak_mb(pid) - baseline
    print(f"peak RSS {baseline} MB after start-up; +{one} MB for one maximal report, +{growth} MB for all")
    assert growth <= BOUND_MB, f"the service's peak memory grew by {growth} MB (bound {BOUND_MB} MB)"
