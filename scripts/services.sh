#!/usr/bin/env bash
# The servers the tests (and `make chaos`) need, on loopback only: PostgreSQL and Redis.
#   scripts/services.sh install   install the Debian packages if missing (root only), and the
#                                 test identity provider's npm packages (tests/oidc_provider)
#   scripts/services.sh up        start what is not already running; write var/services.env
#   scripts/services.sh down      stop only what `up` started
#   scripts/services.sh restart-redis   stop Redis and start it again (chaos)
#   scripts/services.sh run CMD…  install, up, run CMD with var/services.env loaded, then down
# Without the packages (and without root to install them) `up` says so and the server tests skip.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
STATE="${BULLETIN_SERVICES_DIR:-/tmp/bulletin-services-$(id -u)}"
PG_PORT="${BULLETIN_PG_PORT:-55432}"
REDIS_PORT="${BULLETIN_REDIS_PORT:-56379}"
ENV_FILE="$ROOT/var/services.env"

pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }

as_postgres() {
  # PostgreSQL refuses to run as root; everyone else runs it as themselves.
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

install() {
  local missing=()
  [ -n "$(pg_bin)" ] || missing+=(postgresql)
  command -v redis-server >/dev/null || missing+=(redis-server)
  # Real headless Chromium for the browser tests (Playwright drives Debian's build).
  [ -x /usr/bin/chromium ] || missing+=(chromium)
  # Node.js for the single sign-on tests' identity provider (tests/oidc_provider).
  command -v node >/dev/null || missing+=(nodejs)
  command -v npm >/dev/null || missing+=(npm)
  # Postfix for the bounce round trip (tests/postfix.py starts its own instance on loopback).
  [ -x /usr/sbin/postfix ] || missing+=(postfix)
  # Dovecot for fetch_bounces --imap (tests/imap_server.py starts its own on a free port).
  [ -x /usr/sbin/dovecot ] || missing+=(dovecot-imapd)
  if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
      echo "services: ${missing[*]} not installed and not root; tests that need them will skip" >&2
    else
      apt-get update -q >/dev/null
      # Postfix's package asks what kind of mail system this is: none (the tests configure theirs).
      echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
      # Should the package's own instance have started, it must not keep port 25.
      if postfix status >/dev/null 2>&1; then postfix stop >/dev/null 2>&1 || true; fi
    fi
  fi
  oidc_provider_install
}

oidc_provider_install() {
  # The provider's packages exactly as its committed lock names them; again when the lock is
  # newer than what is installed.
  local dir="$ROOT/tests/oidc_provider"
  command -v npm >/dev/null || return 0
  if [ ! -d "$dir/node_modules" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules" ]; then
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null) \
      && touch "$dir/node_modules" \
      || echo "services: npm ci in tests/oidc_provider failed; single sign-on tests will skip" >&2
  fi
}

pg_up() {
  local bin; bin="$(pg_bin)"
  [ -n "$bin" ] || return 1
  if "$bin/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT"; then return 0; fi
  mkdir -p "$STATE/pg" "$STATE/sock"
  [ "$(id -u)" = 0 ] && chown -R postgres "$STATE/pg" "$STATE/sock"
  if [ ! -f "$STATE/pg/PG_VERSION" ]; then
    as_postgres "$bin/initdb" -D "$STATE/pg" -U postgres --auth=trust -E UTF8 >/dev/null
  fi
  # fsync off: a test database that dies with the machine is simply made again.
  as_postgres "$bin/pg_ctl" -D "$STATE/pg" -l "$STATE/pg/server.log" -w -o \
    "-p $PG_PORT -c listen_addresses=127.0.0.1 -k $STATE/sock -c fsync=off -c max_connections=300" \
    start >/dev/null
  touch "$STATE/pg.started"
}

redis_up() {
  command -v redis-server >/dev/null || return 1
  if redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; then return 0; fi
  mkdir -p "$STATE"
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --daemonize yes --save '' \
    --appendonly no --dir "$STATE" --pidfile "$STATE/redis.pid" --logfile "$STATE/redis.log"
  for _ in $(seq 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
  touch "$STATE/redis.started"
}

up() {
  mkdir -p "$ROOT/var"
  : > "$ENV_FILE"
  if pg_up; then
    echo "BULLETIN_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:$PG_PORT/postgres" >> "$ENV_FILE"
  else
    echo "services: PostgreSQL is not available" >&2
  fi
  if redis_up; then
    echo "BULLETIN_TEST_REDIS_URL=redis://127.0.0.1:$REDIS_PORT" >> "$ENV_FILE"
  else
    echo "services: Redis is not available" >&2
  fi
}

down() {
  if [ -f "$STATE/pg.started" ]; then
    as_postgres "$(pg_bin)/pg_ctl" -D "$STATE/pg" -m fast -w stop >/dev/null || true
    rm -f "$STATE/pg.started"
  fi
  if [ -f "$STATE/redis.started" ]; then
    redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
    rm -f "$STATE/redis.started"
  fi
}

restart_redis() {
  redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
  for _ in $(seq 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 || break; sleep 0.1; done
  rm -f "$STATE/redis.started"
  redis_up
}

run() {
  install && up || return 1
  trap down EXIT
  set -a
  # shellcheck disable=SC1090
  . "$ENV_FILE"
  set +a
  "$@"
}

case "${1:-}" in
  run) shift; run "$@" ;;
  install) install ;;
  up) up ;;
  down) down ;;
  restart-redis) restart_redis ;;
  *) echo "usage: $0 install|up|down|restart-redis|run CMD…" >&2; exit 2 ;;
esac
