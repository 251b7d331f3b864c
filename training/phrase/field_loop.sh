#!/usr/bin/env bash
# The data loop end to end on synthetic field sessions (docs/data-loop.md, docs/audio.md
# "Retraining"): play the sessions through a proctor service as the exam platform, review the
# spotted phrases against the truth (labels phrase_missed / not_phrase), export the audio labels,
# unzip the export and, with --retrain, retrain and compare on the fixed test split.
#
#   training/phrase/field_loop.sh --url URL --ingest-key K --review-key K --data-key K \
#       --sessions DIR --export-out DIR [--retrain VERSION_DIR [retrain options]] [field_loop.py options]
#   training/phrase/field_loop.sh --local --sessions DIR --export-out DIR [--retrain VERSION_DIR]
#
# --local starts `bin/proctor serve` on the embedded defaults (Kafka in process, SQLite) in a fresh
# data folder (EXPORT_OUT/service), creates one key with the ingest, review and data scopes, and
# stops the service afterwards. Keys may also come from PROCTOR_INGEST_KEY / _REVIEW_KEY / _DATA_KEY.
# Make the sessions first: training/phrase/field_sessions.py --out DIR --sessions 40
# Options after --retrain VERSION_DIR that start with --include-unreviewed, --version or
# --extra-weight go to retrain.sh.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
local=0 retrain="" export_out="" loop_args=() retrain_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --local) local=1; shift ;;
    --retrain) retrain=$2; shift 2 ;;
    --include-unreviewed) retrain_args+=("$1"); shift ;;
    --version|--extra-weight) retrain_args+=("$1" "$2"); shift 2 ;;
    --export-out) export_out=$2; loop_args+=("$1" "$2"); shift 2 ;;
    *) loop_args+=("$1"); shift ;;
  esac
done
[ -n "$export_out" ] || { echo "usage: training/phrase/field_loop.sh (--url URL --ingest-key K --review-key K --data-key K | --local) --sessions DIR --export-out DIR [--retrain VERSION_DIR]" >&2; exit 2; }
mkdir -p "$export_out"
(cd "$root" && go build -o bin/proctor ./cmd/proctor)
proctor=$root/bin/proctor
pid=""
cleanup() { if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi; }
trap cleanup EXIT
if [ "$local" = 1 ]; then
  svc=$(cd "$export_out" && pwd)/service
  rm -rf "$svc"
  mkdir -p "$svc"
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  "$proctor" migrate --data-dir "$svc" >/dev/null
  key=$("$proctor" keys create --data-dir "$svc" --org field --name field-loop --scopes ingest,review,data | tail -1)
  nice -n 5 "$proctor" serve --data-dir "$svc" --addr "127.0.0.1:$port" >"$svc/serve.log" 2>&1 &
  pid=$!
  for _ in $(seq 60); do
    curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
    kill -0 "$pid" 2>/dev/null || { echo "field_loop: the service exited (see $svc/serve.log)" >&2; exit 1; }
    sleep 1
  done
  loop_args+=(--url "http://127.0.0.1:$port" --ingest-key "$key" --review-key "$key" --data-key "$key")
fi
start=$(date +%s)
dest=$(python3 "$here/field_loop.py" "${loop_args[@]}" | tail -1)
echo "field_loop: export in $dest ($(( $(date +%s) - start ))s)"
cleanup
pid=""
if [ -n "$retrain" ]; then
  "$here/retrain.sh" --export "$dest" "${retrain_args[@]}" --out "$retrain"
fi
