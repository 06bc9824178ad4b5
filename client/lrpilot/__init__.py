"""lrpilot: an online learning-rate schedule tuner. ``from lrpilot import Tuner``."""

from importlib.metadata import PackageNotFoundError, version

from lrpilot.errors import (
    JobConflictError,
    JobNotFoundError,
    LrpilotError,
    ReportRejectedError,
    ServiceUnavailableError,
    WindowConflictError,
)
from lrpilot.optim import apply_lr
from lrpilot.protocol import Decision, TunerConfig, WindowReport
from lrpilot.retry import RetryPolicy
from lrpilot.transport import HttpTransport, Transport, embedded_transport, make_transport
from lrpilot.tuner import Tuner

try:
    __version__ = version("lrpilot")  # the one home of the version: pyproject.toml
except PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    "Decision",
    "HttpTransport",
    "JobConflictError",
    "JobNotFoundError",
    "LrpilotError",
    "ReportRejectedError",
    "RetryPolicy",
    "ServiceUnavailableError",
    "Transport",
    "Tuner",
    "TunerConfig",
    "WindowConflictError",
    "WindowReport",
    "apply_lr",
    "embedded_transport",
    "make_transport",
]
