"""The embedded transport: the store called in-process, failing exactly as the HTTP API does."""

from __future__ import annotations

from pathlib import Path

import pytest

from lrpilot import (
    JobConflictError,
    JobNotFoundError,
    ReportRejectedError,
    WindowConflictError,
    embedded_transport,
)
from lrpilot.protocol import JobCreate, TunerConfig, WindowReport


def test_embedded_transport_maps_store_errors(tmp_path: Path) -> None:
    embedded = embedded_transport(f"sqlite:///{tmp_path / 'e.db'}", tenant="t")
    view = embedded.create_or_attach(JobCreate(name="job", config=TunerConfig(total_steps=100)))
    again = embedded.create_or_attach(JobCreate(name="job", config=TunerConfig(total_steps=100)))
    assert again.decision == view.decision
    with pytest.raises(JobConflictError):
        embedded.create_or_attach(JobCreate(name="job", config=TunerConfig(total_steps=200)))
    with pytest.raises(JobNotFoundError):
        embedded.schedule("nope")
    d = view.decision
    with pytest.raises(WindowConflictError) as conflict:
        embedded.report_window("job", d.window + 5, WindowReport(start_step=0, losses=[1.0]))
    assert conflict.value.expected_window == d.window
    with pytest.raises(ReportRejectedError):
        embedded.report_window("job", d.window, WindowReport(start_step=d.start_step + 1, losses=[1.0]))
    assert [job.name for job in embedded.list_jobs()] == ["job"]
    embedded.close()
