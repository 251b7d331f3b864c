#!/usr/bin/env bash
# Creates the git-ignored environment .cache/schemathesis-venv for scripts/schemathesis.sh from
# scripts/schemathesis-requirements.txt, every package pinned by version and sha256 (pip
# --require-hashes). Idempotent: a second run touches no network and prints nothing unless -v.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
cache=${PROCTOR_CACHE_DIR:-$root/.cache}
venv=$cache/schemathesis-venv
req=$here/schemathesis-requirements.txt
command -v python3 >/dev/null || { echo "schemathesis setup: python3 is missing (apt-get install python3-venv)" >&2; exit 1; }
stamp=$venv/.requirements.sha256
want=$(sha256sum "$req" | cut -d' ' -f1)
# A stamp with a venv that no longer runs (files removed by hand, a broken copy) is rebuilt too.
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ] || ! "$venv/bin/schemathesis" --version >/dev/null 2>&1; then
  echo "schemathesis setup: creating $venv"
  rm -rf "$venv"
  python3 -m venv "$venv" || { echo "schemathesis setup: python3 -m venv failed (apt-get install python3-venv)" >&2; exit 1; }
  "$venv/bin/pip" install --quiet --disable-pip-version-check --require-hashes --only-binary=:all: -r "$req"
  "$venv/bin/schemathesis" --version >/dev/null || { echo "schemathesis setup: $venv/bin/schemathesis does not run" >&2; exit 1; }
  echo "$want" > "$stamp"
  echo "schemathesis setup: ok ($("$venv/bin/schemathesis" --version))"
elif [ "${1:-}" = -v ]; then
  echo "schemathesis setup: $venv up to date"
fi
