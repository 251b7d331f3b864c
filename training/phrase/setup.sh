#!/usr/bin/env bash
# Creates the git-ignored training environment .cache/phrase-venv with the pinned requirements and
# checks the tools the training uses (espeak-ng, sox) and the npm feature models
# (scripts/fetch-artifacts.sh puts them in .cache/models). Idempotent: a second run touches no
# network. Training is not part of scripts/test.sh.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cache=${PROCTOR_CACHE_DIR:-$root/.cache}
venv=$cache/phrase-venv
for tool in espeak-ng python3; do
  command -v "$tool" >/dev/null || { echo "phrase setup: $tool is missing (apt-get install espeak-ng python3-venv)" >&2; exit 1; }
done
if ! espeak-ng --voices=cmn-latn-pinyin 2>/dev/null | grep -q cmn; then
  echo "phrase setup: espeak-ng has no cmn-latn-pinyin voice (apt-get install espeak-ng-data)" >&2; exit 1
fi
stamp=$venv/.requirements.sha256
want=$(sha256sum "$here/requirements.txt" | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "phrase setup: creating $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt"
  echo "$want" > "$stamp"
fi
"$root/scripts/fetch-artifacts.sh"
for f in models/oww-melspectrogram.onnx models/oww-embedding.onnx; do
  [ -f "$cache/$f" ] || { echo "phrase setup: $cache/$f missing after fetch-artifacts" >&2; exit 1; }
done
echo "phrase setup: ok ($("$venv/bin/python" -c 'import numpy, onnxruntime; print("numpy", numpy.__version__, "onnxruntime", onnxruntime.__version__)'))"
