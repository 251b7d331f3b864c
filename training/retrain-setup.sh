#!/usr/bin/env bash
# Creates the git-ignored environment .cache/retrain-venv for the fast retraining scripts
# (training/vision/finetune_attire.sh) from training/retrain-requirements.txt, every package
# pinned by version and sha256 (pip --require-hashes). Idempotent: a second run touches no
# network and prints nothing unless -v. Called by scripts/setup.sh (CI's end-to-end test retrains).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
cache=${PROCTOR_CACHE_DIR:-$root/.cache}
venv=$cache/retrain-venv
req=$here/retrain-requirements.txt
command -v python3 >/dev/null || { echo "retrain setup: python3 is missing (apt-get install python3-venv)" >&2; exit 1; }
stamp=$venv/.requirements.sha256
want=$(sha256sum "$req" | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "retrain setup: creating $venv"
  rm -rf "$venv"
  python3 -m venv "$venv" || { echo "retrain setup: python3 -m venv failed (apt-get install python3-venv)" >&2; exit 1; }
  "$venv/bin/pip" install --quiet --disable-pip-version-check --require-hashes --only-binary=:all: -r "$req"
  "$venv/bin/python" -c 'import numpy, onnx, onnxruntime, PIL, h5py, ml_dtypes, onnxruntime.quantization' || { echo "retrain setup: $venv does not import its packages" >&2; exit 1; }
  echo "$want" > "$stamp"
  echo "retrain setup: ok ($("$venv/bin/python" -c 'import numpy, onnx, onnxruntime, PIL; print("numpy", numpy.__version__, "onnx", onnx.__version__, "onnxruntime", onnxruntime.__version__, "pillow", PIL.__version__)'))"
elif [ "${1:-}" = -v ]; then
  echo "retrain setup: $venv up to date"
fi
