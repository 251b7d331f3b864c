#!/usr/bin/env bash
# A throwaway PostgreSQL 15 cluster on 127.0.0.1 for tests, with database proctor_test.
#
# Usage: scripts/postgres.sh start|stop|status|halt|resume
#   halt / resume: stop the server keeping its data, start it again (outage tests)
# Env:   PGPORT_TEST (default 55432)  PG_BIN (default /usr/lib/postgresql/15/bin)
# Data lives in /tmp/proctor-pg-$PGPORT_TEST; `stop` removes it. Loopback only, trust auth:
# never use this for anything but tests.
set -euo pipefail
port=${PGPORT_TEST:-55432}
bin=${PG_BIN:-/usr/lib/postgresql/15/bin}
base=/tmp/proctor-pg-$port
data=$base/data
db=proctor_test
dsn="host=127.0.0.1 port=$port user=postgres dbname=$db sslmode=disable"

say() { echo "postgres: $*"; }
die() { echo "postgres: $*" >&2; exit 1; }

# initdb and the server refuse to run as root: run them as the postgres OS user (created by the
# postgresql-common package) when we are root, as ourselves otherwise.
if [ "$(id -u)" = 0 ]; then
  id -u postgres >/dev/null 2>&1 ||
    useradd --system --user-group --home-dir /var/lib/postgresql --shell /bin/bash postgres
  owner=postgres
  # cd /: the postgres user may not be allowed into the caller's directory (e.g. under /root).
  as_owner() { (cd / && runuser -u postgres -- "$@"); }
else
  owner=$(id -un)
  as_owner() { "$@"; }
fi

psql_() { "$bin/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres "$@"; }
running() { [ -f "$data/PG_VERSION" ] && as_owner "$bin/pg_ctl" status -D "$data" >/dev/null 2>&1; }
ready_line() {
  say "ready DSN=$dsn"
  say "server $(psql_ -d "$db" -Atc 'select version()' | sed 's/ on x86_64.*//;s/, compiled by.*//')"
}

start() {
  [ -x "$bin/initdb" ] || die "$bin/initdb not found: run scripts/setup.sh (installs postgresql-15)"
  if running; then ready_line; return 0; fi
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then die "127.0.0.1:$port is in use by another process (set PGPORT_TEST)"; fi

  rm -rf "$base"
  mkdir -p "$base"
  chown "$owner" "$base"
  chmod 700 "$base"
  as_owner "$bin/initdb" -D "$data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >"$base/initdb.log" 2>&1 ||
    { cat "$base/initdb.log" >&2; die "initdb failed"; }
  # Test-only server: loopback TCP, socket in our own dir (/var/run/postgresql may not exist),
  # durability off for speed, enough connections for parallel go test packages.
  cat >> "$data/postgresql.conf" <<EOF

# scripts/postgres.sh (throwaway test cluster)
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$base'
max_connections = 200
fsync = off
synchronous_commit = off
full_page_writes = off
log_min_messages = warning
EOF
  as_owner "$bin/pg_ctl" start -D "$data" -l "$base/server.log" -w -t 60 >/dev/null ||
    { tail -n 30 "$base/server.log" >&2 || true; die "server did not start"; }
  psql_ -d postgres -c "create database $db" >/dev/null
  ready_line
}

stop() {
  if running; then
    as_owner "$bin/pg_ctl" stop -D "$data" -m fast -w -t 60 >/dev/null
    say "stopped (port $port)"
  else
    say "not running on port $port"
  fi
  rm -rf "$base"
}

# halt stops the server but keeps the cluster, so resume brings the same data back.
halt() {
  running || die "not running on port $port"
  as_owner "$bin/pg_ctl" stop -D "$data" -m fast -w -t 60 >/dev/null
  say "halted (port $port, data kept in $data)"
}

resume() {
  [ -f "$data/PG_VERSION" ] || die "no cluster in $data: use start"
  if running; then ready_line; return 0; fi
  as_owner "$bin/pg_ctl" start -D "$data" -l "$base/server.log" -w -t 60 >/dev/null ||
    { tail -n 30 "$base/server.log" >&2 || true; die "server did not start"; }
  ready_line
}

status() {
  if running; then ready_line; else say "not running on port $port"; return 1; fi
}

case ${1:-} in
  start) start ;;
  stop) stop ;;
  status) status ;;
  halt) halt ;;
  resume) resume ;;
  *) echo "usage: $0 start|stop|status|halt|resume" >&2; exit 2 ;;
esac
