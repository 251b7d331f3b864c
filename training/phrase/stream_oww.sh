#!/usr/bin/env bash
# Builds the openWakeWord feature models the phrase gate runs (models/manifests/
# oww-embedding-stream.json, oww-embedding-int8-stream.json, oww-melspectrogram-batch.json) into
# .cache/models/ from oww-embedding.onnx, oww-melspectrogram.onnx (scripts/fetch-artifacts.sh) and
# oww-embedding-int8.onnx (training/phrase/quantize_oww.sh): stream_oww.py rewrites the embeddings'
# two end reshapes so that one call embeds a run of consecutive windows, and the melspectrogram's
# clip so that one call computes a batch of blocks, with numpy + onnx from .cache/retrain-venv
# (training/retrain-requirements.txt, hash-pinned), and checks that the outputs equal the
# originals exactly (--check). No download, same bytes every run, checked against the
# manifests' sha256. Idempotent: a file with the right sha256 is left alone. About 3 s. Called
# by scripts/setup.sh after quantize_oww.sh.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cache=${PROCTOR_CACHE_DIR:-$root/.cache}
. "$root/training/rewrite-model.sh"
[ -f "$cache/models/oww-embedding.onnx" ] && [ -f "$cache/models/oww-melspectrogram.onnx" ] || "$root/scripts/fetch-artifacts.sh"
[ -f "$cache/models/oww-embedding-int8.onnx" ] || "$root/training/phrase/quantize_oww.sh"
for name in oww-embedding oww-embedding-int8; do
  rewrite_model "$name-stream" "$here/stream_oww.py" --src "$cache/models/$name.onnx" --check
done
rewrite_model oww-melspectrogram-batch "$here/stream_oww.py" --mel --src "$cache/models/oww-melspectrogram.onnx" --check
