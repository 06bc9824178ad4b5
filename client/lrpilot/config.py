"""The tuner's configuration as the caller writes it: keyword arguments, checked before any I/O.

A misspelt option must fail at construction with the list of valid names, not travel to the
service and come back as a 422 (or worse, be ignored).
"""

from __future__ import annotations

from typing import Any

from lrpilot.protocol import TunerConfig

_OWN_ARGS = frozenset({"lr_min", "lr_max", "total_steps"})


def make_config(
    lr_min: float | None, lr_max: float | None, total_steps: int | None, extra: dict[str, Any]
) -> TunerConfig:
    """A validated TunerConfig; a misspelt option is a TypeError that lists the valid ones.

    ``lr_min`` / ``lr_max`` left as None take TunerConfig's defaults (the one wide default range).
    """
    valid = sorted(set(TunerConfig.model_fields) - _OWN_ARGS)
    unknown = sorted(set(extra) - set(valid))
    if unknown:
        raise TypeError(f"Tuner() got unexpected keyword argument(s) {unknown}; valid options: {valid}")
    given = {"lr_min": lr_min, "lr_max": lr_max}
    return TunerConfig(total_steps=total_steps, **{k: v for k, v in given.items() if v is not None}, **extra)


def starting_lr(config: TunerConfig) -> float:
    """The LR to train at before the service has said anything: the warmup target, or the range's
    geometric quarter point (the engine's default warmup LR), cautious but not useless."""
    return config.warmup_lr or config.lr_min * (config.lr_max / config.lr_min) ** 0.25
