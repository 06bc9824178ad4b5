"""lrpilot: an online learning-rate schedule tuner. ``from lrpilot import Tuner``."""

from lrpilot.errors import (
    JobConflictError,
    JobNotFoundError,
    LrpilotError,
    ReportRejectedError,
    ServiceUnavailableError,
    WindowConflictError,
)
from lrpilot.protocol import Decision, TunerConfig, WindowReport
from lrpilot.transport import HttpTransport, InProcessTransport, Transport, make_transport
from lrpilot.tuner import Tuner

__all__ = [
    "Decision",
    "HttpTransport",
    "InProcessTransport",
    "JobConflictError",
    "JobNotFoundError",
    "LrpilotError",
    "ReportRejectedError",
    "ServiceUnavailableError",
    "Transport",
    "Tuner",
    "TunerConfig",
    "WindowConflictError",
    "WindowReport",
    "make_transport",
]
__version__ = "0.1.0"
