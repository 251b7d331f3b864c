#!/usr/bin/env bash
# Sets up the environment (training/vision/setup.sh) and trains the mask/occlusion classifier at
# low priority (the machine is shared): training/vision/train_attire.sh [train_attire.py options]
#   training/vision/train_attire.sh --export exports/exp_2026_12   # retrain with an export (docs/data-loop.md)
# Writes models/trained/attire-cnn.onnx, training/vision/attire-report.json and
# training/vision/attire-data.tsv, and updates sha256 and thresholds in
# models/manifests/attire-cnn.json (it says which rules defaults to change if the thresholds
# moved). ~15-20 min on 2 shared cores (preparing crops ~2 min, cached in .cache/vision-data).
# Then: go test ./models ./rules ./app and bin/proctor eval vision (docs/vision.md).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cache=${PROCTOR_CACHE_DIR:-$root/.cache}
"$here/setup.sh"
export OMP_NUM_THREADS=2 TF_CPP_MIN_LOG_LEVEL=2 PYTHONHASHSEED=0 PYTHONDONTWRITEBYTECODE=1
exec nice -n 10 "$cache/vision-venv/bin/python" "$here/train_attire.py" "$@"
