"""The tuner's line to the service: the first attach, knocking while it is away, replays, the spool.

An unreachable service costs the training loop nothing. ``Tuner()`` makes its first attempt at
once and waits for it at most ``FallbackPolicy.attach_wait_s`` (a refused connection or an unknown
host fails in milliseconds); if the service does not answer, the tuner trains on its fallback
schedule while a :class:`~lrpilot.fallback.Prober` thread knocks, and the first failure is logged
once, as an error, with the URL, because a wrong ``LRPILOT_URL`` must not go unnoticed. In-process
transports (the embedded mode, test doubles) have no network to wait on and attach synchronously.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from lrpilot.errors import LrpilotError, ServiceUnavailableError
from lrpilot.fallback import FallbackPolicy, Prober, ReplayImpossible, replay
from lrpilot.protocol import Decision, JobCreate, JobStatusUpdate, JobView
from lrpilot.retry import RetryPolicy
from lrpilot.spool import Spool
from lrpilot.transport import StatusTransport, Transport, is_transient
from lrpilot.window import StepBuffer

log = logging.getLogger("lrpilot")
_T = TypeVar("_T")


class ServiceLink:
    """Owns the transport's availability for one job: ``attach``, ``knock``, ``replay``, ``spool``."""

    def __init__(
        self, transport: Transport, create: JobCreate, policy: FallbackPolicy, spool: Spool, deadline_s: float
    ) -> None:
        self.transport, self.create, self.policy, self.spool = transport, create, policy, spool
        self.deadline_s = deadline_s
        self.url: str | None = getattr(transport, "url", None)
        self._prober: Prober | None = None
        self._first_failure_logged = False

    def attach(self) -> JobView | None:
        """The job as the service has it, or None (train on the fallback schedule; knocking goes on).

        A refusal (bad config, name taken with another config, bad token) is raised: the caller
        must fix it, and it must do so before training starts.
        """
        if self.url is None:
            try:
                view = self.with_deadline(lambda: self.transport.create_or_attach(self.create))
            except ServiceUnavailableError as exc:
                self._log_first_failure(exc)
                self.knock()
                return None
            self._first_failure_logged = True  # from now on an outage is not a wrong URL
            return view
        prober = self.knock()
        prober.tried.wait(self.policy.attach_wait_s)
        if prober.view is not None:
            self._prober = None
            self._first_failure_logged = True
            return prober.view
        if prober.refusal is not None:
            raise prober.refusal
        return None

    def knock(self) -> Prober:
        """Start knocking in the background (a no-op while a prober is still at it)."""
        if self._prober is None or self._prober.answered.is_set():
            self._prober = Prober(
                lambda: self.transport.create_or_attach(self.create), self.policy, self._log_first_failure
            )
        return self._prober

    def answered(self) -> bool:
        """The service answered a knock (or refused): time to replay, in the training thread."""
        return self._prober is not None and self._prober.answered.is_set()

    def refusal(self) -> LrpilotError | None:
        return self._prober.refusal if self._prober is not None else None

    def stop(self) -> None:
        if self._prober is not None:
            self._prober.stop()
            self._prober = None

    def replay(self, buffer: StepBuffer) -> Decision:
        """Post the spooled steps of an earlier run, if any, then ``buffer``; the decision now due."""
        self._prober = None
        self.replay_spool()
        decision = replay(self.transport, self.create, buffer, _log_stale)
        self._first_failure_logged = True
        return decision

    def recover(self, buffer: StepBuffer, step: int) -> Decision | None:
        """After a knock was answered: the decision due once ``buffer`` is replayed, or None."""
        refusal = self.refusal()
        if refusal is not None:
            log.error(
                "lrpilot: the service refused job %r (%s); training goes on alone", self.create.name, refusal
            )
            self.stop()
            return None
        try:
            decision = self.replay(buffer)
        except ReplayImpossible as exc:
            log.error("lrpilot: job %r cannot be resumed (%s); training goes on alone", self.create.name, exc)
            self.stop()
            return None
        except Exception as exc:
            log.debug("lrpilot: service still unavailable at step %d: %s", step, exc)
            self.knock()
            return None
        log.info("lrpilot: service back at step %d; buffered steps replayed", step)
        return decision

    def flush(self, buffer: StepBuffer, window: int | None, deadline_s: float) -> None:
        """At close: report ``buffer`` (the window ``window``, or a replay when None) within the
        deadline; if the service is still away, keep the steps in the spool for the next attach."""

        def deliver() -> Decision:
            if window is None:
                return self.replay(buffer)
            return self.transport.report_window(self.create.name, window, buffer.report())

        count, job = len(buffer), self.create.name
        try:
            RetryPolicy(deadline_s=deadline_s).call(deliver, is_transient)
            return
        except ReplayImpossible as exc:
            log.warning("lrpilot: %d steps of job %r could not be reported: %s", count, job, exc)
            return
        except LrpilotError as exc:
            if not is_transient(exc):
                log.warning("lrpilot: the last %d steps of job %r were refused: %s", count, job, exc)
                return
        try:
            self.spool.save(buffer)
        except OSError as error:
            log.error("lrpilot: %d steps of job %r are lost: %s", count, job, error)
            return
        log.warning(
            "lrpilot: the service is away; %d unreported steps of job %r are saved in %s and will be "
            "replayed by the next Tuner of this job",
            count,
            job,
            self.spool.path,
        )

    def warn_lost(self, error: BaseException, step: int, lr: float) -> None:
        """The service was lost mid-run: say so once, with the cause."""
        if isinstance(error, LrpilotError | OSError):
            cause = f"{type(error).__name__}: {error}"
        else:
            log.error("lrpilot: unexpected error talking to the service", exc_info=error)
            cause = f"unexpected {type(error).__name__}"
        log.warning(
            "lrpilot: no service at step %d (%s); training goes on at LR %g and the steps are buffered "
            "for replay (logged once)",
            step,
            cause,
            lr,
        )

    def replay_spool(self) -> Decision | None:
        """Replay and delete the spool file of this job; None when there is none (or it cannot be)."""
        spooled = self.spool.load()
        if spooled is None:
            return None
        count = len(spooled)
        try:
            decision = replay(self.transport, self.create, spooled, _log_stale)
        except ServiceUnavailableError as exc:  # gone again: the file stays for the next attach
            log.warning(
                "lrpilot: %d unreported steps in %s wait for the service (%s)", count, self.spool.path, exc
            )
            return None
        except ReplayImpossible as exc:
            log.error(
                "lrpilot: %d unreported steps in %s cannot be replayed (%s)", count, self.spool.path, exc
            )
            self.spool.path.rename(self.spool.path.with_suffix(".stale"))
            return None
        self.spool.remove()
        log.info("lrpilot: replayed %d steps of job %r left by an earlier run", count, self.create.name)
        return decision

    def set_status(self, update: JobStatusUpdate) -> None:
        """Tell the service the job failed or is done (best effort: never raises)."""
        transport = self.transport
        if not isinstance(transport, StatusTransport):
            return  # a transport of the caller's own that cannot end jobs
        try:
            self.with_deadline(lambda: transport.set_status(self.create.name, update))
        except Exception as exc:
            log.warning("lrpilot: could not mark job %r %s: %s", self.create.name, update.status, exc)

    def with_deadline(self, call: Callable[[], _T]) -> _T:
        """``call()`` retried on transient failures for the tuner's ``retry_deadline_s``."""
        return RetryPolicy(deadline_s=self.deadline_s).call(call, is_transient)

    def _log_first_failure(self, error: ServiceUnavailableError) -> None:
        if self._first_failure_logged:
            return
        self._first_failure_logged = True
        where = f"at {self.url}" if self.url else "(embedded)"
        log.error(
            "lrpilot: the lrpilot service %s does not answer (%s). Check the URL (url= or LRPILOT_URL). "
            "Job %r trains on the fallback schedule meanwhile, and attaches when the service answers "
            "(logged once).",
            where,
            error.detail,
            self.create.name,
        )


def _log_stale(decision: Decision) -> None:
    log.info(
        "lrpilot: skipping stale %s of window %d (its steps were trained in fallback)",
        decision.action,
        decision.window,
    )
