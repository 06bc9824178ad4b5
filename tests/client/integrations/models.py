"""A Hugging Face-style model for the integration tests: returns a dict with the loss when given labels."""

from __future__ import annotations

import torch


class LossModel(torch.nn.Module):
    """``forward(x, labels=None)``: ``{"logits"}``, plus ``"loss"`` (MSE) when labels are given."""

    def __init__(self, features: int = 4) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(features, 1)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        out = self.linear(x)
        return {"logits": out} if labels is None else {"loss": (out - labels).pow(2).mean(), "logits": out}
