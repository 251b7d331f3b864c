#!/usr/bin/env bash
# Runs a retrained phrase head in shadow on new field sessions and prints the comparison
# (docs/data-loop.md "Measured"): a fresh `proctor serve` on the embedded defaults, the version
# registered and shadowed with the CLI, the sessions played and reviewed by field_loop.py, then
# GET /v1/models/phrase-gaiti/VERSION/compare, /healthz and the workers' proctor_model_loaded.
#
#   training/phrase/shadow_loop.sh VERSION_DIR SESSIONS_DIR [WORK_DIR]
#
# VERSION_DIR: from training/phrase/retrain.sh; SESSIONS_DIR: from field_sessions.py (use sessions
# the version was not trained on). WORK_DIR (default .cache/phrase-field/shadow) holds the
# service's data, its log, the export and compare.json.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
[ $# -ge 2 ] || { echo "usage: training/phrase/shadow_loop.sh VERSION_DIR SESSIONS_DIR [WORK_DIR]" >&2; exit 2; }
vdir=$(cd "$1" && pwd) sessions=$(cd "$2" && pwd)
work=${3:-$root/.cache/phrase-field/shadow}
version=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["version"])' "$vdir/manifest.json")
port=${PROCTOR_SHADOW_PORT:-18080}
cd "$root"
go build -o bin/proctor ./cmd/proctor
rm -rf "$work"; mkdir -p "$work"
bin/proctor serve --data-dir "$work/data" --addr "127.0.0.1:$port" --model-poll 1s --log-level warn >"$work/serve.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true' EXIT
for _ in $(seq 60); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 1; done
key=$(bin/proctor keys create --data-dir "$work/data" --org default --name shadow-loop --scopes admin)
bin/proctor models register "$vdir" --data-dir "$work/data"
bin/proctor models shadow phrase-gaiti "$version" --data-dir "$work/data" --reason "shadow_loop.sh"
sleep 3 # one poll interval and a margin: the workers load the shadow
since=$(date -u +%Y-%m-%dT%H:%M:%SZ)
nice python3 "$here/field_loop.py" --url "http://127.0.0.1:$port" --ingest-key "$key" --review-key "$key" --data-key "$key" \
  --sessions "$sessions" --export-out "$work/export" --run shadow
curl -sf -H "Authorization: Bearer $key" "http://127.0.0.1:$port/v1/models/phrase-gaiti/$version/compare?since=$since" >"$work/compare.json"
echo "compare: $(cat "$work/compare.json")"
echo "healthz: $(curl -sf "http://127.0.0.1:$port/healthz")"
curl -sf "http://127.0.0.1:$port/metrics" | grep '^proctor_model_loaded'
