#!/usr/bin/env python3
"""Embedding-model study for issue #13: scores face-embedding candidates under several crops on
the dev identity sets with the protocol of `proctor eval vision` (internal/eval/identity.go):
people split by an FNV-1a hash of the folder name (identities-rmfd: dev/test; identities/ and
identities-crops/: test only), TAR at FAR 1% / 0.1% over all pairs of a split with that split's
own impostor scores.

Input: a TSV of the main face of every identity photo as the Go pipeline sees it (UltraFace +
68-point landmarks on the photo padded by half its size per side, analyzers.PadFrame): written by
`PROCTOR_DUMP=points.tsv go test -run TestDumpIdentityPoints ./internal/eval/`. This script
only redoes the crop and the embedding, so crop choices can be compared quickly; the numbers
that ship come from `proctor eval vision` (Go) with the chosen crop.

Usage: embedding_study.py POINTS.tsv MODELDIR [CANDIDATE ...]   (prints one table row per run)

A candidate is MODEL:ZOOM[:dy=SHIFT][:rgb|bgr][:flip][:raw|pm1|01|fp] with MODEL one of BASE
below (ONNX files in MODELDIR; the TF.js ones converted with tf2onnx --tfjs, docs/vision.md), or
A+B for the ensemble of two (mean of the cosine similarities). Row: TAR@FAR 1% / 0.1% on
identities, identities-crops, identities-rmfd (test people), all test, dev; the dev threshold at
FAR 1%; ms of CPU per embedding.
"""
import math
import os
import sys
import time

import cv2
import numpy as np
import onnxruntime as ort

ARCFACE = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                    [41.5493, 92.3655], [70.7299, 92.2041]])


def similarity(src, dst):
    """Least-squares similarity transform src -> dst (2x3), as models/align.go."""
    ps, qs = src.mean(0), dst.mean(0)
    x, q = src - ps, dst - qs
    den = (x ** 2).sum()
    a = (x[:, 0] * q[:, 0] + x[:, 1] * q[:, 1]).sum() / den
    b = (x[:, 0] * q[:, 1] - x[:, 1] * q[:, 0]).sum() / den
    tx = qs[0] - (a * ps[0] - b * ps[1])
    ty = qs[1] - (b * ps[0] + a * ps[1])
    return np.array([[a, -b, tx], [b, a, ty]])


def template(side, zoom, dy=0.0):
    """ArcFace's five points for a side×side crop; zoom < 1 leaves more margin around the face,
    dy shifts the face down by that fraction of the side."""
    t = (ARCFACE - 56.0) * zoom * side / 112.0 + side / 2.0
    t[:, 1] += dy * side
    return t


def load_points(path):
    rows = []
    for line in open(path):
        f = line.rstrip("\n").split("\t")
        r = dict(path=f[0], set=f[1], name=f[2], split=f[3], W=int(f[4]), H=int(f[5]))
        if len(f) >= 20:
            r["box"] = np.array([float(v) for v in f[6:10]])
            r["pts"] = np.array([float(v) for v in f[10:20]]).reshape(5, 2)
        rows.append(r)
    return rows


def padded(path):
    """The photo with the border analyzers.PadFrame adds (replicated, half the size per side)."""
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    h, w = img.shape[:2]
    bw, bh = int(w * 0.5 + 0.5), int(h * 0.5 + 0.5)
    return cv2.copyMakeBorder(img, bh, bh, bw, bw, cv2.BORDER_REPLICATE), w / (w + 2 * bw)


class Candidate:
    def __init__(self, name, file, side, zoom, rgb, norm, out, nhwc, dy=0.0, flip=False):
        self.name, self.file, self.side, self.zoom, self.rgb = name, file, side, zoom, rgb
        self.norm, self.out, self.nhwc, self.dy, self.flip = norm, out, nhwc, dy, flip

    def open(self, modeldir):
        o = ort.SessionOptions()
        o.intra_op_num_threads = 1
        o.inter_op_num_threads = 1
        o.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        self.sess = ort.InferenceSession(os.path.join(modeldir, self.file), o, providers=["CPUExecutionProvider"])
        self.inp = self.sess.get_inputs()[0].name
        outs = [x.name for x in self.sess.get_outputs()]
        self.outname = [n for n in outs if self.out in n][0]

    def crop(self, img, pts):
        m = similarity(pts, template(self.side, self.zoom, self.dy))
        return cv2.warpAffine(img, m, (self.side, self.side), flags=cv2.INTER_LINEAR, borderValue=0)

    def embed(self, crop):
        x = crop[:, :, ::-1] if self.rgb else crop
        x = x.astype(np.float32)
        if self.norm == "pm1":
            x = (x - 127.5) / 128.0
        elif self.norm == "fp":  # faceplugin
            x = (x - 127.0) / 128.0
        elif self.norm == "01":
            x = x / 255.0
        # "raw": 0..255 (the graph normalises)
        batch = [x]
        if self.flip:
            batch.append(x[:, ::-1])
        vs = []
        for b in batch:
            t = b[None] if self.nhwc else b.transpose(2, 0, 1)[None]
            v = self.sess.run([self.outname], {self.inp: np.ascontiguousarray(t)})[0][0].astype(np.float64)
            vs.append(v)
        v = np.sum(vs, 0)
        return v / (np.linalg.norm(v) + 1e-12)


CANDIDATES = {
    # today's model, as the service runs it
    "faceplugin": Candidate("faceplugin", "faceplugin-embedding.onnx", 112, 1.0, False, "fp", "output", False),
    "faceplugin-rgb": Candidate("faceplugin-rgb", "faceplugin-embedding.onnx", 112, 1.0, True, "fp", "output", False),
    "facenet-z1.0": Candidate("facenet", "facenet-keras.onnx", 160, 1.0, True, "raw", "embedding", False),
    "facenet-z0.9": Candidate("facenet", "facenet-keras.onnx", 160, 0.9, True, "raw", "embedding", False),
    "facenet-z0.8": Candidate("facenet", "facenet-keras.onnx", 160, 0.8, True, "raw", "embedding", False),
    "facenet-z0.7": Candidate("facenet", "facenet-keras.onnx", 160, 0.7, True, "raw", "embedding", False),
    "facenet-z0.8-bgr": Candidate("facenet", "facenet-keras.onnx", 160, 0.8, False, "raw", "embedding", False),
    "facenet-z0.8-dy": Candidate("facenet", "facenet-keras.onnx", 160, 0.8, True, "raw", "embedding", False, dy=0.04),
    "faceres-z0.6": Candidate("faceres", "hm-faceres.onnx", 224, 0.6, True, "raw", "global_pooling", True),
    "faceres-z0.7": Candidate("faceres", "hm-faceres.onnx", 224, 0.7, True, "raw", "global_pooling", True),
    "faceres-z0.8": Candidate("faceres", "hm-faceres.onnx", 224, 0.8, True, "raw", "global_pooling", True),
    "faceres-z0.7-01": Candidate("faceres", "hm-faceres.onnx", 224, 0.7, True, "01", "global_pooling", True),
    "faceres-deep-z0.7": Candidate("faceres-deep", "hm-faceres-deep.onnx", 224, 0.7, True, "raw", "global_pooling", True),
    "mobileface-z1.0": Candidate("mobileface", "hm-mobileface.onnx", 112, 1.0, True, "raw", "batchnorm0", True),
    "mobileface-z1.0-pm1": Candidate("mobileface", "hm-mobileface.onnx", 112, 1.0, True, "pm1", "batchnorm0", True),
    "mobileface-z0.8": Candidate("mobileface", "hm-mobileface.onnx", 112, 0.8, True, "raw", "batchnorm0", True),
}


def tar_at(gen, imp, far):
    imp = np.sort(imp)
    allowed = int(math.floor(far * len(imp)))
    k = len(imp) - 1 - allowed
    th = np.nextafter(imp[k], np.inf) if k >= 0 else -np.inf
    return float((gen >= th).mean()), float(th)


def pairs(vecs, people):
    v = np.array(vecs)
    s = v @ v.T
    p = np.array(people)
    same = p[:, None] == p[None, :]
    iu = np.triu_indices(len(p), 1)
    return s[iu][same[iu]], s[iu][~same[iu]]


def evaluate(rows, embs):
    """embs: per row an embedding or None. Returns {split: (tar1, tar01, ngen, nimp)}."""
    out = {}
    groups = {
        "dev": lambda r: r["split"] == "dev",
        "test": lambda r: r["split"] == "test",
        "test/identities-rmfd": lambda r: r["split"] == "test" and r["set"] == "identities-rmfd",
        "test/identities": lambda r: r["set"] == "identities",
        "test/identities-crops": lambda r: r["set"] == "identities-crops",
    }
    for g, sel in groups.items():
        vecs = [e for r, e in zip(rows, embs) if sel(r) and e is not None]
        people = [r["set"] + "/" + r["name"] for r, e in zip(rows, embs) if sel(r) and e is not None]
        gen, imp = pairs(vecs, people)
        out[g] = (tar_at(gen, imp, 0.01)[0], tar_at(gen, imp, 0.001)[0], len(gen), len(imp))
    dev_gen, dev_imp = pairs([e for r, e in zip(rows, embs) if r["split"] == "dev" and e is not None],
                             [r["set"] + "/" + r["name"] for r, e in zip(rows, embs) if r["split"] == "dev" and e is not None])
    out["threshold"] = tar_at(dev_gen, dev_imp, 0.01)[1]
    return out


BASE = {  # file, side, rgb, norm, output, nhwc
    "faceplugin": ("faceplugin-embedding.onnx", 112, False, "fp", "output", False),
    "facenet": ("facenet-keras.onnx", 160, True, "raw", "embedding", False),
    "faceres": ("hm-faceres.onnx", 224, True, "raw", "global_pooling", True),
    "faceres-deep": ("hm-faceres-deep.onnx", 224, True, "raw", "global_pooling", True),
    "mobileface": ("hm-mobileface.onnx", 112, True, "raw", "batchnorm0", True),
    "mobilefacenet": ("hm-mobilefacenet.onnx", 112, True, "pm1", "embeddings", True),
}


def candidate(name):
    """NAME or MODEL:ZOOM[:opt...] with opts bgr, rgb, flip, pm1, 01, dy=F."""
    if name in CANDIDATES:
        return CANDIDATES[name]
    f = name.split(":")
    file, side, rgb, norm, out, nhwc = BASE[f[0]]
    zoom, dy, flip = float(f[1]), 0.0, False
    for o in f[2:]:
        if o in ("bgr", "rgb"):
            rgb = o == "rgb"
        elif o == "flip":
            flip = True
        elif o in ("pm1", "01", "raw", "fp"):
            norm = o
        elif o.startswith("dy="):
            dy = float(o[3:])
    return Candidate(name, file, side, zoom, rgb, norm, out, nhwc, dy=dy, flip=flip)


def main():
    rows = load_points(sys.argv[1])
    modeldir = sys.argv[2]
    names = sys.argv[3:] or list(CANDIDATES)
    imgs = {}
    for name in names:
        spec = name.split("+")
        cands = [candidate(n) for n in spec]
        for c in cands:
            c.open(modeldir)
        allembs = []
        spent = 0.0
        n = 0
        for c in cands:
            embs = []
            for r in rows:
                if "pts" not in r:
                    embs.append(None)
                    continue
                if r["path"] not in imgs:
                    imgs[r["path"]] = padded(r["path"])
                img, _ = imgs[r["path"]]
                crop = c.crop(img, r["pts"])
                t = time.thread_time()
                embs.append(c.embed(crop))
                spent += time.thread_time() - t
                n += 1
            allembs.append(embs)
        if len(cands) == 1:
            embs = allembs[0]
        else:  # ensemble: mean of the cosine similarities = dot of the concatenated, scaled vectors
            embs = [None if e[0] is None else np.concatenate(e) / math.sqrt(len(e)) for e in zip(*allembs)]
        res = evaluate(rows, embs)
        cells = " | ".join(f"{res[g][0]:.3f} / {res[g][1]:.3f}" for g in
                           ["test/identities", "test/identities-crops", "test/identities-rmfd", "test", "dev"])
        print(f"| {name} | {cells} | {res['threshold']:.3f} | {1000 * spent / max(n, 1):.1f} |", flush=True)


if __name__ == "__main__":
    main()
