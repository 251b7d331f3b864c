#!/usr/bin/env bash
# Builds the "-stream" openWakeWord embeddings the phrase gate runs
# (models/manifests/oww-embedding-stream.json, oww-embedding-int8-stream.json) into .cache/models/
# from oww-embedding.onnx (scripts/fetch-artifacts.sh) and oww-embedding-int8.onnx
# (training/phrase/quantize_oww.sh): stream_oww.py rewrites the two reshapes at the ends so that
# one call embeds a run of consecutive windows, with numpy + onnx from .cache/retrain-venv
# (training/retrain-requirements.txt, hash-pinned), and checks that the run equals the
# per-window model exactly (--check). No download, same bytes every run, checked against the
# manifests' sha256. Idempotent: a file with the right sha256 is left alone. About 3 s. Called
# by scripts/setup.sh after quantize_oww.sh.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cache=${PROCTOR_CACHE_DIR:-$root/.cache}
for name in oww-embedding oww-embedding-int8; do
  out=$cache/models/$name-stream.onnx
  want=$(sed -n 's/.*"sha256": *"\([0-9a-f]\{64\}\)".*/\1/p' "$root/models/manifests/$name-stream.json" | head -1)
  [ -n "$want" ] || { echo "stream_oww: no sha256 in models/manifests/$name-stream.json" >&2; exit 1; }
  if [ -f "$out" ] && echo "$want  $out" | sha256sum -c --status; then continue; fi
  [ -f "$cache/models/oww-embedding.onnx" ] || "$root/scripts/fetch-artifacts.sh"
  [ -f "$cache/models/oww-embedding-int8.onnx" ] || "$root/training/phrase/quantize_oww.sh"
  "$root/training/retrain-setup.sh"
  export PYTHONHASHSEED=0 PYTHONDONTWRITEBYTECODE=1
  tmp=$out.tmp.$$
  trap 'rm -f "$tmp"' EXIT
  nice -n 10 "$cache/retrain-venv/bin/python" "$here/stream_oww.py" --src "$cache/models/$name.onnx" --out "$tmp" --check 2>/dev/null
  echo "$want  $tmp" | sha256sum -c --status || {
    echo "stream_oww: built sha256 $(sha256sum "$tmp" | cut -d' ' -f1) differs from the manifest's $want" >&2; exit 1; }
  mv "$tmp" "$out"
done
