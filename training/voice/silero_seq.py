#!/usr/bin/env python3
"""Rebuilds Silero VAD v5 (models/manifests/silero-vad-v5.json) as a graph that takes many
consecutive frames of one stream in a single call: silero-vad-v5-seq for analyzers/vad.go.

Why: the published graph runs one 32 ms frame per call, and most of a call is not arithmetic:
the 16 kHz network sits in an `If` on the sample rate, and its LSTM cell in three more nested
`If`s that only handle shapes. 31 calls per second of audio made the VAD a third of the audio
path's CPU (docs/audio.md).

What changes: the same weights, read from the published graph's 16 kHz branch, and the same
operations up to the order of float sums:

  input [F, 576] (F frames, each the previous frame's last 64 samples then its 512)
  -> reflect pad 64 on the right -> the STFT's four 256-sample windows at hop 128 as one matrix
  product with the basis -> magnitude of the 129 bins -> four Conv1d(k3)+ReLU (strides 1,2,2,1),
  each as the three taps side by side times one matrix -> [F,128]
  -> one ONNX LSTM over the F frames as a sequence (batch 1, hidden 128), initial state from
  `state` -> ReLU -> 1x1 conv as MatMul (128 -> 1) + bias -> sigmoid -> output [F]
  stateN [2,1,128] = the LSTM's last (h, c).

Every frame's convolutions still see that frame alone; written as matrix products over all F
frames, they run as a few large products instead of many tiny convolutions over 4 time steps
(~3x less CPU than the same graph with Conv nodes). Only the LSTM is recurrent, and an LSTM
over a sequence is the cell applied frame after frame. PyTorch's gate order i,f,g,o (the
published graph reorders it with Slice/Concat at run time) is reordered once here to ONNX's
i,o,f,c.

--check runs both graphs with onnxruntime on 20 s of a deterministic test signal (speech-like
bursts, noise, silence), frame by frame against batches of 1, 7 and 31 frames with the state
carried between batches, and fails unless every probability agrees within 1e-5 and the final
state within 1e-5 of its size (the LSTM's cell state is not bounded by 1). Same bytes every run
(no randomness, no timestamps).

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
    i64 = lambda *v: np.array(v, np.int64)  # noqa: E731
    basis = w["stft.forward_basis_buffer"][:, 0, :]  # [258, 256]
    inits = [c("basisT", basis.T.copy())]
    for i in range(4):
        wc = w[f"encoder.{i}.reparam_conv.weight"]  # [O, C, 3]
        # Row k*C + c of the matrix multiplies tap k of input channel c.
        inits += [c(f"enc{i}.m", wc.transpose(2, 1, 0).reshape(3 * wc.shape[1], wc.shape[0]).copy()),
                  c(f"enc{i}.b", w[f"encoder.{i}.reparam_conv.bias"])]
    inits += [
        c("lstm.W", gates_to_onnx(w["decoder.rnn.weight_ih"])[None]),
        c("lstm.R", gates_to_onnx(w["decoder.rnn.weight_hh"])[None]),
        c("lstm.B", np.concatenate([gates_to_onnx(w["decoder.rnn.bias_ih"]), gates_to_onnx(w["decoder.rnn.bias_hh"])])[None]),
        c("dec.w", w["decoder.decoder.2.weight"].reshape(1, 128).T.copy()),
        c("dec.b", w["decoder.decoder.2.bias"].reshape(1)),
        c("pads", i64(0, 0, 0, 64)), c("tpad", i64(0, 1, 0, 0, 1, 0)),
        c("zero", i64(0)), c("one", i64(1)), c("two", i64(2)), c("four", i64(4)), c("five", i64(5)),
        c("bins", i64(129)), c("bins2", i64(258)), c("axis1", i64(1)), c("axis2", i64(2)),
        c("blocks", i64(-1, 5, 128)), c("seq_shape", i64(-1, 1, 128)), c("flat", i64(-1)),
    ]
    N = helper.make_node
    nodes = [
        N("Pad", ["input", "pads"], ["padded"], mode="reflect"),
        # The STFT's 256-sample windows at hop 128 over 640 samples: blocks 0-3 joined to blocks 1-4.
        N("Reshape", ["padded", "blocks"], ["blk"]),
        N("Slice", ["blk", "zero", "four", "axis1"], ["blk.lo"]),
        N("Slice", ["blk", "one", "five", "axis1"], ["blk.hi"]),
        N("Concat", ["blk.lo", "blk.hi"], ["windows"], axis=2),
        N("MatMul", ["windows", "basisT"], ["spec"]),  # [F, 4, 258]
        N("Slice", ["spec", "zero", "bins", "axis2"], ["re"]),
        N("Slice", ["spec", "bins", "bins2", "axis2"], ["im"]),
        N("Mul", ["re", "re"], ["re2"]),
        N("Mul", ["im", "im"], ["im2"]),
        N("Add", ["re2", "im2"], ["power"]),
        N("Sqrt", ["power"], ["mag"]),  # [F, 4, 129]: time, then channels
    ]
    x, t = "mag", 4
    for i, stride in enumerate([1, 2, 2, 1]):
        t_out = (t - 1) // stride + 1
        nodes.append(N("Pad", [x, "tpad"], [f"enc{i}.pad"]))  # one zero step each side in time
        taps = []
        for k in range(3):
            names = [f"enc{i}.s{k}", f"enc{i}.e{k}", f"enc{i}.st"]
            inits += [c(names[0], i64(k)), c(names[1], i64(k + stride * (t_out - 1) + 1))]
            if k == 0:
                inits.append(c(names[2], i64(stride)))
            nodes.append(N("Slice", [f"enc{i}.pad", names[0], names[1], "axis1", f"enc{i}.st"], [f"enc{i}.tap{k}"]))
            taps.append(f"enc{i}.tap{k}")
        nodes += [N("Concat", taps, [f"enc{i}.patch"], axis=2),
                  N("MatMul", [f"enc{i}.patch", f"enc{i}.m"], [f"enc{i}.mm"]),
                  N("Add", [f"enc{i}.mm", f"enc{i}.b"], [f"enc{i}.conv"]),
                  N("Relu", [f"enc{i}.conv"], [f"enc{i}.out"])]
        x, t = f"enc{i}.out", t_out
    nodes += [
        N("Reshape", [x, "seq_shape"], ["seq"]),  # [F,1,128]: frames as time steps, batch 1
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
        d = float(np.abs(np.array(got) - want).max())
        ds = float(np.abs(state - want_state).max() / max(1.0, np.abs(want_state).max()))
        speech = int((want >= 0.5).sum())
        print(f"silero_seq: {len(frames)} frames ({speech} >= 0.5) in batches of {batch}: max difference {d:.2e}, "
              f"state {ds:.2e} of its size", file=sys.stderr)
        if d > 1e-5 or ds > 1e-5:
            sys.exit(f"silero_seq: the sequence graph differs from {src} by {d} (state {ds})")


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
