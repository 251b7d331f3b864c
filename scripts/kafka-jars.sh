#!/usr/bin/env bash
# Puts a real Apache Kafka (broker, controller, tools; versions in scripts/kafka/pom.xml) into
# .cache/kafka/libs from Maven Central, and checks every jar against scripts/kafka/jars.sha256
# (exactly that set of files: nothing missing, nothing extra). Idempotent: when the jars already
# match, Maven is not run at all.
#
# Usage: scripts/kafka-jars.sh            fetch (if needed) and verify
#        scripts/kafka-jars.sh --regen    fetch afresh and rewrite scripts/kafka/jars.sha256
#                                         (after changing versions in scripts/kafka/pom.xml; review the diff)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cache=${PROCTOR_CACHE_DIR:-$root/.cache}
libs=$cache/kafka/libs
pom=$root/scripts/kafka/pom.xml
sums=$root/scripts/kafka/jars.sha256

regen=0
case ${1:-} in
  --regen) regen=1 ;;
  '') ;;
  *) echo "kafka-jars: unknown argument $1" >&2; exit 2 ;;
esac

listed() { awk '!/^#/ && NF {print $2}' "$sums" | sort; }
# verify DIR: the jars in DIR are exactly those in jars.sha256, with those checksums.
verify() {
  local dir=$1
  [ -f "$sums" ] || return 1
  diff <(listed) <(cd "$dir" 2>/dev/null && ls -1 | sort) >/dev/null 2>&1 || return 1
  (cd "$dir" && sha256sum -c --quiet --status <(grep -v '^#' "$sums"))
}

if [ "$regen" = 0 ] && verify "$libs"; then
  echo "kafka-jars: $(ls "$libs" | wc -l) jars ok in $libs"
  exit 0
fi

command -v mvn >/dev/null 2>&1 || { echo "kafka-jars: mvn not found (scripts/setup.sh installs maven)" >&2; exit 1; }
mkdir -p "$cache/kafka"
tmp=$(mktemp -d "$cache/kafka/libs.tmp.XXXXXX")
trap 'rm -rf "$tmp" "$tmp.log"' EXIT
echo "kafka-jars: mvn dependency:copy-dependencies ($pom)"
# -C: fail on a checksum mismatch against Central's own checksums; jars.sha256 then pins the result.
mvn -B -q -C --no-transfer-progress -f "$pom" \
  dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$tmp" >"$tmp.log" 2>&1 || {
  cat "$tmp.log" >&2; rm -f "$tmp.log"; echo "kafka-jars: mvn failed" >&2; exit 1; }
rm -f "$tmp.log"

if [ "$regen" = 1 ]; then
  {
    echo "# sha256 of every jar that scripts/kafka-jars.sh copies into .cache/kafka/libs."
    echo "# Regenerate with scripts/kafka-jars.sh --regen after changing scripts/kafka/pom.xml."
    (cd "$tmp" && sha256sum -- *.jar)
  } > "$sums"
  echo "kafka-jars: wrote $sums ($(grep -c '\.jar$' "$sums") jars)"
fi

if ! verify "$tmp"; then
  echo "kafka-jars: downloaded jars do not match $sums:" >&2
  diff <(listed) <(ls -1 "$tmp" | sort) >&2 || true
  (cd "$tmp" && sha256sum -c --quiet <(grep -v '^#' "$sums")) >&2 || true
  exit 1
fi
rm -rf "$libs"
mv "$tmp" "$libs"
trap - EXIT
echo "kafka-jars: $(ls "$libs" | wc -l) jars fetched and verified in $libs"
