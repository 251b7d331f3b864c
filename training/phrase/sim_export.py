"""A simulated reviewer export with real voices, for the EWN head's retraining path
(ewn.py --export): the "field" half of the real-mix speakers (docs/audio.md "Front ends") as a
reviewer would label them, and nothing of the other half, which stays for measuring.

  .cache/phrase-venv/bin/python training/phrase/sim_export.py --out DIR

For every real-mix clip of a field speaker: the clip as `phrase_missed` (reviewed, phrase true,
phrase_end_ms = where the phrase ends) and its real recording without the phrase as `not_phrase`
(reviewed, phrase false). Written as a proctor export (export.json + manifest.jsonl + audio/),
the format training/phrase/train.py read_export() reads. Field speakers: every other speaker id in
sorted order (S0252, D4, … alternate), so measuring speakers are never in the export.
"""
import argparse
import hashlib
import json
import os
import shutil
import sys

here = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(here, "..", ".."))


def speaker(name):
    return name.split("_")[0]


def split_speakers(names):
    spk = sorted({speaker(n) for n in names})
    return set(spk[0::2]), set(spk[1::2])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache", default=os.environ.get("PROCTOR_CACHE_DIR", os.path.join(ROOT, ".cache")))
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    mix = os.path.join(args.cache, "phrase-data", "realmix")
    src = os.path.join(ROOT, "..", "shared", "data", "speech", "mandarin-speakers")
    names = sorted(n for n in os.listdir(mix) if n.endswith(".wav"))
    field, _ = split_speakers(names)
    os.makedirs(os.path.join(args.out, "audio"), exist_ok=True)
    lines = []
    for n in names:
        if speaker(n) not in field:
            continue
        lab = json.load(open(os.path.join(mix, n[:-4] + ".json")))
        shutil.copy(os.path.join(mix, n), os.path.join(args.out, "audio", "pos-" + n))
        lines.append({"kind": "audio", "audio": "audio/pos-" + n, "sample_rate": 16000, "reviewed": True,
                      "label": "phrase_missed", "phrase": True, "phrase_end_ms": lab["phrases"][0][1]})
        shutil.copy(os.path.join(src, n), os.path.join(args.out, "audio", "neg-" + n))
        lines.append({"kind": "audio", "audio": "audio/neg-" + n, "sample_rate": 16000, "reviewed": True,
                      "label": "not_phrase", "phrase": False})
    raw = "".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines).encode()
    open(os.path.join(args.out, "manifest.jsonl"), "wb").write(raw)
    json.dump({"format": "proctor-export", "format_version": 1, "id": "simulated-realmix-field",
               "purpose": "simulated reviewer labels on real voices (training/phrase/sim_export.py)",
               "manifest_sha256": hashlib.sha256(raw).hexdigest()}, open(os.path.join(args.out, "export.json"), "w"), indent=1)
    print(f"{args.out}: {len(lines)} items from field speakers {sorted(field)}")


if __name__ == "__main__":
    sys.exit(main())
