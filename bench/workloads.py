"""Benchmark workloads: small, seeded, deterministic training problems of different shapes.

Why these: a schedule tuner must work on convex and non-convex problems, on SGD and AdamW, on
classification, regression and language modelling. Everything here ships with Python or
scikit-learn (nothing is downloaded at run time), and every problem is sized so one training run
takes a few seconds on one CPU thread: a full 5-seed report of ~40 runs per workload must fit in
well under an hour on two shared cores.

Data are preloaded tensors (no DataLoader): a batch is an index tensor into them. The train /
validation / test split is fixed (split seed 0) for every seed, and the test split is never
touched; seeds change the initialisation and the data order only, identically for every method.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

Family = Literal["sgd", "sgd_plain", "adamw"]
"""sgd: momentum 0.9; sgd_plain: no momentum; adamw: torch defaults (betas 0.9, 0.999)."""
LossKind = Literal["ce", "bce", "mse"]
SPLIT_SEED = 0


@dataclass(frozen=True)
class Data:
    """Preloaded tensors; the test split is held back on purpose and never built into batches."""

    train_x: Tensor
    train_y: Tensor
    val_x: Tensor
    val_y: Tensor


@dataclass(frozen=True)
class Workload:
    """One training problem: data, model factory, loss, optimiser family and budget."""

    name: str
    description: str
    family: Family
    loss_kind: LossKind
    batch_size: int
    total_steps: int
    quick_steps: int
    default_lr: float  # textbook peak LR for the family: the untuned baseline
    grid_centre: float  # centre of the peak-LR grid, placed so the grid brackets every schedule's optimum
    weight_decay: float
    load: Callable[[], Data]
    make_model: Callable[[], nn.Module]

    def budget(self, quick: bool) -> int:
        """Step budget T; quick mode shortens it so the machinery check stays in minutes."""
        return self.quick_steps if quick else self.total_steps

    def grid(self, quick: bool) -> list[float]:
        """Peak-LR grid: 7 half-decade steps (3 decades) around the grid centre; quick mode: 3 points
        a decade apart.

        A first 5-point grid around the textbook defaults put nearly every schedule's optimum on an
        edge, i.e. under-tuned baselines; the centres were moved so the grids bracket the optima.
        """
        exps = (-2, 0, 2) if quick else range(-3, 4)
        return [float(f"{self.grid_centre * 10 ** (k / 2):.3g}") for k in exps]

    def own_range(self) -> tuple[float, float]:
        """The LR range a user who knows this workload would give a tuner: the full grid's span."""
        points = self.grid(quick=False)
        return points[0], points[-1]

    def data(self) -> Data:
        """The workload's tensors, loaded once per process."""
        return _cached_data(self.name)

    def model(self, seed: int) -> nn.Module:
        """A freshly initialised model: the seed fixes the init, identically for every method."""
        torch.manual_seed(seed)
        return self.make_model()

    def batch_indices(self, seed: int, steps: int) -> Tensor:
        """Row indices for every step, shape (steps, batch): epoch-wise shuffles fixed by seed.

        Precomputed so that step s always sees the same batch whatever the method does; a tuner
        that restores snapshots does not rewind the data (it pays for fresh batches, as in life).
        """
        n = self.data().train_x.shape[0]
        gen = torch.Generator().manual_seed(10_000 + seed)
        need = steps * self.batch_size
        perms = [torch.randperm(n, generator=gen) for _ in range(need // n + 1)]
        return torch.cat(perms)[:need].view(steps, self.batch_size)

    def loss(self, model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
        """Mean loss of the model on (x, y): cross-entropy, logistic or squared error."""
        out = model(x)
        if self.loss_kind == "ce":
            return F.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1))
        if self.loss_kind == "bce":
            return F.binary_cross_entropy_with_logits(out.squeeze(-1), y)
        return F.mse_loss(out.squeeze(-1), y)

    def val_loss(self, model: nn.Module) -> float:
        """Validation loss on the held-out split (the quantity every method is judged on)."""
        d = self.data()
        with torch.no_grad():
            return float(self.loss(model, d.val_x, d.val_y))


def _split(n: int, val: float, test: float) -> tuple[np.ndarray, np.ndarray]:
    """Train and validation row indices of a fixed split; the test rows are dropped here."""
    perm = np.random.default_rng(SPLIT_SEED).permutation(n)
    n_test, n_val = int(n * test), int(n * val)
    return perm[n_test + n_val :], perm[n_test : n_test + n_val]


def _tabular(x: np.ndarray, y: np.ndarray, y_dtype: torch.dtype, standardise_y: bool = False) -> Data:
    """Split, standardise features with train statistics only, and convert to tensors."""
    tr, va = _split(len(x), 0.2, 0.2)
    mu, sd = x[tr].mean(0), x[tr].std(0) + 1e-8
    x = (x - mu) / sd
    if standardise_y:
        y = (y - y[tr].mean()) / y[tr].std()
    xt = torch.tensor(x, dtype=torch.float32)
    yt = torch.tensor(y, dtype=y_dtype)
    return Data(xt[tr], yt[tr], xt[va], yt[va])


def _digits(image: bool) -> Data:
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    tr, va = _split(len(x), 0.2, 0.2)
    xt = torch.tensor(x / 16.0, dtype=torch.float32)
    if image:
        xt = xt.view(-1, 1, 8, 8)
    yt = torch.tensor(y, dtype=torch.long)
    return Data(xt[tr], yt[tr], xt[va], yt[va])


def _breast_cancer() -> Data:
    from sklearn.datasets import load_breast_cancer

    x, y = load_breast_cancer(return_X_y=True)
    return _tabular(x, y.astype(np.float32), torch.float32)


def _diabetes() -> Data:
    from sklearn.datasets import load_diabetes

    x, y = load_diabetes(return_X_y=True)
    return _tabular(x, y.astype(np.float64), torch.float32, standardise_y=True)


LM_CONTEXT = 32


@functools.cache
def _lm_text() -> tuple[str, list[str]]:
    from pydoc_data.topics import topics

    text = "\n".join(topics[k] for k in sorted(topics))
    return text, sorted(set(text))


def _char_lm() -> Data:
    """Non-overlapping chunks of Python's own help text; 10% of chunks held out for validation."""
    text, vocab = _lm_text()
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    ids = torch.tensor(np.searchsorted(np.array([ord(c) for c in vocab], dtype=np.uint32), codes))
    n = len(ids) // (LM_CONTEXT + 1)
    chunks = ids[: n * (LM_CONTEXT + 1)].view(n, LM_CONTEXT + 1)
    tr, va = _split(n, 0.1, 0.1)
    va = va[:128]  # a fixed 128-chunk validation set keeps the 20 evaluations per run cheap
    return Data(chunks[tr, :-1], chunks[tr, 1:], chunks[va, :-1], chunks[va, 1:])


class CharTransformer(nn.Module):
    """A two-layer causal transformer over characters (pre-norm, learned positions)."""

    def __init__(self, vocab: int, dim: int = 64, layers: int = 2, heads: int = 4) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.pos = nn.Parameter(torch.zeros(LM_CONTEXT, dim))
        layer = nn.TransformerEncoderLayer(
            dim, heads, 2 * dim, dropout=0.0, batch_first=True, norm_first=True
        )
        self.blocks = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, vocab)
        mask = torch.triu(torch.full((LM_CONTEXT, LM_CONTEXT), float("-inf")), diagonal=1)
        self.register_buffer("mask", mask)

    def forward(self, x: Tensor) -> Tensor:
        n = x.shape[1]
        h = self.embed(x) + self.pos[:n]
        mask: Tensor = self.mask  # type: ignore[assignment]
        h = self.blocks(h, mask=mask[:n, :n], is_causal=True)
        out: Tensor = self.head(self.norm(h))
        return out


def _mlp(sizes: list[int]) -> nn.Module:
    layers: list[nn.Module] = []
    for a, b in itertools.pairwise(sizes):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


def _cnn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(32 * 4 * 4, 64),
        nn.ReLU(),
        nn.Linear(64, 10),
    )


LM_BYTES_CONTEXT = 64


@functools.cache
def _stdlib_bytes() -> bytes:
    """Every top-level module of the running Python's standard library, in sorted order.

    About 4.7 MB of real code and docstrings ships with every Python: 2,000 steps of 8 x 64 bytes
    read 1 MB of it, a fifth of an epoch, so the model cannot memorise its training data.
    """
    import sysconfig
    from pathlib import Path

    root = Path(sysconfig.get_paths()["stdlib"])
    return b"\n".join(path.read_bytes() for path in sorted(root.glob("*.py")))


def _lm_bytes() -> Data:
    """Byte-level chunks of the stdlib sources; the validation chunks come from held-out files."""
    raw = np.frombuffer(_stdlib_bytes(), dtype=np.uint8)
    vocab = np.unique(raw)
    ids = torch.tensor(np.searchsorted(vocab, raw), dtype=torch.long)
    n = len(ids) // (LM_BYTES_CONTEXT + 1)
    chunks = ids[: n * (LM_BYTES_CONTEXT + 1)].view(n, LM_BYTES_CONTEXT + 1)
    cut = int(0.9 * n)  # the last 10% of the text (other modules) is never trained on
    va = torch.tensor(np.random.default_rng(SPLIT_SEED).choice(n - cut, 128, replace=False)) + cut
    return Data(chunks[:cut, :-1], chunks[:cut, 1:], chunks[va, :-1], chunks[va, 1:])


def _lm_bytes_vocab() -> int:
    return len(np.unique(np.frombuffer(_stdlib_bytes(), dtype=np.uint8)))


class _Block(nn.Module):
    """Pre-norm causal self-attention + GELU MLP (GPT-2 style), attention by SDPA."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv, self.out = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.up, self.down = nn.Linear(dim, 4 * dim), nn.Linear(4 * dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        b, t, c = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(b, t, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        att = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(b, t, c)
        x = x + self.out(att)
        out: Tensor = x + self.down(F.gelu(self.up(self.norm2(x))))
        return out


class ByteGPT(nn.Module):
    """A small GPT over bytes: learned positions, pre-norm blocks, no warmup-friendly tricks."""

    def __init__(self, vocab: int, context: int, dim: int = 48, layers: int = 2, heads: int = 4) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.pos = nn.Parameter(torch.zeros(context, dim))
        self.blocks = nn.Sequential(*[_Block(dim, heads) for _ in range(layers)])
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, vocab)

    def forward(self, x: Tensor) -> Tensor:
        h = self.blocks(self.embed(x) + self.pos[: x.shape[1]])
        out: Tensor = self.head(self.norm(h))
        return out


TEACHER_SEED = 1234


def _small_cnn(width: int) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, width, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(width, 2 * width, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(2 * width * 16, 64),
        nn.ReLU(),
        nn.Linear(64, 10),
    )


def _teacher_images() -> Data:
    """A teacher-student image task: 8x8 images labelled by a fixed, random, wider CNN.

    Unlimited clean data from a known function (60,000 training images, two epochs in 2,000
    steps of 64), so the validation loss measures optimisation, not memorisation. Inputs are
    spatially smoothed noise (a 3x3 blur), so the convolutions have structure to find; labels
    are the teacher's argmax after centring each logit on its median, so the ten classes are
    balanced.
    """
    gen = torch.Generator().manual_seed(TEACHER_SEED)
    n_train, n_val = 60_000, 4_000
    x = torch.randn(n_train + n_val, 1, 10, 10, generator=gen)
    x = F.avg_pool2d(x, 3, stride=1)  # 10x10 -> 8x8, correlated neighbours
    x = (x - x.mean()) / x.std()
    with torch.random.fork_rng():
        torch.manual_seed(TEACHER_SEED)
        teacher = _small_cnn(16)
    with torch.no_grad():
        logits = teacher(x)
        logits -= logits.median(dim=0).values
        y = logits.argmax(dim=1)
    return Data(x[:n_train], y[:n_train], x[n_train:], y[n_train:])


def _friedman() -> Data:
    """sklearn's Friedman #1 regression with noise: 60,000 rows, so 3,000 steps of 64 see 3 epochs."""
    from sklearn.datasets import make_friedman1

    x, y = make_friedman1(n_samples=75_000, n_features=10, noise=1.0, random_state=SPLIT_SEED)
    return _tabular(x, y, torch.float32, standardise_y=True)


# Budgets T are sized for ~1-6 s per run on one thread; quick budgets for well under a second.
WORKLOADS: dict[str, Workload] = {
    w.name: w
    for w in [
        Workload(
            name="digits_mlp",
            description="MLP 64-256-256-10 on sklearn digits",
            family="sgd",
            loss_kind="ce",
            batch_size=32,
            total_steps=2000,
            quick_steps=200,
            default_lr=0.1,
            grid_centre=1e-2,
            weight_decay=0.0,
            load=lambda: _digits(image=False),
            make_model=lambda: _mlp([64, 256, 256, 10]),
        ),
        Workload(
            name="digits_cnn",
            description="CNN conv16-conv32-pool-fc64 on sklearn digits 8x8",
            family="adamw",
            loss_kind="ce",
            batch_size=64,
            total_steps=800,
            quick_steps=100,
            default_lr=1e-3,
            grid_centre=1e-2,
            weight_decay=0.01,
            load=lambda: _digits(image=True),
            make_model=_cnn,
        ),
        Workload(
            name="char_lm",
            description=f"2-layer causal transformer, d=64, context {LM_CONTEXT}, on pydoc_data.topics",
            family="adamw",
            loss_kind="ce",
            batch_size=16,
            total_steps=500,
            quick_steps=60,
            default_lr=1e-3,
            grid_centre=1e-2,
            weight_decay=0.01,
            load=_char_lm,
            make_model=lambda: CharTransformer(len(_lm_text()[1])),
        ),
        Workload(
            name="cancer_logreg",
            description="logistic regression on sklearn breast_cancer",
            family="sgd",
            loss_kind="bce",
            batch_size=16,
            total_steps=1000,
            quick_steps=150,
            default_lr=0.1,
            grid_centre=1e-2,
            weight_decay=0.0,
            load=_breast_cancer,
            make_model=lambda: nn.Linear(30, 1),
        ),
        Workload(
            name="diabetes_mlp",
            description="MLP 10-64-64-1 regression on sklearn diabetes (standardised target)",
            family="adamw",
            loss_kind="mse",
            batch_size=32,
            total_steps=1000,
            quick_steps=150,
            default_lr=1e-3,
            grid_centre=1e-4,
            weight_decay=0.01,
            load=_diabetes,
            make_model=lambda: _mlp([10, 64, 64, 1]),
        ),
        Workload(
            name="lm_bytes",
            description=f"byte-level GPT (2 layers, d=48, context {LM_BYTES_CONTEXT}) on the stdlib sources",
            family="adamw",
            loss_kind="ce",
            batch_size=8,
            total_steps=2000,
            quick_steps=60,
            default_lr=1e-3,
            grid_centre=1e-2,
            weight_decay=0.01,
            load=_lm_bytes,
            make_model=lambda: ByteGPT(_lm_bytes_vocab(), LM_BYTES_CONTEXT),
        ),
        Workload(
            name="teacher_cnn",
            description="CNN conv8-conv16-pool-fc64 on 8x8 images labelled by a random wider CNN",
            family="sgd",
            loss_kind="ce",
            batch_size=64,
            total_steps=2000,
            quick_steps=100,
            default_lr=0.1,
            grid_centre=3e-2,
            weight_decay=5e-4,
            load=_teacher_images,
            make_model=lambda: _small_cnn(8),
        ),
        Workload(
            name="friedman_mlp",
            description="MLP 10-128-128-1 regression on sklearn make_friedman1 (75k rows, noise 1)",
            family="sgd_plain",
            loss_kind="mse",
            batch_size=64,
            total_steps=3000,
            quick_steps=150,
            default_lr=0.01,
            grid_centre=0.1,
            weight_decay=0.0,
            load=_friedman,
            make_model=lambda: _mlp([10, 128, 128, 1]),
        ),
    ]
}


@functools.cache
def _cached_data(name: str) -> Data:
    return WORKLOADS[name].load()
