"""A small training process with a known best LR, and a loop that drives the engine with it.

Linear regression trained by minibatch SGD in numpy: cheap, deterministic per seed, and the
true (full-data) loss after any number of steps at any LR can be computed by simulation from a
snapshot, so a test can say which constant LR was really best for a stage.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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


def drive(
    config: TunerConfig, trainer: LinearRegressionSGD, *, oracle_grid: np.ndarray | None = None
) -> DriveResult:
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
        losses = []
        for i in range(decision.steps):
            loss = trainer.step(decision.lr_at(decision.start_step + i))
            losses.append(loss)
            consumed += 1
            if decision.should_stop(loss):
                break
        report = WindowReport(start_step=decision.start_step, losses=losses)
        state, decision = advance(config, state, report)
        decisions.append(decision)
        states.append(state)
    return DriveResult(decisions, states, stage_best, consumed)
