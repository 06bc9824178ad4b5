"""Methods under comparison and the one training loop they all share.

Why one loop: fair accounting. Every method trains exactly ``T`` consumed steps on the same
batches (step s always sees batch s of the seed), evaluated at the same consumed steps. A method
only decides the LR of each step (and lrpilot, through its tuner, also snapshots and restores the
model): search and re-run steps are therefore charged like any other step.

Methods: the seven hand schedules at a given peak LR; schedule-free SGD/AdamW and Prodigy at
their recommended defaults; lrpilot untuned with its one wide default range, and again with the
workload's own range (the grid's span: what a user who knows the workload would give it), and with
a validation function; lrpilot configured like the released AutoLRS (the reference peer).
"""

from __future__ import annotations

import contextlib
import io
import math
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal
from unittest import mock

import torch
from torch import nn

from bench.schedules import SCHEDULES, warmup_steps
from bench.workloads import WORKLOADS, Workload

LR_FREE = ("schedulefree", "prodigy")


@dataclass(frozen=True)
class TunerMethod:
    """lrpilot as one benchmark method: settings that differ from its defaults, and its LR range.

    ``lr_range`` "wide" leaves lr_min / lr_max at lrpilot's defaults (one range for every
    workload: untuned); "own" gives the workload's grid span. ``val_fn`` passes a validation
    function (the held-out loss the grid baselines are selected on).
    """

    config: dict[str, Any] = field(default_factory=dict)
    lr_range: Literal["wide", "own"] = "wide"
    val_fn: bool = False
    #: Engine constants set for this method only ("module.NAME": value): ablations of choices that
    #: are not settings (bench/levers.py). Set around one run by bench.runner.run_one, then restored.
    patches: dict[str, Any] = field(default_factory=dict)

    @contextlib.contextmanager
    def patched(self) -> Iterator[None]:
        """The engine constants of ``patches`` set for the duration of one run, then restored.

        Scoped, not set for good: a benchmark worker (or the test process) trains other methods
        afterwards, and an ablation's constants must not leak into them.
        """
        with contextlib.ExitStack() as stack:
            for target, value in self.patches.items():
                stack.enter_context(mock.patch(target, value))
            yield

    def settings(self, workload: Workload) -> dict[str, Any]:
        extra = dict(self.config)
        if self.lr_range == "own":
            extra["lr_min"], extra["lr_max"] = workload.own_range()
        if self.val_fn:
            extra.setdefault("objective", "val")
        return extra


def never_stalled(*args: object) -> bool:
    return False


def never_failing(*args: object) -> None:
    return None


#: lrpilot without its checks for training that stops learning without a NaN.
def doubled_choice(state: Any, config: Any, fallback_lr: float) -> tuple[float, bool, str]:
    """A stage's conclusion at twice the chosen LR (lever ``exploit-x2``); never continues the try."""
    from lrpilot_service.engine.pick import conclude

    lr, _, why = conclude(state, config, fallback_lr=fallback_lr)
    doubled = min(config.lr_max, 2 * lr)
    state["best_lr"] = doubled
    state["stages"][-1]["chosen_lr"] = doubled
    return doubled, False, f"{why}; doubled to lr={doubled:.3g} (lever)"


NO_HEALTH: dict[str, Any] = {
    "lrpilot_service.engine.health.no_progress": never_stalled,
    "lrpilot_service.engine.health.worse_than_start": never_failing,
    "lrpilot_service.engine.health.dead_gradients": never_failing,
    "lrpilot_service.engine.health.stalled": never_failing,
}
# The released AutoLRS, expressed as lrpilot configuration (lrpilot.protocol.TunerConfig): 10 tries
# a stage over the whole range, every stage, held tries ranked by a forecast, AutoLRS's sizes'
# ratio, no range test, warmup or anneal, and none of lrpilot's health checks or tie rule.
AUTOLRS_CONFIG: dict[str, Any] = {
    "candidates": 10,
    "refine_candidates": 10,
    "refine": "bracket",
    "search_stages": None,
    "tau_ratio": 0.1,
    "search": "space_filling",
    "anneal": "none",
    "probe": "none",
    "warmup_steps": 0,
    "try_cooldown": 0.0,
}
AUTOLRS_PATCHES: dict[str, Any] = {**NO_HEALTH, "lrpilot_service.engine.search.TIE_SDS": 0.0}
# "lrpilot" is the recommended use, untuned: the one wide default range and a validation function
# (the held-out loss the grid baselines are selected on); the others change one of the two.
TUNER_METHODS: dict[str, TunerMethod] = {
    "lrpilot": TunerMethod(val_fn=True),
    "lrpilot-own": TunerMethod(lr_range="own", val_fn=True),
    "lrpilot-train": TunerMethod(),
    "autolrs": TunerMethod(AUTOLRS_CONFIG, patches=AUTOLRS_PATCHES),
}
TUNERS = tuple(TUNER_METHODS)


def tuner_method(name: str) -> TunerMethod | None:
    """The benchmark's tuner methods, then the engine levers of bench/levers.py (ablations)."""
    if name in TUNER_METHODS:
        return TUNER_METHODS[name]
    from bench.levers import LEVERS

    lever = LEVERS.get(name)
    return None if lever is None else lever.method


def is_tuner(name: str) -> bool:
    return tuner_method(name) is not None


@dataclass(frozen=True)
class RunSpec:
    """One training run; also the cache key (peak_lr is None for methods that take no LR)."""

    workload: str
    method: str
    peak_lr: float | None
    seed: int
    budget: int

    def key(self) -> str:
        lr = "none" if self.peak_lr is None else f"{self.peak_lr:.6g}"
        return f"{self.workload}__{self.method}__lr{lr}__s{self.seed}__T{self.budget}"


class Driver:
    """Decides the LR of each step. Base class: a fixed schedule applied before every step."""

    def __init__(self, optimizer: torch.optim.Optimizer, spec: RunSpec) -> None:
        self.optimizer = optimizer
        self.spec = spec

    def before(self, step: int) -> None:
        """Set the LR the coming step will use."""
        assert self.spec.peak_lr is not None
        lr = SCHEDULES[self.spec.method](step, self.spec.budget, self.spec.peak_lr)
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def effective_lr(self) -> float:
        """The LR the last step actually used (read after optimizer.step())."""
        return float(self.optimizer.param_groups[0]["lr"])

    def after(self, step: int, loss: float, grad_norm: float | None) -> None:
        """Observe the step's loss (tuners act on it; schedules ignore it)."""

    def eval_mode(self, evaluating: bool) -> None:
        """Switch the optimiser's weights for evaluation (only schedule-free needs this)."""

    def needs_grad_norm(self) -> bool:
        return False

    def finish(self) -> dict[str, Any]:
        """Extra per-run facts for the report (search share for tuners)."""
        return {}


class ScheduleFreeDriver(Driver):
    """Schedule-free SGD/AdamW: constant LR, weights averaged; eval at the averaged point x."""

    def before(self, step: int) -> None:
        pass

    def effective_lr(self) -> float:
        group = self.optimizer.param_groups[0]
        return float(group.get("scheduled_lr", group["lr"]))  # includes its internal warmup

    def eval_mode(self, evaluating: bool) -> None:
        getattr(self.optimizer, "eval" if evaluating else "train")()


class ProdigyDriver(Driver):
    """Prodigy with lr=1.0 and cosine annealing over the budget, as its README recommends."""

    def before(self, step: int) -> None:
        lr = 0.5 * (1.0 + math.cos(math.pi * step / self.spec.budget))
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def effective_lr(self) -> float:
        group = self.optimizer.param_groups[0]
        return float(group["lr"] * group["d"])  # the step size Prodigy actually applies


class TunerDriver(Driver):
    """lrpilot through its pinned client API, embedded mode on a private temporary SQLite file."""

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        spec: RunSpec,
        model: nn.Module,
        method: TunerMethod,
        val_fn: Callable[[], float],
    ) -> None:
        super().__init__(optimizer, spec)
        from lrpilot import Tuner, embedded_transport

        # embedded mode, explicitly: never a service someone left running at $LRPILOT_URL
        self._tmp = tempfile.TemporaryDirectory(prefix="lrpilot-bench-")
        transport = embedded_transport(f"sqlite:///{self._tmp.name}/lrpilot.db")
        extra = method.settings(WORKLOADS[spec.workload])
        if extra.get("objective") == "val":
            extra["val_fn"] = val_fn
        self.tuner = Tuner(
            job=f"bench-{spec.key()}".replace("__", "-"),
            url=None,
            total_steps=spec.budget,
            model=model,
            optimizer=optimizer,
            transport=transport,
            **extra,
        )
        # The final model's lineage: steps trained since the start, less every rewind (a restore
        # goes back to the latest snapshot: the client keeps one). T minus it is what search and
        # back-offs cost.
        # The best model (keep_best) is a second slot: saved before the action, loaded after it.
        self._lineage = 0
        self._at_snapshot = self._at_best = 0
        self._follow(self.tuner.decision)

    def _follow(self, d: Any) -> None:
        self._decision = d
        due = d.start_step == self.tuner.step
        if d.keep == "save" and due:
            self._at_best = self._lineage
        if d.action == "snapshot" and due:
            self._at_snapshot = self._lineage
        elif d.action == "restore" and due:
            self._lineage = self._at_snapshot
        if d.keep == "load" and due:
            self._lineage = self._at_best

    def before(self, step: int) -> None:
        pass  # the tuner set this step's LR in the previous next_lr() (or its constructor)

    def after(self, step: int, loss: float, grad_norm: float | None) -> None:
        self.tuner.next_lr(step, loss, grad_norm=grad_norm)
        self._lineage += 1
        if self.tuner.decision is not self._decision:
            self._follow(self.tuner.decision)

    def needs_grad_norm(self) -> bool:
        return True

    def finish(self) -> dict[str, Any]:
        schedule = self.tuner.schedule()
        stages = [
            {"stage": s.stage, "tau": s.tau, "chosen_lr": s.chosen_lr, "candidates": len(s.candidates)}
            for s in schedule.stages
        ]
        self.tuner.close()
        self._tmp.cleanup()
        probe = sum(1 for s in schedule.steps if s.phase == "probe")
        return {
            "search_share": float(schedule.search_share),
            "probe_share": probe / max(1, len(schedule.steps)),
            "kept_steps": self._lineage,  # steps in the final model's lineage
            "stages": stages,
        }


def optimizer_for(workload: Workload, params: Iterable[nn.Parameter], lr: float) -> torch.optim.Optimizer:
    """The workload's optimiser family at ``lr``: AdamW, SGD with momentum 0.9, or plain SGD."""
    if workload.family == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=workload.weight_decay)
    momentum = 0.9 if workload.family == "sgd" else 0.0
    return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=workload.weight_decay)


def build(workload: Workload, spec: RunSpec, model: nn.Module) -> Driver:
    """The optimiser and driver for a method; the workload fixes the optimiser family."""
    params = list(model.parameters())
    wd, total = workload.weight_decay, spec.budget
    if spec.method == "schedulefree":
        import schedulefree

        warm = warmup_steps(total)
        sf: torch.optim.Optimizer = (
            schedulefree.SGDScheduleFree(params, lr=1.0, momentum=0.9, weight_decay=wd, warmup_steps=warm)
            if workload.family != "adamw"
            else schedulefree.AdamWScheduleFree(params, lr=0.0025, weight_decay=wd, warmup_steps=warm)
        )
        return ScheduleFreeDriver(sf, spec)
    if spec.method == "prodigy":
        from prodigyopt import Prodigy

        with contextlib.redirect_stdout(io.StringIO()):  # it prints its weight-decay mode
            prodigy = Prodigy(params, lr=1.0, weight_decay=wd)
        return ProdigyDriver(prodigy, spec)
    opt = optimizer_for(workload, params, spec.peak_lr if spec.peak_lr is not None else workload.default_lr)
    method = tuner_method(spec.method)
    if method is not None:
        return TunerDriver(opt, spec, model, method, val_fn=lambda: _validation_loss(workload, model))
    if spec.method not in SCHEDULES:
        raise ValueError(f"unknown method {spec.method!r}")
    return Driver(opt, spec)


def _validation_loss(workload: Workload, model: nn.Module) -> float:
    """The tuner's val_fn: the same held-out loss the report judges, in eval mode."""
    model.eval()
    try:
        return workload.val_loss(model)
    finally:
        model.train()


def eval_points(total: int) -> list[int]:
    """Consumed-step counts at which validation loss is measured: 0 and about every T/20."""
    every = max(1, total // 20)
    return sorted({0, *range(every, total, every), total})


def train(workload: Workload, spec: RunSpec) -> dict[str, Any]:
    """Train one run for exactly ``spec.budget`` consumed steps and return its record.

    A hand schedule whose loss goes non-finite stops there (its later steps could only produce
    NaN) but is still charged the whole budget; a tuner sees the NaN and handles it itself.
    """
    torch.set_num_threads(1)
    data = workload.data()
    model = workload.model(spec.seed)
    batches = workload.batch_indices(spec.seed, spec.budget)
    driver = build(workload, spec, model)
    points = set(eval_points(spec.budget))
    curve: list[list[float]] = []
    lrs: list[float] = []
    losses: list[float] = []
    eval_s, stopped_at = 0.0, None
    start = time.perf_counter()

    def evaluate(consumed: int) -> None:
        nonlocal eval_s
        t0 = time.perf_counter()
        model.eval()
        driver.eval_mode(True)
        curve.append([consumed, workload.val_loss(model)])
        driver.eval_mode(False)
        model.train()
        eval_s += time.perf_counter() - t0

    driver.eval_mode(False)
    evaluate(0)
    for step in range(spec.budget):
        driver.before(step)
        idx = batches[step]
        loss = workload.loss(model, data.train_x[idx], data.train_y[idx])
        driver.optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        grad_norm = None
        if driver.needs_grad_norm():
            grad_norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), float("inf")))
        driver.optimizer.step()
        lrs.append(driver.effective_lr())
        value = float(loss.detach())
        losses.append(value)
        driver.after(step, value, grad_norm)
        if not math.isfinite(value) and not is_tuner(spec.method):
            stopped_at = step + 1
            curve.append([spec.budget, math.nan])
            break
        if step + 1 in points:
            evaluate(step + 1)
    wall = time.perf_counter() - start
    extra = driver.finish()
    final = curve[-1][1]
    return {
        "spec": {k: getattr(spec, k) for k in ("workload", "method", "peak_lr", "seed", "budget")},
        "steps_consumed": spec.budget,
        "steps_trained": stopped_at if stopped_at is not None else len(lrs),
        "stopped_at": stopped_at,
        "diverged": not math.isfinite(final),
        "initial_val_loss": curve[0][1],
        "final_val_loss": final,
        "curve": curve,
        "lrs": [float(f"{x:.6g}") for x in lrs],
        "train_loss_tail": float(sum(losses[-20:]) / max(1, len(losses[-20:]))),
        "wall_s": wall,
        "eval_s": eval_s,
        "step_ms": 1e3 * (wall - eval_s) / max(1, len(lrs)),
        **extra,
    }
