"""Front-end comparison for the phrase spotter (issue 16): EfficientWord-Net's keyword embedding
(trained on real human speech) vs openWakeWord's features, at the end of every speech segment —
the only place the service can afford the 13 ms network, and where an answer's closing phrase ends.

  .cache/phrase-venv/bin/python training/phrase/ewn.py [--jobs 2] [--fuse] [--export DIR] [--head-out ONNX]

Needs CACHE/phrase-data/{train,dev,test} (training/phrase/ewn_data.py builds them: dev and test are
train.py's held-back voices). Protocol as docs/audio.md: heads train on the train voices only,
every threshold (and the fusion weight) is chosen on the dev voices (highest recall at
<= --target-fa false alarms per hour of speech), the test voices report. Writes
training/phrase/ewn-report.json (--out).

Candidates: the labelled speech ends (gaps < 300 ms joined, as analyzers/vad.go's minimum
silence); for each, 1.5 s windows ending at the speech end + OFFSETS; a segment's score is its
best window's. `proctor eval audio --phrase …` measures the same heads with the real VAD.
  ewn-refs    max cosine to 32 reference embeddings of training phrases (EfficientWord-Net's own method)
  ewn-head    a 2048-64-1 MLP on the embedding (models/trained/phrase-ewn-mlp.onnx with --head-out)
  oww-end     (--fuse) the shipped openWakeWord head's best score in [end - 250 ms, end + 350 ms]
  ewn+oww     (--fuse) a * ewn-head + (1 - a) * oww-end
--export: reviewer labels from proctor exports join the EWN head's training; both heads are
compared, also on the real-mix clips of speakers the export does not contain (sim_export.py).

Real-mix positives (written to CACHE/phrase-data/realmix for `proctor eval audio`): each real
recording of ../shared/data/speech/mandarin-speakers (38 clips, 14 speakers), then a pause of its
own background noise, then the phrase synthesised by a test voice at the level of the recording's
speech, with the recording's noise under it (looped from its quietest frames). What is real: the
speakers, their speech, room and microphone noise and level. What is not: the phrase itself
(espeak-ng) and its room (none: no package registry reachable here serves measured room responses).
"""
import argparse
import hashlib
import json
import multiprocessing as mp
import os
import random
import sys
import time

import numpy as np
import onnxruntime as ort

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
import train as T  # noqa: E402
import ewn_fixture  # noqa: E402

F = T.F
ROOT = os.path.abspath(os.path.join(here, "..", ".."))
OFFSETS = (-0.1, 0.05)  # s after the VAD's speech end (before its 100 ms pad)
WIN = 24000


def sess(path):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


class Models:
    def __init__(self, cache):
        self.ewn = sess(os.path.join(cache, "models", "ewn-resnet50-arc.onnx"))
        self.au = ewn_fixture.ewn_audio_utils()
        self.oww = F.Features(cache)
        self.head = sess(os.path.join(ROOT, "models", "trained", "phrase-gaiti-mlp.onnx"))


M = None


def init(cache):
    global M
    M = Models(cache)


def ewn_embed(a, end_s):
    e = int(round(end_s * 16000))
    w = a[max(0, e - WIN):max(0, e)]
    if len(w) < WIN:
        w = np.concatenate([np.zeros(WIN - len(w), np.float32), w])
    f = M.au.logfbank(w, samplerate=16000, winlen=0.025, winstep=0.01, nfilt=64, nfft=512, preemph=0.0)
    return M.ewn.run(None, {"input": f[None, None].astype(np.float32)})[0][0]


def oww_end(job):
    """The shipped openWakeWord head's best score among the windows ending in [end - 0.25 s,
    end + 0.35 s] of each speech end, computed on the 3.3 s before and around it only."""
    path, ends = job
    a = T.read_wav(path)
    out = np.zeros(len(ends), np.float32)
    for i, e in enumerate(ends):
        lo = max(0, int((e - 2.95) * 16000))
        emb, wend = M.oww.embeddings(a[lo:int((e + 0.4) * 16000)])
        X, last = F.windows(emb)
        if len(X):
            sc = M.head.run(None, {"embeddings": X.astype(np.float32)})[0][:, 0]
            t = wend[last] + lo / 16000
            m = (t >= e - 0.25) & (t <= e + 0.35)
            out[i] = sc[m].max() if m.any() else 0
    return out


def export_windows(item):
    """EWN windows of one reviewer snippet (train.read_export item): a positive at its phrase end,
    a negative at each of its speech ends (energy over the noise floor, as train.py reads real clips)."""
    path, positive, pe = item
    a = T.read_wav(path)
    if positive:
        ends = [pe if pe is not None else len(a) / 16000]
    else:
        ends = [e for _, e in T.speech_regions_energy(a, 0)] or [len(a) / 16000]
    X = [ewn_embed(a, e + off) for e in ends for off in OFFSETS]
    return np.asarray(X, np.float32), np.full(len(X), 1.0 if positive else 0.0, np.float32)


def label_ends(lab):
    """Speech ends of a labelled session: the labelled speech (clean TTS energy, gaps < 250 ms
    joined) with gaps shorter than the VAD's 300 ms minimum silence joined, as the VAD would."""
    segs = sorted(lab["speech"])
    out = []
    for s_, e in segs:
        if out and s_ - out[-1][1] < 0.3:
            out[-1][1] = max(out[-1][1], e)
        else:
            out.append([s_, e])
    return [(s_, e) for s_, e in out if e - s_ >= 0.15]


def analyse(path):
    """One session: its speech ends and the EWN embeddings of the windows ending there."""
    a = T.read_wav(path)
    segs = label_ends(labels_of(path))
    emb = np.zeros((len(segs), len(OFFSETS), 2048), np.float32)
    for i, (_, e) in enumerate(segs):
        for k, off in enumerate(OFFSETS):
            emb[i, k] = ewn_embed(a, e + off)
    return {"path": path, "segs": segs, "emb": emb.astype(np.float16), "dur": len(a) / 16000}


def labels_of(path):
    with open(path[:-4] + ".json") as f:
        lab = json.load(f)
    return {k: [[x / 1000 for x in p] for p in lab.get(k, [])] for k in ("speech", "phrases", "variants")}


def candidate_labels(rec, lab):
    """Per segment: 1 the phrase ends there, 0 negative, -1 a same-meaning variant (never a negative)."""
    y = np.zeros(len(rec["segs"]), np.int8)
    for i, (_, e) in enumerate(rec["segs"]):
        if any(pe - 0.5 <= e <= pe + 0.6 for _, pe in lab["phrases"]):
            y[i] = 1
        elif any(vs <= e <= ve + 0.6 for vs, ve in lab["variants"]):
            y[i] = -1
    return y


def evaluate(recs, labs, scores, thr):
    """train.py evaluate() over segment detections: a detection (segment end) within
    [end - 0.5 s, end + 1 s] of a phrase is a hit, on a variant a variant hit, else a false alarm."""
    hit = total = fa = vh = vt = 0
    neg = 0.0
    for rec, lab, sc in zip(recs, labs, scores):
        dets = [rec["segs"][i][1] for i in range(len(sc)) if sc[i] >= thr]
        used = set()
        for _, pe in lab["phrases"]:
            total += 1
            for k, d in enumerate(dets):
                if k not in used and pe - 0.5 <= d <= pe + 1.0:
                    used.add(k)
                    hit += 1
                    break
        for vs, ve in lab["variants"]:
            vt += 1
            for k, d in enumerate(dets):
                if k not in used and vs <= d <= ve + 1.0:
                    used.add(k)
                    vh += 1
                    break
        fa += len(dets) - len(used)
        neg += sum(e - s for s, e in lab["speech"]) - sum(e - s for s, e in lab["phrases"] + lab["variants"])
    h = neg / 3600
    return {"threshold": round(float(thr), 6), "recall": round(hit / max(total, 1), 4), "hits": hit, "phrases": total,
            "false_alarms": fa, "negative_speech_hours": round(h, 4), "fa_per_hour": round(fa / max(h, 1e-9), 3),
            "variant_hits": vh, "variants": vt}


def choose(recs, labs, scores, target):
    grid = sorted(set(np.round(np.concatenate([np.linspace(0.01, 0.99, 99), 1 - 10 ** -np.arange(2, 6.01, 0.1)]), 6)))
    table = [evaluate(recs, labs, scores, t) for t in grid]
    ok = [r for r in table if r["fa_per_hour"] <= target]
    return max(ok, key=lambda r: (r["recall"], r["threshold"])) if ok else min(table, key=lambda r: (r["fa_per_hour"], -r["recall"]))


def realmix(cache, out_dir, seed):
    """Real recordings followed by the synthetic phrase in their noise and at their level."""
    src = os.path.join(ROOT, "..", "shared", "data", "speech", "mandarin-speakers")
    _, _, test_v = T.split_variants(T.variants(), 20261126)
    rng = random.Random(seed)
    os.makedirs(out_dir, exist_ok=True)
    out = []
    for n in sorted(os.listdir(src)):
        if not n.endswith(".wav"):
            continue
        path = os.path.join(out_dir, n)
        out.append(path)
        if os.path.exists(path[:-4] + ".json"):
            continue
        a = T.read_wav(os.path.join(src, n))
        fr = 160
        k = len(a) // fr
        e = np.sqrt(np.mean(a[:k * fr].reshape(k, fr) ** 2, axis=1) + 1e-12)
        quiet = np.argsort(e)[:max(5, k // 10)]
        noise = np.concatenate([a[i * fr:(i + 1) * fr] for i in sorted(quiet)])
        speech_rms = float(np.sqrt(np.mean(np.concatenate([a[i * fr:(i + 1) * fr] for i in np.where(e > np.percentile(e, 60))[0]]) ** 2)))
        v = T.voice_setting(rng, test_v[rng.randrange(len(test_v))])
        ph = T.synth(T.PHRASE, v)
        ph = ph / (np.sqrt(np.mean(ph[np.abs(ph) > 0.01] ** 2)) + 1e-9) * speech_rms
        gap, tail = int(rng.uniform(0.4, 1.0) * 16000), 16000
        bed_len = gap + len(ph) + tail
        bed = np.resize(noise, bed_len)
        mix = bed.copy()
        mix[gap:gap + len(ph)] += ph
        full = np.concatenate([a, mix]).astype(np.float32)
        T.write_wav(path, np.clip(full, -1, 1))
        pe = (len(a) + gap + len(ph)) / 16000
        with open(path[:-4] + ".json", "w") as f:
            json.dump({"speech": [[0, round(len(a) / 16)], [round((len(a) + gap) / 16), round(pe * 1000)]], "phrases": [[round((len(a) + gap) / 16 ), round(pe * 1000)]], "variants": [],
                       "voice": {"variant": v["variant"]}, "source": n, "note": "real recording + synthetic phrase in its noise at its level"}, f)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache", default=os.environ.get("PROCTOR_CACHE_DIR", os.path.join(ROOT, ".cache")))
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--target-fa", type=float, default=0.5)
    ap.add_argument("--refs", type=int, default=32)
    ap.add_argument("--train-files", type=int, default=210, help="sessions ewn_data.py writes to train/ (60 + 150 by default)")
    ap.add_argument("--seed", type=int, default=20261206)
    ap.add_argument("--out", default=os.path.join(here, "ewn-report.json"))
    ap.add_argument("--export", action="append", default=[],
                    help="a proctor export (docs/data-loop.md; repeatable): its reviewed audio labels join the EWN head's training "
                         "(phrase_missed/answer_end: windows at phrase_end_ms; not_phrase: windows at its speech ends); the head is "
                         "compared with the one trained without it, also on the real-mix speakers the export does not contain")
    ap.add_argument("--extra-weight", type=float, default=3.0, help="weight of the export's windows")
    ap.add_argument("--fuse", action="store_true", help="also score the shipped openWakeWord head at the same speech ends, alone and fused")
    ap.add_argument("--head-out", default=None, help="write the EWN head as ONNX ([N,2048] -> [N,1]) here")
    args = ap.parse_args()
    t0 = time.time()
    data = os.path.join(args.cache, "phrase-data")
    work = os.path.join(args.cache, "phrase-work", "ewn")
    os.makedirs(work, exist_ok=True)
    realmix(args.cache, os.path.join(data, "realmix"), args.seed)
    recs = {}
    with mp.Pool(args.jobs, initializer=init, initargs=(args.cache,)) as pool:
        for s in ("dev", "test", "train"):  # listed when reached: train may still be being built
            want = {"test": 40, "dev": 60, "train": args.train_files}[s]
            while len([n for n in os.listdir(os.path.join(data, s)) if n.endswith(".json")]) < want:
                time.sleep(10)  # ewn_data.py is still building it
            paths = sorted(os.path.join(data, s, n) for n in os.listdir(os.path.join(data, s)) if n.endswith(".wav"))
            key = hashlib.sha256(("\n".join(paths) + repr(OFFSETS)).encode()).hexdigest()[:12]
            cache = os.path.join(work, f"{s}-{key}.npz")
            if os.path.exists(cache):
                recs[s] = list(np.load(cache, allow_pickle=True)["recs"])
            else:
                recs[s] = pool.map(analyse, paths, chunksize=1)
                np.savez(cache, recs=np.array(recs[s], dtype=object))
            T.log(f"{s}: {len(paths)} files, {sum(len(r['segs']) for r in recs[s])} speech ends ({time.time() - t0:.0f}s)")
        if args.fuse:
            for s in ("dev", "test"):
                cache = os.path.join(work, f"{s}-oww-{len(recs[s])}.npy")
                if os.path.exists(cache):
                    oww = list(np.load(cache, allow_pickle=True))
                else:
                    oww = pool.map(oww_end, [(r["path"], [e for _, e in r["segs"]]) for r in recs[s]], chunksize=1)
                    np.save(cache, np.array(oww, dtype=object))
                for r, o in zip(recs[s], oww):
                    r["oww"] = o
                T.log(f"{s}: openWakeWord scores at the speech ends ({time.time() - t0:.0f}s)")
    labs = {s: [labels_of(r["path"]) for r in recs[s]] for s in ("train", "dev", "test")}

    # Training windows: every offset of every train candidate.
    X, y = [], []
    for rec, lab in zip(recs["train"], labs["train"]):
        cy = candidate_labels(rec, lab)
        for i in range(len(cy)):
            if cy[i] >= 0:
                for k in range(len(OFFSETS)):
                    X.append(rec["emb"][i, k])
                    y.append(cy[i])
    X, y = np.asarray(X, np.float32), np.asarray(y, np.float32)
    T.log(f"train windows {len(y)}, positive {int(y.sum())}")
    mean, std = X.mean(0), X.std(0) + 1e-3
    w = np.where(y == 1, (len(y) - y.sum()) / max(y.sum(), 1) * 0.3, 1.0).astype(np.float32)
    model = T.train_mlp((X - mean) / std, y, w, 64, 40, args.seed)
    rng = np.random.default_rng(args.seed)
    pos = X[y == 1]
    refs = pos[rng.choice(len(pos), min(args.refs, len(pos)), replace=False)]
    refs /= np.linalg.norm(refs, axis=1, keepdims=True)

    def seg_scores(rec, kind):
        e = rec["emb"].astype(np.float32)
        if len(e) == 0:
            return np.zeros(0, np.float32)
        flat = e.reshape(-1, e.shape[-1])
        if kind == "ewn-refs":
            s_ = (flat / np.linalg.norm(flat, axis=1, keepdims=True)) @ refs.T
            s_ = ((s_.max(1) + 1) / 2).reshape(len(e), -1)
        else:
            s_ = model.score((flat - mean) / std).reshape(len(e), -1)
        return s_.max(1)

    report = {"offsets_s": OFFSETS, "target_fa_per_hour": args.target_fa, "train_sessions": len(recs["train"]),
              "train_windows": int(len(y)), "train_positive_windows": int(y.sum()), "refs": len(refs), "rows": {}}
    names = ["ewn-refs", "ewn-head"] + (["oww-end", "ewn+oww"] if args.fuse else [])
    for name in names:
        if name == "oww-end":
            sc = {s: [r["oww"] for r in recs[s]] for s in ("dev", "test")}
        elif name == "ewn+oww":  # late fusion: the weight is chosen on dev like the threshold
            best = None
            for a in (0.2, 0.35, 0.5, 0.65, 0.8):
                cand = {s: [a * seg_scores(r, "ewn-head") + (1 - a) * r["oww"] for r in recs[s]] for s in ("dev", "test")}
                d = choose(recs["dev"], labs["dev"], cand["dev"], args.target_fa)
                if best is None or (d["recall"], -d["fa_per_hour"]) > (best[0]["recall"], -best[0]["fa_per_hour"]):
                    best = (d, cand, a)
            sc, report["fusion_weight"] = best[1], best[2]
        else:
            sc = {s: [seg_scores(r, name) for r in recs[s]] for s in ("dev", "test")}
        dev = choose(recs["dev"], labs["dev"], sc["dev"], args.target_fa)
        thr = dev["threshold"]
        test = evaluate(recs["test"], labs["test"], sc["test"], thr)
        tradeoff = []
        for t in sorted({thr, 0.5, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999}):
            r = evaluate(recs["test"], labs["test"], sc["test"], t)
            tradeoff.append({k: r[k] for k in ("threshold", "recall", "false_alarms", "fa_per_hour")})
        report["rows"][name] = {"dev": dev, "test": test, "test_tradeoff": tradeoff}
        T.log(f"{name:9s} thr {thr:.4f}: dev recall {dev['recall']:.3f} at {dev['fa_per_hour']:.2f}/h | TEST recall {test['recall']:.3f} "
              f"({test['hits']}/{test['phrases']}), {test['false_alarms']} FA = {test['fa_per_hour']:.2f}/h, variants "
              f"{test['variant_hits']}/{test['variants']}")
    report["threshold"] = report["rows"]["ewn-head"]["dev"]["threshold"]
    if args.export:
        import sim_export
        items, exports = [], []
        for d in args.export:
            summary, its = T.read_export(d, False)
            exports.append(summary)
            items += its
        with mp.Pool(args.jobs, initializer=init, initargs=(args.cache,)) as pool:
            ew = pool.map(export_windows, items, chunksize=1)
            mix_paths = sorted(os.path.join(data, "realmix", n) for n in os.listdir(os.path.join(data, "realmix")) if n.endswith(".wav"))
            mix = pool.map(analyse, mix_paths, chunksize=1)
        in_export = {sim_export.speaker(os.path.basename(p)[4:]) for p, _, _ in items}
        Xe = np.concatenate([x for x, _ in ew])
        ye = np.concatenate([y_ for _, y_ in ew])
        X2, y2 = np.concatenate([X, Xe]), np.concatenate([y, ye])
        w2 = np.where(y2 == 1, (len(y2) - y2.sum()) / max(y2.sum(), 1) * 0.3, 1.0).astype(np.float32)
        w2[len(y):] *= args.extra_weight
        model2 = T.train_mlp((X2 - mean) / std, y2, w2, 64, 40, args.seed)
        held = [i for i, r in enumerate(mix) if sim_export.speaker(os.path.basename(r["path"])) not in in_export]
        mlabs = [labels_of(mix[i]["path"]) for i in held]
        report["export"] = {"exports": exports, "windows": int(len(ye)), "positive_windows": int(ye.sum()),
                            "export_speakers": sorted(in_export), "measured_on_realmix_clips": len(held)}
        for name, m in (("ewn-head", model), ("ewn-head+export", model2)):
            sc = lambda r: (m.score((r["emb"].astype(np.float32).reshape(-1, 2048) - mean) / std).reshape(len(r["emb"]), -1).max(1)
                            if len(r["emb"]) else np.zeros(0))
            dev = choose(recs["dev"], labs["dev"], [sc(r) for r in recs["dev"]], args.target_fa)
            test = evaluate(recs["test"], labs["test"], [sc(r) for r in recs["test"]], dev["threshold"])
            rm = evaluate([mix[i] for i in held], mlabs, [sc(mix[i]) for i in held], dev["threshold"])
            report["export"][name] = {"threshold": dev["threshold"], "dev_recall": dev["recall"], "test": test, "realmix_held_out": rm}
            T.log(f"{name:16s} thr {dev['threshold']:.4f}: TEST recall {test['recall']:.3f} ({test['hits']}/{test['phrases']}) "
                  f"{test['false_alarms']} FA | real-mix, speakers not in the export: {rm['hits']}/{rm['phrases']}, {rm['false_alarms']} FA")
    report["seconds"] = round(time.time() - t0)
    with open(args.out, "w") as f:
        json.dump(report, f, indent=1)
    if args.head_out:
        export_head(model, mean, std, args.head_out, report)
        import onnxruntime as ort_
        got = ort_.InferenceSession(args.head_out, providers=["CPUExecutionProvider"]).run(None, {"embedding": X[:64]})[0][:, 0]
        assert np.abs(got - model.score((X[:64] - mean) / std)).max() < 1e-4
        T.log(f"wrote {args.head_out} (sha256 {hashlib.sha256(open(args.head_out, 'rb').read()).hexdigest()})")
    T.log(f"wrote {args.out}")


def export_head(model, mean, std, path, report):
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    W1 = (model.W1 / std[:, None]).astype(np.float32)
    b1 = (model.b1 - (mean / std) @ model.W1).astype(np.float32)
    nodes = [helper.make_node("Gemm", ["embedding", "W1", "b1"], ["h"]), helper.make_node("Relu", ["h"], ["hr"]),
             helper.make_node("Gemm", ["hr", "W2", "b2"], ["z"]), helper.make_node("Sigmoid", ["z"], ["score"])]
    inits = [numpy_helper.from_array(W1, "W1"), numpy_helper.from_array(b1, "b1"),
             numpy_helper.from_array(model.W2.astype(np.float32), "W2"), numpy_helper.from_array(model.b2.astype(np.float32), "b2")]
    g = helper.make_graph(nodes, "phrase_ewn_head", [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", 2048])],
                          [helper.make_tensor_value_info("score", TensorProto.FLOAT, ["N", 1])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], producer_name="proctor training/phrase/ewn.py")
    m.ir_version = 8
    onnx.checker.check_model(m)
    onnx.save(m, path)


if __name__ == "__main__":
    main()
