#!/usr/bin/env bash
# Installs the GE2E speaker encoder (models/manifests/resemblyzer-ge2e.json) into
# .cache/models/resemblyzer-ge2e.onnx: pip downloads the PyPI wheel Resemblyzer==0.1.4 (16 MB,
# sha256 pinned), and convert_resemblyzer.py reads its PyTorch checkpoint with a restricted
# unpickler and writes the LSTM as ONNX with numpy + onnx from .cache/retrain-venv
# (training/retrain-requirements.txt, hash-pinned). No PyTorch. Same bytes every run; the result is
# checked against the manifest's sha256. Idempotent: a file with the right sha256 is left alone (no
# network). About 3 s and 22 MB of disk. Called by scripts/setup.sh.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cache=${PROCTOR_CACHE_DIR:-$root/.cache}
out=$cache/models/resemblyzer-ge2e.onnx
want=$(sed -n 's/.*"sha256": *"\([0-9a-f]\{64\}\)".*/\1/p' "$root/models/manifests/resemblyzer-ge2e.json" | head -1)
[ -n "$want" ] || { echo "convert_resemblyzer: no sha256 in models/manifests/resemblyzer-ge2e.json" >&2; exit 1; }
if [ -f "$out" ] && echo "$want  $out" | sha256sum -c --status; then exit 0; fi
"$root/training/retrain-setup.sh"
export PYTHONHASHSEED=0 PYTHONDONTWRITEBYTECODE=1 PROCTOR_CACHE_DIR=$cache
nice -n 10 "$cache/retrain-venv/bin/python" "$here/convert_resemblyzer.py" --out "$out" --check
echo "$want  $out" | sha256sum -c --status || {
  echo "convert_resemblyzer: $out sha256 $(sha256sum "$out" | cut -d' ' -f1) differs from the manifest's $want" >&2; exit 1; }
