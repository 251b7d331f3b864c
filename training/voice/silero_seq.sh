#!/usr/bin/env bash
# Builds the VAD the service runs (models/manifests/silero-vad-v5-seq.json) into
# .cache/models/silero-vad-v5-seq.onnx: silero_seq.py reads the published Silero VAD v5 graph
# (scripts/fetch-artifacts.sh) and writes the same weights as a graph that takes many frames per
# call, with numpy + onnx from .cache/retrain-venv (training/retrain-requirements.txt,
# hash-pinned), then checks it against the published graph (--check: every probability within
# 1e-5). No download, same bytes every run, checked against the manifest's sha256. Idempotent: a
# file with the right sha256 is left alone. About 3 s. Called by scripts/setup.sh.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cache=${PROCTOR_CACHE_DIR:-$root/.cache}
. "$root/training/rewrite-model.sh"
[ -f "$cache/models/silero-vad-v5.onnx" ] || "$root/scripts/fetch-artifacts.sh"
rewrite_model silero-vad-v5-seq "$here/silero_seq.py" --src "$cache/models/silero-vad-v5.onnx" --check
