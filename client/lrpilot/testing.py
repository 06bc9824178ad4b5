"""Test doubles for training loops that use lrpilot: no service, no database, no engine.

Like ``httpx.MockTransport``, :class:`ScriptedTransport` stands in for the real transport and
keeps the real contract: it plays a fixed plan of windows (contiguous start steps, at most the
planned number of losses, idempotent retries, 409 for an unexpected window), records every call
and report, and can be told to fail or stall. Use it to test that a training loop applies the
tuner's LRs, snapshots and restores, and survives an outage::

    from lrpilot import Tuner
    from lrpilot.testing import ScriptedTransport, Window, outage

    transport = ScriptedTransport([Window(10, 0.1, action="snapshot"), Window(10, 0.3, action="restore")])
    tuner = Tuner("test-job", transport=transport, model=model, optimizer=optimizer)
    ...  # run the loop; then inspect transport.reports, transport.calls

:func:`make_decision` builds a single :class:`~lrpilot.protocol.Decision` with neutral defaults.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from lrpilot.errors import ReportRejectedError, ServiceUnavailableError, WindowConflictError
from lrpilot.protocol import (
    Action,
    Decision,
    JobCreate,
    JobStatusUpdate,
    JobView,
    Keep,
    Phase,
    Schedule,
    ScheduleStep,
    TunerConfig,
    WindowReport,
)


def make_decision(**fields: Any) -> Decision:
    """A Decision with neutral defaults (window 0, step 0, one step at LR 0.1, exploit), then ``fields``."""
    values: dict[str, Any] = {
        "window": 0, "start_step": 0, "steps": 1, "lr": 0.1, "action": "continue", "phase": "exploit",
        "stage": 0, "reason": "",
    }  # fmt: skip
    values.update(fields)
    values.setdefault("lr_end", values["lr"])
    return Decision(**values)


@dataclass(frozen=True)
class Window:
    """One planned window; ``lr_end`` defaults to ``lr`` (constant)."""

    steps: int
    lr: float
    lr_end: float | None = None
    action: Action = "continue"
    phase: Phase = "exploit"
    stage: int = 0
    max_loss: float | None = None
    eval_at: tuple[int, ...] = ()  # offsets inside the window
    keep: Keep | None = None  # the best model's slot: save before the action, load after it


@dataclass
class ScriptedTransport:
    """Plays ``plan`` window by window, then ``done``; ``fail(call)`` may return an error to raise."""

    plan: Sequence[Window]
    fail: Callable[[str], BaseException | None] | None = None
    delay_s: float = 0.0
    calls: list[str] = field(default_factory=list)
    reports: dict[int, WindowReport] = field(default_factory=dict)
    decisions: list[Decision] = field(default_factory=list)
    config: TunerConfig | None = None
    status: str | None = None  # what the client last said with set_status
    end_keep: Keep | None = None  # the final ("done") decision's keep

    def create_or_attach(self, body: JobCreate) -> JobView:
        self._enter("create_or_attach")
        self.config = self.config or body.config
        if not self.decisions:
            self.decisions.append(self._decision(0, 0))
        return self._view(body.name)

    def _view(self, name: str) -> JobView:
        now = datetime.now(UTC)
        done = self.decisions[-1].action == "done"
        return JobView(
            name=name,
            tenant="default",
            status="failed" if self.status == "failed" else "done" if done else "running",
            config=self.config or TunerConfig(),
            decision=self.decisions[-1],
            steps_reported=self.decisions[-1].start_step,
            created_at=now,
            updated_at=now,
        )

    def report_window(self, name: str, window: int, report: WindowReport) -> Decision:
        self._enter("report_window")
        if window < len(self.decisions) - 1:
            return self.decisions[window + 1]  # a retry of a decided window: the stored answer
        current = self.decisions[-1]
        if window != current.window:
            raise WindowConflictError(f"expected window {current.window}", expected_window=current.window)
        if report.start_step != current.start_step or not 0 < len(report.losses) <= current.steps:
            raise ReportRejectedError(
                f"bad report for window {window}: {report.start_step}, {len(report.losses)}"
            )
        self.reports[window] = report
        self.decisions.append(self._decision(window + 1, report.start_step + len(report.losses)))
        return self.decisions[-1]

    def schedule(self, name: str) -> Schedule:
        self._enter("schedule")
        steps = [
            ScheduleStep(step=r.start_step + i, lr=lr, loss=loss, window=w, phase="exploit", stage=0)
            for w, r in sorted(self.reports.items())
            for i, (lr, loss) in enumerate(zip(r.lrs or [], r.losses, strict=True))
        ]
        return Schedule(job=name, steps=steps, stages=[], search_share=0.0)

    def set_status(self, name: str, update: JobStatusUpdate) -> JobView:
        self._enter("set_status")
        self.status = update.status
        if not self.decisions:
            self.decisions.append(self._decision(0, 0))
        return self._view(name)

    def close(self) -> None:
        self.calls.append("close")

    @property
    def network_calls(self) -> int:
        return sum(call != "close" for call in self.calls)

    def _enter(self, call: str) -> None:
        self.calls.append(call)
        if self.delay_s:
            time.sleep(self.delay_s)
        error = self.fail(call) if self.fail is not None else None
        if error is not None:
            raise error

    def _decision(self, index: int, start: int) -> Decision:
        if index >= len(self.plan):
            last = self.plan[-1].lr if self.plan else 0.1
            return make_decision(
                job="job", window=index, start_step=start, steps=0, lr=last, action="done", phase="done",
                stage=-1, reason="plan finished", keep=self.end_keep,
            )  # fmt: skip
        w = self.plan[index]
        return make_decision(
            job="job", window=index, start_step=start, steps=w.steps, lr=w.lr,
            lr_end=w.lr if w.lr_end is None else w.lr_end, action=w.action, phase=w.phase,
            stage=w.stage, reason=f"window {index}", max_loss=w.max_loss,
            eval_at=[start + offset for offset in w.eval_at], keep=w.keep,
        )  # fmt: skip


def outage(
    calls: int, error: type[Exception] = ServiceUnavailableError
) -> Callable[[str], BaseException | None]:
    """A ``fail`` hook: the first ``calls`` calls after the first window's report fail."""
    state = {"seen": 0, "failed": 0}

    def hook(call: str) -> BaseException | None:
        if call == "report_window":
            state["seen"] += 1
        if state["seen"] >= 2 and state["failed"] < calls:
            state["failed"] += 1
            return error("service down")
        return None

    return hook
