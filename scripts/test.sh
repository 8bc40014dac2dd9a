#!/usr/bin/env bash
# `make test`: the whole suite on SQLite and, at the same time, on PostgreSQL with the
# scale-out tests. Run through `scripts/services.sh run`, which provides PostgreSQL, Redis and
# Chromium.
#
# Both passes are asked for. BULLETIN_SKIP_POSTGRES=1 asks for the SQLite pass only; otherwise
# a PostgreSQL pass that cannot run (no BULLETIN_TEST_POSTGRES_URL) fails the run at once, with
# one line saying why: a pass that silently did not run is not a pass.
#
# Why at the same time: each pass keeps about one core busy (pytest is one process; the servers
# and processes a test starts mostly wait on it), and this machine has two. Run one after the
# other they took 14 + 16 minutes here; side by side, see the closing line. They share nothing a
# test writes: the SQLite pass's databases are files under its own --basetemp, the PostgreSQL
# pass's are on the server, and every server a test starts (SMTP, Postfix, Dovecot, the identity
# provider, the loopback Slack and Teams) listens on a free port of its own.
set -uo pipefail
cd "$(dirname "$0")/.."

# pytest exits 5 when it collected nothing: a broken suite, not a pass.
collected() {
  if [ "$1" -eq 5 ]; then echo "no tests were collected" >&2; return 1; fi
  return "$1"
}
pytest() {
  .venv/bin/python -m pytest "$@"
  collected $?
}

# Once is enough for what does not depend on the database: the DST tables, the properties and
# the MIME writer and the working-window tables are pure Python; who may open what is decided in
# the views, not in SQL; the settings, security and deploy checks read the environment, not the
# database.
once_is_enough=(
  test_scheduling_rules.py test_schedule_properties.py test_parser_properties.py test_mime.py
  test_working_windows.py test_working_properties.py test_fuzz.py
  test_authorisation.py test_config.py test_security.py test_deploy_check.py
)
# The slowest tests of each pass, so that a run that got slower says where.
report=(--durations=15)

if [ "${BULLETIN_SKIP_POSTGRES:-}" = 1 ]; then
  echo "== SQLite"
  pytest -m "not scale_out" "${report[@]}" || exit 1
  echo "== PostgreSQL: skipped (BULLETIN_SKIP_POSTGRES=1)"
  exit 0
fi
if [ -z "${BULLETIN_TEST_POSTGRES_URL:-}" ]; then
  echo "PostgreSQL pass cannot run: BULLETIN_TEST_POSTGRES_URL is not set" \
    "(scripts/services.sh could not start PostgreSQL); set BULLETIN_SKIP_POSTGRES=1 to skip it" >&2
  exit 1
fi

runs="$(mktemp -d)"
postgres=""
# Should this script end early, the pass in the background ends with it.
trap '[ -n "$postgres" ] && kill "$postgres" 2>/dev/null; rm -rf "$runs"' EXIT
started=$SECONDS
# The PostgreSQL pass in the background, printed whole when it ends; the SQLite pass as it goes.
# (pytest itself, not the function: $postgres is then its own pid, for the trap above.)
DATABASE_URL="${BULLETIN_TEST_POSTGRES_URL%/*}/bulletin" \
  .venv/bin/python -m pytest "${once_is_enough[@]/#/--ignore=tests/}" "${report[@]}" \
  --basetemp="$runs/postgres" >"$runs/postgres.out" 2>&1 &
postgres=$!
echo "== SQLite (the PostgreSQL pass runs beside it, printed when it ends)"
pytest -m "not scale_out" "${report[@]}" --basetemp="$runs/sqlite"
sqlite_status=$?
wait $postgres
postgres_status=$?
postgres=""
echo "== PostgreSQL"
cat "$runs/postgres.out"
collected $postgres_status
postgres_status=$?

echo "== both passes in $(((SECONDS - started) / 60)) min $(((SECONDS - started) % 60)) s:" \
  "SQLite exit $sqlite_status, PostgreSQL exit $postgres_status"
[ $sqlite_status -eq 0 ] && [ $postgres_status -eq 0 ]
