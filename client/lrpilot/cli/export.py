"""``lrpilot export JOB --format csv|json``: a job's per-step LR and loss, and its stages, for other tools.

JSON is the schedule as the service stores it (``lrpilot replay FILE`` reads it back); CSV has
one row per step: step, lr, loss, window, phase, stage, candidate.
"""

from __future__ import annotations

import argparse
import csv
import sys
from typing import TextIO

from lrpilot.cli.source import add_source_options, fetch_schedule
from lrpilot.protocol import Schedule

CSV_COLUMNS = ("step", "lr", "loss", "window", "phase", "stage", "candidate")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    command = sub.add_parser("export", help="a job's schedule as JSON or CSV (stdout, or --output FILE)")
    command.add_argument("job")
    command.add_argument("--format", choices=("json", "csv"), default="json")
    command.add_argument("--output", "-o", default=None, help="file to write; default stdout")
    add_source_options(command)
    command.set_defaults(run=run)


def write_csv(schedule: Schedule, out: TextIO) -> None:
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for step in schedule.steps:
        writer.writerow([step.step, repr(step.lr), repr(step.loss), step.window, step.phase, step.stage,
                         "" if step.candidate is None else step.candidate])  # fmt: skip


def run(args: argparse.Namespace) -> int:
    schedule = fetch_schedule(args, args.job)
    out = open(args.output, "w", newline="") if args.output else sys.stdout  # noqa: SIM115
    try:
        if args.format == "csv":
            write_csv(schedule, out)
        else:
            out.write(schedule.model_dump_json(indent=2) + "\n")
    finally:
        if args.output:
            out.close()
    if args.output:
        print(f"wrote {len(schedule.steps)} steps of job {args.job} to {args.output}", file=sys.stderr)
    return 0
