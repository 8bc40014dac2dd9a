#!/usr/bin/env bash
# `make test`: the whole suite on SQLite, then again on PostgreSQL with the scale-out tests.
# Run through `scripts/services.sh run`, which provides PostgreSQL, Redis and Chromium.
#
# Both passes are asked for. BULLETIN_SKIP_POSTGRES=1 asks for the SQLite pass only; otherwise
# a PostgreSQL pass that cannot run (no BULLETIN_TEST_POSTGRES_URL) fails the run with one line
# saying why: a pass that silently did not run is not a pass.
set -uo pipefail
cd "$(dirname "$0")/.."

# pytest exits 5 when it collected nothing: a broken suite, not a pass.
pytest() {
  .venv/bin/python -m pytest "$@"
  local status=$?
  if [ $status -eq 5 ]; then echo "no tests were collected" >&2; return 1; fi
  return $status
}

echo "== SQLite"
pytest -m "not scale_out" || exit 1

if [ "${BULLETIN_SKIP_POSTGRES:-}" = 1 ]; then
  echo "== PostgreSQL: skipped (BULLETIN_SKIP_POSTGRES=1)"
  exit 0
fi
if [ -z "${BULLETIN_TEST_POSTGRES_URL:-}" ]; then
  echo "PostgreSQL pass cannot run: BULLETIN_TEST_POSTGRES_URL is not set" \
    "(scripts/services.sh could not start PostgreSQL); set BULLETIN_SKIP_POSTGRES=1 to skip it" >&2
  exit 1
fi
echo "== PostgreSQL"
# Once is enough for what does not depend on the database: the DST tables, the properties and
# the MIME writer and the working-window tables are pure Python; who may open what is decided in the views, not in SQL; the
# settings, security and deploy checks read the environment, not the database.
once_is_enough=(
  test_scheduling_rules.py test_schedule_properties.py test_parser_properties.py test_mime.py
  test_working_windows.py test_working_properties.py test_fuzz.py
  test_authorisation.py test_config.py test_security.py test_deploy_check.py
)
DATABASE_URL="${BULLETIN_TEST_POSTGRES_URL%/*}/bulletin" \
  pytest "${once_is_enough[@]/#/--ignore=tests/}" || exit 1
