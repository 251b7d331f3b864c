#!/usr/bin/env bash
# The project's one test command: setup, real Apache Kafka + PostgreSQL, gofmt, vet, build,
# Schemathesis against `proctor serve` (scripts/schemathesis.sh), tests.
#
# Usage: scripts/test.sh [go test args...]
#   scripts/test.sh                      everything (./...), Schemathesis included
#   scripts/test.sh -run TestX ./api/    extra args go to `go test`; ./... is added only when no
#                                        package pattern (./x, ../x, x/..., proctor/...) is given
# Env:   GO_TEST_FLAGS (default "-race -count=1 -timeout 20m")  KAFKA_PORT  PGPORT_TEST
#        PROCTOR_TEST_SCHEMATHESIS=1 runs Schemathesis also when package patterns are given
#        PROCTOR_TEST_NO_SERVICES=1 skips Kafka/PostgreSQL (tests needing them then skip)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
t0=$(date +%s)
step() { echo; echo "==> $* ($(( $(date +%s) - t0 ))s)"; }

# Several people may share one machine: runs on the same ports (and .cache) take turns.
lock=/tmp/proctor-test-${KAFKA_PORT:-19092}-${PGPORT_TEST:-55432}.lock
exec 9>"$lock"
if ! flock -n 9; then
  echo "test.sh: another scripts/test.sh holds $lock; waiting (max 30 min)"
  flock -w 1800 9 || { echo "test.sh: gave up waiting for $lock" >&2; exit 1; }
fi

step "setup"
# --browser: Chromium for the reviewer page's browser test (app/browser_test.go), which must run
# here rather than skip.
scripts/setup.sh --browser
export PROCTOR_REQUIRE_BROWSER=1
# The data-loop test retrains the mask classifier with the venv setup.sh made: it must run, not skip.
export PROCTOR_REQUIRE_RETRAIN=1

services=()
cleanup() {
  local rc=$?
  # Stop in reverse order, quietly (go test's closing lines should stay last); a failing stop
  # must not hide the test result.
  for ((i=${#services[@]}-1; i>=0; i--)); do
    scripts/"${services[$i]}".sh stop >/dev/null 2>&1 || echo "test.sh: stopping ${services[$i]} failed" >&2
  done
  [ "$rc" = 0 ] || echo "test.sh: FAILED (exit $rc) after $(( $(date +%s) - t0 ))s" >&2
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ "${PROCTOR_TEST_NO_SERVICES:-0}" != 1 ]; then
  step "start Apache Kafka and PostgreSQL"
  services+=(kafka postgres)
  # Holding the lock, anything still on our ports is a leftover: start from a clean state.
  # 9>&-: the long-running servers must not inherit (and so hold) the lock.
  scripts/kafka.sh stop >/dev/null 9>&-
  scripts/postgres.sh stop >/dev/null 9>&-
  scripts/kafka.sh start 9>&-
  pg_out=$(scripts/postgres.sh start 9>&-)
  echo "$pg_out"
  dsn=$(sed -n 's/^postgres: ready DSN=//p' <<<"$pg_out")
  [ -n "$dsn" ] || { echo "test.sh: no DSN from scripts/postgres.sh" >&2; exit 1; }
  export PROCTOR_TEST_KAFKA_BROKERS=127.0.0.1:${KAFKA_PORT:-19092}
  export PROCTOR_TEST_POSTGRES_DSN=$dsn
  echo "PROCTOR_TEST_KAFKA_BROKERS=$PROCTOR_TEST_KAFKA_BROKERS"
  echo "PROCTOR_TEST_POSTGRES_DSN=$PROCTOR_TEST_POSTGRES_DSN"
fi

step "gofmt -l"
# Every .go file of ours (not caches, not node_modules).
unformatted=$(find . \( -path ./.cache -o -path ./.git -o -name node_modules -o -path ./bin -o -path ./data \) -prune \
  -o -name '*.go' -print0 | xargs -0 -r gofmt -l)
if [ -n "$unformatted" ]; then
  echo "test.sh: these files need gofmt -w:" >&2
  echo "$unformatted" >&2
  exit 1
fi
echo "gofmt: ok"

step "go vet ./..."
go vet ./...

step "go build -o bin/proctor ./cmd/proctor"
go build -o bin/proctor ./cmd/proctor
ls -l bin/proctor
mkdir -p artifacts

# Package patterns among the args? Otherwise test everything.
args=("$@")
have_pkg=0
for a in "$@"; do
  case $a in ./*|../*|.|..|*...*|proctor|proctor/*) have_pkg=1 ;; esac
done
[ "$have_pkg" = 1 ] || args+=(./...)
# shellcheck disable=SC2206
flags=(${GO_TEST_FLAGS:--race -count=1 -timeout 20m})

# Schemathesis against `proctor serve` (API document vs API, no 5xx but 503): only for a full
# run (no package patterns given), or with PROCTOR_TEST_SCHEMATHESIS=1.
# On SQLite, then (with the services) on PostgreSQL, as in production, with fewer cases.
if [ "$have_pkg" = 0 ] || [ "${PROCTOR_TEST_SCHEMATHESIS:-0}" = 1 ]; then
  step "scripts/schemathesis.sh (SQLite)"
  PROCTOR_BIN=$root/bin/proctor scripts/schemathesis.sh 2>&1 | tee artifacts/schemathesis.log
  if [ -n "${PROCTOR_TEST_POSTGRES_DSN:-}" ]; then
    step "scripts/schemathesis.sh (PostgreSQL)"
    ST_DATABASE_DSN=$PROCTOR_TEST_POSTGRES_DSN ST_MAX_EXAMPLES=${ST_MAX_EXAMPLES_POSTGRES:-50} PROCTOR_BIN=$root/bin/proctor \
      scripts/schemathesis.sh 2>&1 | tee artifacts/schemathesis-postgres.log
  fi
fi

step "go test ${flags[*]} ${args[*]}"
# Not -v: one ok/FAIL line per package (and failing tests' output); full log in artifacts/.
set +e
go test "${flags[@]}" "${args[@]}" 2>&1 | tee artifacts/go-test.log
rc=${PIPESTATUS[0]}
set -e
exit "$rc"
