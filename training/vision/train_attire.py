#!/usr/bin/env python3
"""Trains the face-attribute classifier (mask, occluded) that analyzers/attire.go runs on the
aligned face crops of the "landmarks" analyzer, exports it as ONNX and writes its model card data.

No pretrained mask or occlusion classifier exists in any package registry (DESIGN.md §4), so this
trains a small CNN (~90k parameters) from real photos:
  mask=1      ../shared/data/faces/mask/train/with_mask
  mask=0      ../shared/data/faces/mask/train/without_mask, identities-rmfd, identities,
              identities-crops, multi_person (every detected face), the npm demo photos
  occluded=1  synthetic: hands, objects, the frame edge drawn over the mask=0 faces (occluders.py)
  occluded=0  the mask=0 faces as they are; masked faces do not train the occluded head
mask/dev is never used for training or for choosing thresholds: thresholds are chosen on a 10%
validation split of the training faces, and mask/dev only reports. Each image goes through the
service's own steps: UltraFace boxes (faces.py), 68 landmarks, ArcFace alignment to 112x112.

Re-runnable by the data team with reviewer-labelled data:
  training/vision/train_attire.sh --export DIR [--export DIR2 ...]
where each DIR is an export (docs/data-loop.md: `proctor export`, or the unzipped archive of
POST /v1/exports). Every vision item with a frame, a face box and a boolean "mask" and/or
"occluded" label becomes a source: its frame (frames/<item>.jpg), not its crop, so it goes
through the same steps and augmentations as every other photo (re-detected by faces.py, the
detected face that overlaps the export's face_box best, IoU >= 0.3, is the labelled one; other
faces in the frame are not used; jitter, smaller decodes, synthetic occluders on the mask=0,
occluded=0 faces; 4 variants each like the diverse negatives). A label the item lacks does not
train that head (an item labelled only "occluded" leaves the mask head alone). Items without a
face box (no face found), without a frame or without those labels are skipped and counted
(exports.py). The fast alternative, seconds instead of minutes, refits only the last layer:
finetune_attire.sh (finetune_attire.py).
Folders of loose photos work too: --extra DIR, where DIR holds with_mask/ and without_mask/ (and
optionally occluded/ and not_occluded/) folders of JPEG/PNG frames or face photos.

Outputs: models/trained/attire-cnn.onnx, training/vision/attire-data.tsv (every file used:
path, sha256, label, faces), training/vision/attire-report.json (metrics, thresholds)."""
import argparse
import glob
import hashlib
import json
import os
import sys
import time

import numpy as np
import cv2

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
import exports as E  # noqa: E402
import faces as F  # noqa: E402
import occluders as O  # noqa: E402

ROOT = os.path.abspath(os.path.join(here, "..", ".."))
IMG_EXT = (".jpg", ".jpeg", ".png")
SEED = 7
# Bump when prepare() or occluders.py change what a crop looks like (invalidates the crop cache).
PREP_VERSION = 2
# Negatives from these groups are few but varied (ages, skin tones, lighting, cameras), unlike the
# ~1000 tight crops of Chinese public figures in identities-rmfd: they get extra variants so the
# mask head cannot learn "not East Asian" or "not a tight crop" as "mask".
DIVERSE = ("multi_person", "identities", "npm-demo", "mask-train", "identities-crops")


def log(*a):
    print(time.strftime("%H:%M:%S"), *a, flush=True)


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        h.update(f.read())
    return h.hexdigest()


def images(d):
    return sorted(p for p in glob.glob(os.path.join(d, "**", "*"), recursive=True)
                  if p.lower().endswith(IMG_EXT) and os.path.isfile(p))


def as_frame(img):
    """The service decodes frames so the longest side is at least 640 (landmarks DecodeSide):
    bigger photos are reduced by a power of two, as libjpeg's scaled decode does."""
    h, w = img.shape[:2]
    f = 1
    while max(h, w) // (f * 2) >= 640:
        f *= 2
    if f > 1:
        img = cv2.resize(img, ((w + f - 1) // f, (h + f - 1) // f), interpolation=cv2.INTER_AREA)
    return img


def find_faces(det, img, max_faces):
    """Detector boxes, best first; tight face crops (the face fills the photo, which the detector
    misses) are retried on a canvas twice the size, as if seen by a camera."""
    boxes = det.detect(img)
    if boxes:
        return img, boxes[:max_faces]
    h, w = img.shape[:2]
    # Half the size on each side, border replicated: analyzers.PadFrame, as `proctor eval vision` does.
    canvas = cv2.copyMakeBorder(img, h // 2, h // 2, w // 2, w // 2, cv2.BORDER_REPLICATE)
    boxes = det.detect(canvas)
    return canvas, boxes[:max_faces]


def jitter(box, rng, amount):
    x, y, w, h = box[:4]
    s = 1 + rng.uniform(-amount, amount)
    cx = x + w / 2 + rng.uniform(-amount, amount) * w * 0.5
    cy = y + h / 2 + rng.uniform(-amount, amount) * h * 0.5
    return (cx - w * s / 2, cy - h * s / 2, w * s, h * s)


def sources(data, extras, export_dirs=()):
    """(path, mask label or None, occluded label or None, group, face box or None) for every
    training image, and the exports read (exports.Export)."""
    f = os.path.join(data, "faces")
    out = []
    for p in images(os.path.join(f, "mask", "train", "with_mask")):
        out.append((p, 1, None, "mask-train", None))
    for p in images(os.path.join(f, "mask", "train", "without_mask")):
        out.append((p, 0, 0, "mask-train", None))
    for sub in ("identities-rmfd", "identities", "identities-crops", "multi_person"):
        for p in images(os.path.join(f, sub)):
            out.append((p, 0, 0, sub, None))
    demo = os.path.join(ROOT, ".cache", "demo")
    for p in images(demo):
        out.append((p, 0, 0, "npm-demo", None))
    for d in extras:
        for sub, m, o in (("with_mask", 1, None), ("without_mask", 0, 0), ("occluded", 0, 1), ("not_occluded", 0, 0)):
            for p in images(os.path.join(d, sub)):
                out.append((p, m, o, "extra:" + os.path.basename(os.path.normpath(d)), None))
    exps = []
    for d in export_dirs:
        srcs, ex = E.attire_sources(d)
        if not ex.manifest_sha256_ok:
            log(f"warning: {d}: manifest.jsonl sha256 differs from export.json's manifest_sha256")
        log(f"export {ex.id}: {len(srcs)} items used, skipped {ex.skipped or 'none'}")
        out += srcs
        exps.append(ex)
    return out, exps


def labelled_face(frame, img, boxes, hint, scale):
    """The detected box that is the export's labelled face: face_box [x1,y1,x2,y2] is in the
    posted frame's pixels; img is that frame after as_frame (scale), frame may be img on a
    padded canvas (find_faces). [] when no detected box overlaps it with IoU >= 0.3."""
    dx, dy = (frame.shape[1] - img.shape[1]) // 2, (frame.shape[0] - img.shape[0]) // 2
    x1, y1, x2, y2 = (v * scale for v in hint)
    hb = (x1 + dx, y1 + dy, x2 - x1, y2 - y1)
    best = max(boxes, key=lambda b: F.iou(b, hb), default=None)
    return [best] if best is not None and F.iou(best, hb) >= 0.3 else []


def prepare(srcs, det, ali, rng, cache_path):
    """Aligned crops and labels for every face of every source image (with augmented variants);
    cached by the list of files and their checksums."""
    # Export items add their face box to the key; the other sources keep the key they always had.
    key = hashlib.sha256(json.dumps([PREP_VERSION] + [(p, m, o) if b is None else (p, m, o, b)
                                                     for p, m, o, _, b in srcs]).encode()).hexdigest()[:16]
    cache = f"{cache_path}-{key}.npz"
    rows = []
    if os.path.exists(cache):
        z = np.load(cache, allow_pickle=True)
        log("prepared crops from cache", cache)
        return z["x"], z["y"], z["w"], z["split"], list(z["rows"])
    xs, ys, ws, split = [], [], [], []
    others = []
    for i, (p, m, o, g, hint) in enumerate(srcs):
        img = cv2.imread(p, cv2.IMREAD_COLOR)
        digest = sha256(p)
        if img is None or min(img.shape[:2]) < 16:
            rows.append((p, digest, m, o, g, 0))
            continue
        w0 = img.shape[1]
        img = as_frame(img)
        if g in ("multi_person", "identities", "npm-demo") and len(others) < 80:
            others.append(img)  # texture source for object occluders: never a masked face
        # Group photos: every face is a negative; labelled mask photos: the faces in them.
        frame, boxes = find_faces(det, img, 4 if g == "multi_person" else 8 if hint else 3)
        if hint:
            boxes = labelled_face(frame, img, boxes, hint, img.shape[1] / w0)
        # Split by file: every crop of a photo is on the same side (10% validation).
        val = int(digest[:8], 16) % 10 == 0
        n = 0
        for b in boxes:
            variants = [(frame, b, o)]
            extra = 4 if (m == 0 and g in DIVERSE) or g.startswith(("extra:", "export:")) else 1
            for _ in range(extra):
                variants.append((frame, jitter(b, rng, 0.12), o))
            if min(frame.shape[:2]) > 120 and rng.random() < 0.5:
                # A smaller decode of the same frame (a face farther from the camera).
                s = rng.uniform(0.35, 0.7)
                small = cv2.resize(frame, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
                variants.append((small, tuple(v * s for v in b[:4]), o))
            if m == 0 and o == 0:
                for _ in range(2):
                    kind = rng.choice(["hand", "hand", "obj", "edge"])
                    if kind == "hand":
                        variants.append((O.hand(frame, b, rng), b, 1))
                    elif kind == "obj" and others:
                        variants.append((O.obj(frame, b, rng, others), b, 1))
                    else:
                        fr2, b2 = O.edge(frame, b, rng)
                        variants.append((fr2, b2, 1))
            for fr, bb, oo in variants:
                c = ali.align(fr, bb)
                if c is None:
                    continue
                xs.append(c)
                ys.append((0 if m is None else m, 0 if oo is None else oo))
                ws.append((0.0 if m is None else 1.0, 0.0 if oo is None else 1.0))
                split.append(val)
            n += 1
        rows.append((p, digest, m, o, g, n))
        if i % 500 == 0:
            log(f"prepare {i}/{len(srcs)} images, {len(xs)} crops")
    x = np.stack(xs).astype(np.uint8)
    y = np.array(ys, np.float32)
    w = np.array(ws, np.float32)
    split = np.array(split, bool)
    os.makedirs(os.path.dirname(cache), exist_ok=True)
    np.savez(cache, x=x, y=y, w=w, split=split, rows=np.array(rows, dtype=object))
    return x, y, w, split, rows


def augment(batch, rng):
    """Photometric noise, flips, grey, and low resolution: on uint8 BGR crops -> float 0..1."""
    n = len(batch)
    c = batch.astype(np.float32)
    flip = rng.random(n) < 0.5
    c[flip] = c[flip, :, ::-1]
    c = c * rng.uniform(0.6, 1.4, (n, 1, 1, 1)) + rng.uniform(-30, 30, (n, 1, 1, 1))
    # Skin tone must not decide: strong per-channel gains, and a third of the crops in grey.
    c = c * (1 + rng.normal(0, 0.12, (n, 1, 1, 3)))
    grey = rng.random(n) < 0.33
    c[grey] = c[grey].mean(3, keepdims=True)
    for i in np.nonzero(rng.random(n) < 0.3)[0]:
        s = rng.uniform(0.25, 0.6)
        small = cv2.resize(np.clip(c[i], 0, 255).astype(np.uint8), None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
        c[i] = cv2.resize(small, (F.ALIGNED, F.ALIGNED), interpolation=cv2.INTER_LINEAR)
    c += rng.normal(0, 3, c.shape).astype(np.float32)
    return np.clip(c, 0, 255) / 255.0


def build_model():
    import tensorflow as tf
    from tensorflow import keras
    L = keras.layers
    inp = keras.Input((F.ALIGNED, F.ALIGNED, 3), name="crop")
    x = L.AveragePooling2D(2)(inp)  # 56x56: masks and hands need no finer detail
    for ch in (16, 32, 64, 96):
        x = L.Conv2D(ch, 3, padding="same", use_bias=False)(x)
        x = L.BatchNormalization()(x)
        x = L.ReLU()(x)
        x = L.Conv2D(ch, 3, padding="same", use_bias=False)(x) if ch >= 64 else x
        if ch >= 64:
            x = L.BatchNormalization()(x)
            x = L.ReLU()(x)
        x = L.MaxPooling2D(2)(x)
    x = L.GlobalAveragePooling2D()(x)
    x = L.Dropout(0.3)(x)
    out = L.Dense(2, activation="sigmoid", name="scores")(x)
    return keras.Model(inp, out)


def train(x, y, w, split, epochs, rng):
    import tensorflow as tf
    tf.random.set_seed(SEED)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    tf.config.threading.set_intra_op_parallelism_threads(2)
    model = build_model()
    opt = tf.keras.optimizers.Adam(2e-3)
    tr = np.nonzero(~split)[0]

    @tf.function(reduce_retracing=True)
    def step(xb, yb, wb):
        with tf.GradientTape() as tape:
            p = model(xb, training=True)
            p = tf.clip_by_value(p, 1e-6, 1 - 1e-6)
            bce = -(yb * tf.math.log(p) + (1 - yb) * tf.math.log(1 - p))
            loss = tf.reduce_sum(bce * wb) / tf.maximum(tf.reduce_sum(wb), 1.0)
        g = tape.gradient(loss, model.trainable_variables)
        opt.apply_gradients(zip(g, model.trainable_variables))
        return loss

    bs = 64
    steps_per_epoch = len(tr) // bs
    for ep in range(epochs):
        lr = 2e-3 * 0.5 * (1 + np.cos(np.pi * ep / epochs))
        opt.learning_rate.assign(lr)
        perm = rng.permutation(tr)
        tot = 0.0
        for s in range(steps_per_epoch):
            idx = perm[s * bs:(s + 1) * bs]
            tot += float(step(augment(x[idx], rng), y[idx], w[idx]))
        log(f"epoch {ep + 1}/{epochs} loss {tot / max(1, steps_per_epoch):.4f} lr {lr:.5f}")
    return model


def export(model, path):
    import tensorflow as tf
    import tf2onnx
    import onnx
    spec = (tf.TensorSpec((None, F.ALIGNED, F.ALIGNED, 3), tf.float32, name="crop"),)
    proto, _ = tf2onnx.convert.from_keras(model, input_signature=spec, opset=15, inputs_as_nchw=["crop"])
    # Stable names the manifest refers to, and no producer noise that would change the checksum.
    for o in proto.graph.output:
        old = o.name
        o.name = "scores"
        for n in proto.graph.node:
            n.output[:] = ["scores" if v == old else v for v in n.output]
    proto.producer_name, proto.producer_version, proto.doc_string = "proctor training/vision", "1", ""
    onnx.checker.check_model(proto)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    onnx.save(proto, path)


class Classifier:
    """The exported ONNX, run as the Go analyzer runs it: NCHW float, BGR / 255."""

    def __init__(self, path):
        import onnxruntime as ort
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        self.s = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])

    def __call__(self, crops):
        x = (np.asarray(crops, np.float32) / 255.0).transpose(0, 3, 1, 2)
        out = []
        for i in range(0, len(x), 64):
            out.append(self.s.run(["scores"], {"crop": x[i:i + 64]})[0])
        return np.concatenate(out)


def best_threshold(scores, labels):
    """The highest threshold whose F1 on the validation split is within 0.01 of the best: the
    validation split comes from the training sources, easier than new photos, where a low
    threshold turns into false alarms."""
    ts = np.arange(0.1, 0.91, 0.01)
    f1s = np.array([prf(scores >= t, labels)[2] for t in ts])
    ok = ts[f1s >= f1s.max() - 0.01]
    return float(round(ok.max(), 2))


def prf(pred, labels):
    pred, labels = np.asarray(pred, bool), np.asarray(labels, bool)
    tp = int((pred & labels).sum())
    fp = int((pred & ~labels).sum())
    fn = int((~pred & labels).sum())
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0), tp, fp, fn


def evaluate_dev(data, det, ali, clf, thr, rng):
    """mask/dev, image level, as the service would see each photo as a camera frame: the main
    (largest) face decides; a photo where no face is found counts as "no mask"."""
    f = os.path.join(data, "faces")
    res = {"images": 0, "no_face": {"with_mask": 0, "without_mask": 0}}
    preds, labels, det_scores, det_labels = [], [], [], []
    occl_scores_clean = []
    synth_occ = []
    for sub, lab in (("with_mask", 1), ("without_mask", 0)):
        for p in images(os.path.join(f, "mask", "dev", sub)):
            img = cv2.imread(p, cv2.IMREAD_COLOR)
            if img is None:
                continue
            res["images"] += 1
            frame, boxes = find_faces(det, as_frame(img), 4)
            crop = None
            if boxes:
                main = max(boxes, key=lambda b: b[2] * b[3])
                crop = ali.align(frame, main)
            if crop is None:
                res["no_face"][sub] += 1
                preds.append(False)
                labels.append(lab)
                continue
            s = clf([crop])[0]
            preds.append(s[0] >= thr["mask"])
            labels.append(lab)
            det_scores.append(float(s[0]))
            det_labels.append(lab)
            if lab == 0:
                occl_scores_clean.append(float(s[1]))
                # Synthetic occlusion of the same dev face (never trained on): recall estimate.
                kind = rng.choice(["hand", "edge"])
                if kind == "hand":
                    fr2, b2 = O.hand(frame, main, rng), main
                else:
                    fr2, b2 = O.edge(frame, main, rng)
                c2 = ali.align(fr2, b2)
                if c2 is not None:
                    synth_occ.append(float(clf([c2])[0][1]))
    p, r, f1, tp, fp, fn = prf(preds, labels)
    res["end_to_end"] = {"precision": p, "recall": r, "f1": f1, "tp": tp, "fp": fp, "fn": fn}
    p, r, f1, tp, fp, fn = prf(np.array(det_scores) >= thr["mask"], det_labels)
    res["faces_found"] = {"n": len(det_scores), "precision": p, "recall": r, "f1": f1, "tp": tp, "fp": fp, "fn": fn}
    oc = np.array(occl_scores_clean)
    so = np.array(synth_occ)
    res["occluded_on_dev_without_mask"] = {
        "clean_faces": len(oc), "false_alarms": int((oc >= thr["occluded"]).sum()),
        "synthetic_occlusions": len(so), "detected": int((so >= thr["occluded"]).sum())}
    return res


def evaluate_occlusion_photos(data, det, ali, clf, thr):
    out = []
    for p in images(os.path.join(data, "faces", "occlusion")):
        img = cv2.imread(p, cv2.IMREAD_COLOR)
        frame, boxes = find_faces(det, as_frame(img), 4)
        if not boxes:
            out.append({"file": os.path.basename(p), "face": False})
            continue
        main = max(boxes, key=lambda b: b[2] * b[3])
        c = ali.align(frame, main)
        s = clf([c])[0] if c is not None else [0, 0]
        out.append({"file": os.path.basename(p), "face": True, "mask": round(float(s[0]), 3),
                    "occluded": round(float(s[1]), 3), "flagged": bool(s[1] >= thr["occluded"])})
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=os.path.join(ROOT, "..", "shared", "data"), help="dev data root (../shared/data)")
    ap.add_argument("--export", action="append", default=[], help="export directory (docs/data-loop.md) with reviewer labels (repeatable)")
    ap.add_argument("--extra", action="append", default=[], help="folder with with_mask/ without_mask/ [occluded/ not_occluded/] (repeatable)")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--out", default=os.path.join(ROOT, "models", "trained", "attire-cnn.onnx"))
    ap.add_argument("--report", default=os.path.join(here, "attire-report.json"))
    ap.add_argument("--data-manifest", default=os.path.join(here, "attire-data.tsv"))
    args = ap.parse_args()
    data = os.path.abspath(args.data)
    if not os.path.isdir(os.path.join(data, "faces", "mask", "train")):
        sys.exit(f"train_attire: {data}/faces/mask/train missing: pass --data DIR (the dev data root)")
    cache = os.path.join(ROOT, ".cache", "models")
    det = F.FaceDetector(os.path.join(cache, "ultraface-rfb-320.onnx"))
    ali = F.Aligner(os.path.join(cache, "faceplugin-landmarks68.onnx"))
    rng = np.random.default_rng(SEED)
    srcs, exps = sources(data, args.extra, args.export)
    log(f"{len(srcs)} training images")
    x, y, w, split, rows = prepare(srcs, det, ali, rng, os.path.join(ROOT, ".cache", "vision-data", "attire-crops"))
    log(f"{len(x)} crops: mask {int((y[:, 0] * w[:, 0]).sum())}, occluded {int((y[:, 1] * w[:, 1]).sum())}, validation {int(split.sum())}")
    model = train(x, y, w, split, args.epochs, rng)
    export(model, args.out)
    clf = Classifier(args.out)
    va = np.nonzero(split)[0]
    s = clf(x[va])
    mm = w[va, 0] > 0  # crops whose mask label is known (every one but export items labelled only "occluded")
    thr = {"mask": best_threshold(s[mm, 0], y[va][mm, 0] > 0.5)}
    om = w[va, 1] > 0
    thr["occluded"] = best_threshold(s[om, 1], y[va][om, 1] > 0.5)
    val = {"mask": dict(zip(["precision", "recall", "f1", "tp", "fp", "fn"], prf(s[mm, 0] >= thr["mask"], y[va][mm, 0] > 0.5))),
           "occluded": dict(zip(["precision", "recall", "f1", "tp", "fp", "fn"], prf(s[om, 1] >= thr["occluded"], y[va][om, 1] > 0.5)))}
    log("thresholds", thr, "validation", val)
    dev = evaluate_dev(data, det, ali, clf, thr, np.random.default_rng(SEED + 1))
    occ = evaluate_occlusion_photos(data, det, ali, clf, thr)
    log("dev", json.dumps(dev))
    log("occlusion photos", occ)
    # Cost per face (one crop, one thread).
    one = x[:1]
    t0 = time.perf_counter()
    for _ in range(200):
        clf(one)
    ms = (time.perf_counter() - t0) / 200 * 1000
    with open(args.out, "rb") as f:
        model_sha = hashlib.sha256(f.read()).hexdigest()
    report = {"model": os.path.relpath(args.out, ROOT), "sha256": model_sha, "thresholds": thr,
              "crops": {"total": int(len(x)), "validation": int(split.sum()), "mask": int((y[:, 0] * w[:, 0]).sum()),
                        "occluded_synthetic": int((y[:, 1] * w[:, 1]).sum())},
              "validation": val, "mask_dev": dev, "occlusion_photos": occ, "ms_per_face_python_ort": round(ms, 3),
              "epochs": args.epochs, "extra": args.extra,
              "exports": [{"id": ex.id, "dir": ex.dir, "manifest_sha256": ex.manifest_sha256, "manifest_sha256_ok": ex.manifest_sha256_ok,
                           "items_used": len(ex.items) - ex.skipped.get("no face box", 0), "skipped": ex.skipped} for ex in exps]}
    with open(args.report, "w") as f:
        json.dump(report, f, indent=1, default=float)
    with open(args.data_manifest, "w") as f:
        f.write("# Files used to train models/trained/attire-cnn.onnx (training/vision/train_attire.py).\n")
        f.write("# path (relative to the data root or the project, or as given for --extra)\tsha256\tmask\toccluded\tgroup\tfaces used\n")
        for p, d, m, o, g, n in rows:
            rel = os.path.relpath(p, data) if p.startswith(data) else os.path.relpath(p, ROOT) if p.startswith(ROOT) else p
            f.write(f"{rel}\t{d}\t{'' if m is None else m}\t{'' if o is None else o}\t{g}\t{n}\n")
    log("wrote", args.out, model_sha, args.report, args.data_manifest)
    if os.path.abspath(args.out) == os.path.join(ROOT, "models", "trained", "attire-cnn.onnx"):
        update_manifest(model_sha, thr)


def update_manifest(model_sha, thr):
    """Points models/manifests/attire-cnn.json at the new file and thresholds (same layout)."""
    import re
    p = os.path.join(ROOT, "models", "manifests", "attire-cnn.json")
    with open(p) as f:
        s = f.read()
    s = re.sub(r'"sha256": "[0-9a-f]*"', f'"sha256": "{model_sha}"', s)
    s = re.sub(r'"package_sha256": "[0-9a-f]*"', f'"package_sha256": "{model_sha}"', s)
    s = re.sub(r'"scores": \{[^}]*\}', '"scores": {"mask": %g, "occluded": %g}' % (thr["mask"], thr["occluded"]), s)
    with open(p, "w") as f:
        f.write(s)
    log(f"updated {os.path.relpath(p, ROOT)}; if the thresholds changed, set DefaultMaskScore and "
        f"DefaultOccludedScore in rules/vision_objects.go to {thr['mask']} and {thr['occluded']} "
        "(go test ./rules checks they agree)")


if __name__ == "__main__":
    main()
