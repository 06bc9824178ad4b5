"""The ``lrpilot`` command: a thin argparse layer over the service, the transports and the demo.

The CLI is the one part of the client package that may import the service (``serve``, ``db``):
it is where both sides meet. Every heavy import (the service, torch, the benchmark) happens inside
the subcommand that needs it, so ``lrpilot jobs --url ...`` starts fast on a machine with only
the client installed.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from lrpilot import __version__
from lrpilot.cli import export, plot, prune, replay, tokens
from lrpilot.cli.messages import explain, missing_dependency
from lrpilot.cli.source import add_source_options, open_transport
from lrpilot.cli.tables import jobs_table, stages_table
from lrpilot.errors import LrpilotError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lrpilot", description="Online learning-rate schedule tuner.")
    parser.add_argument("--version", action="version", version=f"lrpilot {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the REST service (needs lrpilot[server])")
    serve.add_argument("--host", default=None, help="default $LRPILOT_HOST or 127.0.0.1")
    serve.add_argument("--port", type=int, default=None, help="default $LRPILOT_PORT or 8000")
    serve.add_argument("--database-url", default=None, help="default $LRPILOT_DATABASE_URL or ./lrpilot.db")
    serve.add_argument("--workers", type=int, default=None)
    serve.add_argument("--log-level", default=None, help="default $LRPILOT_LOG_LEVEL or info")
    serve.add_argument(
        "--auth",
        choices=("required", "off"),
        default=None,
        help="bearer tokens; default $LRPILOT_AUTH, else required unless --host is a loopback address",
    )

    db = sub.add_parser("db", help="database maintenance")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    upgrade = db_sub.add_parser("upgrade", help="apply the schema migrations")
    upgrade.add_argument("--database-url", default=None)

    for name, text in (("jobs", "list jobs"), ("show", "a job's stages and candidates, and why")):
        command = sub.add_parser(name, help=text)
        if name != "jobs":
            command.add_argument("job")
        add_source_options(command)
        if name == "jobs":
            prune.register(command)
    for module in (export, plot, replay):
        module.register(sub)

    demo = sub.add_parser("demo", help="tune an MLP on the digits data set against a local service")
    demo.add_argument("--steps", type=int, default=1500)
    demo.add_argument("--out", default="lrpilot-demo")
    demo.add_argument("--port", type=int, default=None)
    demo.add_argument("--seed", type=int, default=0)

    sub.add_parser("bench", help="run the benchmarks (arguments go to the bench command)", add_help=False)
    tokens.register(sub)
    return parser


def _read(args: argparse.Namespace) -> int:
    transport = open_transport(args)
    try:
        if args.command == "jobs":
            print(jobs_table(transport.list_jobs()))
        else:
            print(stages_table(transport.schedule(args.job)))
    finally:
        transport.close()
    return 0


def _bench_module() -> Any:
    """``bench.cli`` of the checkout: the working directory's, else the one this package came from."""
    source_root = Path(__file__).resolve().parents[3]  # client/lrpilot/cli/__init__.py -> repository
    for root in (Path.cwd(), source_root):
        if (root / "bench" / "cli.py").is_file():
            if str(root) not in sys.path:
                sys.path.insert(0, str(root))
            return importlib.import_module("bench.cli")
    return None


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["bench"]:  # everything after "bench" belongs to the bench command
        bench = _bench_module()
        if bench is None:
            print(
                "lrpilot bench needs a checkout of lrpilot (the benchmark is not installed with the "
                "package): run it from the repository root, or `python -m bench.cli` there",
                file=sys.stderr,
            )
            return 2
        return int(bench.main(argv[1:]) or 0)
    args = _parser().parse_args(argv)
    try:
        if args.command == "serve":
            from lrpilot_service.api.serve import run

            run(args.host, args.port, args.database_url, args.workers, args.log_level, args.auth)
        elif args.command == "db":
            from lrpilot_service.store.migrate import upgrade

            upgrade(args.database_url)
        elif args.command in ("tokens", "tenants"):
            return tokens.run(args)
        elif args.command == "jobs" and getattr(args, "jobs_command", None) == "prune":
            return prune.run(args)
        elif args.command == "demo":
            from lrpilot.cli.demo import run_demo

            run_demo(steps=args.steps, out=args.out, port=args.port, seed=args.seed)
        elif hasattr(args, "run"):
            return int(args.run(args))
        else:
            return _read(args)
    except LrpilotError as exc:
        print(f"lrpilot: {explain(exc, args)}", file=sys.stderr)
        return 1
    except ImportError as exc:  # a client-only install: say what to install, not a traceback
        print(f"lrpilot {args.command}: {missing_dependency(exc)}", file=sys.stderr)
        return 2
    except ValidationError as exc:  # a setting out of range (e.g. --log-level): say which, and why
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        print(f"lrpilot: invalid setting: {problems}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `lrpilot export JOB | head`
        sys.stderr.close()
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
