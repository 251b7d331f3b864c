#!/usr/bin/env bash
# Retrains the phrase spotter head with reviewer exports and measures it against the built-in head
# on the fixed held-back test split (docs/data-loop.md §3, docs/audio.md "Retraining"):
#
#   training/phrase/retrain.sh --export DIR [--export DIR ...] [--include-unreviewed] [--version N] --out VERSION_DIR
#
# Writes VERSION_DIR/{phrase-gaiti.onnx, manifest.json, card.md, train-report.json, eval.json}; never
# touches models/. Any other option goes to train.py (e.g. --extra-weight, --extra-pos DIR). The
# synthetic features come from .cache/phrase-work (built by the first training/phrase/train.sh run;
# features-oww-embedding-int8.pkl for the built-in phrase-gaiti@2, which feeds on int8 embeddings);
# only the export snippets are featurised. eval.json = `proctor eval audio --json` on
# .cache/phrase-data/test for the built-in and the new version (never trained or tuned on).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cache=${PROCTOR_CACHE_DIR:-$root/.cache}
test_split=${PHRASE_TEST_SPLIT:-$cache/phrase-data/test}
out="" pass=()
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out=$2; shift 2 ;;
    --out=*) out=${1#--out=}; shift ;;
    --version-dir|--version-dir=*|--reuse-features) echo "retrain.sh: $1 is set by retrain.sh (use --out)" >&2; exit 2 ;;
    *) pass+=("$1"); shift ;;
  esac
done
if [ -z "$out" ] || ! printf '%s\n' "${pass[@]}" | grep -q -- '^--export'; then
  echo "usage: training/phrase/retrain.sh --export DIR [--export DIR ...] [--include-unreviewed] [--version N] --out VERSION_DIR" >&2
  exit 2
fi
mkdir -p "$out"
out=$(cd "$out" && pwd)
start=$(date +%s)
reuse=(--reuse-features)
# The head is retrained on the embedding the built-in head feeds on (train.py reads it from
# models/manifests/phrase-gaiti.json); its features are cached per embedding.
emb=$(sed -n 's/.*"embedding": *"\([a-z0-9-]*\)".*/\1/p' "$root/models/manifests/phrase-gaiti.json" | head -1)
features=features.pkl
[ -z "$emb" ] || [ "$emb" = oww-embedding ] || features=features-$emb.pkl
if [ ! -f "$cache/phrase-work/$features" ]; then
  echo "retrain: no feature cache in $cache/phrase-work: computing every synthetic feature (≈ 15-30 min)" >&2
  reuse=()
fi
"$here/train.sh" "${reuse[@]}" --version-dir "$out" "${pass[@]}"
trained=$(date +%s)

(cd "$root" && go build -o bin/proctor ./cmd/proctor)
proctor=$root/bin/proctor
[ -d "$test_split" ] || { echo "retrain: test split $test_split missing (training/phrase/train.sh builds it)" >&2; exit 1; }
# The built-in head's numbers depend only on the binary and the test split: cached.
key=$( { sha256sum "$proctor"; ls -l --time-style=+%s "$test_split"; } | sha256sum | cut -c1-16)
before=$cache/phrase-work/eval-builtin-$key.json
if [ ! -s "$before" ]; then
  nice -n 10 "$proctor" eval audio --data "$test_split" --jobs 2 --json --vad-check "" > "$before.tmp"
  mv "$before.tmp" "$before"
fi
nice -n 10 "$proctor" eval audio --data "$test_split" --jobs 2 --json --vad-check "" --phrase-model "$out" > "$out/eval.after.tmp"
end=$(date +%s)

python3 - "$before" "$out/eval.after.tmp" "$out" "$test_split" "$((trained - start))" "$((end - trained))" <<'EOF'
import json, os, sys
before, after = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
out, split, t_train, t_eval = sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6])
keys = ["phrase_recall", "phrase_hits", "phrases", "false_alarms", "false_alarms_per_hour", "variant_hits", "variants"]
ev = {"benchmark": "proctor eval audio --data " + split + " --jobs 2 --json",
      "test_split": os.path.abspath(split), "note": "held-back test voices: never trained on, threshold chosen on dev",
      "current": before, "new": after,
      "delta": {k: round(after[k] - before[k], 4) for k in ("phrase_recall", "false_alarms_per_hour", "variant_hits")},
      "seconds": {"train": t_train, "eval": t_eval}}
json.dump(ev, open(os.path.join(out, "eval.json"), "w"), indent=1, ensure_ascii=False)
os.remove(sys.argv[2])
def row(name, d):
    return (f"| {name} | {d['phrase_recall']:.3f} ({d['phrase_hits']}/{d['phrases']}) | {d['false_alarms']} "
            f"({d['false_alarms_per_hour']:.2f}/h) | {d['variant_hits']}/{d['variants']} | {d['threshold']} × {d['min_run']} |")
voices = sorted(set(before.get("per_voice", {})) | set(after.get("per_voice", {})))
lines = ["", "## `proctor eval audio` on the held-back test split (eval.json)", "",
         "| head | recall | false alarms | variants | threshold × windows |", "|---|---|---|---|---|",
         row(before["model"] + " (current)", before), row(after["model"] + " (this version)", after), "",
         "Per test voice (current → this version): " + ", ".join(
             f"{v} {before.get('per_voice', {}).get(v, '-')} → {after.get('per_voice', {}).get(v, '-')}" for v in voices) + ".", ""]
with open(os.path.join(out, "card.md"), "a", encoding="utf-8") as f:
    f.write("\n".join(lines))
print(f"retrain: {after['model']} in {out}: recall {before['phrase_recall']:.3f} -> {after['phrase_recall']:.3f}, "
      f"false alarms/h {before['false_alarms_per_hour']:.2f} -> {after['false_alarms_per_hour']:.2f}, "
      f"variants {before['variant_hits']} -> {after['variant_hits']}/{after['variants']} "
      f"(train {t_train}s, eval {t_eval}s)")
EOF
