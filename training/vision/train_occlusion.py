#!/usr/bin/env python3
"""Trains attire-cnn's "occluded" output on the real occlusion labels (occlusion-labels.tsv,
issue #15) and writes a new attire-cnn whose "mask" output is the shipped one, bit for bit.

The shipped occluded head learned synthetic occluders only and misses real hands and microphones;
a linear probe on its frozen features, or on the face-embedding model's, does not separate real
occlusion either (docs/vision.md). So a copy of the whole CNN, started from the shipped weights,
is fine-tuned end to end on the aligned crops of the tuning people (the service's own crops,
go run ./training/vision/earcrops --face-crops), and grafted beside the original: one ONNX file,
input `crop`, output `scores` = [original mask, fine-tuned occluded].

  .cache/vision-venv/bin/python training/vision/train_occlusion.py --cv-only [--synthetic 0.15]
  .cache/vision-venv/bin/python training/vision/train_occlusion.py --out ONNX [--skip-cv] [--synthetic 0.15]

Epochs and the threshold are chosen by 5-fold cross-validation over the tuning people (folds by
person): the epoch count with the best out-of-fold average precision, then the highest threshold
within 0.01 of the best out-of-fold F1. The held-back people (train_ears.held_back) are never
read here; eval_occlusion.py reports on them (--model ONNX --manifest ONNX-without-.onnx.json).
Writes the model and its manifest (the shipped one with the new sha256 and occluded threshold) and
the cross-validation report. OCCL_LR sets Adam's learning rate (default 3e-4).

Nothing it made has been shipped: none beat attire-cnn@1 at an acceptable false-alarm rate
(training/vision/occlusion-report.json, docs/vision.md Part D)."""
import argparse
import hashlib
import json
import os
import sys
import time

import numpy as np
import cv2

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
from eval_occlusion import load_items  # noqa: E402
from train_ears import ROOT, fnv  # noqa: E402

SEED = 11
EPOCHS = (8, 16, 24, 32)
BATCH = 32


def log(*a):
    print(time.strftime("%H:%M:%S"), *a, flush=True)


def onnx_weights(path):
    """The conv kernels (Keras layout) and biases, then the 96×2 dense, of the shipped model."""
    import onnx
    from onnx import numpy_helper
    m = onnx.load(path)
    init = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    ws = []
    for n in m.graph.node:
        if n.op_type == "Conv":
            ws += [init[n.input[1]].transpose(2, 3, 1, 0), init[n.input[2]]]
        elif n.op_type == "MatMul":
            ws.append(init[n.input[1]])
        elif n.op_type == "Add" and n.input[1] in init:
            ws.append(init[n.input[1]])
    return ws


def build(weights):
    import tensorflow as tf
    L = tf.keras.layers
    x = inp = L.Input((112, 112, 3))
    x = L.AveragePooling2D(2)(x)
    for ch, pool in ((16, True), (32, True), (64, False), (64, True), (96, False), (96, True)):
        x = L.Conv2D(ch, 3, padding="same", activation="relu")(x)
        if pool:
            x = L.MaxPooling2D(2)(x)
    x = L.GlobalAveragePooling2D()(x)
    out = L.Dense(2, activation="sigmoid")(x)
    model = tf.keras.Model(inp, out)
    model.set_weights(weights)
    return model


def augment(x, rng):
    """Flips, a small rotation/scale/shift (black fill: outside the frame, as in the service's
    crops), brightness/contrast, per-channel gains and a third in grey, like train_attire."""
    out = np.empty_like(x)
    for i, im in enumerate(x):
        if rng.random() < 0.5:
            im = im[:, ::-1]
        a = cv2.getRotationMatrix2D((56, 56), rng.uniform(-10, 10), rng.uniform(0.92, 1.08))
        a[:, 2] += rng.uniform(-5, 5, 2)
        im = cv2.warpAffine(np.ascontiguousarray(im), a, (112, 112), borderValue=0)
        inside = im.sum(2, keepdims=True) > 0
        im = (im - 0.5) * rng.uniform(0.7, 1.3) + 0.5 + rng.uniform(-0.15, 0.15)
        im = im * rng.uniform(0.8, 1.2, 3)
        if rng.random() < 1 / 3:
            im = np.repeat(im.mean(2, keepdims=True), 3, 2)
        out[i] = np.clip(im, 0, 1) * inside
    return out


# The face in the aligned 112×112 crop (ArcFace template): where synthetic occluders are drawn.
FACE_BOX = (22, 20, 68, 90)


def synthetic(x, rng, others):
    """occluders.py's hand or object drawn on a clear crop: an extra positive."""
    import occluders
    im = (x * 255).astype(np.uint8)
    im = occluders.hand(im, FACE_BOX, rng) if rng.random() < 0.6 else occluders.obj(im, FACE_BOX, rng, others)
    return im.astype(np.float32) / 255


def train(weights, X, y, epochs, rng, evaluate=None, syn=0.0):
    """Fine-tunes every layer on the occluded output; positives are oversampled to a quarter of
    each epoch; with syn, that share of the clear crops of a batch get a synthetic occluder and
    count as occluded. evaluate(model, epoch) is called at each of EPOCHS."""
    import tensorflow as tf
    model = build(weights)
    opt = tf.keras.optimizers.Adam(float(os.environ.get("OCCL_LR", "3e-4")))
    pos, neg = np.flatnonzero(y), np.flatnonzero(~y)

    @tf.function
    def step(xb, yb):
        with tf.GradientTape() as t:
            p = model(xb, training=True)[:, 1]
            loss = tf.reduce_mean(tf.keras.losses.binary_crossentropy(yb[:, None], p[:, None]))
        opt.apply_gradients(zip(t.gradient(loss, model.trainable_variables), model.trainable_variables))
        return loss

    for ep in range(1, epochs + 1):
        idx = np.concatenate([neg, rng.choice(pos, max(len(pos), len(neg) // 3))])
        rng.shuffle(idx)
        for s in range(0, len(idx), BATCH):
            b = idx[s:s + BATCH]
            xb, yb = X[b].copy(), y[b].astype(np.float32)
            if syn:
                others = [(o * 255).astype(np.uint8) for o in X[rng.choice(len(X), 4)]]
                for k in np.flatnonzero((yb == 0) & (rng.random(len(b)) < syn)):
                    xb[k], yb[k] = synthetic(xb[k], rng, others), 1
            step(tf.constant(augment(xb, rng)), tf.constant(yb))
        if evaluate and ep in EPOCHS:
            evaluate(model, ep)
    return model


def predict(model, X):
    return model.predict(X, batch_size=128, verbose=0)[:, 1]


def best_f1(y, s):
    o = np.argsort(-s)
    ys, ss = y[o], s[o]
    tp, fp = np.cumsum(ys), np.cumsum(~ys)
    f1 = 2 * tp / (tp + fp + ys.sum())
    best = f1.max()
    # The highest threshold within 0.01 of the best F1 (the card's rule): fewer false alarms.
    k = np.flatnonzero(f1 >= best - 0.01)[0]
    return float(best), float(ss[k]), float(f1[k])


def at_false_alarms(y, s, rate=0.02):
    """Precision, recall and F1 at the lowest threshold that flags at most rate of the clear faces:
    the operating point a reviewer can live with (FACE_OCCLUDED runs on every frame)."""
    thr = float(np.quantile(s[~y], 1 - rate)) if (~y).any() else 0.5
    p = s > thr
    tp, fp = int((p & y).sum()), int((p & ~y).sum())
    pr, rc = tp / max(1, tp + fp), tp / max(1, int(y.sum()))
    return {"threshold": round(thr, 3), "precision": round(pr, 3), "recall": round(rc, 3),
            "f1": round(2 * pr * rc / max(1e-9, pr + rc), 3), "false_alarms": fp}


def average_precision(y, s):
    o = np.argsort(-s)
    ys = y[o]
    tp = np.cumsum(ys)
    return float((tp / np.arange(1, len(ys) + 1) * ys).sum() / max(1, ys.sum()))


def graft(base, weights, out):
    """base with a renamed copy of its graph carrying weights; scores = [base mask, copy occluded]."""
    import onnx
    from onnx import helper, numpy_helper
    m = onnx.load(base)
    g = m.graph
    inp = g.input[0].name
    ren = lambda n: n if n in ("", inp) else "occ/" + n  # noqa: E731
    it = iter(weights)
    new_init = {}
    for n in g.node:
        if n.op_type == "Conv":
            new_init[n.input[1]] = next(it).transpose(3, 2, 0, 1)
            new_init[n.input[2]] = next(it)
        elif n.op_type == "MatMul":
            new_init[n.input[1]] = next(it)
        elif n.op_type == "Add" and n.input[1] in {i.name for i in g.initializer}:
            new_init[n.input[1]] = next(it)
    inits = []
    for i in g.initializer:
        a = numpy_helper.to_array(i)
        if i.name in new_init:
            a = new_init[i.name].astype(a.dtype).reshape(a.shape)
        inits.append(numpy_helper.from_array(a, ren(i.name)))
    nodes = []
    for n in g.node:
        c = onnx.NodeProto()
        c.CopyFrom(n)
        c.name = ren(n.name)
        c.input[:] = [ren(x) for x in n.input]
        c.output[:] = [ren(x) for x in n.output]
        nodes.append(c)
    outname = g.output[0].name
    for n in g.node:
        n.output[:] = ["base/" + x if x == outname else x for x in n.output]
    cst = lambda name, v: numpy_helper.from_array(np.array(v, np.int64), name)  # noqa: E731
    g.initializer.extend(inits + [cst("graft/zero", [0]), cst("graft/one", [1]), cst("graft/two", [2])])
    g.node.extend(nodes + [
        helper.make_node("Slice", ["base/" + outname, "graft/zero", "graft/one", "graft/one"], ["graft/mask"], name="graft/mask"),
        helper.make_node("Slice", [ren(outname), "graft/one", "graft/two", "graft/one"], ["graft/occluded"], name="graft/occluded"),
        helper.make_node("Concat", ["graft/mask", "graft/occluded"], [outname], axis=1, name="graft/scores")])
    m.doc_string = "attire-cnn: mask head as trained by train_attire.py; occluded head fine-tuned on real labels by train_occlusion.py"
    onnx.checker.check_model(m)
    onnx.save(m, out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--labels", default=os.path.join(here, "occlusion-labels.tsv"))
    ap.add_argument("--base", default=os.path.join(ROOT, "models", "trained", "attire-cnn.onnx"),
                    help="the attire model whose mask output is kept and whose weights start the fine-tuning")
    ap.add_argument("--out", help="the new model (required unless --cv-only); its manifest goes next to it "
                    "(OUT without .onnx + .json: the shipped manifest with the new sha256 and occluded threshold). "
                    "To ship: --out models/trained/attire-cnn.onnx and copy the manifest to models/manifests/")
    ap.add_argument("--cache", default=os.path.join(os.environ.get("PROCTOR_CACHE_DIR", os.path.join(ROOT, ".cache")), "occlusion-data"))
    ap.add_argument("--cv-only", action="store_true", help="report the cross-validation, write nothing")
    ap.add_argument("--report", default=os.path.join(os.environ.get("PROCTOR_CACHE_DIR", os.path.join(ROOT, ".cache")), "occlusion-data", "cv-report.json"),
                    help="where the cross-validation report goes; with --skip-cv, the earlier one to take the epochs and threshold from "
                    "(training/vision/occlusion-report.json records the runs behind docs/vision.md)")
    ap.add_argument("--skip-cv", action="store_true", help="train the final model with --report's choices")
    ap.add_argument("--synthetic", type=float, default=0.0,
                    help="share of clear crops per batch given a synthetic hand/object (occluders.py) as extra positives")
    a = ap.parse_args()
    if not a.cv_only and not a.out:
        ap.error("--out is required (or --cv-only)")
    import tensorflow as tf
    tf.random.set_seed(SEED)
    rng = np.random.default_rng(SEED)
    _, items = load_items(a.labels, a.cache)
    tune = [i for i in items if not i[3]]
    X = np.stack([cv2.imread(i[0]).astype(np.float32) / 255 for i in tune])
    y = np.array([i[1] for i in tune])
    fold = np.array([fnv("fold:" + i[4]) % 5 for i in tune])
    base = onnx_weights(a.base)
    log(f"{len(tune)} tuning faces, {int(y.sum())} occluded, {len(set(i[4] for i in tune))} people")
    if a.skip_cv:
        report = json.load(open(a.report))
        epochs, thr = report["epochs"], report["threshold"]
    else:
        report, epochs, thr = cross_validate(base, X, y, fold, rng, a.labels, a.synthetic)
    if not a.skip_cv:
        with open(a.report, "w") as f:
            json.dump(report, f, indent=1)
            f.write("\n")
    if a.cv_only:
        return
    model = train(base, X, y, epochs, rng, syn=a.synthetic)
    graft(a.base, model.get_weights(), a.out)
    man = json.load(open(os.path.join(ROOT, "models", "manifests", "attire-cnn.json")))
    man["sha256"] = hashlib.sha256(open(a.out, "rb").read()).hexdigest()
    man["vision"]["scores"]["occluded"] = thr
    with open(os.path.splitext(a.out)[0] + ".json", "w") as f:
        json.dump(man, f, indent=2)
        f.write("\n")
    log(f"wrote {a.out} (occluded threshold {thr})")


def cross_validate(base, X, y, fold, rng, labels, syn):
    oof = {e: np.zeros(len(y)) for e in EPOCHS}
    for f in range(5):
        tr, te = fold != f, fold == f

        def ev(model, ep, te=te):
            oof[ep][te] = predict(model, X[te])
        train(base, X[tr], y[tr], max(EPOCHS), rng, ev, syn)
        log(f"fold {f}: " + " ".join(f"{e}:{average_precision(y[te], oof[e][te]):.3f}" for e in EPOCHS))
    cv = {e: {"ap": round(average_precision(y, oof[e]), 3), "best_f1": round(best_f1(y, oof[e])[0], 3),
              "at_2pct_false_alarms": at_false_alarms(y, oof[e])} for e in EPOCHS}
    epochs = max(EPOCHS, key=lambda e: cv[e]["ap"])
    f1, thr, f1_at = best_f1(y, oof[epochs])
    thr = round(min(max(thr, 0.05), 0.99), 3)
    report = {"labels": os.path.relpath(labels, ROOT), "tuning_faces": len(y), "tuning_occluded": int(y.sum()),
              "synthetic": syn, "learning_rate": float(os.environ.get("OCCL_LR", "3e-4")), "cv_per_epochs": cv, "epochs": epochs, "threshold": thr, "cv_f1_at_threshold": round(f1_at, 3)}
    log(json.dumps(report))
    return report, epochs, thr


if __name__ == "__main__":
    main()
