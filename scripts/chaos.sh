#!/usr/bin/env bash
# `make chaos`: bring up PostgreSQL and Redis on loopback (as make test does), run the chaos
# scenario, stop what was started. Extra arguments go to `python -m tests.chaos`.
set -uo pipefail
cd "$(dirname "$0")/.."
scripts/services.sh install || exit 1
scripts/services.sh up || exit 1
trap 'scripts/services.sh down' EXIT
set -a
# shellcheck disable=SC1091
. var/services.env
set +a
.venv/bin/python -m tests.chaos "$@"
