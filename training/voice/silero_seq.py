#!/usr/bin/env python3
"""Rebuilds Silero VAD v5 (models/manifests/silero-vad-v5.json) as a graph that takes many
consecutive frames of one stream in a single call: silero-vad-v5-seq for analyzers/vad.go.

Why: the published graph runs one 32 ms frame per call, and most of a call is not arithmetic:
the 16 kHz network sits in an `If` on the sample rate, and its LSTM cell in three more nested
`If`s that only handle shapes. 31 calls per second of audio made the VAD a third of the audio
path's CPU (docs/audio.md).

What changes: nothing in the arithmetic. The same weights, read from the published graph's
16 kHz branch, in the same order of operations:

  input [F, 576] (F frames, each the previous frame's last 64 samples then its 512)
  -> reflect pad 64 on the right -> STFT as a strided convolution (basis [258,1,256], stride
  128) -> magnitude of the 129 bins -> four Conv1d+ReLU (k3: strides 1,2,2,1) -> [F,128]
  -> one ONNX LSTM over the F frames as a sequence (batch 1, hidden 128), initial state from
  `state` -> ReLU -> 1x1 conv as MatMul (128 -> 1) + bias -> sigmoid -> output [F]
  stateN [2,1,128] = the LSTM's last (h, c).

The convolutions see each frame alone, as before (batch F instead of 1); only the LSTM is
recurrent, and an LSTM over a sequence is the cell applied frame after frame. PyTorch's gate order
i,f,g,o (the published graph reorders it with Slice/Concat at run time) is reordered once here to
ONNX's i,o,f,c.

--check runs both graphs with onnxruntime on 20 s of a deterministic test signal (speech-like
bursts, noise, silence), frame by frame against batches of 1, 7 and 31 frames with the state
carried between batches, and fails unless every probability agrees within 1e-5. Same bytes every
run (no randomness, no timestamps).

Usage: silero_seq.py --src .cache/models/silero-vad-v5.onnx --out PATH [--check]"""
import argparse
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

PREFIX = "If_0_then_branch__Inline_0__"


def weights(src):
    """The 16 kHz branch's constants by their PyTorch names."""
    m = onnx.load(src)
    ifs = [n for n in m.graph.node if n.op_type == "If"]
    if len(ifs) != 1:
        sys.exit(f"silero_seq: {src}: expected one top-level If (sr == 16000), found {len(ifs)}")
    sr = {n.output[0]: numpy_helper.to_array(n.attribute[0].t) for n in m.graph.node if n.op_type == "Constant"}
    if [int(v) for v in sr.values()] != [16000]:
        sys.exit(f"silero_seq: {src}: the If does not test sr == 16000: {sr}")
    branch = next(a.g for a in ifs[0].attribute if a.name == "then_branch")
    consts = {}
    for n in branch.node:
        if n.op_type == "Constant":
            consts[n.output[0]] = numpy_helper.to_array(n.attribute[0].t)
    w = {k[len(PREFIX):]: v for k, v in consts.items() if k.startswith(PREFIX) and "/" not in k}
    # The decoder's output bias is an anonymous constant: the Conv's third input.
    dec = [n for n in branch.node if n.op_type == "Conv" and "decoder/decoder/2" in n.output[0]]
    if len(dec) != 1 or dec[0].input[2] not in consts:
        sys.exit("silero_seq: decoder conv or its bias not found")
    w["decoder.decoder.2.bias"] = consts[dec[0].input[2]]
    need = {"stft.forward_basis_buffer": (258, 1, 256), "decoder.rnn.weight_ih": (512, 128),
            "decoder.rnn.weight_hh": (512, 128), "decoder.rnn.bias_ih": (512,), "decoder.rnn.bias_hh": (512,),
            "decoder.decoder.2.weight": (1, 128, 1), "decoder.decoder.2.bias": (1,)}
    for i, (o, c) in enumerate([(128, 129), (64, 128), (64, 64), (128, 64)]):
        need[f"encoder.{i}.reparam_conv.weight"] = (o, c, 3)
        need[f"encoder.{i}.reparam_conv.bias"] = (o,)
    for k, shape in need.items():
        if k not in w or tuple(w[k].shape) != shape:
            sys.exit(f"silero_seq: weight {k}: want shape {shape}, got {None if k not in w else w[k].shape}")
    return {k: w[k].astype(np.float32) for k in need}


def gates_to_onnx(x):
    """PyTorch LSTM gate blocks i,f,g,o -> ONNX i,o,f,c (along axis 0)."""
    i, f, g, o = np.split(x, 4, axis=0)
    return np.concatenate([i, o, f, g], axis=0)


def build(w):
    c = lambda name, v: numpy_helper.from_array(np.asarray(v), name)  # noqa: E731
    inits = [c("basis", w["stft.forward_basis_buffer"])]
    for i in range(4):
        inits += [c(f"enc{i}.w", w[f"encoder.{i}.reparam_conv.weight"]), c(f"enc{i}.b", w[f"encoder.{i}.reparam_conv.bias"])]
    inits += [
        c("lstm.W", gates_to_onnx(w["decoder.rnn.weight_ih"])[None]),
        c("lstm.R", gates_to_onnx(w["decoder.rnn.weight_hh"])[None]),
        c("lstm.B", np.concatenate([gates_to_onnx(w["decoder.rnn.bias_ih"]), gates_to_onnx(w["decoder.rnn.bias_hh"])])[None]),
        c("dec.w", w["decoder.decoder.2.weight"].reshape(1, 128).T.copy()),
        c("dec.b", w["decoder.decoder.2.bias"].reshape(1)),
        c("pads", np.array([0, 0, 0, 64], np.int64)),
        c("zero", np.array([0], np.int64)), c("one", np.array([1], np.int64)), c("two", np.array([2], np.int64)),
        c("bins", np.array([129], np.int64)), c("bins2", np.array([258], np.int64)),
        c("seq_shape", np.array([-1, 1, 128], np.int64)), c("flat", np.array([-1], np.int64)),
    ]
    N = helper.make_node
    nodes = [
        N("Pad", ["input", "pads"], ["padded"], mode="reflect"),
        N("Unsqueeze", ["padded", "one"], ["signal"]),
        N("Conv", ["signal", "basis"], ["spec"], strides=[128], kernel_shape=[256], pads=[0, 0]),
        N("Slice", ["spec", "zero", "bins", "one"], ["re"]),
        N("Slice", ["spec", "bins", "bins2", "one"], ["im"]),
        # x**2 as the published graph's Pow(x, 2): the same float result as x*x.
        N("Mul", ["re", "re"], ["re2"]),
        N("Mul", ["im", "im"], ["im2"]),
        N("Add", ["re2", "im2"], ["power"]),
        N("Sqrt", ["power"], ["mag"]),
    ]
    x = "mag"
    for i, stride in enumerate([1, 2, 2, 1]):
        nodes += [N("Conv", [x, f"enc{i}.w", f"enc{i}.b"], [f"enc{i}.conv"], strides=[stride], kernel_shape=[3], pads=[1, 1]),
                  N("Relu", [f"enc{i}.conv"], [f"enc{i}.out"])]
        x = f"enc{i}.out"
    nodes += [
        N("Reshape", [x, "seq_shape"], ["seq"]),  # [F,128,1] -> [F,1,128]: frames as time steps, batch 1
        N("Slice", ["state", "zero", "one", "zero"], ["h0"]),
        N("Slice", ["state", "one", "two", "zero"], ["c0"]),
        N("LSTM", ["seq", "lstm.W", "lstm.R", "lstm.B", "", "h0", "c0"], ["Y", "Yh", "Yc"], hidden_size=128),
        N("Reshape", ["Y", "seq_shape"], ["hidden"]),  # [F,1,1,128] -> [F,1,128]
        N("Relu", ["hidden"], ["hidden.relu"]),
        N("MatMul", ["hidden.relu", "dec.w"], ["logit.w"]),
        N("Add", ["logit.w", "dec.b"], ["logit"]),
        N("Sigmoid", ["logit"], ["prob"]),
        N("Reshape", ["prob", "flat"], ["output"]),
        N("Concat", ["Yh", "Yc"], ["stateN"], axis=0),
    ]
    graph = helper.make_graph(
        nodes, "silero_vad_v5_seq",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["frames", 576]),
         helper.make_tensor_value_info("state", TensorProto.FLOAT, [2, 1, 128])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["frames"]),
         helper.make_tensor_value_info("stateN", TensorProto.FLOAT, [2, 1, 128])],
        inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="proctor training/voice/silero_seq.py")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def test_signal(seconds=20, sr=16000):
    """Deterministic: voiced bursts (harmonics with a wandering pitch), noise, silence."""
    rng = np.random.default_rng(20261207)
    t = np.arange(seconds * sr) / sr
    pitch = 140 + 40 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(pitch) / sr
    voiced = sum(np.sin(k * phase) / k for k in range(1, 12))
    envelope = (np.sin(2 * np.pi * 0.4 * t) > 0.1) * (0.5 + 0.5 * np.sin(2 * np.pi * 4 * t) ** 2)
    x = 0.2 * voiced * envelope + 0.01 * rng.standard_normal(len(t))
    x[int(12 * sr):int(14 * sr)] = 0  # digital silence
    return x.astype(np.float32)


def check(src, model_bytes):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = so.inter_op_num_threads = 1
    ref = ort.InferenceSession(src, so, providers=["CPUExecutionProvider"])
    seq = ort.InferenceSession(model_bytes, so, providers=["CPUExecutionProvider"])
    x = test_signal()
    frames, ctx = [], np.zeros(64, np.float32)
    for i in range(len(x) // 512):
        f = np.concatenate([ctx, x[i * 512:(i + 1) * 512]])
        frames.append(f)
        ctx = f[-64:]
    frames = np.stack(frames)
    state = np.zeros((2, 1, 128), np.float32)
    want = []
    for f in frames:
        p, state = ref.run(None, {"input": f[None], "state": state, "sr": np.array(16000, np.int64)})
        want.append(p[0, 0])
    want, want_state = np.array(want), state
    for batch in (1, 7, 31):
        state, got = np.zeros((2, 1, 128), np.float32), []
        for i in range(0, len(frames), batch):
            p, state = seq.run(None, {"input": frames[i:i + batch], "state": state})
            got.extend(p)
        d = max(float(np.abs(np.array(got) - want).max()), float(np.abs(state - want_state).max()))
        speech = int((want >= 0.5).sum())
        print(f"silero_seq: {len(frames)} frames ({speech} >= 0.5) in batches of {batch}: max difference {d:.2e}", file=sys.stderr)
        if d > 1e-5:
            sys.exit(f"silero_seq: the sequence graph differs from {src} by {d}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--src", required=True, help="the published silero_vad_v5.onnx")
    ap.add_argument("--out", required=True)
    ap.add_argument("--check", action="store_true", help="compare with the published graph (onnxruntime)")
    a = ap.parse_args()
    data = build(weights(a.src)).SerializeToString()
    if a.check:
        check(a.src, data)
    with open(a.out, "wb") as f:
        f.write(data)


if __name__ == "__main__":
    main()
