#!/usr/bin/env bash
# Fast retraining of attire-cnn from exports: refits the last layer on the exported face crops and
# writes a version directory (training/vision/finetune_attire.py; docs/data-loop.md). Seconds on
# 2 cores; needs only .cache/retrain-venv (training/retrain-setup.sh, part of scripts/setup.sh).
#   training/vision/finetune_attire.sh --export DIR [--export DIR2 ...] --out VERSION_DIR \
#       [--version N] [--base ONNX|VERSION_DIR] [--bench ../shared/data/faces]
#   training/vision/finetune_attire.sh --self-test   # the unit tests (training/vision/test_finetune.py)
# Then: bin/proctor eval vision --attire-model VERSION_DIR ..., proctor models register.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cache=${PROCTOR_CACHE_DIR:-$root/.cache}
"$root/training/retrain-setup.sh"
export OMP_NUM_THREADS=2 PYTHONHASHSEED=0 PYTHONDONTWRITEBYTECODE=1
if [ "${1:-}" = --self-test ]; then
  shift
  exec nice -n 10 "$cache/retrain-venv/bin/python" "$here/test_finetune.py" "$@"
fi
exec nice -n 10 "$cache/retrain-venv/bin/python" "$here/finetune_attire.py" "$@"
