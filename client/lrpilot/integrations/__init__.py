"""Adapters from lrpilot to training frameworks (PyTorch, Lightning, Hugging Face, DDP)."""
