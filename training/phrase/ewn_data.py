"""Builds the phrase spotter's evaluation sessions without computing openWakeWord features:
exactly the sessions training/phrase/train.py builds (same seeds, voices, job lists, real clips),
written as WAV + labels like train.py writes dev/test. For front ends other than openWakeWord
(ewn.py) and for `proctor eval audio` when the full training run has not been made.

  .cache/phrase-venv/bin/python training/phrase/ewn_data.py [--splits test,dev,train] [--train-sessions N --short-sessions N]

Writes CACHE/phrase-data/{test,dev} (identical to train.py's) and CACHE/phrase-data/train (the first
--train-sessions 60 s sessions and --short-sessions 10 s sessions of train.py's training list).
"""
import argparse
import multiprocessing as mp
import os
import random
import sys
import time

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
import train as T  # noqa: E402


def init(vocab, real):
    T.VOCAB = vocab
    T.REAL = real


def build(args):
    job, out = args
    name = os.path.join(out, "s%06d" % job[0])
    if os.path.exists(name + ".json"):
        return
    a, labels = T.build_session(job)
    labels["duration"] = len(a) / T.F.SR
    T.write_wav(name + ".wav.tmp", a)
    os.replace(name + ".wav.tmp", name + ".wav")
    import json
    with open(name + ".json", "w") as f:
        json.dump({k: (T.round_list(v) if isinstance(v, list) else v) for k, v in labels.items()}, f)


def main():
    root = os.path.abspath(os.path.join(here, "..", ".."))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache", default=os.environ.get("PROCTOR_CACHE_DIR", os.path.join(root, ".cache")))
    ap.add_argument("--real", default=os.path.join(root, "..", "shared", "data", "speech", "mandarin"))
    ap.add_argument("--splits", default="test,dev,train")
    ap.add_argument("--train-sessions", type=int, default=60)
    ap.add_argument("--short-sessions", type=int, default=150)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--seed", type=int, default=20261126)
    args = ap.parse_args()
    # train.py's defaults: the job lists below must consume the generator exactly as it does.
    full_train, full_short, dev_n, dev_extra, test_n, sess_s, test_s = 200, 500, 20, 40, 40, 60.0, 150.0
    train_v, dev_v, test_v = T.split_variants(T.variants(), args.seed)
    real_train, real_test = [], []
    held_back = {"fun_tests_sample.wav", "wen_wave_test.wav"}
    if os.path.isdir(args.real):
        for n in sorted(os.listdir(args.real)):
            if n.endswith(".wav"):
                (real_test if n in held_back else real_train).append(T.read_wav(os.path.join(args.real, n)))
    rng = random.Random(args.seed)

    def jobs(voices, count, seconds, rate, real, base):
        return [(base + i, T.voice_setting(rng, voices[i % len(voices)]), seconds, rate, real) for i in range(count)]

    train_jobs = jobs(train_v, full_train, sess_s, 0.40, "train", 0)
    dev_jobs = jobs(dev_v, dev_n, test_s, 0.12, None, 100000)
    test_jobs = jobs(test_v, test_n, test_s, 0.12, "test", 200000)
    short_jobs = jobs(train_v, full_short, 10, 0.6, "train", 300000)
    rng = random.Random(args.seed + 7)
    dev_jobs += jobs(dev_v, dev_extra, test_s, 0.12, None, 400000)
    # Spread the training subset over all training voices.
    step = max(1, full_train // max(1, args.train_sessions))
    todo = {"test": test_jobs, "dev": dev_jobs,
            "train": train_jobs[::step][:args.train_sessions] + short_jobs[::max(1, full_short // max(1, args.short_sessions))][:args.short_sessions]}
    eval_dir = os.path.join(args.cache, "phrase-data")
    vocab = T.load_vocab()
    t0 = time.time()
    with mp.Pool(args.jobs, initializer=init, initargs=(vocab, {"train": real_train, "test": real_test})) as pool:
        for split in args.splits.split(","):
            out = os.path.join(eval_dir, split)
            os.makedirs(out, exist_ok=True)
            pool.map(build, [(j, out) for j in todo[split]], chunksize=1)
            T.log(f"{split}: {len(todo[split])} sessions in {out} ({time.time() - t0:.0f}s)")


if __name__ == "__main__":
    main()
