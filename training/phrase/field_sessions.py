#!/usr/bin/env python3
"""Synthesises exam-like "field" sessions for the end-to-end data loop (docs/data-loop.md):
candidates whose voices the training lacked answer several questions, each answer closed by
"该题回答完毕" (sometimes by a same-meaning variant, sometimes not at all), with near misses and
ordinary answer speech in between.

    training/phrase/field_sessions.py --out DIR --sessions N [--seed S] [--jobs 2]

Voices: espeak-ng voice *variants made here* (DIR/espeak-ng-data/voices/!v/fieldNNN), each a
perturbation of a seed variant: formant frequencies ×0.88–1.12, formant strengths ×0.85–1.15,
base pitch and range ×0.88–1.12. Two in three seeds (--hard-share) are the test voices the shipped
head misses (Demonic, kaukovalta, steph: "real candidates with unusual voices"); the rest are
training variants. No field voice equals any installed espeak variant, so the field voices are disjoint from
the train, dev and test voices of train.py (checked; voices.json records each voice and the check).
The fixed test split .cache/phrase-data/test is untouched.

Per session DIR/fNNNN.wav (16 kHz mono 16-bit) and DIR/fNNNN.json: the labels `proctor eval audio`
reads (speech, phrases, variants in ms), plus "questions" ([{"question", "shown_ms"}]),
"phrase_ends_ms", "variant_ends_ms", "not_closed" (questions answered without a closing),
"utterances" ([start_ms, end_ms, text]) and "voice". `proctor eval audio --data DIR` therefore measures the spotter on a field batch, and
field_loop.sh plays the sessions through the service.
"""
import argparse
import json
import multiprocessing as mp
import os
import random
import re
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import features as F  # noqa: E402
import train as T  # noqa: E402

ESPEAK_DATA = "/usr/lib/x86_64-linux-gnu/espeak-ng-data"
# The three test voices the shipped head misses entirely (models/cards/phrase-gaiti.md).
HARD_SEEDS = ["Demonic", "kaukovalta", "steph"]
PROBE = "gai1 ti2 hui2 da2 wan2 bi4"


def espeak_data_dir():
    for d in (ESPEAK_DATA, "/usr/share/espeak-ng-data"):
        if os.path.isdir(os.path.join(d, "voices", "!v")):
            return d
    raise SystemExit("espeak-ng-data with voices/!v not found")


def make_data_dir(out):
    """DIR/espeak-ng-data: the system data (symlinked) with voices/!v holding only field voices,
    so a field voice name can never resolve to an installed variant."""
    src = espeak_data_dir()
    dst = os.path.join(out, "espeak-ng-data")
    os.makedirs(os.path.join(dst, "voices", "!v"), exist_ok=True)
    for n in os.listdir(src):
        if n != "voices" and not os.path.lexists(os.path.join(dst, n)):
            os.symlink(os.path.join(src, n), os.path.join(dst, n))
    for n in os.listdir(os.path.join(src, "voices")):
        if n != "!v" and not os.path.lexists(os.path.join(dst, "voices", n)):
            os.symlink(os.path.join(src, "voices", n), os.path.join(dst, "voices", n))
    return src, dst


def params(text):
    """The numeric settings of a variant file (comments dropped): {(key, index): [numbers]}."""
    out = {}
    for line in text.splitlines():
        line = line.split("#")[0].strip()
        if not line:
            continue
        parts = line.split()
        key = parts[0].lower()
        nums = [p for p in parts[1:] if re.fullmatch(r"-?\d+", p)]
        if key == "formant" and nums:
            out[("formant", nums[0])] = [int(x) for x in nums[1:]]
        elif nums:
            out[(key, "")] = [int(x) for x in nums]
    return out


def perturb(text, rng, name):
    """A new variant near `text`: formant frequency/strength and pitch scaled by random factors."""
    lines = []
    for line in text.splitlines():
        body = line.split("#")[0].strip()
        parts = body.split()
        if not parts:
            continue
        key = parts[0].lower()
        if key == "name":
            lines.append("name " + name)
        elif key == "formant" and len(parts) >= 3:
            vals = [int(p) for p in parts[1:] if re.fullmatch(r"-?\d+", p)]
            n, rest = vals[0], vals[1:]
            if len(rest) >= 1:
                rest[0] = max(10, round(rest[0] * rng.uniform(0.88, 1.12)))
            if len(rest) >= 2:
                rest[1] = max(0, round(rest[1] * rng.uniform(0.85, 1.15)))
            lines.append("formant %d %s" % (n, " ".join(str(v) for v in rest)))
        elif key == "pitch" and len(parts) >= 3:
            a, b = int(parts[1]), int(parts[2])
            a2 = max(40, round(a * rng.uniform(0.88, 1.12)))
            b2 = max(a2 + 5, round(b * rng.uniform(0.88, 1.12)))
            lines.append(f"pitch {a2} {b2}")
        else:
            lines.append(body)
    if not any(l.startswith("formant 1 ") for l in lines):  # a variant without formants: give it some
        lines.append("formant 1 %d 100 100" % round(100 * rng.uniform(0.88, 1.12)))
        lines.append("formant 2 %d 100 100" % round(100 * rng.uniform(0.88, 1.12)))
    return "\n".join(lines) + "\n"


def make_voices(out, count, seed, train_variants, installed, hard_share=2 / 3):
    """count field variants; returns [{"variant", "seed_variant", "file"}]."""
    src, dst = make_data_dir(out)
    rng = random.Random(seed)
    installed_params = {}
    for n in installed:
        with open(os.path.join(src, "voices", "!v", n), encoding="utf-8", errors="replace") as f:
            installed_params[n] = params(f.read())
    voices = []
    pool = [v for v in train_variants if "whisper" not in v]
    for i in range(count):
        base = HARD_SEEDS[i % 3] if rng.random() < hard_share else rng.choice(pool)
        with open(os.path.join(src, "voices", "!v", base), encoding="utf-8", errors="replace") as f:
            text = f.read()
        name = "field%d_%03d" % (seed, i)
        for _ in range(20):
            new = perturb(text, rng, name)
            p = params(new)
            p.pop(("name", ""), None)
            same = [n for n, q in installed_params.items() if {k: v for k, v in q.items() if k != ("name", "")} == p]
            if not same:
                break
        else:
            raise SystemExit(f"could not make a field voice distinct from the installed ones (seed {base})")
        with open(os.path.join(dst, "voices", "!v", name), "w", encoding="utf-8") as f:
            f.write(new)
        voices.append({"variant": name, "seed_variant": base, "file": new})
    # espeak-ng falls back silently to the default voice for an unknown variant: check that every
    # field voice was loaded (its audio differs from the plain voice's and from its seed's).
    plain = subprocess.run(["espeak-ng", "-v", "cmn-latn-pinyin", "--stdout", PROBE], capture_output=True).stdout
    for v in voices:
        got = subprocess.run(["espeak-ng", "--path=" + out, "-v", "cmn-latn-pinyin+" + v["variant"], "--stdout", PROBE],
                             capture_output=True).stdout
        seed_audio = subprocess.run(["espeak-ng", "-v", "cmn-latn-pinyin+" + v["seed_variant"], "--stdout", PROBE],
                                    capture_output=True).stdout
        if got == plain or got == seed_audio:
            raise SystemExit(f"field voice {v['variant']} did not load (espeak-ng fell back to another voice)")
    return voices


# ---------------------------------------------------------------- sessions

def answer_sentence(rng):
    r = rng.random()
    if r < 0.45:
        return T.ANSWER_SENTENCES[rng.randrange(len(T.ANSWER_SENTENCES))]
    if r < 0.65:
        return T.NEAR_MISSES[rng.randrange(len(T.NEAR_MISSES))]
    return T.random_sentence(rng, T.VOCAB)


def build(job):
    """One exam: questions shown one after the other; each answer is speech with pauses, then
    (usually) the closing phrase after a short pause."""
    idx, voice, seconds, out = job
    rng = random.Random(voice["session_seed"])
    parts, t = [], 0.0
    lab = {"speech": [], "phrases": [], "variants": [], "questions": [], "not_closed": [], "utterances": []}

    def silence(d):
        nonlocal t
        parts.append(np.zeros(int(d * F.SR), np.float32))
        t += len(parts[-1]) / F.SR

    def speech(a, kind=None, text=""):
        nonlocal t
        if len(a) == 0:
            return
        lab["utterances"].append([round(t * 1000), round((t + len(a) / F.SR) * 1000), text])
        if kind is None:
            lab["speech"].extend(T.speech_regions(a, t))
        else:
            lab["speech"].append([t, t + len(a) / F.SR])
            lab[kind].append([t, t + len(a) / F.SR])
        parts.append(a)
        t += len(a) / F.SR

    n_q = rng.randint(3, 5)
    per_answer = seconds / n_q
    silence(rng.uniform(1.0, 3.0))
    for q in range(1, n_q + 1):
        lab["questions"].append({"question": q, "shown_ms": round(t * 1000)})
        silence(rng.uniform(1.5, 5.0))  # reading the question
        end_by = t + per_answer * rng.uniform(0.6, 0.85)
        while t < end_by:
            text = answer_sentence(rng)
            speech(T.synth(text, T.jitter(voice, rng)), text=text)
            silence(rng.uniform(0.15, 1.0) if rng.random() < 0.85 else rng.uniform(1.5, 5.0))
        r = rng.random()
        if r < 0.80:
            silence(rng.uniform(*T.PAUSE_BEFORE_PHRASE))
            speech(T.synth(T.PHRASE, T.jitter(voice, rng)), "phrases", T.PHRASE)
        elif r < 0.90:
            silence(rng.uniform(*T.PAUSE_BEFORE_PHRASE))
            text = T.VARIANTS[rng.randrange(len(T.VARIANTS))]
            speech(T.synth(text, T.jitter(voice, rng)), "variants", text)
        else:
            lab["not_closed"].append(q)
        silence(rng.uniform(1.0, 4.0))
    silence(rng.uniform(1.0, 2.0))
    a = T.augment(np.concatenate(parts), rng)
    name = "f%04d" % idx
    T.write_wav(os.path.join(out, name + ".wav"), a)
    ms = lambda v: [[round(x * 1000) for x in p] for p in v]  # noqa: E731
    truth = {"speech": ms(lab["speech"]), "phrases": ms(lab["phrases"]), "variants": ms(lab["variants"]),
             "questions": lab["questions"], "phrase_ends_ms": [round(e * 1000) for _, e in lab["phrases"]],
             "variant_ends_ms": [round(e * 1000) for _, e in lab["variants"]], "not_closed": lab["not_closed"],
             "utterances": lab["utterances"],
             "voice": {k: v for k, v in voice.items() if k != "session_seed"}, "duration": len(a) / F.SR,
             "duration_ms": round(len(a) / F.SR * 1000)}
    with open(os.path.join(out, name + ".json"), "w", encoding="utf-8") as f:
        json.dump(truth, f, ensure_ascii=False)
    return name, len(lab["phrases"]), len(a) / F.SR


def init(vocab, data_path):
    T.pool_init(vocab)
    T.ESPEAK_ARGS = ["--path=" + data_path]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--sessions", type=int, required=True)
    ap.add_argument("--voices", type=int, default=0, help="distinct field voices (default: one per session)")
    ap.add_argument("--seed", type=int, default=7001, help="different seeds give different voices and sessions")
    ap.add_argument("--seconds", type=float, nargs=2, default=[120, 180], help="session length range")
    ap.add_argument("--hard-share", type=float, default=2 / 3,
                    help="share of voices made from the three missed test voices (0: from training variants only, a control)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--split-seed", type=int, default=20261126, help="train.py's seed: which variants are train/dev/test")
    args = ap.parse_args()
    t0 = time.time()
    out = os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    installed = T.variants()
    train_v, dev_v, test_v = T.split_variants(installed, args.split_seed)
    src = espeak_data_dir()
    all_installed = sorted(n for n in os.listdir(os.path.join(src, "voices", "!v")))
    voices = make_voices(out, args.voices or args.sessions, args.seed, train_v, all_installed, args.hard_share)
    names = {v["variant"] for v in voices}
    clash = names & set(all_installed)
    assert not clash, clash
    rng = random.Random(args.seed + 1)
    jobs = []
    for i in range(args.sessions):
        v = voices[i % len(voices)]
        s = T.voice_setting(rng, v["variant"])
        s.update(seed_variant=v["seed_variant"], session_seed=rng.randrange(1 << 30))
        jobs.append((i, s, rng.uniform(*args.seconds), out))
    vocab = T.load_vocab()
    with mp.Pool(args.jobs, initializer=init, initargs=(vocab, out)) as pool:
        done = pool.map(build, jobs, chunksize=1)
    with open(os.path.join(out, "voices.json"), "w", encoding="utf-8") as f:
        json.dump({"seed": args.seed, "hard_seeds": HARD_SEEDS, "installed_variants_checked": len(all_installed),
                   "train_dev_test": {"train": train_v, "dev": dev_v, "test": test_v},
                   "check": "no field voice has the settings of an installed variant; each loads (audio differs from "
                            "the plain voice and from its seed variant)",
                   "voices": voices}, f, ensure_ascii=False, indent=1)
    phrases = sum(d[1] for d in done)
    hours = sum(d[2] for d in done) / 3600
    print(f"{len(done)} field sessions in {out}: {hours:.2f} h, {phrases} closing phrases, "
          f"{len(voices)} voices ({sum(v['seed_variant'] in HARD_SEEDS for v in voices)} near {', '.join(HARD_SEEDS)}), "
          f"{time.time() - t0:.0f}s")


if __name__ == "__main__":
    main()
