"""The overhead benchmark's hot-path measurement: it runs, and sees no I/O between boundaries.

The figure itself (nanoseconds per call) is printed by ``python -m bench.overhead`` and quoted in
the benchmark report; a wall-clock bound here would test the machine's load, not the code.
"""

from __future__ import annotations

from bench.overhead import next_lr_ns


def test_next_lr_hot_path_makes_no_network_call() -> None:
    for ramp, groups in ((False, 0), (True, 2)):
        ns = next_lr_ns(2_000, repeats=3, ramp=ramp, groups=groups)  # asserts a single network call inside
        assert ns > 0
