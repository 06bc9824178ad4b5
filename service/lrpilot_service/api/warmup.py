"""Pay the engine's start-up costs at start-up: imports, first-call caches, one GP fit.

The first decision of a fresh process used to take ~1.9 s (torch, BoTorch and GPyTorch imports,
then their first-call work) and the client waiting on it saw a timeout. A worker now runs one small
job through a whole search stage, in memory, before it accepts requests.
"""

from __future__ import annotations

import logging
import time

from lrpilot.protocol import TunerConfig, WindowReport
from lrpilot_service.engine import advance

logger = logging.getLogger(__name__)

#: A small budgeted job whose first stage ends in a GP choice after a handful of windows.
WARMUP_CONFIG = TunerConfig(total_steps=400, candidates=3, lr_min=1e-4, lr_max=1.0)
_MAX_WINDOWS = 50


def warm_engine() -> float:
    """Drive :data:`WARMUP_CONFIG` until its first stage exploits; returns the seconds it took."""
    started = time.perf_counter()
    state, decision = advance(WARMUP_CONFIG, None, None)
    for _ in range(_MAX_WINDOWS):
        if decision.phase in ("exploit", "done") and decision.stage >= 0:
            break
        losses = [2.0 / (1 + 0.01 * (decision.start_step + i)) + decision.lr for i in range(decision.steps)]
        state, decision = advance(
            WARMUP_CONFIG, state, WindowReport(start_step=decision.start_step, losses=losses)
        )
    elapsed = time.perf_counter() - started
    logger.info("engine warmed up in %.2fs (%s)", elapsed, decision.phase)
    return elapsed
