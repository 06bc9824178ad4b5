"""The Tuner: one call per training step, one network round trip per window.

Between window boundaries :meth:`Tuner.next_lr` is a few list appends and a comparison, so it
can sit in the hottest loop. At a boundary it posts the window's report and applies the next
decision (snapshot, restore, new LR). The service is a helper, never a dependency of the run:
a failed post is retried for ``retry_deadline_s`` (a service restart is absorbed invisibly),
then the tuner falls back to a safe schedule, buffers every step, and replays the buffer as
ordinary window reports once the service answers again. How it reaches the service (the first
attach, knocking in the background, the replay, the spool of steps left at close) is
:class:`lrpilot.link.ServiceLink`; the schedule without it is :mod:`lrpilot.fallback`.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable
from types import TracebackType
from typing import Any, Literal, SupportsFloat

from lrpilot.config import make_config, starting_lr
from lrpilot.errors import WindowConflictError, WiringError
from lrpilot.fallback import FallbackPolicy, FallbackSchedule, placeholder_decision
from lrpilot.follower import DecisionFollower as DecisionFollower  # re-exported: integrations use it
from lrpilot.link import ServiceLink
from lrpilot.optim import apply_lr
from lrpilot.protocol import Decision, JobCreate, JobStatusUpdate, Schedule
from lrpilot.retry import NO_RETRY
from lrpilot.spool import Spool
from lrpilot.spool import spool_dir as resolve_spool_dir
from lrpilot.torch_state import BEST_LABEL, SnapshotStore, Stateful, make_snapshots
from lrpilot.transport import Transport, make_transport
from lrpilot.window import StepBuffer, guard_limits

log = logging.getLogger("lrpilot")

_SAFE_PHASES = frozenset({"warmup", "exploit", "anneal"})  # a search candidate's LR is never "safe"
_NEG_INF = -math.inf


def _scalar(value: Any) -> float:
    """float() of a Python number or a 0-dim tensor (detached: no autograd warning)."""
    detach = getattr(value, "detach", None)
    return float(detach() if detach is not None else value)


class Tuner(DecisionFollower):
    """Online LR tuning for one job; the pinned API is in the README and docs/architecture.md."""

    def __init__(
        self,
        job: str,
        url: str | None = None,
        lr_min: float | None = None,
        lr_max: float | None = None,
        total_steps: int | None = None,
        model: Stateful | None = None,
        optimizer: Any = None,
        *,
        tenant: str | None = None,
        token: str | None = None,
        snapshot_dir: str | os.PathLike[str] | None = None,
        spool_dir: str | os.PathLike[str] | None = None,
        val_fn: Callable[[], SupportsFloat] | None = None,
        transport: Transport | None = None,
        retry_deadline_s: float = 30.0,
        snapshots: SnapshotStore | None = None,
        best_snapshots: SnapshotStore | None = None,
        **config: Any,
    ) -> None:
        self.job = job
        if val_fn is not None:  # a validation function is there to be used: score LRs on it, and
            config.setdefault("objective", "val")  # end with the best model it measured
            config.setdefault("keep_best", config["objective"] == "val")
        self.config = make_config(lr_min, lr_max, total_steps, config)
        self._create = JobCreate(name=job, config=self.config)
        self.retry_deadline_s = retry_deadline_s
        self.fallback_policy = FallbackPolicy()
        self._model, self._optimizer, self._val_fn = model, optimizer, val_fn
        self._snapshots = snapshots if snapshots is not None else make_snapshots(snapshot_dir, job)
        self._best = (
            best_snapshots if best_snapshots is not None else make_snapshots(snapshot_dir, f"{job}.best")
        )
        # validation losses as this client measured them: of the model it holds at the last window's
        # end, and of the one in the best slot. A load must be backed by both (a save skipped in an
        # outage leaves an older model in the slot, which must not replace a better last one).
        self._held_val: float | None = None
        self._best_val: float | None = None
        self._closed = self._done = self._in_fallback = self._step_warned = self._attached = False
        self._safe_lr = starting_lr(self.config)  # until a warmup/exploit LR is known
        self._lr = self._safe_lr
        # The tuner's deadline loop is the only retry loop: the transport makes one attempt per call.
        self._transport: Transport = (
            transport if transport is not None else make_transport(url, tenant, token=token, retry=NO_RETRY)
        )
        where = getattr(self._transport, "url", None) or "embedded"
        spool = Spool(resolve_spool_dir(spool_dir, snapshot_dir), where, tenant, job)
        self._link = ServiceLink(self._transport, self._create, self.fallback_policy, spool, retry_deadline_s)
        try:
            view = self._link.attach()
            decision = None if view is None else self._link.replay_spool() or view.decision
        except BaseException:  # the service refused the job (bad config, conflict): the caller must fix it
            self._link.stop()
            if transport is None:
                self._transport.close()
            raise
        if decision is None:  # train anyway, on the fallback schedule; attach when the service shows up
            self._step = self._origin = 0
            self._buffer = StepBuffer(0)
            self._set_window(placeholder_decision(self._lr))
            self._in_fallback, self._fast = True, False
            self._start_fallback_schedule(0)
            return
        self._attached = True
        self._step = self._origin = decision.start_step
        self._buffer = StepBuffer(self._step)
        self._apply(decision)

    # -- the hot path ----------------------------------------------------------------------------

    def next_lr(self, step: int, loss: SupportsFloat, grad_norm: SupportsFloat | None = None) -> float:
        """Record the loss of the step just trained and return (and set) the LR of the next one."""
        value = loss if type(loss) is float else _scalar(loss)
        grad = None if grad_norm is None else _scalar(grad_norm)
        s = self._step
        if step != s and not self._step_warned:
            s = self._step_mismatch(step)
        self._step = s + 1
        if not self._fast:
            return self._slow_step(s, value, grad)
        buffer = self._buffer
        buffer.losses.append(value)
        buffer.grad_norms.append(grad)
        buffer.lrs.append(self._lr)
        if (
            len(buffer.losses) >= self._steps
            or not _NEG_INF < value <= self._loss_limit
            or (grad is not None and self._grad_limit is not None and not _NEG_INF < grad <= self._grad_limit)
        ):
            self._end_window()
        elif self._ramp:
            self._set_lr(self._lr0 + self._slope * (s + 1 - self._start) / self._steps)
        return self._lr

    def _slow_step(self, s: int, value: float, grad: float | None) -> float:
        """The same step when the window evaluates, the job is done, or the service is away."""
        if self._done:
            return self._lr
        buffer = self._buffer
        buffer.losses.append(value)
        buffer.grad_norms.append(grad)
        buffer.lrs.append(self._lr)
        if s in self._eval_at and self._val_fn is not None:
            buffer.val_losses[s] = float(self._val_fn())
        if self._in_fallback:
            self._set_lr(self._fallback.lr(self._step))
            if self._link.answered():
                self._recover()
            return self._lr
        if len(buffer.losses) >= self._steps or self._decision.should_stop(value, grad):
            self._end_window()
        elif self._ramp:
            self._set_lr(self._decision.lr_at(s + 1))
        return self._lr

    # -- public state ----------------------------------------------------------------------------

    @property
    def in_fallback(self) -> bool:
        return self._in_fallback

    @property
    def done(self) -> bool:
        return self._done

    @property
    def model(self) -> Stateful | None:
        return self._model

    @property
    def optimizer(self) -> Any:
        return self._optimizer

    def bind(self, model: Stateful | None, optimizer: Any) -> None:
        """Hand over model/optimizer late (framework callbacks); takes a snapshot still due now."""
        if model is None and optimizer is not None:
            raise WiringError.no_model("bind() got an optimizer but model=None")
        self._model, self._optimizer = model, optimizer
        d = self._decision
        if len(self._buffer) == 0 and d.start_step == self._step:
            if d.keep == "save":
                self._save_best()
            if d.action == "snapshot":
                self._snapshots.save(d.stage, self._step, model, optimizer)
        self._set_lr(self._lr)

    def schedule(self) -> Schedule:
        """The job's schedule as the service stored it (raises if the service is unreachable)."""
        return self._transport.schedule(self.job)

    def close(self, status: Literal["done", "failed"] | None = None, reason: str = "") -> None:
        """Report what is left (a short window is fine) and release the transport.

        The report is retried for ``retry_deadline_s`` (``fallback_policy.attach_wait_s`` if the
        service never answered in the whole run); if it is still away, the steps are saved to the
        spool (lrpilot.spool) and the next ``Tuner`` of this job replays them. With
        ``status``, the job is marked ``failed`` (the run crashed) or ``done`` (it stopped early).
        """
        if self._closed:
            return
        self._closed = True
        self._link.stop()
        try:
            if not self._done and (self._in_fallback or len(self._buffer)):
                # A service never reached in the whole run is likely a wrong URL: no long wait then.
                deadline = self.retry_deadline_s if self._attached else self.fallback_policy.attach_wait_s
                window = None if self._in_fallback else self._decision.window
                self._link.flush(self._buffer, window, deadline)
            if status is not None and not self._in_fallback:
                self._link.set_status(JobStatusUpdate(status=status, reason=reason[:500]))
        finally:
            self._transport.close()

    def __enter__(self) -> Tuner:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is None:
            self.close()
        else:  # the training loop crashed: say so, so the job is not left "running" until stale
            self.close(status="failed", reason=f"{type(exc).__name__}: {exc}")

    # -- boundaries ------------------------------------------------------------------------------

    def _end_window(self) -> None:
        decision, buffer = self._decision, self._buffer
        if decision.phase in _SAFE_PHASES:
            self._safe_lr = buffer.lrs[-1]
        report, window = buffer.report(), decision.window
        self._held_val = report.val_at_end()
        try:
            new = self._link.with_deadline(lambda: self._transport.report_window(self.job, window, report))
        except Exception as exc:  # the training loop never sees the service's problems
            self._enter_fallback(exc)
            return
        buffer.clear(self._step)
        self._apply(new)

    def _apply(self, d: Decision) -> None:
        """Act on a decision whose window starts now: snapshot/restore first, then the new LR.

        ``keep``: the best model is saved before the snapshot or restore (it is the model the last
        window ended with, whose validation loss the service just read) and loaded after them.
        """
        self._set_window(d)
        due = d.start_step == self._step and self._model is not None
        if d.keep == "save" and due:
            self._save_best()
        if d.action == "done":
            if d.keep == "load" and due:
                self._load_best()
            self._set_lr(d.lr if self._step == self._origin else self._lr)  # keep the last LR used
            return
        if d.action in ("snapshot", "restore"):
            if d.start_step != self._step:
                log.info(
                    "lrpilot: skipping stale %s of window %d (began at step %d)",
                    d.action,
                    d.window,
                    d.start_step,
                )
            elif self._model is not None or self._optimizer is not None:
                if self._model is None:
                    raise WiringError.no_model(f"a {d.action} is due at step {self._step}")
                if d.action == "snapshot":
                    self._snapshots.save(d.stage, self._step, self._model, self._optimizer)
                elif not self._snapshots.restore(d.stage, self._model, self._optimizer):
                    log.warning("lrpilot: no snapshot of stage %d to restore; training on from here", d.stage)
        if d.keep == "load" and due:
            self._load_best()
        if d.phase in _SAFE_PHASES:
            self._safe_lr = d.lr_at(d.start_step)
        # After a restore the optimizer's state dict has brought back an old LR: set the new one last.
        self._set_lr(d.lr_at(self._step))

    def _save_best(self) -> None:
        """Copy the model as it stands (the last window's end) into the best slot, with its loss."""
        self._best.save(BEST_LABEL, self._step, self._model, self._optimizer)
        self._best_val = self._held_val

    def _load_best(self) -> None:
        kept, last = self._best_val, self._held_val
        if kept is None or last is None or not kept < last:
            log.warning(
                "lrpilot: the best model's validation loss (%s) is not known to be below the last "
                "model's (%s) at step %d; keeping the last",
                kept,
                last,
                self._step,
            )
        elif self._best.restore(BEST_LABEL, self._model, self._optimizer):
            log.info("lrpilot: loaded the job's best model (validation loss %.4g, the last %.4g)", kept, last)
        else:
            log.warning("lrpilot: no best model was kept to load at step %d; keeping the last", self._step)

    def _set_window(self, d: Decision) -> None:
        """Pre-compute what the hot path reads, so a step costs no method call on the decision."""
        self._decision = d
        self._done = d.action == "done"
        self._steps, self._start, self._lr0, self._slope = d.steps, d.start_step, d.lr, d.lr_end - d.lr
        self._ramp = d.steps > 0 and d.lr_end != d.lr
        self._loss_limit, self._grad_limit = guard_limits(d)
        self._eval_at = frozenset(d.eval_at) if self._val_fn is not None else frozenset()
        # a geometric ramp (the range test) takes the slow path, which asks the decision for each LR
        self._fast = not (self._done or self._in_fallback or self._eval_at or d.ramp != "linear")

    def _set_lr(self, lr: float) -> None:
        self._lr = lr
        apply_lr(self._optimizer, lr)

    def _step_mismatch(self, step: int) -> int:
        if not self._attached and self._step == self._origin:
            self._buffer.start = self._step = self._origin = step  # never attached: take the caller's count
            self._start_fallback_schedule(step)
            return step
        self._step_warned = True
        log.warning(
            "lrpilot: next_lr got step=%d but %d steps were consumed (the tuner's count is "
            "authoritative; logged once)",
            step,
            self._step,
        )
        return self._step

    # -- fallback --------------------------------------------------------------------------------

    def _start_fallback_schedule(self, step: int) -> None:
        """No decision yet: warm up, hold, anneal (lrpilot.fallback.FallbackSchedule)."""
        self._fallback = FallbackSchedule.from_start(self.config, starting_lr(self.config), step)
        self._set_lr(self._fallback.lr(step))

    def _enter_fallback(self, exc: BaseException) -> None:
        self._link.warn_lost(exc, self._step, self._safe_lr)
        d = self._decision
        self._in_fallback, self._fast = True, False
        self._fallback = FallbackSchedule(self.config, self._safe_lr)
        if d.phase == "search" and self._model is not None and d.stage == self._snapshots.stage:
            self._snapshots.restore(d.stage, self._model, self._optimizer)  # drop the candidate's weights
            log.info("lrpilot: restored the stage %d snapshot taken before the search", d.stage)
        self._set_lr(self._fallback.lr(self._step))
        if isinstance(exc, WindowConflictError):  # the service knows where it is: resync right away
            self._recover()
        else:
            self._link.knock()

    def _recover(self) -> None:
        """Replay the buffer and follow the service again, or stay in fallback (knocking goes on)."""
        d = self._link.recover(self._buffer, self._step)
        if d is None:
            return
        self._in_fallback = False
        self._attached = True
        self._buffer.clear(self._step)
        self._held_val = None  # the replayed windows' decisions were not followed: unknown
        self._apply(d)
