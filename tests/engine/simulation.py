"""A small training process with a known best LR, and a loop that drives the engine with it.

Linear regression trained by minibatch SGD in numpy: cheap, deterministic per seed, and the
true (full-data) loss after any number of steps at any LR can be computed by simulation from a
snapshot, so a test can say which constant LR was really best for a stage.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lrpilot.protocol import Decision, TunerConfig, WindowReport
from lrpilot_service.engine import advance
from lrpilot_service.engine.state import State


@dataclass
class LinearRegressionSGD:
    """y = X w* + noise; loss = half mean squared error on a minibatch; plain SGD."""

    seed: int
    dim: int = 20
    rows: int = 2000
    batch: int = 256
    noise: float = 0.1
    w: np.ndarray = field(init=False)
    step_count: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        rng = np.random.default_rng(self.seed)
        scales = np.geomspace(1.0, 0.01, self.dim)
        self.x = rng.normal(size=(self.rows, self.dim)) * scales
        w_star = rng.normal(size=self.dim)
        self.y = self.x @ w_star + self.noise * rng.normal(size=self.rows)
        self.w = np.zeros(self.dim)
        self.order = np.random.default_rng(self.seed + 1).integers(0, self.rows, size=(200_000, self.batch))

    def step(self, lr: float) -> float:
        """One SGD step on the step's minibatch; returns the minibatch loss before the update."""
        idx = self.order[self.step_count % len(self.order)]
        self.step_count += 1
        with np.errstate(all="ignore"):  # diverging LRs overflow on purpose
            residual = self.x[idx] @ self.w - self.y[idx]
            loss = 0.5 * float(np.mean(residual**2))
            grad = self.x[idx].T @ residual / len(idx)
            self.w = self.w - lr * grad
        return loss if np.isfinite(loss) else float("nan")

    def full_loss(self) -> float:
        with np.errstate(all="ignore"):
            return 0.5 * float(np.mean((self.x @ self.w - self.y) ** 2))

    def save(self) -> tuple[np.ndarray, int]:
        return self.w.copy(), self.step_count

    def load(self, snapshot: tuple[np.ndarray, int]) -> None:
        # Weights rewind; the data order keeps going, as a real data loader would.
        self.w = snapshot[0].copy()

    def best_constant_lr(self, steps: int, grid: np.ndarray) -> float:
        """The grid LR whose full-data loss after ``steps`` steps from here is lowest."""
        snapshot, count = self.save(), self.step_count
        results = []
        for lr in grid:
            self.load(snapshot)
            self.step_count = count
            for _ in range(steps):
                self.step(float(lr))
            final = self.full_loss()
            results.append(final if np.isfinite(final) else np.inf)
        self.load(snapshot)
        self.step_count = count
        return float(grid[int(np.argmin(results))])


@dataclass
class DriveResult:
    decisions: list[Decision]
    states: list[State]
    stage_best: dict[int, float]
    steps_consumed: int


def drive(config: TunerConfig, trainer: Any, *, oracle_grid: np.ndarray | None = None) -> DriveResult:
    """Run a whole job: apply each decision to the trainer, report each window, until done."""
    state, decision = advance(config, None, None)
    decisions, states = [decision], [state]
    snapshot = None
    stage_best: dict[int, float] = {}
    consumed = 0
    while decision.action != "done":
        if decision.action == "snapshot":
            snapshot = trainer.save()
            if oracle_grid is not None:
                tau = state["tau"]
                stage_best[decision.stage] = trainer.best_constant_lr(tau, oracle_grid)
        elif decision.action == "restore":
            assert snapshot is not None, "restore before any snapshot"
            trainer.load(snapshot)
        losses, grads = [], []
        for i in range(decision.steps):
            loss = trainer.step(decision.lr_at(decision.start_step + i))
            losses.append(loss)
            grads.append(float(getattr(trainer, "grad_norm", 1.0)))
            consumed += 1
            if decision.should_stop(loss, grads[-1]):
                break
        report = WindowReport(start_step=decision.start_step, losses=losses, grad_norms=grads)
        state, decision = advance(config, state, report)
        decisions.append(decision)
        states.append(state)
    return DriveResult(decisions, states, stage_best, consumed)


@dataclass
class DyingNetwork:
    """The failure of a ReLU network trained by SGD with momentum at the top of a wide range.

    From initialisation the loss sits on a plateau: progress starts only once the accumulated
    step size passes ``plateau`` (so every short try from the initial weights looks flat). An LR
    above ``lr_die`` kills the network for good: the loss returns to the untrained level and the
    gradients vanish, with no NaN and no explosion. Below it, the loss falls with the progress made,
    ``lr * (1 - lr / lr_die)`` per step past the plateau (the edge of stability slows progress).
    """

    seed: int
    initial: float = 2.3
    floor: float = 0.3
    plateau: float = 0.05
    lr_die: float = 0.3
    rate: float = 0.1
    noise: float = 0.02
    area: float = field(init=False, default=0.0)
    progress: float = field(init=False, default=0.0)
    alive: bool = field(init=False, default=True)
    grad_norm: float = field(init=False, default=1.0)

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng(self.seed)

    def step(self, lr: float) -> float:
        if lr > self.lr_die:
            self.alive = False
        if self.alive:
            self.area += lr
            if self.area > self.plateau:
                self.progress += lr * (1 - lr / self.lr_die)
        loss = self.full_loss()
        self.grad_norm = 1.0 if self.alive else 1e-6
        return loss * (1 + self.noise * float(self.rng.normal()))

    def full_loss(self) -> float:
        if not self.alive:
            return self.initial
        return self.floor + (self.initial - self.floor) * float(np.exp(-self.rate * self.progress))

    def save(self) -> tuple[float, float, bool]:
        return self.area, self.progress, self.alive

    def load(self, snapshot: tuple[float, float, bool]) -> None:
        self.area, self.progress, self.alive = snapshot


@dataclass
class StallingModel:
    """A language model's failure at a too-large LR: no explosion, a stall far above the optimum.

    Two parts to the loss: an easy one that any LR removes in proportion to the step size taken
    (a byte model learning byte frequencies), which makes short tries from the initial weights
    favour the largest LRs; and the hard one, whose progress per step ``lr * exp(-lr / lr_best)``
    peaks at ``lr_best`` and all but stops ten times above it.
    """

    seed: int
    easy: float = 1.5
    hard: float = 2.0
    floor: float = 1.0
    easy_rate: float = 1.0
    lr_best: float = 3e-3
    hard_rate: float = 1.2
    noise: float = 0.01
    area: float = field(init=False, default=0.0)
    progress: float = field(init=False, default=0.0)

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng(self.seed)

    def step(self, lr: float) -> float:
        self.area += lr
        self.progress += lr * float(np.exp(-lr / self.lr_best))
        return self.full_loss() * (1 + self.noise * float(self.rng.normal()))

    def full_loss(self) -> float:
        easy = self.easy * float(np.exp(-self.easy_rate * self.area))
        hard = self.hard * float(np.exp(-self.hard_rate * self.progress))
        return self.floor + easy + hard

    def save(self) -> tuple[float, float]:
        return self.area, self.progress

    def load(self, snapshot: tuple[float, float]) -> None:
        self.area, self.progress = snapshot
