#!/usr/bin/env bash
# Sets up the environment (training/vision/setup.sh) and trains the ear classifier at low priority
# (the machine is shared): training/vision/train_ears.sh [train_ears.py options]
#   training/vision/train_ears.sh --export exports/exp_2026_12   # retrain with reviewer labels (docs/data-loop.md)
# Needs ../shared/data and Go (the crops are made by go run ./training/vision/earcrops, exactly as
# the service makes them). Writes models/trained/ears-cnn.onnx, models/manifests/ears-cnn.json and
# training/vision/ears-report.json. ~3 min on 2 shared cores. Then: go test ./models ./analyzers ./rules.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cache=${PROCTOR_CACHE_DIR:-$root/.cache}
"$here/setup.sh"
export OMP_NUM_THREADS=2 TF_CPP_MIN_LOG_LEVEL=2 PYTHONHASHSEED=0 PYTHONDONTWRITEBYTECODE=1
exec nice -n 10 "$cache/vision-venv/bin/python" "$here/train_ears.py" "$@"
