#!/usr/bin/env bash
# Installs EfficientWord-Net's keyword-spotting embedding network (models/manifests/ewn-resnet50-arc.json)
# into .cache/models/ewn-resnet50-arc.onnx: pip downloads the PyPI wheel efficientword-net==1.0.5
# (101 MB, sha256 pinned) and the member eff_word_net/models/resnet_50_arc/slim_93%_accuracy_72.7390%_qint8.onnx
# (22 MB) is extracted and checked against the manifest's sha256. Idempotent: a file with the right
# sha256 is left alone (no network). Called by scripts/setup.sh.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cache=${PROCTOR_CACHE_DIR:-$root/.cache}
out=$cache/models/ewn-resnet50-arc.onnx
wheel=$cache/pypi/efficientword_net-1.0.5-py3-none-any.whl
wheel_sha=9094b1ac4f4d4ccb54069b15e87639e38f3c06443be383acccedc5c26055aa58
member='eff_word_net/models/resnet_50_arc/slim_93%_accuracy_72.7390%_qint8.onnx'
want=$(sed -n 's/.*"sha256": *"\([0-9a-f]\{64\}\)".*/\1/p' "$root/models/manifests/ewn-resnet50-arc.json" | head -1)
[ -n "$want" ] || { echo "fetch_ewn: no sha256 in models/manifests/ewn-resnet50-arc.json" >&2; exit 1; }
if [ -f "$out" ] && echo "$want  $out" | sha256sum -c --status; then exit 0; fi
mkdir -p "$cache/pypi" "$cache/models"
if ! { [ -f "$wheel" ] && echo "$wheel_sha  $wheel" | sha256sum -c --status; }; then
  "$root/training/retrain-setup.sh" >/dev/null
  echo "fetch_ewn: pip download efficientword-net==1.0.5"
  "$cache/retrain-venv/bin/python" -m pip download --quiet --disable-pip-version-check --no-deps \
    --only-binary=:all: --dest "$cache/pypi" efficientword-net==1.0.5
  echo "$wheel_sha  $wheel" | sha256sum -c --status || { echo "fetch_ewn: $wheel sha256 mismatch (want $wheel_sha)" >&2; exit 1; }
fi
python3 -c 'import sys, zipfile; sys.stdout.buffer.write(zipfile.ZipFile(sys.argv[1]).read(sys.argv[2]))' "$wheel" "$member" > "$out.tmp"
echo "$want  $out.tmp" | sha256sum -c --status || { echo "fetch_ewn: $member sha256 mismatch (want $want)" >&2; rm -f "$out.tmp"; exit 1; }
mv "$out.tmp" "$out"
echo "fetch_ewn: $out ok"
