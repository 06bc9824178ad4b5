"""Where the read commands (jobs, show, export, plot, replay) find jobs: a service URL or a local file."""

from __future__ import annotations

import argparse
import os

from lrpilot.protocol import DEFAULT_TENANT, Schedule
from lrpilot.transport import AdminTransport, HttpTransport, embedded_transport


def add_source_options(command: argparse.ArgumentParser) -> None:
    command.add_argument("--url", default=None, help="service URL; default $LRPILOT_URL, else the local file")
    command.add_argument("--database-url", default=None, help="embedded mode database (no --url)")
    command.add_argument("--tenant", default=None, help=f"default: the token's, else {DEFAULT_TENANT!r}")


def open_transport(args: argparse.Namespace) -> AdminTransport:
    url = args.url or (None if args.database_url else os.environ.get("LRPILOT_URL"))
    if url:
        return HttpTransport(url, tenant=args.tenant)
    return embedded_transport(args.database_url, tenant=args.tenant)


def fetch_schedule(args: argparse.Namespace, job: str) -> Schedule:
    """The job's schedule from wherever ``args`` point; the transport is closed again."""
    transport = open_transport(args)
    try:
        return transport.schedule(job)
    finally:
        transport.close()
