#!/usr/bin/env python3
"""Measures the attire classifier's "occluded" output on the real occlusion labels made by looking
at the dev photos (training/vision/occlusion-labels.tsv, issue #15), split by person like the ear
labels (train_ears.held_back: 30% of the people held back, the rest the tuning split).

  .cache/vision-venv/bin/python training/vision/eval_occlusion.py [--model ONNX] [--threshold T]
      [--manifest JSON] [--write-export DIR]

The aligned crops are the service's own (go run ./training/vision/earcrops --face-crops).
--write-export writes the tuning split as an export (docs/data-loop.md) for
training/vision/finetune_attire.sh --export DIR --out VERSION_DIR; then --model VERSION_DIR/attire-cnn.onnx
measures the refit on the held-back people. Prints precision/recall/F1 per split, a 95% bootstrap
interval of F1 (people resampled), the false-alarm rate on clear faces and recall per kind (a kind
is a property of the positives only, so precision per kind does not exist). The threshold is the
manifest's unless --threshold."""
import argparse
import csv
import hashlib
import json
import os
import shutil
import sys

import numpy as np
import cv2

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
from train_ears import DATA, ROOT, held_back, iou, person, run_earcrops  # noqa: E402


def scores(model, files):
    import onnxruntime as ort
    s = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    x = np.stack([cv2.imread(f).astype(np.float32) / 255 for f in files]).transpose(0, 3, 1, 2)
    return s.run(None, {s.get_inputs()[0].name: x})[0]


def prf(y, p):
    y, p = np.asarray(y, bool), np.asarray(p, bool)
    tp, fp, fn = int((y & p).sum()), int((~y & p).sum()), int((y & ~p).sum())
    pr, rc = tp / max(1, tp + fp), tp / max(1, tp + fn)
    return {"n": len(y), "positives": int(y.sum()), "tp": tp, "fp": fp, "fn": fn, "precision": round(pr, 3),
            "recall": round(rc, 3), "f1": round(2 * pr * rc / max(1e-9, pr + rc), 3)}


def f1_interval(y, p, people, n=2000, seed=1):
    """95% bootstrap interval of F1, resampling people (their faces together), as the split does."""
    rng = np.random.default_rng(seed)
    y, p = np.asarray(y, bool), np.asarray(p, bool)
    groups = {}
    for k, who in enumerate(people):
        groups.setdefault(who, []).append(k)
    groups = list(groups.values())
    f1s = []
    for _ in range(n):
        idx = np.concatenate([groups[g] for g in rng.integers(0, len(groups), len(groups))])
        tp = int((y[idx] & p[idx]).sum())
        f1s.append(2 * tp / max(1, int(y[idx].sum()) + int(p[idx].sum())))
    return [round(float(v), 3) for v in np.percentile(f1s, [2.5, 97.5])]


def load_items(labels, cache):
    """(aligned crop path, occluded, kind, held back, person) per labelled face the detector finds
    again (IoU >= 0.3 with the labelled box), in the manifest's order."""
    with open(labels) as f:
        rows = list(csv.DictReader([l for l in f if not l.startswith("#")], delimiter="\t"))
    photos = sorted({os.path.join(DATA, r["photo"]) for r in rows})
    run_earcrops(photos, cache, DATA, ["--face-crops"])
    faces = {}
    for r in csv.reader(open(os.path.join(cache, "faces.tsv")), delimiter="\t"):
        faces.setdefault(r[1], []).append((int(r[0]), [float(v) for v in r[3:7]]))
    items = []
    for r in rows:
        b = [float(v) for v in r["box"].split(",")]
        c = max(faces.get(r["photo"], []), key=lambda s: iou(s[1], b), default=None)
        if c is None or iou(c[1], b) < 0.3:
            continue
        items.append((os.path.join(cache, "crops", f"{c[0]}_face.png"), r["occluded"] == "yes", r["kind"],
                      held_back(r["photo"]), person(r["photo"])))
    return rows, items


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--labels", default=os.path.join(here, "occlusion-labels.tsv"))
    ap.add_argument("--model", default=os.path.join(ROOT, "models", "trained", "attire-cnn.onnx"))
    ap.add_argument("--threshold", type=float, default=0, help="default: the manifest's occluded threshold")
    ap.add_argument("--manifest", default=os.path.join(ROOT, "models", "manifests", "attire-cnn.json"))
    ap.add_argument("--cache", default=os.path.join(os.environ.get("PROCTOR_CACHE_DIR", os.path.join(ROOT, ".cache")), "occlusion-data"))
    ap.add_argument("--write-export", default="")
    a = ap.parse_args()
    if not a.threshold:
        a.threshold = json.load(open(a.manifest))["vision"]["scores"]["occluded"]
    rows, items = load_items(a.labels, a.cache)
    s = scores(a.model, [i[0] for i in items])[:, 1]
    out = {"model": os.path.relpath(a.model, ROOT), "threshold": a.threshold, "labelled_faces": len(rows), "found": len(items)}
    for name, keep in (("held_back", lambda i: i[3]), ("tuning", lambda i: not i[3]), ("all", lambda i: True)):
        idx = [k for k, i in enumerate(items) if keep(i)]
        y = [items[k][1] for k in idx]
        out[name] = prf(y, s[idx] >= a.threshold)
        out[name]["f1_95"] = f1_interval(y, s[idx] >= a.threshold, [items[k][4] for k in idx])
        out[name]["false_alarm_rate"] = round(out[name]["fp"] / max(1, len(y) - sum(y)), 3)
        kinds = {}
        for k in idx:
            if items[k][1]:
                kd = kinds.setdefault(items[k][2], [0, 0])
                kd[0] += int(s[k] >= a.threshold)
                kd[1] += 1
        out[name]["recall_per_kind"] = {kd: f"{v[0]}/{v[1]}" for kd, v in sorted(kinds.items())}
    print(json.dumps(out, indent=1))
    if a.write_export:
        shutil.rmtree(a.write_export, ignore_errors=True)
        os.makedirs(os.path.join(a.write_export, "crops"))
        lines = []
        for k, (crop, occ, _, hb, _) in enumerate(items):
            if hb:
                continue
            iid = f"v{k:04d}"
            shutil.copy(crop, os.path.join(a.write_export, "crops", iid + ".png"))
            lines.append(json.dumps({"id": iid, "kind": "vision", "crop": f"crops/{iid}.png", "labels": {"occluded": occ}}))
        man = "\n".join(lines) + "\n"
        with open(os.path.join(a.write_export, "manifest.jsonl"), "w") as f:
            f.write(man)
        with open(os.path.join(a.write_export, "export.json"), "w") as f:
            json.dump({"format": "proctor-export", "format_version": 1, "id": "exp_occlusion_labels",
                       "manifest_sha256": hashlib.sha256(man.encode()).hexdigest()}, f)
        print(f"wrote {len(lines)} tuning items to {a.write_export}", file=sys.stderr)


if __name__ == "__main__":
    main()
