#!/usr/bin/env bash
# Builds the int8 (static QDQ) versions of the two expensive vision models into .cache/models/:
#   nanodet-coco-int8.onnx   from models/trained/nanodet-coco.onnx  + training/vision/quant/nanodet-coco.json
#   facenet-keras-int8.onnx  from .cache/models/facenet-keras.onnx   + training/vision/quant/facenet-keras.json
# with onnxruntime's quantisation tools from .cache/retrain-venv (training/retrain-requirements.txt,
# hash-pinned; onnxruntime 1.25.1 as the Go service loads). The JSON files are the activation
# ranges calibrated once on real dev photos (the tuning part only), so no data is needed here;
# same bytes every run, checked against the int8 manifests' sha256. Idempotent: files with the
# right sha256 are left alone (no network, no Python). About 30 s. Called by scripts/setup.sh
# after convert_facenet.sh.
#
#   training/vision/quantize.sh                 build (setup)
#   training/vision/quantize.sh --calibrate [METHOD_NANODET METHOD_FACENET]
#       re-calibrate on ../shared/data/faces (dumps the Go service's own input tensors with
#       `go test -run TestDumpModelInputs ./internal/eval/`), rewrite the JSON files, build, and
#       print the new sha256s to put into models/manifests/*-int8.json. Methods: entropy
#       (NanoDet's default), minmax (FaceNet's), meanminmax, percentile. NanoDet (v2) is
#       calibrated on 1280×720 evidence-camera scenes of small and distant people
#       (TestDumpModelInputs' persons-scenes), quantises only its convolutions, and keeps the
#       backbone's first eleven (208×208 to 52×52) in float: small people depend on them
#       (models/cards/nanodet-coco.md has the measurements). ~3 min on 2 shared cores.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cache=${PROCTOR_CACHE_DIR:-$root/.cache}
py=$cache/retrain-venv/bin/python
export PYTHONHASHSEED=0 PYTHONDONTWRITEBYTECODE=1

sha_of() { sed -n 's/.*"sha256": *"\([0-9a-f]\{64\}\)".*/\1/p' "$root/models/manifests/$1.json" | head -1; }

# name of the int8 manifest, fp32 source file, ranges file
models=(
  "nanodet-coco-int8 $root/models/trained/nanodet-coco.onnx $here/quant/nanodet-coco.json"
  "facenet-keras-int8 $cache/models/facenet-keras.onnx $here/quant/facenet-keras.json"
)

if [ "${1:-}" = --calibrate ]; then
  data=${PROCTOR_DUMP_DATA:-$root/../shared/data/faces}
  [ -d "$data/identities-rmfd" ] || { echo "quantize: no dev data at $data (set PROCTOR_DUMP_DATA)" >&2; exit 1; }
  "$root/training/retrain-setup.sh"
  dump=$(mktemp -d)
  trap 'rm -rf "$dump"' EXIT
  (cd "$root" && PROCTOR_DUMP_INPUTS=$dump PROCTOR_DUMP_DATA=$data go test -count=1 -run TestDumpModelInputs ./internal/eval/)
  nice -n 10 "$py" "$here/quantize.py" calibrate --model "$root/models/trained/nanodet-coco.onnx" \
    --inputs "$dump/persons-scenes.f32" --shape 3,416,416 --method "${2:-entropy}" --op-types Conv \
    --exclude-nodes n75,n80,n83,n86,n90,n94,n97,n100,n104,n107,n111 \
    --photos "96 evidence-camera scenes (48 composite.Screen, 48 composite.Room) of mask/train photos i%8 == 4, letterboxed by analyzers.Persons" \
    --out "$here/quant/nanodet-coco.json"
  nice -n 10 "$py" "$here/quantize.py" calibrate --model "$cache/models/facenet-keras.onnx" \
    --inputs "$dump/identity.f32" --shape 3,160,160 --method "${3:-minmax}" \
    --photos "identities-rmfd dev people (eval.SplitOf), main face as analyzers.Identity crops a padded photo" \
    --out "$here/quant/facenet-keras.json"
  for m in "${models[@]}"; do
    set -- $m
    nice -n 10 "$py" "$here/quantize.py" build --model "$2" --ranges "$3" --out "$cache/models/$1.onnx"
  done
  echo "quantize: now put the sha256 above into models/manifests/*-int8.json"
  exit 0
fi

for m in "${models[@]}"; do
  set -- $m
  want=$(sha_of "$1")
  [ -n "$want" ] || { echo "quantize: no sha256 in models/manifests/$1.json" >&2; exit 1; }
  out=$cache/models/$1.onnx
  if [ -f "$out" ] && echo "$want  $out" | sha256sum -c --status; then continue; fi
  [ -f "$2" ] || { echo "quantize: $2 is missing (run scripts/setup.sh)" >&2; exit 1; }
  "$root/training/retrain-setup.sh"
  mkdir -p "$cache/models"
  nice -n 10 "$py" "$here/quantize.py" build --model "$2" --ranges "$3" --out "$out.tmp" >/dev/null 2>"$out.log" || {
    cat "$out.log" >&2; rm -f "$out.tmp"; exit 1; }
  rm -f "$out.log"
  if ! echo "$want  $out.tmp" | sha256sum -c --status; then
    echo "quantize: $1 built with sha256 $(sha256sum "$out.tmp" | cut -d' ' -f1), the manifest wants $want" >&2
    rm -f "$out.tmp"; exit 1
  fi
  mv "$out.tmp" "$out"
  echo "quantize: $out"
done
