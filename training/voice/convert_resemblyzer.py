#!/usr/bin/env python3
"""Converts Resemblyzer's GE2E speaker encoder (PyPI Resemblyzer==0.1.4, Apache-2.0, member
resemblyzer/pretrained.pt) to ONNX for analyzers/voice.go, reproducibly and without PyTorch:

  1. pip downloads the wheel (no dependencies) into <cache>/pypi and checks its sha256, then
     reads the .pt member and checks its sha256;
  2. the checkpoint is PyTorch's legacy (pre-1.6) serialisation: three small pickles, the
     state-dict pickle whose tensors point at storages by key, the sorted storage keys, then each
     storage as int64 element count + raw little-endian float32. A restricted unpickler (only
     OrderedDict, torch.*Storage names and _rebuild_tensor_v2 are allowed; nothing is executed)
     turns it into numpy arrays;
  3. the network (3-layer LSTM 40→256, linear 256→256, ReLU, L2 norm; Resemblyzer's
     VoiceEncoder.forward) is written as an ONNX graph: input "mels" [N,T,40] float32 (power
     mel spectrogram, not log, frames of 25 ms every 10 ms; T may vary), output "embedding"
     [N,256] (L2-normalised). PyTorch's gate order i,f,g,o is reordered to ONNX's i,o,f,c.

--check compares the ONNX model (onnxruntime) with a numpy implementation of the PyTorch LSTM
on random mel input and on the mel of a real recording. Two runs give the same bytes.

Usage: convert_resemblyzer.py [--out PATH] [--check]"""
import argparse
import collections
import hashlib
import io
import os
import pickle
import struct
import subprocess
import sys
import zipfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

here = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(here, "..", ".."))
PACKAGE = "Resemblyzer==0.1.4"
WHEEL = "Resemblyzer-0.1.4-py3-none-any.whl"
WHEEL_SHA256 = "8f12eb2f1a9982d32e8db7856de754709b59c93a77bcf0ff536584b619a9dd1f"
MEMBER = "resemblyzer/pretrained.pt"
MEMBER_SHA256 = "39373b86598fa3da9fcddee6142382efe09777e8d37dc9c0561f41f0070f134e"
HIDDEN, LAYERS, MELS = 256, 3, 40


def sha256_bytes(b):
    return hashlib.sha256(b).hexdigest()


def sha256_file(path):
    with open(path, "rb") as f:
        return sha256_bytes(f.read())


def fetch_pt(cache):
    d = os.path.join(cache, "pypi")
    os.makedirs(d, exist_ok=True)
    whl = os.path.join(d, WHEEL)
    if not (os.path.exists(whl) and sha256_file(whl) == WHEEL_SHA256):
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
                        "--no-deps", "--only-binary=:all:", "--dest", d, PACKAGE], check=True)
    if sha256_file(whl) != WHEEL_SHA256:
        sys.exit(f"convert_resemblyzer: {whl} sha256 mismatch (want {WHEEL_SHA256})")
    with zipfile.ZipFile(whl) as z:
        data = z.read(MEMBER)
    if sha256_bytes(data) != MEMBER_SHA256:
        sys.exit(f"convert_resemblyzer: {MEMBER} sha256 mismatch (want {MEMBER_SHA256})")
    return data


class _Storage:
    def __init__(self, key, numel):
        self.key, self.numel = key, numel


class _Unpickler(pickle.Unpickler):
    """Reads the legacy checkpoint's structure; tensors become (storage, offset, size, stride)."""

    def find_class(self, mod, name):
        if mod == "torch._utils" and name == "_rebuild_tensor_v2":
            return lambda st, off, size, stride, *rest: (st, off, tuple(size), tuple(stride))
        if mod == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        if mod == "torch" and name == "FloatStorage":
            return name
        raise pickle.UnpicklingError(f"convert_resemblyzer: {mod}.{name} not allowed in the checkpoint")

    def persistent_load(self, pid):
        if pid[0] != "storage" or pid[1] != "FloatStorage":
            raise pickle.UnpicklingError(f"unexpected persistent id {pid[:2]}")
        return _Storage(pid[2], pid[4])


def load_state(pt):
    f = io.BytesIO(pt)
    magic, proto, info = pickle.load(f), pickle.load(f), pickle.load(f)
    if magic != 0x1950A86A20F9469CFC6C or proto != 1001 or not info.get("little_endian"):
        sys.exit("convert_resemblyzer: not a little-endian legacy PyTorch checkpoint")
    obj = _Unpickler(f).load()
    keys = pickle.load(f)
    storages = {}
    for k in keys:
        (n,) = struct.unpack("<q", f.read(8))
        storages[k] = np.frombuffer(f.read(4 * n), dtype="<f4")
    state = {}
    for name, (st, off, size, stride) in obj["model_state"].items():
        arr = storages[st.key]
        n = int(np.prod(size))
        want = tuple(int(np.prod(size[i + 1:])) for i in range(len(size)))
        if stride != want:
            sys.exit(f"convert_resemblyzer: {name} is not contiguous")
        state[name] = arr[off:off + n].reshape(size).astype(np.float32)
    return state


def reorder(w):
    """PyTorch LSTM gate blocks i,f,g,o → ONNX i,o,f,c."""
    i, f, g, o = np.split(w, 4, axis=0)
    return np.concatenate([i, o, f, g], axis=0)


def convert(state):
    nodes, inits = [], []

    def init(name, arr):
        inits.append(numpy_helper.from_array(np.ascontiguousarray(arr, dtype=np.float32), name))
        return name

    x = "x_tnc"
    nodes.append(helper.make_node("Transpose", ["mels"], [x], name="to_time_major", perm=[1, 0, 2]))
    inits.append(numpy_helper.from_array(np.array([1], dtype=np.int64), "axis1"))
    inits.append(numpy_helper.from_array(np.array([0], dtype=np.int64), "axis0"))
    for l in range(LAYERS):
        W = init(f"W{l}", reorder(state[f"lstm.weight_ih_l{l}"])[None])
        R = init(f"R{l}", reorder(state[f"lstm.weight_hh_l{l}"])[None])
        B = init(f"B{l}", np.concatenate([reorder(state[f"lstm.bias_ih_l{l}"]),
                                          reorder(state[f"lstm.bias_hh_l{l}"])])[None])
        nodes.append(helper.make_node("LSTM", [x, W, R, B], [f"Y{l}", f"Yh{l}"], name=f"lstm{l}",
                                      hidden_size=HIDDEN))
        nodes.append(helper.make_node("Squeeze", [f"Y{l}", "axis1"], [f"x{l}"], name=f"squeeze{l}"))
        x = f"x{l}"
    nodes.append(helper.make_node("Squeeze", [f"Yh{LAYERS - 1}", "axis0"], ["h"], name="last_hidden"))
    init("linear_w", state["linear.weight"])
    init("linear_b", state["linear.bias"])
    nodes.append(helper.make_node("Gemm", ["h", "linear_w", "linear_b"], ["lin"], name="linear", transB=1))
    nodes.append(helper.make_node("Relu", ["lin"], ["raw"], name="relu"))
    nodes.append(helper.make_node("ReduceL2", ["raw"], ["norm"], name="norm", axes=[1], keepdims=1))
    init("eps", np.array([1e-12], dtype=np.float32))
    nodes.append(helper.make_node("Max", ["norm", "eps"], ["norm_eps"], name="norm_floor"))
    nodes.append(helper.make_node("Div", ["raw", "norm_eps"], ["embedding"], name="l2"))
    graph = helper.make_graph(
        nodes, "resemblyzer_ge2e",
        [helper.make_tensor_value_info("mels", TensorProto.FLOAT, ["N", "T", MELS])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", HIDDEN])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="proctor-convert_resemblyzer",
                              producer_version="1")
    model.ir_version = 8
    model.doc_string = f"Resemblyzer GE2E speaker encoder from PyPI {PACKAGE} ({MEMBER}), Apache-2.0"
    onnx.checker.check_model(model)
    return model


def reference(state, mels):
    """numpy port of torch.nn.LSTM (batch_first) + VoiceEncoder.forward."""
    sig = lambda v: 1 / (1 + np.exp(-v))
    x = mels.astype(np.float64)
    for l in range(LAYERS):
        Wi, Wh = state[f"lstm.weight_ih_l{l}"], state[f"lstm.weight_hh_l{l}"]
        b = state[f"lstm.bias_ih_l{l}"] + state[f"lstm.bias_hh_l{l}"]
        n, t, _ = x.shape
        h, c = np.zeros((n, HIDDEN)), np.zeros((n, HIDDEN))
        ys = []
        for s in range(t):
            g = x[:, s] @ Wi.T + h @ Wh.T + b
            i, f, gg, o = np.split(g, 4, axis=1)
            c = sig(f) * c + sig(i) * np.tanh(gg)
            h = sig(o) * np.tanh(c)
            ys.append(h)
        x = np.stack(ys, axis=1)
    e = np.maximum(h @ state["linear.weight"].T + state["linear.bias"], 0)
    return e / np.linalg.norm(e, axis=1, keepdims=True)


def check(state, path):
    import onnxruntime as ort
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    worst = 0.0
    for t in (40, 160):
        mels = (rng.gamma(0.5, 0.02, size=(2, t, MELS))).astype(np.float32)
        got = sess.run(None, {"mels": mels})[0]
        want = reference(state, mels)
        worst = max(worst, float(np.abs(got - want).max()))
    print(f"convert_resemblyzer: max |onnx - numpy LSTM| = {worst:.2e} on random mels")
    if worst > 1e-4:
        sys.exit("convert_resemblyzer: ONNX output differs from the reference")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    cache = os.environ.get("PROCTOR_CACHE_DIR") or os.path.join(ROOT, ".cache")
    ap.add_argument("--out", default=os.path.join(cache, "models", "resemblyzer-ge2e.onnx"))
    ap.add_argument("--check", action="store_true", help="compare with a numpy LSTM")
    a = ap.parse_args()
    pt = fetch_pt(cache)
    state = load_state(pt)
    model = convert(state)
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    tmp = a.out + ".tmp"
    with open(tmp, "wb") as f:
        f.write(model.SerializeToString())
    os.replace(tmp, a.out)
    print(f"convert_resemblyzer: {a.out} {os.path.getsize(a.out)} bytes sha256 {sha256_file(a.out)}")
    if a.check:
        check(state, a.out)


if __name__ == "__main__":
    main()
