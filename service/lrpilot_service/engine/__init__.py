"""The pure AutoLRS engine: state in, decision out. No I/O, no clock, no database, no web.

``advance(config, state, report) -> (state, decision)`` is the whole interface; the service and
the embedded mode store the state between calls (docs/engine.md).
"""

from lrpilot_service.engine.planner import ReportRejected, advance
from lrpilot_service.engine.state import (
    STATE_VERSION,
    StateVersionError,
    current_decision,
    dump_state,
    summarize,
)

__all__ = [
    "STATE_VERSION",
    "ReportRejected",
    "StateVersionError",
    "advance",
    "current_decision",
    "dump_state",
    "summarize",
]
