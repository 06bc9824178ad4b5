"""The ``lrpilot`` command: a thin argparse layer over the service, the transports and the demo.

Every heavy import (the service, torch, the benchmark) happens inside the subcommand that needs
it, so ``lrpilot jobs --url ...`` starts fast on a machine with only the client installed.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from lrpilot.errors import LrpilotError
from lrpilot.tables import jobs_table, stages_table
from lrpilot.transport import DEFAULT_DATABASE_URL, HttpTransport, InProcessTransport


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lrpilot", description="Online learning-rate schedule tuner.")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the REST service (needs lrpilot[server])")
    serve.add_argument("--host", default=None, help="default $LRPILOT_HOST or 127.0.0.1")
    serve.add_argument("--port", type=int, default=None, help="default $LRPILOT_PORT or 8000")
    serve.add_argument("--database-url", default=None, help="default $LRPILOT_DATABASE_URL or ./lrpilot.db")
    serve.add_argument("--workers", type=int, default=None)
    serve.add_argument(
        "--log-level", default=None, choices=["critical", "error", "warning", "info", "debug", "trace"]
    )

    db = sub.add_parser("db", help="database maintenance")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    upgrade = db_sub.add_parser("upgrade", help="apply the schema migrations")
    upgrade.add_argument("--database-url", default=None)

    for name, text in (
        ("jobs", "list jobs"),
        ("show", "a job's stages and candidates"),
        ("export", "schedule JSON"),
    ):
        command = sub.add_parser(name, help=text)
        if name != "jobs":
            command.add_argument("job")
        command.add_argument(
            "--url", default=None, help="service URL; default $LRPILOT_URL, else the local file"
        )
        command.add_argument("--database-url", default=None, help="embedded mode database (no --url)")
        command.add_argument("--tenant", default="default")

    demo = sub.add_parser("demo", help="tune an MLP on the digits data set against a local service")
    demo.add_argument("--steps", type=int, default=1500)
    demo.add_argument("--out", default="lrpilot-demo")
    demo.add_argument("--port", type=int, default=None)
    demo.add_argument("--seed", type=int, default=0)

    sub.add_parser("bench", help="run the benchmarks (arguments go to the bench command)", add_help=False)
    return parser


def _transport(args: argparse.Namespace) -> HttpTransport | InProcessTransport:
    url = args.url or (None if args.database_url else os.environ.get("LRPILOT_URL"))
    if url:
        return HttpTransport(url, tenant=args.tenant)
    database_url = args.database_url or os.environ.get("LRPILOT_DATABASE_URL") or DEFAULT_DATABASE_URL
    return InProcessTransport(database_url, tenant=args.tenant)


def _read(args: argparse.Namespace) -> int:
    transport = _transport(args)
    try:
        if args.command == "jobs":
            print(jobs_table(transport.list_jobs()))
        elif args.command == "show":
            print(stages_table(transport.schedule(args.job)))
        else:
            print(transport.schedule(args.job).model_dump_json(indent=2))
    finally:
        transport.close()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["bench"]:  # everything after "bench" belongs to the bench command
        try:
            bench: object = importlib.import_module("bench.cli")
        except ModuleNotFoundError as exc:
            print(
                f"lrpilot bench needs the benchmark package from a checkout of lrpilot ({exc})",
                file=sys.stderr,
            )
            return 2
        return int(getattr(bench, "main")(argv[1:]) or 0)  # noqa: B009
    args = _parser().parse_args(argv)
    try:
        if args.command == "serve":
            from lrpilot_service.api.serve import run

            run(args.host, args.port, args.database_url, args.workers, args.log_level)
        elif args.command == "db":
            from lrpilot_service.store.migrate import upgrade

            upgrade(args.database_url or os.environ.get("LRPILOT_DATABASE_URL") or DEFAULT_DATABASE_URL)
        elif args.command == "demo":
            from lrpilot.demo import run_demo

            run_demo(steps=args.steps, out=args.out, port=args.port, seed=args.seed)
        else:
            return _read(args)
    except LrpilotError as exc:
        print(f"lrpilot: {exc.detail}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `lrpilot export JOB | head`
        sys.stderr.close()
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
