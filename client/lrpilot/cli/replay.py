"""``lrpilot replay FILE_OR_JOB``: the schedule to replay without the service, in a file the scheduler reads.

Prints what will be replayed and how to use it (``lrpilot.replay.ReplayScheduler``).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from lrpilot.cli.source import add_source_options
from lrpilot.errors import LrpilotError
from lrpilot.replay import load_schedule


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    command = sub.add_parser(
        "replay", help="write a job's kept LR path for ReplayScheduler (no service needed)"
    )
    command.add_argument(
        "source", metavar="FILE_OR_JOB", help="`lrpilot export` JSON/CSV file, or a job name"
    )
    command.add_argument("--output", "-o", default=None, help="where to write the LRs; default NAME.lrs.json")
    command.add_argument("--all-steps", action="store_true", help="keep the search tries too")
    add_source_options(command)
    command.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    url = args.url
    if not url and args.database_url:  # the embedded mode reads its database from the environment
        os.environ["LRPILOT_DATABASE_URL"] = args.database_url
    lrs = load_schedule(args.source, all_steps=args.all_steps, url=url, tenant=args.tenant)
    if not lrs:
        raise LrpilotError(f"{args.source} has no steps to replay yet (the job reported none outside search)")
    name = Path(args.source).stem if Path(args.source).is_file() else args.source.replace("/", "_")
    output = Path(args.output or f"{name}.lrs.json")
    output.write_text(json.dumps({"source": args.source, "all_steps": args.all_steps, "lrs": lrs}))
    print(
        f"{len(lrs)} steps to replay, LR from {lrs[0]:.4g} to {lrs[-1]:.4g} "
        f"(range {min(lrs):.4g}..{max(lrs):.4g})"
    )
    print(f"wrote {output}; in your training script:\n")
    print("    from lrpilot.replay import ReplayScheduler, load_schedule")
    print(f'    scheduler = ReplayScheduler(optimizer, load_schedule("{output}"))')
    print("    # ... optimizer.step(); scheduler.step()  (every step)")
    return 0
