"""Mean and standard deviation that cannot overflow: losses may be anything up to 1e308.

The engine must never raise on loss values (they are data, and a diverging run produces the
largest ones), and ``statistics.fmean`` of three values near 6e307 overflows. Scaling by the
largest magnitude first keeps every intermediate finite.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def mean_sd(values: Sequence[float]) -> tuple[float, float]:
    """(mean, sample sd) of finite ``values`` (at least one); sd is 0 for a single value."""
    scale = max(abs(v) for v in values) or 1.0
    scaled = [v / scale for v in values]
    n = len(scaled)
    mean = math.fsum(scaled) / n
    var = math.fsum((v - mean) ** 2 for v in scaled) / (n - 1) if n > 1 else 0.0
    return mean * scale, math.sqrt(var) * scale
