"""What a training loop reads from a tuner: the decision it follows, the LR it set, the steps consumed."""

from __future__ import annotations

from lrpilot.protocol import Decision


class DecisionFollower:
    """What every rank's tuner shows: the decision being followed, the LR it set, the steps consumed.

    Shared by :class:`Tuner` and ``lrpilot.integrations.ddp.DistributedTuner`` (whose followers
    hold no Tuner, only what rank 0 broadcast), so both read the same way.
    """

    _decision: Decision
    _lr: float
    _step: int

    @property
    def lr(self) -> float:
        """The LR for the next step (the one the optimizer has now)."""
        return self._lr

    @property
    def decision(self) -> Decision:
        """The decision being followed; callers without model/optimizer act on it themselves."""
        return self._decision

    @property
    def step(self) -> int:
        """Consumed steps so far (search steps included): the authoritative step counter."""
        return self._step
