"""Base classes for framework callbacks that exist whether or not the framework is installed.

If the framework is importable we subclass its real callback class (frameworks check with
``isinstance`` and call every hook by name); otherwise a stand-in answers every ``on_*`` hook
with a no-op, so the callback can be built and unit-tested without the framework.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import Any


def _noop(*args: Any, **kwargs: Any) -> None:
    return None


class HookStandIn:
    """Every hook the framework may call exists and does nothing unless overridden."""

    def __getattr__(self, name: str) -> Callable[..., None]:
        if name.startswith("on_") or name in ("setup", "teardown"):
            return _noop
        raise AttributeError(name)

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        return None


def framework_base(candidates: Sequence[tuple[str, str]]) -> type:
    """The first importable ``(module, class)`` of ``candidates``, else :class:`HookStandIn`."""
    for module_name, class_name in candidates:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        base = getattr(module, class_name, None)
        if isinstance(base, type):
            return base
    return HookStandIn
