# Sourced by the setup steps that rewrite a fetched model into another graph (training/voice/silero_seq.sh,
# training/phrase/stream_oww.sh). Needs $root and $cache.
#
# rewrite_model NAME SCRIPT ARGS...: writes $cache/models/NAME.onnx with the retraining venv's
# python SCRIPT ARGS --out TMP, unless the file there already has models/manifests/NAME.json's
# sha256; the result must have it. Same bytes every run, so a mismatch is an error, not a rebuild.
rewrite_model() {
  local name=$1 out want tmp
  shift
  out=$cache/models/$name.onnx
  want=$(sed -n 's/.*"sha256": *"\([0-9a-f]\{64\}\)".*/\1/p' "$root/models/manifests/$name.json" | head -1)
  [ -n "$want" ] || { echo "$name: no sha256 in models/manifests/$name.json" >&2; return 1; }
  if [ -f "$out" ] && echo "$want  $out" | sha256sum -c --status; then return 0; fi
  "$root/training/retrain-setup.sh"
  tmp=$out.tmp.$$
  if ! PYTHONHASHSEED=0 PYTHONDONTWRITEBYTECODE=1 nice -n 10 "$cache/retrain-venv/bin/python" "$@" --out "$tmp" 2>/dev/null; then
    rm -f "$tmp"
    echo "$name: $* failed (run it by hand to see why)" >&2
    return 1
  fi
  if ! echo "$want  $tmp" | sha256sum -c --status; then
    echo "$name: built sha256 $(sha256sum "$tmp" | cut -d' ' -f1) differs from the manifest's $want" >&2
    rm -f "$tmp"
    return 1
  fi
  mv "$tmp" "$out"
}
