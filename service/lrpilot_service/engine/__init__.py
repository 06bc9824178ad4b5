"""The pure AutoLRS engine: state in, decision out. No I/O, no clock, no database, no web.

``advance(config, state, report) -> (state, decision)`` is the whole interface; the service and
the embedded mode store the state (typed JSON, :class:`State`) between calls (docs/engine.md).
"""

from lrpilot_service.engine.planner import ReportRejected, advance
from lrpilot_service.engine.state import (
    STATE_VERSION,
    State,
    StateVersionError,
    current_decision,
    dump_state,
    summarize,
)

__all__ = [
    "STATE_VERSION",
    "ReportRejected",
    "State",
    "StateVersionError",
    "advance",
    "current_decision",
    "dump_state",
    "summarize",
]
