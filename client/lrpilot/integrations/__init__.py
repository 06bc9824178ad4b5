"""Adapters from lrpilot to training frameworks (PyTorch, Lightning, Hugging Face, DDP).

``grad_norm(parameters)`` is the gradient norm the integrations report (``torch.nn.utils.get_total_norm``).
"""

from lrpilot.integrations._wiring import total_grad_norm as grad_norm

__all__ = ["grad_norm"]
