#!/usr/bin/env bash
# Property-based tests of the HTTP API against its own document (api/openapi.yaml) with
# Schemathesis (pinned in scripts/schemathesis-requirements.txt): every operation with generated
# valid and invalid requests, every check (no 5xx but 503, status codes and headers the document
# lists, bodies that match their schemas, invalid requests rejected, valid ones accepted, 405 for
# unknown methods, ...), then the stateful phase over the document's links. Fails on any failure.
#
# It starts `proctor serve` on the embedded defaults (in-process Kafka-protocol broker, SQLite)
# with a fresh data directory on a free port, creates an API key for each scope and runs
# Schemathesis with the admin key (admin implies every scope), bounded in examples and time.
# With ST_DATABASE_DSN (a PostgreSQL DSN whose user may create databases) it uses a fresh
# database on that server instead of SQLite, dropped afterwards: scripts/test.sh does both.
#
# Usage: scripts/schemathesis.sh [schemathesis run args...]
# Env:   ST_MAX_EXAMPLES (default 100 per operation: about 2 minutes on two cores)  ST_SEED (default 1:
#        the same cases every run; another seed explores others)  ST_WORKERS (default 1: with
#        more, Schemathesis's threads can trip CPython 3.11's "AST constructor recursion depth
#        mismatch", a run error of the tool, not of the API)
#        ST_TIMEOUT (default 420 s: the run fails past it)  ST_PORT (default: a free port)
#        PROCTOR_BIN (default: build bin/proctor)  ST_KEEP=1 keeps the data dir, server log and reports
# Settings a schema cannot express (binary files, the event stream): scripts/schemathesis.toml.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
t0=$(date +%s)

scripts/schemathesis-setup.sh
cache=${PROCTOR_CACHE_DIR:-$root/.cache}
st=$cache/schemathesis-venv/bin/schemathesis

bin=${PROCTOR_BIN:-}
if [ -z "$bin" ]; then
  go build -o bin/proctor ./cmd/proctor
  bin=$root/bin/proctor
fi

work=$(mktemp -d /tmp/proctor-schemathesis.XXXXXX)
port=${ST_PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
base=http://127.0.0.1:$port
export PROCTOR_DATA_DIR=$work/data PROCTOR_ADDR=127.0.0.1:$port PROCTOR_LOG_LEVEL=warn
export PROCTOR_KAFKA_TOPIC_PREFIX=st

# PostgreSQL: a database of its own, named after the work directory.
pgdb=
if [ -n "${ST_DATABASE_DSN:-}" ]; then
  psql=${PG_BIN:-/usr/lib/postgresql/15/bin}/psql
  pgdb=proctor_st_$(basename "$work" | tr -dc 'a-zA-Z0-9' | tr 'A-Z' 'a-z')
  "$psql" -X -q -v ON_ERROR_STOP=1 -d "$ST_DATABASE_DSN" -c "create database $pgdb" >/dev/null
  export PROCTOR_DATABASE_DSN="$(sed -E 's/(^| )dbname=[^ ]*//' <<<"$ST_DATABASE_DSN") dbname=$pgdb"
  # PostgreSQL has no default encryption key: a throwaway one for this run.
  printf 'st-%s %s\n' "$(basename "$work")" "$(head -c 32 /dev/urandom | base64 -w0)" > "$work/encryption.key"
  export PROCTOR_ENCRYPTION_KEY_FILE=$work/encryption.key
fi

server=
cleanup() {
  local rc=$?
  if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  if [ -n "$pgdb" ]; then "$psql" -X -q -d "$ST_DATABASE_DSN" -c "drop database if exists $pgdb" >/dev/null 2>&1 || true; fi
  if [ "$rc" != 0 ]; then
    echo "schemathesis.sh: FAILED (exit $rc) after $(( $(date +%s) - t0 ))s; server log: $work/serve.log" >&2
    tail -n 30 "$work/serve.log" >&2 2>/dev/null || true
  elif [ "${ST_KEEP:-0}" != 1 ]; then
    rm -rf "$work"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$bin" migrate >/dev/null
key() { "$bin" keys create --org st-org --name "schemathesis-$1" --scopes "$1" | grep -o 'pk_[A-Za-z0-9_-]*' | head -1; }
admin_key=$(key admin)
ingest_key=$(key ingest)
review_key=$(key review)
data_key=$(key data)
for k in "$admin_key" "$ingest_key" "$review_key" "$data_key"; do
  [ -n "$k" ] || { echo "schemathesis.sh: proctor keys create printed no key" >&2; exit 1; }
done

"$bin" serve >"$work/serve.log" 2>&1 &
server=$!
for _ in $(seq 1 120); do
  curl -fsS -o /dev/null "$base/readyz" 2>/dev/null && break
  kill -0 "$server" 2>/dev/null || { echo "schemathesis.sh: proctor serve exited" >&2; exit 1; }
  sleep 0.5
done
curl -fsS -o /dev/null "$base/readyz" || { echo "schemathesis.sh: $base/readyz never answered 200" >&2; exit 1; }
echo "schemathesis.sh: proctor serve ready on $base, database ${pgdb:-SQLite in $work/data} ($(( $(date +%s) - t0 ))s)"

deadline=$(( $(date +%s) + ${ST_TIMEOUT:-420} ))
st_run() { # schemathesis run with the shared options, within what is left of ST_TIMEOUT
  local left=$(( deadline - $(date +%s) ))
  [ "$left" -gt 0 ] || { echo "schemathesis.sh: out of time (ST_TIMEOUT=${ST_TIMEOUT:-420}s)" >&2; return 1; }
  timeout --kill-after=10 "$left" "$st" --no-color --config-file scripts/schemathesis.toml run "$base/openapi.yaml" \
    --url "$base" --workers "${ST_WORKERS:-1}" --seed "${ST_SEED:-1}" --request-timeout 30 "$@"
}

# Every operation with every check, as admin (admin implies every scope): examples, boundary
# cases (coverage), random valid and invalid requests (fuzzing), and the stateful phase over the
# links Schemathesis infers (a created key, label or export is then read, used and deleted).
st_run --header "Authorization: Bearer $admin_key" --checks all --max-examples "${ST_MAX_EXAMPLES:-100}" \
  --report junit --report-dir "$work/report" "$@"

# Then briefly with each narrower key: routes of other scopes answer 403, as documented.
for scope in ingest review data; do
  key_var=${scope}_key
  echo "schemathesis.sh: as a '$scope' key"
  st_run --header "Authorization: Bearer ${!key_var}" --phases fuzzing --max-examples 3 \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance \
    "$@" | tail -n 12
done
echo "schemathesis.sh: ok ($(( $(date +%s) - t0 ))s)"
