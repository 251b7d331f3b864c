#!/usr/bin/env bash
# Sets up the training environment (training/phrase/setup.sh) and trains the phrase spotter head
# at low priority (the machine is shared): training/phrase/train.sh [train.py options]
#   training/phrase/train.sh --extra-pos DIR --extra-neg DIR   # retrain with reviewer snippets
#   training/phrase/retrain.sh --export DIR --out VERSION_DIR   # retrain with a reviewer export (a version directory)
# Writes the built-in head (the file models/manifests/phrase-gaiti.json names: phrase-gaiti@2,
# trained on int8 embeddings: models/trained/phrase-gaiti-int8-mlp.onnx, report
# training/phrase/report-int8.json), updates its manifest, and writes the held-back dev/test
# sessions under .cache/phrase-data/{dev,test} (WAV + labels for `proctor eval audio`;
# --saved-eval reads them back instead). phrase-gaiti@1 (fp32 embeddings, phrase-gaiti-fp32):
#   training/phrase/train.sh --embedding oww-embedding --out models/trained/phrase-gaiti-mlp.onnx --report training/phrase/report.json
# A head over a shorter history (--window N embeddings; default the built-in manifest's audio.window, 16)
# gets its own file and manifest (non-default: docs/audio.md "A shorter history"):
#   training/phrase/train.sh --reuse-features --window 12 --out models/trained/phrase-gaiti-h12-int8-mlp.onnx \
#     --report training/phrase/report-int8-h12.json --manifest models/manifests/phrase-gaiti-h12.json
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cache=${PROCTOR_CACHE_DIR:-$root/.cache}
"$here/setup.sh"
# One BLAS thread per process: the pool already uses both cores.
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1
exec nice -n 10 "$cache/phrase-venv/bin/python" "$here/train.py" "$@"
