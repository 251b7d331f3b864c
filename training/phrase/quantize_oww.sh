#!/usr/bin/env bash
# Builds the int8 openWakeWord speech embedding (models/manifests/oww-embedding-int8.json) into
# .cache/models/oww-embedding-int8.onnx from the fp32 model (scripts/fetch-artifacts.sh) and the
# committed activation ranges (training/phrase/oww-embedding-int8.ranges.json, from the dev split:
# quantize_oww.py calibrate), with onnxruntime.quantization from .cache/retrain-venv
# (training/retrain-requirements.txt, hash-pinned; needs its ml_dtypes). No download, same bytes
# every run, checked against the manifest's sha256. Idempotent: a file with the right sha256 is
# left alone. About 5 s. Called by scripts/setup.sh.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cache=${PROCTOR_CACHE_DIR:-$root/.cache}
out=$cache/models/oww-embedding-int8.onnx
want=$(sed -n 's/.*"sha256": *"\([0-9a-f]\{64\}\)".*/\1/p' "$root/models/manifests/oww-embedding-int8.json" | head -1)
[ -n "$want" ] || { echo "quantize_oww: no sha256 in models/manifests/oww-embedding-int8.json" >&2; exit 1; }
if [ -f "$out" ] && echo "$want  $out" | sha256sum -c --status; then exit 0; fi
[ -f "$cache/models/oww-embedding.onnx" ] || "$root/scripts/fetch-artifacts.sh"
"$root/training/retrain-setup.sh"
"$cache/retrain-venv/bin/python" -c 'import onnxruntime.quantization' 2>/dev/null || {
  echo "quantize_oww: onnxruntime.quantization does not import in $cache/retrain-venv (ml_dtypes==0.7.0 belongs in training/retrain-requirements.txt)" >&2; exit 1; }
export PYTHONHASHSEED=0 PYTHONDONTWRITEBYTECODE=1
tmp=$out.tmp.$$
trap 'rm -f "$tmp"' EXIT
nice -n 10 "$cache/retrain-venv/bin/python" "$here/quantize_oww.py" build --cache "$cache" --out "$tmp" >/dev/null
echo "$want  $tmp" | sha256sum -c --status || {
  echo "quantize_oww: built sha256 $(sha256sum "$tmp" | cut -d' ' -f1) differs from the manifest's $want" >&2; exit 1; }
mv "$tmp" "$out"
