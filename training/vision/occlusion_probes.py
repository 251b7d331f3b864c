#!/usr/bin/env python3
"""Linear probes for real occlusion on frozen features (issue #15): does any model the project
already has see hands and microphones on a face? Logistic regression (L2, classes balanced) on
features of the service's aligned crops, 5-fold cross-validation over the tuning people (folds by
person, as train_occlusion.py); prints out-of-fold average precision and best F1 per feature set.
The held-back people are not read.

  .cache/vision-venv/bin/python training/vision/occlusion_probes.py

Feature sets: attire-cnn's pooled 96 (the input of its occluded output), its last conv stage
pooled on a 3×3 grid (where on the face), faceplugin-embedding's 512-d embedding, and its
14×14 stage (node 471) pooled on a 3×3 grid. The shipped occluded score itself is the baseline. It also prints the
frame-edge geometry check (share of the crop's face region outside the frame)."""
import os
import sys

import numpy as np
import cv2

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
from eval_occlusion import load_items  # noqa: E402
from train_ears import ROOT, fnv  # noqa: E402
from train_occlusion import average_precision, best_f1  # noqa: E402


def grid(a, g):
    h, w = a.shape[-2:]
    return np.concatenate([a[..., i * h // g:(i + 1) * h // g, j * w // g:(j + 1) * w // g].mean((-2, -1))
                           for i in range(g) for j in range(g)], -1)


def attire_features(X):
    import onnx
    import onnxruntime as ort
    m = onnx.load(os.path.join(ROOT, "models", "trained", "attire-cnn.onnx"))
    names = {n.op_type + str(k): n.output[0] for k, n in enumerate(m.graph.node)}
    relus = [v for k, v in names.items() if k.startswith("Relu")]
    gap = [v for k, v in names.items() if k.startswith("Squeeze")][0]
    for w in (relus[-1], gap):
        m.graph.output.append(onnx.helper.make_empty_tensor_value_info(w))
    s = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    score, last, pooled = s.run(None, {"crop": X.transpose(0, 3, 1, 2).copy()})
    return score[:, 1], pooled, grid(last, 3)


def faceplugin_features(X):
    import onnx
    import onnxruntime as ort
    m = onnx.load(os.path.join(os.environ.get("PROCTOR_CACHE_DIR", os.path.join(ROOT, ".cache")), "models", "faceplugin-embedding.onnx"))
    m.graph.output.append(onnx.helper.make_empty_tensor_value_info("471"))
    s = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    emb, mid = [], []
    for x in X:  # the model takes one face at a time
        e, f = s.run(None, {"input": ((x.transpose(2, 0, 1)[None] * 255 - 127) * 0.0078125).astype(np.float32)})
        emb.append(e[0])
        mid.append(grid(f[0], 3))
    return np.stack(emb), np.stack(mid)


def fit(X, y, lam, iters=300, lr=0.05):
    """Logistic regression by Adam, positives weighted to balance the classes."""
    n, k = X.shape
    w, b = np.zeros(k), 0.0
    sw = np.where(y, (1 - y.mean()) / y.mean(), 1.0)
    m, v = np.zeros(k + 1), np.zeros(k + 1)
    for t in range(1, iters + 1):
        p = 1 / (1 + np.exp(-(X @ w + b)))
        g = sw * (p - y)
        grad = np.concatenate([X.T @ g / n + lam * w, [g.mean()]])
        m, v = 0.9 * m + 0.1 * grad, 0.999 * v + 0.001 * grad ** 2
        step = lr * (m / (1 - 0.9 ** t)) / (np.sqrt(v / (1 - 0.999 ** t)) + 1e-8)
        w, b = w - step[:-1], b - step[-1]
    return w, b


def main():
    _, items = load_items(os.path.join(here, "occlusion-labels.tsv"),
                          os.path.join(os.environ.get("PROCTOR_CACHE_DIR", os.path.join(ROOT, ".cache")), "occlusion-data"))
    tune = [i for i in items if not i[3]]
    X = np.stack([cv2.imread(i[0]).astype(np.float32) / 255 for i in tune])
    y = np.array([i[1] for i in tune])
    fold = np.array([fnv("fold:" + i[4]) % 5 for i in tune])
    # Frame edge as geometry: the share of the face region of the aligned crop (x 20-92, y 30-108 of
    # the ArcFace template) that is black, i.e. outside the frame.
    edge = (X[:, 30:108, 20:92].max(-1) == 0).mean((1, 2))
    kind = np.array([i[2] for i in tune])
    print("frame-edge faces, share outside the frame:", np.round(np.sort(edge[kind == "frame_edge"]), 3),
          f"; clear faces above 0.05: {int((edge[~y] > 0.05).sum())} of {int((~y).sum())}")
    shipped, pooled, stage = attire_features(X)
    emb, mid = faceplugin_features(X)
    print(f"{len(y)} tuning faces, {int(y.sum())} occluded")
    print(f"{'shipped occluded score (no fit)':40s} AP {average_precision(y, shipped):.3f} best F1 {best_f1(y, shipped)[0]:.3f}")
    for name, F in (("attire-cnn pooled 96", pooled), ("attire-cnn last stage, 3x3 grid", stage),
                    ("faceplugin-embedding 512", emb), ("faceplugin-embedding stage 471, 3x3", mid)):
        Fs = (F - F.mean(0)) / (F.std(0) + 1e-6)
        for lam in (0.1, 1.0):
            oof = np.zeros(len(y))
            for f in range(5):
                w, b = fit(Fs[fold != f], y[fold != f], lam)
                oof[fold == f] = Fs[fold == f] @ w + b
            print(f"{name + f' (L2 {lam})':40s} AP {average_precision(y, oof):.3f} best F1 {best_f1(y, oof)[0]:.3f}", flush=True)


if __name__ == "__main__":
    main()
