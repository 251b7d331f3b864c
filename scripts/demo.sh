#!/usr/bin/env bash
# The README's first command: installs everything (scripts/setup.sh), builds bin/proctor and runs
# the demo on the embedded defaults (in-process Kafka-protocol broker + SQLite in ./data).
# Extra arguments go to `proctor demo`, e.g. --exit to stop after printing the flags.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/setup.sh
go build -o bin/proctor ./cmd/proctor
exec bin/proctor demo "$@"
