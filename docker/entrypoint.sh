#!/bin/sh
# Container entrypoint: migrate the schema, then become the server.
# `exec` makes the server PID 1's replacement, so `docker stop` (SIGTERM) shuts it down cleanly.
# Settings come from LRPILOT_* variables (LRPILOT_DATABASE_URL, LRPILOT_WORKERS, ...).
set -eu

lrpilot db upgrade
exec lrpilot serve --host 0.0.0.0 --port "${LRPILOT_PORT:-8000}" "$@"
