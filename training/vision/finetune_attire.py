#!/usr/bin/env python3
"""Fast retraining of attire-cnn from the data team's exports: refits the classifier's last layer
(the MatMul/Gemm + bias feeding the sigmoid) on the exported face crops, keeps every other weight,
and writes a version directory (docs/data-loop.md) that `proctor models register` and
`proctor eval vision --attire-model DIR` read. Seconds on 2 cores; CI's end-to-end test runs it.
The full retraining (every layer, ~15-20 min) is train_attire.py --export DIR.

  training/vision/finetune_attire.sh --export DIR [--export DIR2 ...] --out VERSION_DIR
      [--version N] [--base ONNX|VERSION_DIR] [--bench DATA_DIR]

Method, kept simple on purpose:
  1. Data: the vision items of each export with a crop (crops/<item>.png, the 112x112 aligned
     crop the model reads) and a boolean "mask" and/or "occluded" label. Everything else is
     skipped and counted by reason (eval.json). A crop present in two exports counts once; the
     later export's labels win.
  2. Features: the base model with the last layer's input added as a graph output, run with
     onnxruntime 1.24.1 (the runtime the service loads), pixel/255 BGR NCHW as the Go analyzer.
  3. Fit: per label, logistic regression on those features by Newton's method, with an L2 penalty
     pulling the weights and bias toward the current ones:
         sum_i BCE(sigmoid(x_i.w + b), y_i) + l2/8 * (mean_i |x_i|^2 / F) * |w - w0|^2 + l2/8 * (b - b0)^2
     (F features). The penalty has the curvature of about --l2 examples scored 0.5 (each adds
     x x^T / 4 to the Hessian): it is the only thing that stands for the base model's training
     data (no replay of old photos, no distillation on other data), so a handful of labels
     nudges the layer and hundreds move it. A label with no examples keeps its weights.
     The default 300 was chosen on train_attire.py's validation split (never mask/dev), mask head:
     5 deliberately wrong labels cost 4 points of accuracy there (100: 20 points, 1000: 1), 38
     wrong labels 18 points; 13 of the base's own errors (+40 right) fix 5 of 14 similar unseen
     errors at 0.5 points elsewhere (100: 7 of 14 at 1 point).
  4. Thresholds: a label keeps its current threshold unless the export holds at least
     --min-per-class (default 30) positives AND negatives of it; then the threshold is chosen as
     train_attire.py does (the highest whose F1 is within 0.01 of the best, 0.10-0.90), on
     5-fold out-of-fold scores of this same fit, not on the in-sample scores.
  5. Output: the new weights written into a copy of the base ONNX (nothing else changes), checked
     by running it; manifest.json (the base manifest with the new version, sha256, thresholds,
     "source":{"registry":"registered",...}, "file":"attire-cnn.onnx"); card.md; eval.json with
     accuracy on the exported items before/after (in-sample, and labelled so) and, with --bench,
     `proctor eval vision --checks attributes --json` of the base and of the new version.
Never reads ../shared/data unless --bench points there; writes only --out."""
import argparse
import datetime
import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
import exports as E  # noqa: E402

ROOT = os.path.abspath(os.path.join(here, "..", ".."))
NAME = "attire-cnn"
BUILTIN_MANIFEST = os.path.join(ROOT, "models", "manifests", NAME + ".json")
BUILTIN_ONNX = os.path.join(ROOT, "models", "trained", NAME + ".onnx")
SIZE = 112
FOLDS = 5


def log(*a):
    print("finetune_attire:", *a, file=sys.stderr, flush=True)


class Fail(Exception):
    pass


# ---- base model ---------------------------------------------------------------------------

def resolve_base(base):
    """(onnx path, manifest dict, version dir or None). base is empty (the built-in model), an
    ONNX file, or a version directory (manifest.json + the file it names)."""
    if not base:
        with open(BUILTIN_MANIFEST) as f:
            return BUILTIN_ONNX, json.load(f), None
    if os.path.isdir(base):
        with open(os.path.join(base, "manifest.json")) as f:
            m = json.load(f)
        return os.path.join(base, os.path.basename(m["file"])), m, base
    # A bare ONNX file: the built-in manifest supplies the contract and thresholds.
    with open(BUILTIN_MANIFEST) as f:
        return base, json.load(f), None


def find_head(graph, output):
    """The last layer feeding the sigmoid that produces `output`: returns a dict with the
    feature tensor name, how to read W [F,K] and b [K] from the initializers and how to write
    them back. Raises Fail on a graph of another shape."""
    producer = {o: n for n in graph.node for o in n.output}
    inits = {i.name: i for i in graph.initializer}
    uses = {}
    for n in graph.node:
        for i in n.input:
            uses[i] = uses.get(i, 0) + 1

    def through_identity(t):
        while t in producer and producer[t].op_type == "Identity":
            t = producer[t].input[0]
        return t

    t = through_identity(output)
    sig = producer.get(t)
    if sig is None or sig.op_type != "Sigmoid":
        raise Fail(f"output {output!r} is not produced by a Sigmoid ({sig.op_type if sig else 'graph input'})")
    z = through_identity(sig.input[0])
    last = producer.get(z)
    head = None
    if last is not None and last.op_type == "Gemm":
        attr = {a.name: a for a in last.attribute}
        get = lambda k, d: (attr[k].f if attr[k].type == 1 else attr[k].i) if k in attr else d  # noqa: E731
        if get("transA", 0) != 0 or len(last.input) < 3 or last.input[1] not in inits or last.input[2] not in inits:
            raise Fail("Gemm before the sigmoid must have transA=0 and initializer weights and bias")
        head = {"kind": "Gemm", "feat": last.input[0], "w": last.input[1], "b": last.input[2],
                "transB": int(get("transB", 0)), "alpha": float(get("alpha", 1.0)), "beta": float(get("beta", 1.0))}
    elif last is not None and last.op_type == "Add":
        a, b = last.input
        bias, other = (b, a) if b in inits else (a, b) if a in inits else (None, None)
        mm = producer.get(through_identity(other)) if other else None
        if bias is None or mm is None or mm.op_type != "MatMul" or mm.input[1] not in inits:
            raise Fail("Add before the sigmoid must add an initializer bias to a MatMul with initializer weights")
        head = {"kind": "MatMul+Add", "feat": mm.input[0], "w": mm.input[1], "b": bias, "transB": 0, "alpha": 1.0, "beta": 1.0}
    else:
        raise Fail(f"the sigmoid's input comes from {last.op_type if last else 'a graph input'}, not Gemm or MatMul+Add")
    for k in ("w", "b"):
        if uses.get(head[k], 0) != 1:
            raise Fail(f"initializer {head[k]!r} is used by {uses.get(head[k], 0)} nodes: refitting it would change more than the last layer")
    return head


def head_weights(graph, head):
    from onnx import numpy_helper
    inits = {i.name: i for i in graph.initializer}
    w = numpy_helper.to_array(inits[head["w"]]).astype(np.float64)
    b = numpy_helper.to_array(inits[head["b"]]).astype(np.float64)
    if w.ndim != 2:
        raise Fail(f"last-layer weights have shape {w.shape}, want 2-D")
    if head["transB"]:
        w = w.T
    w = w * head["alpha"]
    b = np.broadcast_to(b.reshape(-1) * head["beta"], (w.shape[1],)).copy()
    return w, b


def set_head_weights(graph, head, w, b):
    from onnx import numpy_helper
    inits = {i.name: i for i in graph.initializer}
    old_w, old_b = (numpy_helper.to_array(inits[head[k]]) for k in ("w", "b"))
    nw = w / head["alpha"]
    if head["transB"]:
        nw = nw.T
    nb = b / head["beta"]
    if old_b.size != nb.size:
        raise Fail(f"bias initializer has {old_b.size} values for {nb.size} outputs")
    for name, arr, old in ((head["w"], nw, old_w), (head["b"], nb.reshape(old_b.shape), old_b)):
        t = numpy_helper.from_array(np.ascontiguousarray(arr.astype(old.dtype)), name)
        inits[name].CopyFrom(t)


class Runner:
    """The base model with the last layer's input as an extra output."""

    def __init__(self, proto, head, output):
        import onnx
        import onnxruntime as ort
        p = onnx.ModelProto()
        p.CopyFrom(proto)
        if head["feat"] not in [o.name for o in p.graph.output]:
            p.graph.output.append(onnx.helper.make_tensor_value_info(head["feat"], onnx.TensorProto.FLOAT, None))
        so = ort.SessionOptions()
        so.intra_op_num_threads = 2
        so.log_severity_level = 3
        self.s = ort.InferenceSession(p.SerializeToString(), so, providers=["CPUExecutionProvider"])
        self.input = p.graph.input[0].name
        self.outputs = [output, head["feat"]]

    def __call__(self, crops):
        """crops: uint8 [N,112,112,3] BGR -> (scores [N,K], features [N,F])."""
        x = (np.asarray(crops, np.float32) / 255.0).transpose(0, 3, 1, 2)
        sc, ft = [], []
        for i in range(0, len(x), 64):
            s, f = self.s.run(self.outputs, {self.input: x[i:i + 64]})
            sc.append(s)
            ft.append(f.reshape(len(f), -1))
        return np.concatenate(sc).astype(np.float64), np.concatenate(ft).astype(np.float64)


# ---- data ---------------------------------------------------------------------------------

def load_crops(exps):
    """Crops (uint8 BGR) and labels of every usable item, deduplicated by crop content."""
    from PIL import Image
    by_sha, order, skipped = {}, [], {}
    for ex in exps:
        for it in ex.items:
            sha = E.sha256_file(it.path)
            try:
                with Image.open(it.path) as im:
                    a = np.asarray(im.convert("RGB"))
            except OSError:
                ex.skipped["crop unreadable"] = ex.skipped.get("crop unreadable", 0) + 1
                continue
            if a.shape[:2] != (SIZE, SIZE):
                ex.skipped[f"crop not {SIZE}x{SIZE}"] = ex.skipped.get(f"crop not {SIZE}x{SIZE}", 0) + 1
                continue
            if sha in by_sha:
                skipped["duplicate crop (later export's labels kept)"] = skipped.get("duplicate crop (later export's labels kept)", 0) + 1
                by_sha[sha]["labels"].update(it.labels)
                by_sha[sha]["from"] = f"{it.export_id}/{it.id}"
                continue
            by_sha[sha] = {"crop": a[:, :, ::-1].copy(), "labels": dict(it.labels), "from": f"{it.export_id}/{it.id}"}
            order.append(sha)
    rows = [by_sha[s] for s in order]
    return rows, skipped


# ---- fitting ------------------------------------------------------------------------------

def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-np.clip(z, -60, 60)))


def fit_logistic(x, y, w0, b0, l2, iters=100):
    """Newton's method on the penalised log-loss (module docstring, step 3). Returns (w, b, iterations)."""
    n, f = x.shape
    xa = np.hstack([x, np.ones((n, 1))])
    theta0 = np.concatenate([w0, [b0]])
    # Penalty: the curvature of about l2 examples scored 0.5 (each adds x x^T / 4 to the Hessian),
    # spread evenly over the weights (scaled by the features' mean squared norm, so the strength
    # does not depend on the feature scale), and on the bias.
    scale = float(np.mean(np.sum(x * x, 1))) if n else 1.0
    reg = np.full(f + 1, 0.25 * l2 * scale / max(f, 1))
    reg[-1] = 0.25 * l2

    def objective(th):
        z = xa @ th
        # log(1+e^z) - y z, stably
        return float(np.sum(np.logaddexp(0, z) - y * z) + 0.5 * np.sum(reg * (th - theta0) ** 2))

    th = theta0.copy()
    cur = objective(th)
    it = 0
    for it in range(1, iters + 1):
        p = sigmoid(xa @ th)
        g = xa.T @ (p - y) + reg * (th - theta0)
        h = (xa * (p * (1 - p))[:, None]).T @ xa + np.diag(reg)
        step = np.linalg.solve(h, g)
        t = 1.0
        while t > 1e-6:
            nxt = objective(th - t * step)
            if nxt <= cur:
                break
            t /= 2
        th = th - t * step
        done = abs(cur - nxt) < 1e-10 * max(1.0, abs(cur)) or np.max(np.abs(t * step)) < 1e-9
        cur = nxt
        if done:
            break
    return th[:-1], float(th[-1]), it


def out_of_fold(x, y, w0, b0, l2):
    # Deterministic folds: a fixed shuffle (the same items give the same folds).
    rng = np.random.default_rng(0)
    perm = rng.permutation(len(y))
    folds = np.empty(len(y), int)
    folds[perm] = np.arange(len(y)) % FOLDS
    s = np.zeros(len(y))
    for k in range(FOLDS):
        tr, te = folds != k, folds == k
        if not te.any():
            continue
        w, b, _ = fit_logistic(x[tr], y[tr], w0, b0, l2)
        s[te] = sigmoid(x[te] @ w + b)
    return s


def prf(pred, labels):
    pred, labels = np.asarray(pred, bool), np.asarray(labels, bool)
    tp, fp = int((pred & labels).sum()), int((pred & ~labels).sum())
    fn, tn = int((~pred & labels).sum()), int((~pred & ~labels).sum())
    p = tp / (tp + fp) if tp + fp else None
    r = tp / (tp + fn) if tp + fn else None
    f1 = 2 * p * r / (p + r) if p and r else (0.0 if p is not None and r is not None else None)
    return {"n": len(labels), "accuracy": round((tp + tn) / len(labels), 4) if len(labels) else None,
            "precision": None if p is None else round(p, 4), "recall": None if r is None else round(r, 4),
            "f1": None if f1 is None else round(f1, 4), "tp": tp, "fp": fp, "fn": fn, "tn": tn}


def best_threshold(scores, labels):
    """As train_attire.best_threshold: the highest threshold whose F1 is within 0.01 of the best."""
    ts = np.round(np.arange(0.10, 0.901, 0.01), 2)
    f1 = []
    for t in ts:
        r = prf(scores >= t, labels)
        f1.append(r["f1"] or 0.0)
    f1 = np.array(f1)
    return float(ts[f1 >= f1.max() - 0.01].max())


# ---- bench --------------------------------------------------------------------------------

def bench(proctor, data, version_dir, shown=""):
    """`proctor eval vision --json` on data with the base (version_dir empty: the built-in) or a
    version directory; shown is the directory's name in the recorded command."""
    cmd = [proctor, "eval", "vision", "--data", data, "--analyzers", "faces,landmarks,attire",
           "--checks", "attributes", "--json", "-q"]
    if version_dir:
        cmd += ["--attire-model", version_dir]
    t0 = time.time()
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise Fail(f"{' '.join(cmd)} exited {r.returncode}: {r.stderr.strip()[-2000:]}")
    rep = json.loads(r.stdout)
    if version_dir and shown:
        cmd[-1] = shown
    rep["command"] = " ".join(os.path.relpath(c, ROOT) if c.startswith(ROOT + os.sep) else c for c in cmd)
    rep["seconds"] = round(time.time() - t0, 1)
    return rep


# ---- main ---------------------------------------------------------------------------------

def next_version(v):
    try:
        return str(int(v) + 1)
    except ValueError:
        raise Fail(f"base version {v!r} is not an integer: pass --version")


def run(args):
    import onnx
    t_start = time.time()
    base_onnx, man, base_dir = resolve_base(args.base)
    if man.get("name") != NAME:
        raise Fail(f"base manifest is {man.get('name')!r}, not {NAME}")
    base_sha = E.sha256_file(base_onnx)
    base_id = f"{NAME}@{man['version']}"
    if base_sha != man["sha256"]:
        if args.base and not base_dir:
            log(f"note: {base_onnx} is not the built-in {base_id} (sha256 differs): its thresholds are the built-in ones")
            base_id = f"{NAME}@{man['version']}+{base_sha[:12]}"
        else:
            raise Fail(f"{base_onnx}: sha256 {base_sha} differs from its manifest's {man['sha256']}")
    version = args.version or next_version(man["version"])
    labels = list(man["vision"]["labels"])
    old_thr = {k: float(man["vision"]["scores"][k]) for k in labels}

    exps = [E.read_export(d, "crop", tuple(labels)) for d in args.export]
    rows, dup = load_crops(exps)
    for ex in exps:
        if not ex.manifest_sha256_ok:
            log(f"warning: {ex.dir}: manifest.jsonl sha256 differs from export.json's manifest_sha256 {ex.manifest_sha256!r}")
        log(f"{ex.id}: {len(ex.items)} usable items, skipped {ex.skipped or 'none'}")
    if not rows:
        raise Fail("no usable items: the exports hold no vision item with a crop and a mask/occluded label")

    proto = onnx.load(base_onnx)
    output = man["decode"]["outputs"][0]
    head = find_head(proto.graph, output)
    runner = Runner(proto, head, output)
    crops = np.stack([r["crop"] for r in rows])
    base_scores, feats = runner(crops)
    w0, b0 = head_weights(proto.graph, head)
    if feats.shape[1] != w0.shape[0] or w0.shape[1] != len(labels):
        raise Fail(f"features {feats.shape[1]}, weights {w0.shape}, labels {labels}: the graph is not a {len(labels)}-label head")
    # The refit is only right if the head we found is the whole story from features to scores.
    err = float(np.max(np.abs(sigmoid(feats @ w0 + b0) - base_scores)))
    if err > 1e-4:
        raise Fail(f"the last layer found ({head['kind']}) does not reproduce the model's scores (max error {err:.2g})")

    w, b = w0.copy(), b0.copy()
    new_thr = dict(old_thr)
    per_label, cv = {}, {}
    for k, lab in enumerate(labels):
        idx = np.array([i for i, r in enumerate(rows) if lab in r["labels"]], int)
        y = np.array([float(rows[i]["labels"][lab]) for i in idx])
        pos, neg = int(y.sum()), int(len(y) - y.sum())
        info = {"items": len(idx), "positives": pos, "negatives": neg}
        if len(idx) == 0:
            info["fit"] = "no examples: weights kept"
            per_label[lab] = info
            continue
        wk, bk, iters = fit_logistic(feats[idx], y, w0[:, k], b0[k], args.l2)
        w[:, k], b[k] = wk, bk
        info.update({"newton_iterations": iters,
                     "weight_change": round(float(np.linalg.norm(wk - w0[:, k]) / np.linalg.norm(w0[:, k])), 4),
                     "bias_change": round(float(bk - b0[k]), 4)})
        if pos >= args.min_per_class and neg >= args.min_per_class:
            oof = out_of_fold(feats[idx], y, w0[:, k], b0[k], args.l2)
            new_thr[lab] = best_threshold(oof, y > 0.5)
            info["threshold"] = f"chosen on {FOLDS}-fold out-of-fold scores ({pos} positives, {neg} negatives >= {args.min_per_class})"
            cv[lab] = {"base": prf(base_scores[idx, k] >= old_thr[lab], y > 0.5), "new": prf(oof >= new_thr[lab], y > 0.5)}
        else:
            info["threshold"] = f"kept: fewer than {args.min_per_class} positives or negatives"
        per_label[lab] = info

    # Write the new weights into a copy of the graph; everything else is byte-for-byte the base.
    set_head_weights(proto.graph, head, w, b)
    proto.producer_name, proto.producer_version = "proctor training/vision/finetune_attire.py", "1"
    onnx.checker.check_model(proto)
    out = os.path.abspath(args.out)
    tmp = out + f".tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    try:
        onnx_path = os.path.join(tmp, NAME + ".onnx")
        onnx.save(proto, onnx_path)
        new_scores, _ = Runner(onnx.load(onnx_path), head, output)(crops)
        err = float(np.max(np.abs(sigmoid(feats @ w + b) - new_scores)))
        if err > 1e-4:
            raise Fail(f"the written model's scores differ from the fit by {err:.2g}")
        sha = E.sha256_file(onnx_path)
        new_id = f"{NAME}@{version}"

        in_sample = {}
        for k, lab in enumerate(labels):
            idx = [i for i, r in enumerate(rows) if lab in r["labels"]]
            if not idx:
                continue
            y = np.array([rows[i]["labels"][lab] for i in idx])
            in_sample[lab] = {"base": prf(base_scores[idx, k] >= old_thr[lab], y), "new": prf(new_scores[idx, k] >= new_thr[lab], y)}
        sources = [{"id": ex.id, "dir": ex.dir, "manifest_sha256": ex.manifest_sha256, "manifest_sha256_ok": ex.manifest_sha256_ok,
                    "purpose": ex.info.get("purpose", ""), "created_at": ex.info.get("created_at", ""),
                    "items_used": len(ex.items), "skipped": ex.skipped} for ex in exps]

        mj = dict(man)
        mj["version"] = version
        mj["file"] = NAME + ".onnx"
        mj["sha256"] = sha
        mj["licence"] = "Apache-2.0"
        mj["licence_note"] = (f"Fine-tuned by this project (training/vision/finetune_attire.py): {base_id} with its last layer "
                              "refit on reviewer-labelled exports of the service's own frames. See card.md.")
        mj["source"] = {"registry": "registered", "package": "training/vision/finetune_attire.py", "package_sha256": sha,
                        "member": NAME + ".onnx"}
        mj["vision"] = dict(man["vision"], scores={k: new_thr[k] for k in labels})
        ids = ", ".join(f"{ex.id} (manifest_sha256 {ex.manifest_sha256})" for ex in exps)
        mj["notes"] = (f"{new_id}: {base_id} with the last layer ({head['kind']}, {w.shape[0]}x{w.shape[1]}) refit on "
                       f"{len(rows)} exported crops from {ids}; L2 toward the base weights worth {args.l2:g} examples; "
                       f"thresholds {json.dumps(new_thr)} (kept unless an export holds >= {args.min_per_class} of both classes: "
                       f"then chosen on {FOLDS}-fold out-of-fold scores). Input, preprocessing and outputs as {base_id}.")
        with open(os.path.join(tmp, "manifest.json"), "w") as f:
            json.dump(mj, f, indent=2, ensure_ascii=False)
            f.write("\n")

        bench_rep = None
        if args.bench:
            proctor = args.proctor
            if not os.path.isfile(proctor):
                raise Fail(f"{proctor} missing: go build -o bin/proctor ./cmd/proctor (or pass --proctor)")
            log(f"benchmark: proctor eval vision --data {args.bench} (base, then {new_id})")
            bench_rep = {"data": os.path.abspath(args.bench), "base": bench(proctor, args.bench, base_dir),
                         "new": bench(proctor, args.bench, tmp, out)}

        ev = {"model": new_id, "base": base_id, "sha256": sha, "base_sha256": base_sha,
              "created_at": datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z"),
              "method": {"layer": head["kind"], "features": head["feat"], "l2_examples": args.l2,
                         "min_per_class_for_threshold": args.min_per_class},
              "exports": sources, "items": len(rows), "skipped_across_exports": dup,
              "labels": per_label, "thresholds": {"base": old_thr, "new": new_thr},
              "in_sample": dict(in_sample, note="accuracy on the exported items the new version was fit on: optimistic for the new version"),
              "cross_validated": dict(cv, note=f"{FOLDS}-fold out-of-fold scores of the same fit (labels with enough of both classes only)"),
              "benchmark": bench_rep, "seconds": round(time.time() - t_start, 1)}
        with open(os.path.join(tmp, "eval.json"), "w") as f:
            json.dump(ev, f, indent=1, ensure_ascii=False)
            f.write("\n")
        with open(os.path.join(tmp, "card.md"), "w") as f:
            f.write(card(ev, mj, man, head, w0, rows))
        if os.path.exists(out):
            if os.listdir(out) and not args.force:
                raise Fail(f"{out} exists and is not empty: pass --force to replace it")
            shutil.rmtree(out)
        os.rename(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return ev


def fmt(r, key):
    v = r.get(key)
    return "-" if v is None else f"{v:.3f}"


def card(ev, mj, base, head, w0, rows):
    L = []
    L.append(f"# Model card: {ev['model']} (mask, face occluded)\n")
    L.append("| | |\n|---|---|")
    L.append(f"| File | `{mj['file']}`, sha256 `{ev['sha256']}` |")
    L.append(f"| Source | `training/vision/finetune_attire.py` (registry `registered`): {ev['base']} (sha256 `{ev['base_sha256'][:16]}…`) "
             f"with its last layer ({head['kind']}, {w0.shape[0]}×{w0.shape[1]} + bias) refit; every other weight is the base's |")
    L.append("| Licence | Apache-2.0 (project code and weights). The crops are frames of the service's own exams, exported "
             "under the organisation's data policy; they stay in the export, not in this directory |")
    L.append(f"| Input / output | as {ev['base']}: `{base['input']['name']}` [1,3,112,112] BGR pixel/255 aligned crop; "
             f"`{base['decode']['outputs'][0]}` sigmoids {', '.join(base['vision']['labels'])} |")
    L.append(f"| Thresholds | {', '.join(f'{k} {v:g}' for k, v in ev['thresholds']['new'].items())} "
             f"(base: {', '.join(f'{k} {v:g}' for k, v in ev['thresholds']['base'].items())}) |")
    L.append("")
    L.append("## Training data\n")
    L.append(f"The base model ({ev['base']}, models/cards/attire-cnn.md) and {ev['items']} exported face crops "
             "(labels from reviewers, or implied by their verdicts):\n")
    L.append("| export | manifest_sha256 | items used | skipped |\n|---|---|---|---|")
    for ex in ev["exports"]:
        sk = ", ".join(f"{k}: {v}" for k, v in ex["skipped"].items()) or "none"
        L.append(f"| `{ex['id']}` | `{ex['manifest_sha256']}`{'' if ex['manifest_sha256_ok'] else ' (does not match manifest.jsonl)'} | {ex['items_used']} | {sk} |")
    if ev["skipped_across_exports"]:
        L.append("\n" + ", ".join(f"{k}: {v}" for k, v in ev["skipped_across_exports"].items()))
    L.append("\n| label | items | positives | negatives | weight change (relative) | threshold |\n|---|---|---|---|---|---|")
    for lab, i in ev["labels"].items():
        L.append(f"| {lab} | {i['items']} | {i['positives']} | {i['negatives']} | {i.get('weight_change', '–')} | {i.get('threshold', i.get('fit', ''))} |")
    L.append(f"\nFit: logistic regression per label by Newton's method, L2 toward the base weights worth "
             f"{ev['method']['l2_examples']:g} examples (finetune_attire.py docstring). A threshold is re-chosen only when "
             f"an export holds at least {ev['method']['min_per_class_for_threshold']} positives and negatives of the label.\n")
    L.append("## Evaluation\n")
    L.append("On the exported items (**in-sample**: the new version was fit on them, so its numbers are optimistic):\n")
    L.append("| label | version | N | accuracy | precision | recall | F1 |\n|---|---|---|---|---|---|---|")
    for lab, r in ev["in_sample"].items():
        if lab == "note":
            continue
        for ver in ("base", "new"):
            x = r[ver]
            L.append(f"| {lab} | {ev[ver] if ver == 'base' else ev['model']} | {x['n']} | {fmt(x, 'accuracy')} | {fmt(x, 'precision')} | {fmt(x, 'recall')} | {fmt(x, 'f1')} |")
    cvs = {k: v for k, v in ev["cross_validated"].items() if k != "note"}
    if cvs:
        L.append(f"\nCross-validated on the exported items ({FOLDS}-fold, out-of-fold scores):\n")
        L.append("| label | version | N | accuracy | F1 |\n|---|---|---|---|---|")
        for lab, r in cvs.items():
            for ver in ("base", "new"):
                x = r[ver]
                L.append(f"| {lab} | {ver} | {x['n']} | {fmt(x, 'accuracy')} | {fmt(x, 'f1')} |")
    if ev["benchmark"]:
        bm = ev["benchmark"]
        L.append(f"\nBenchmark (`proctor eval vision --checks attributes` on `{bm['data']}`):\n")
        L.append("| check | N | base P / R / F1 | new P / R / F1 |\n|---|---|---|---|")
        new = {r["check"]: r for r in bm["new"]["rows"]}
        for r in bm["base"]["rows"]:
            n = new.get(r["check"], {})
            L.append(f"| {r['check']} | {r['n']} | {fmt(r, 'precision')} / {fmt(r, 'recall')} / {fmt(r, 'f1')} | "
                     f"{fmt(n, 'precision')} / {fmt(n, 'recall')} / {fmt(n, 'f1')} |")
    else:
        L.append("\nNo benchmark was run (no --bench): measure on held-out data before promoting "
                 "(`proctor eval vision --data DIR --checks attributes --attire-model THIS_DIR`).")
    L.append("\n## Limitations\n")
    L.append("- Only the last layer learns: what the frozen features cannot tell apart (earphones, a kind of occluder "
             "never seen in training) stays out of reach; use the full retraining (train_attire.sh --export).")
    L.append("- A handful of labels nudges the model on purpose; labels of one class only move the bias toward it.")
    L.append("- In-sample numbers are optimistic; the benchmark and the shadow run (docs/data-loop.md) are the evidence.")
    return "\n".join(L) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--export", action="append", default=[], required=True, help="export directory (repeatable)")
    ap.add_argument("--out", required=True, help="version directory to write (must be empty or absent unless --force)")
    ap.add_argument("--version", default="", help="version of the new model (default: the base version + 1)")
    ap.add_argument("--base", default="", help="base model: an ONNX file or a version directory (default: the built-in attire-cnn)")
    ap.add_argument("--bench", default="", help="labelled photo folder for `proctor eval vision --checks attributes` (e.g. ../shared/data/faces)")
    ap.add_argument("--proctor", default=os.path.join(ROOT, "bin", "proctor"), help="the proctor binary for --bench")
    ap.add_argument("--l2", type=float, default=300.0, help="strength of the pull toward the base weights, in examples (default 300)")
    ap.add_argument("--min-per-class", type=int, default=30, help="positives and negatives a label needs before its threshold is re-chosen")
    ap.add_argument("--force", action="store_true", help="replace a non-empty --out")
    args = ap.parse_args(argv)
    if args.l2 <= 0:
        ap.error("--l2 must be > 0")
    try:
        ev = run(args)
    except (Fail, E.ExportError, OSError, KeyError, ValueError) as e:
        sys.exit(f"finetune_attire: {e}")
    summary = {lab: {v: r[v]["accuracy"] for v in ("base", "new")} for lab, r in ev["in_sample"].items() if lab != "note"}
    log(f"wrote {os.path.abspath(args.out)}: {ev['model']} from {ev['base']}, {ev['items']} items, "
        f"thresholds {ev['thresholds']['new']}, in-sample accuracy {summary}, {ev['seconds']}s")
    if ev["benchmark"]:
        for ver in ("base", "new"):
            for r in ev["benchmark"][ver]["rows"]:
                if r["check"].startswith("attributes: mask") or r["check"] == "attributes: occluded":
                    log(f"  bench {ver:4s} {r['check']:32s} N={r['n']:4d} P={fmt(r, 'precision')} R={fmt(r, 'recall')} F1={fmt(r, 'f1')}")


if __name__ == "__main__":
    main()
