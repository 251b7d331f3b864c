#!/usr/bin/env python3
"""Rewrites an openWakeWord speech embedding (oww-embedding, oww-embedding-int8) so that one call
embeds a whole run of consecutive windows: the "-stream" models the phrase gate runs
(analyzers/phrase_gate.go).

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

--check compares the rewrite with the per-window model on a deterministic input (random mel
frames, 40 windows) and fails unless every output is identical. Same bytes every run.

Usage: stream_oww.py --src .cache/models/oww-embedding-int8.onnx --out PATH [--check]"""
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
    ap.add_argument("--check", action="store_true", help="compare with the per-window model (onnxruntime)")
    a = ap.parse_args()
    data = rewrite(a.src)
    if a.check:
        check(a.src, data)
    with open(a.out, "wb") as f:
        f.write(data)


if __name__ == "__main__":
    main()
