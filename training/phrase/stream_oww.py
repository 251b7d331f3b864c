#!/usr/bin/env python3
"""Rewrites openWakeWord's feature models so that the phrase gate (analyzers/phrase_gate.go)
computes a whole run of them per call, with the same outputs:
  - the speech embedding (oww-embedding, oww-embedding-int8) -> "-stream": a run of consecutive
    windows per call;
  - the melspectrogram (--mel) -> oww-melspectrogram-batch: a batch of 8-frame blocks per call.

The embedding network looks at 76 mel frames and the phrase spotter steps 8 frames at a time, so
consecutive windows share 68 of their 76 frames and the per-window model computes most of its
convolutions ~9 times over. The network is convolutional in time: every convolution is "valid"
in time (its padding is on the mel axis only) and its three time poolings (2, 2, 2) make a
total time stride of 8, exactly the spotter's step. Run on T = 76 + 8 (K - 1) frames it gives K
outputs, output j being the embedding of frames [8 j, 8 j + 76): the same arithmetic on the same
numbers, so the same floats (and, for the int8 model, the same quantised values).

The rewrite changes only the two reshapes at the ends:
  input_1 [1, T, 32, 1] -> Reshape [1, 1, T, 32] (was [-1, 1, 76, 32]: windows as the batch)
  last conv [1, 96, K, 1] -> Transpose [1, K, 1, 96] -> Reshape [K, 1, 1, 96] ("conv2d_19", as before per window)
and drops the stored shape annotations (they name 76 frames).

The melspectrogram clips every value to at least (the largest value of its input − 80 dB): a
ReduceMax over the whole input. Blocks stacked as a batch would share that maximum, so --mel
makes the ReduceMax per batch item (axes 1-3, keepdims) and the final Clip a Max against it (a
Clip's bound must be a scalar): each block is then clipped by its own maximum, as when it is
computed alone.

--check compares the rewrite with the original on a deterministic input (random mel frames, 40
windows; for --mel, 30 blocks of noise with speech-like bursts, in batches of 1, 7 and 30) and
fails unless every output is identical. Same bytes every run.

Usage: stream_oww.py --src .cache/models/oww-embedding-int8.onnx --out PATH [--check]
       stream_oww.py --mel --src .cache/models/oww-melspectrogram.onnx --out PATH [--check]"""
import argparse
import sys

import numpy as np
import onnx
from onnx import helper, numpy_helper

FRAMES, STEP, BINS = 76, 8, 32


def rewrite(src):
    m = onnx.load(src)
    g = m.graph
    inits = {i.name: i for i in g.initializer}
    first = [n for n in g.node if n.op_type == "Reshape" and n.input[0] == g.input[0].name]
    last = [n for n in g.node if n.op_type == "Reshape" and n.output[0] == g.output[0].name]
    if len(first) != 1 or len(last) != 1:
        sys.exit(f"stream_oww: {src}: expected one reshape after the input and one before the output")
    shape_in = numpy_helper.to_array(inits[first[0].input[1]]).tolist()
    shape_out = numpy_helper.to_array(inits[last[0].input[1]]).tolist()
    if shape_in != [-1, 1, FRAMES, BINS] or shape_out != [-1, 1, 1, 96]:
        sys.exit(f"stream_oww: {src}: unexpected reshapes {shape_in} / {shape_out}")
    inits[first[0].input[1]].CopyFrom(numpy_helper.from_array(np.array([1, 1, -1, BINS], np.int64), first[0].input[1]))
    conv = last[0].input[0]
    tr = helper.make_node("Transpose", [conv], [conv + "_time_major"], perm=[0, 2, 3, 1])
    last[0].input[0] = conv + "_time_major"
    g.node.insert(list(g.node).index(last[0]), tr)
    del g.value_info[:]
    d = g.input[0].type.tensor_type.shape.dim
    d[0].dim_value = 1
    d[1].dim_param = "frames"
    g.output[0].type.tensor_type.shape.dim[0].dim_param = "windows"
    onnx.checker.check_model(m)
    return m.SerializeToString()


def rewrite_mel(src):
    m = onnx.load(src)
    g = m.graph
    nodes = list(g.node)
    rmax = [n for n in nodes if n.op_type == "ReduceMax"]
    clip = [n for n in nodes if n.op_type == "Clip" and n.output[0] == g.output[0].name]
    if len(rmax) != 1 or len(clip) != 1 or any(a.name == "axes" for a in rmax[0].attribute):
        sys.exit(f"stream_oww: {src}: expected one ReduceMax over all axes and a Clip at the output")
    rmax[0].attribute.append(helper.make_attribute("axes", [1, 2, 3]))
    for a in rmax[0].attribute:
        if a.name == "keepdims":
            a.i = 1
    i = nodes.index(clip[0])
    nodes[i] = helper.make_node("Max", [clip[0].input[0], clip[0].input[1]], [clip[0].output[0]])
    del g.node[:]
    g.node.extend(nodes)
    used = {x for n in g.node for x in n.input}
    keep = [t for t in g.initializer if t.name in used]
    del g.initializer[:]
    g.initializer.extend(keep)
    onnx.checker.check_model(m)
    return m.SerializeToString()


def check_mel(src, data):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = so.inter_op_num_threads = 1
    one = ort.InferenceSession(src, so, providers=["CPUExecutionProvider"])
    bat = ort.InferenceSession(data, so, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(20261207)
    n = 30
    t = np.arange(1280 * (n - 1) + 1632) / 16000
    x = (rng.standard_normal(len(t)) * 30 + 8000 * np.sin(2 * np.pi * 180 * t) * (np.sin(2 * np.pi * 0.7 * t) > 0.3)).astype(np.float32)
    x[1280 * 10:1280 * 16] = 0  # digital silence: its bins sit far below a loud block's maximum
    blocks = np.stack([x[1280 * b:1280 * b + 1632] for b in range(n)])
    want = np.concatenate([one.run(None, {"input": blocks[b:b + 1]})[0] for b in range(n)])
    # The check must be able to fail: the original graph on a batch clips by the batch's maximum.
    if np.array_equal(one.run(None, {"input": blocks})[0], want):
        sys.exit("stream_oww: the test blocks do not tell a per-block from a per-batch clip")
    for size in (1, 7, 30):
        got = np.concatenate([bat.run(None, {"input": blocks[b:b + size]})[0] for b in range(0, n, size)])
        if got.shape != want.shape or not np.array_equal(got, want):
            sys.exit(f"stream_oww: {src}: blocks in batches of {size} differ from one block per call")
    print(f"stream_oww: {src}: {n} blocks in batches of 1, 7 and 30, identical to one block per call", file=sys.stderr)


def check(src, data):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = so.inter_op_num_threads = 1
    per = ort.InferenceSession(src, so, providers=["CPUExecutionProvider"])
    run = ort.InferenceSession(data, so, providers=["CPUExecutionProvider"])
    k = 40
    mel = (np.random.default_rng(20261207).standard_normal((FRAMES + STEP * (k - 1), BINS)) * 1.5 + 1).astype(np.float32)
    want = np.concatenate([per.run(None, {"input_1": mel[None, STEP * j:STEP * j + FRAMES, :, None]})[0] for j in range(k)])
    got = run.run(None, {"input_1": mel[None, :, :, None]})[0]
    if got.shape != want.shape or not np.array_equal(got, want):
        diff = np.abs(got - want).max() if got.shape == want.shape else got.shape
        sys.exit(f"stream_oww: {src}: the run of {k} windows differs from the per-window model: {diff}")
    print(f"stream_oww: {src}: {k} windows in one call, identical to the per-window model", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--src", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--mel", action="store_true", help="the melspectrogram: a batch of blocks per call")
    ap.add_argument("--check", action="store_true", help="compare with the original model (onnxruntime)")
    a = ap.parse_args()
    data = rewrite_mel(a.src) if a.mel else rewrite(a.src)
    if a.check:
        (check_mel if a.mel else check)(a.src, data)
    with open(a.out, "wb") as f:
        f.write(data)


if __name__ == "__main__":
    main()
