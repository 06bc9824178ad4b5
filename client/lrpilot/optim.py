"""Setting the learning rate on an optimizer: the one place every integration goes through.

Tuner, DDP followers, the PyTorch scheduler and the framework callbacks all write the tuner's LR
into ``param_groups``. Capturable optimizers (``capturable=True``, CUDA graphs) and some fused
ones hold the LR as a tensor that the compiled step reads in place: replacing it with a float
would silently detach the graph, so a tensor LR is filled, never replaced.
"""

from __future__ import annotations

from typing import Any


def apply_lr(optimizer: Any, lr: float) -> None:
    """Set ``lr`` on every param group of ``optimizer`` (a no-op for ``None``)."""
    if optimizer is None:
        return
    for group in optimizer.param_groups:
        current = group["lr"]
        if type(current) is float or not hasattr(current, "fill_"):
            group["lr"] = lr
        else:  # a tensor LR: keep the tensor
            current.fill_(lr)
