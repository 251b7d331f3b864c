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
#
# Usage: scripts/schemathesis.sh [schemathesis run args...]
# Env:   ST_MAX_EXAMPLES (default 40)  ST_WORKERS (default 2)  ST_PORT (default: a free port)
#        PROCTOR_BIN (default: build bin/proctor)  ST_KEEP=1 keeps the data dir and server log
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
kport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base=http://127.0.0.1:$port
export PROCTOR_DATA_DIR=$work/data PROCTOR_ADDR=127.0.0.1:$port PROCTOR_LOG_LEVEL=warn
export PROCTOR_KAFKA_TOPIC_PREFIX=st

server=
cleanup() {
  local rc=$?
  if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
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
echo "schemathesis.sh: proctor serve ready on $base ($(( $(date +%s) - t0 ))s)"

"$st" --no-color --config-file scripts/schemathesis.toml run "$base/openapi.yaml" \
  --url "$base" \
  --header "Authorization: Bearer $admin_key" \
  --checks all \
  --max-examples "${ST_MAX_EXAMPLES:-40}" \
  --workers "${ST_WORKERS:-2}" \
  --seed "${ST_SEED:-1}" \
  --request-timeout 30 \
  --report junit --report-dir "$work/report" \
  "$@"
echo "schemathesis.sh: ok ($(( $(date +%s) - t0 ))s)"
