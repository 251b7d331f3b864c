#!/usr/bin/env bash
# The fault suite (issue #19): Apache Kafka + PostgreSQL, one `proctor api` and two
# `proctor worker` processes on loopback; SIGKILLed workers, a broker restart, a database
# restart, a poison message, a burst far above the workers' capacity. Prints, per fault, frames
# posted / stored / lost / duplicated, flags expected / raised, the longest wait (failover) and
# the p99 ingest latency; exits non-zero on any loss. About 4 minutes on two cores.
#
# Usage: scripts/faults.sh [proctor faults flags...]   e.g. --only poison,burst  --sessions 2
# Env:   KAFKA_PORT (default 39092)  PGPORT_TEST (default 56950): instances of its own, started
#        and stopped here (the broker and database restarts must not hit anyone else's)
# Needs scripts/setup.sh to have run (models, Kafka jars, PostgreSQL). CI does not run it.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export KAFKA_PORT=${KAFKA_PORT:-39092} PGPORT_TEST=${PGPORT_TEST:-56950}
for port in "$KAFKA_PORT" "$((KAFKA_PORT + 1))" "$PGPORT_TEST"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "faults.sh: 127.0.0.1:$port is in use: set KAFKA_PORT / PGPORT_TEST to free ports" >&2; exit 1
  fi
done

cleanup() {
  local rc=$?
  scripts/postgres.sh stop >/dev/null 2>&1 || true
  scripts/kafka.sh stop >/dev/null 2>&1 || true
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

go build -o bin/proctor ./cmd/proctor
scripts/kafka.sh start
pg_out=$(scripts/postgres.sh start)
echo "$pg_out"
dsn=$(sed -n 's/^postgres: ready DSN=//p' <<<"$pg_out")
[ -n "$dsn" ] || { echo "faults.sh: no DSN from scripts/postgres.sh" >&2; exit 1; }

dir=$(mktemp -d /tmp/proctor-faults-XXXXXX)
echo "faults.sh: logs in $dir"
bin/proctor faults --bin "$root/bin/proctor" --kafka-brokers "127.0.0.1:$KAFKA_PORT" --database-dsn "$dsn" \
  --scripts "$root/scripts" --dir "$dir" "$@"
