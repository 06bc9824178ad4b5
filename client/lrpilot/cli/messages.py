"""What the CLI says when something fails: in the command's words, with the next thing to type."""

from __future__ import annotations

import argparse

from lrpilot.errors import JobNotFoundError, LrpilotError, ServiceUnavailableError

#: The import that failed -> what to install.
_EXTRAS = {
    "lrpilot_service": "the service: pip install 'lrpilot[server]'",
    "uvicorn": "the service: pip install 'lrpilot[server]'",
    "fastapi": "the service: pip install 'lrpilot[server]'",
    "sqlalchemy": "the service: pip install 'lrpilot[server]'",
    "torch": "PyTorch: pip install 'lrpilot[torch]'",
    "matplotlib": "plotting: pip install 'lrpilot[plot]'",
    "sklearn": "the demo's data set: pip install scikit-learn",
}


def missing_dependency(error: ImportError) -> str:
    """'needs X: pip install ...' for a module of an optional extra, else the error's own words."""
    module = (error.name or "").split(".")[0]
    if module in _EXTRAS:
        return f"needs {_EXTRAS[module]}"
    return str(error)


def explain(error: LrpilotError, args: argparse.Namespace) -> str:
    """The service's message, with the CLI's way out for the common cases."""
    job = getattr(args, "job", None) or getattr(args, "source", None)
    if isinstance(error, JobNotFoundError):
        where = f"at {args.url}" if getattr(args, "url", None) else "in this database (or $LRPILOT_URL)"
        tenant = getattr(args, "tenant", "default")
        return f"no job {job!r} for tenant {tenant!r} {where}: `lrpilot jobs` lists them"
    if isinstance(error, ServiceUnavailableError):
        return (
            f"cannot reach the lrpilot service ({error.detail}); start it with `lrpilot serve`, "
            "or point --url / LRPILOT_URL at a running one"
        )
    return error.detail
