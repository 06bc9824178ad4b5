"""Plans for tests of the service, not of the algorithm.

The service's tests count steps and windows; the engine's opening (a range test, then a warmup)
would move every number they check. ``CLASSIC_PLAN`` is AutoLRS's plan: no range test, no warmup,
tries at one held LR, so the first window is the first search try, as those tests expect.
"""

from __future__ import annotations

from typing import Any

CLASSIC_PLAN: dict[str, Any] = {"probe": "none", "warmup_steps": 0, "try_cooldown": 0.0}
