"""``lrpilot jobs prune --older-than 30d``: delete jobs whose last report is older than that.

Over HTTP (``--url`` or ``$LRPILOT_URL``) it prunes the token's tenant; on the database itself
(``--database-url``, or neither) every tenant's jobs, or ``--tenant``'s. ``--status`` keeps the
prune to jobs in those states (e.g. ``--status done,failed``).
"""

from __future__ import annotations

import argparse
import re
from typing import Any

from lrpilot.cli.tokens import add_target_arguments, remote_url
from lrpilot.transport import HttpTransport

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
STATUSES = ("running", "stale", "done", "failed")


def duration_s(text: str) -> float:
    """``90s``, ``15m``, ``12h``, ``30d``, ``2w`` (or plain seconds) in seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*", text)
    if match is None or float(match.group(1)) <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration such as 90s, 15m, 12h, 30d or 2w")
    return float(match.group(1)) * _UNITS[match.group(2) or "s"]


def statuses(text: str) -> list[str]:
    chosen = [part.strip() for part in text.split(",") if part.strip()]
    unknown = sorted(set(chosen) - set(STATUSES))
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown status {unknown}; choose from {', '.join(STATUSES)}")
    return chosen


def register(jobs: argparse.ArgumentParser) -> None:
    """Add ``prune`` under ``lrpilot jobs`` (which still lists jobs without a subcommand)."""
    actions: Any = jobs.add_subparsers(dest="jobs_command")
    prune = actions.add_parser("prune", help="delete jobs with no report for a while")
    prune.add_argument("--older-than", type=duration_s, required=True, help="e.g. 30d, 12h, 90m")
    prune.add_argument("--status", type=statuses, default=None, help="only jobs in these states: done,failed")
    prune.add_argument("--tenant", default=None, help="database mode: only this tenant's jobs")
    add_target_arguments(prune)


def run(args: argparse.Namespace) -> int:
    url = remote_url(args)
    if url:
        transport = HttpTransport(url)
        try:
            deleted = transport.prune(args.older_than, args.status)
        finally:
            transport.close()
    else:
        from lrpilot_service.store import open_repository
        from lrpilot_service.store.db import resolve_database_url

        repository = open_repository(resolve_database_url(args.database_url), pool_size=1)
        try:
            deleted = repository.prune(args.older_than, tenant=args.tenant, statuses=args.status)
        finally:
            repository.close()
    print(f"deleted {deleted} job(s) with no report for {args.older_than:g}s")
    return 0
