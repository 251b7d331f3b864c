#!/usr/bin/env bash
# Builds the VAD the service runs (models/manifests/silero-vad-v5-seq.json) into
# .cache/models/silero-vad-v5-seq.onnx: silero_seq.py reads the published Silero VAD v5 graph
# (scripts/fetch-artifacts.sh) and writes the same weights as a graph that takes many frames per
# call, with numpy + onnx from .cache/retrain-venv (training/retrain-requirements.txt,
# hash-pinned), then checks it against the published graph (--check: every probability within
# 1e-5). No download, same bytes every run, checked against the manifest's sha256. Idempotent: a
# file with the right sha256 is left alone. About 3 s. Called by scripts/setup.sh.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cache=${PROCTOR_CACHE_DIR:-$root/.cache}
out=$cache/models/silero-vad-v5-seq.onnx
want=$(sed -n 's/.*"sha256": *"\([0-9a-f]\{64\}\)".*/\1/p' "$root/models/manifests/silero-vad-v5-seq.json" | head -1)
[ -n "$want" ] || { echo "silero_seq: no sha256 in models/manifests/silero-vad-v5-seq.json" >&2; exit 1; }
if [ -f "$out" ] && echo "$want  $out" | sha256sum -c --status; then exit 0; fi
[ -f "$cache/models/silero-vad-v5.onnx" ] || "$root/scripts/fetch-artifacts.sh"
"$root/training/retrain-setup.sh"
export PYTHONHASHSEED=0 PYTHONDONTWRITEBYTECODE=1
tmp=$out.tmp.$$
trap 'rm -f "$tmp"' EXIT
nice -n 10 "$cache/retrain-venv/bin/python" "$here/silero_seq.py" --src "$cache/models/silero-vad-v5.onnx" --out "$tmp" --check 2>/dev/null
echo "$want  $tmp" | sha256sum -c --status || {
  echo "silero_seq: built sha256 $(sha256sum "$tmp" | cut -d' ' -f1) differs from the manifest's $want" >&2; exit 1; }
mv "$tmp" "$out"
