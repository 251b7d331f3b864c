"""Static int8 quantisation (QDQ) of the two expensive vision models with onnxruntime's tools.

Two steps, so that machines without the dev photos (CI, a fresh clone) can still build the
int8 model byte for byte:

  calibrate  runs the fp32 model on the exact input tensors the Go service feeds it (dumped by
             `go test -run TestDumpModelInputs ./internal/eval/`: the tuning part of the dev
             data only) and writes every activation's range (tensor name -> [min, max]) as a
             small JSON, committed next to this script (training/vision/quant/*.json);
  build      makes the int8 model from the fp32 one and that JSON, no data needed; the same
             bytes every run (the sha256 is in the int8 manifest and checked by quantize.sh).
  compare    prints how far the int8 outputs are from the fp32 ones on dumped inputs (a check
             on the tuning data; accuracy is measured by `proctor eval vision`).

Both steps run onnxruntime.quantization's own pre-processing (quant_pre_process: shape
inference and graph optimisation) and its quantize_static path; `build` feeds quantize_static
the committed ranges in place of a calibrator, so a build equals a calibration run on the same
ranges (checked: quantize_static calibrating on 8 FaceNet crops and `build` from their ranges
wrote the same bytes). Settings (the lead's measurement on this CPU, AVX512-VNNI): QDQ format, per-channel
S8 weights, U8 activations, onnxruntime 1.24.1 (the library the Go service loads).

    python quantize.py calibrate --model M.onnx --inputs DIR/identity.f32 --shape 3,160,160 \
        --method minmax|meanminmax|percentile|entropy [--percentile 99.999] \
        [--op-types Conv,Add,...] [--skip-op-types Pad] --out ranges.json
    python quantize.py build --model M.onnx --ranges ranges.json --out M-int8.onnx
    python quantize.py compare --model M.onnx --int8 M-int8.onnx --inputs DIR/x.f32 --shape 3,160,160
"""

import argparse
import importlib
import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
import onnx.numpy_helper
import onnxruntime as ort
from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
from onnxruntime.quantization.calibrate import TensorData, TensorsData, create_calibrator
from onnxruntime.quantization.quant_utils import load_model_with_shape_infer
from onnxruntime.quantization.registry import QDQRegistry, QLinearOpsRegistry
from onnxruntime.quantization.shape_inference import quant_pre_process

# the module, not the function of the same name the package exports
ort_quantize = importlib.import_module("onnxruntime.quantization.quantize")

METHODS = {"minmax": CalibrationMethod.MinMax, "meanminmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile,
           "entropy": CalibrationMethod.Entropy}
CHUNK = 4  # tensors per calibration run: bounds the memory of intermediate outputs


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


def fold_fp16_weights(model, out):
    """Replaces float16 initializers that feed only Cast(to float) with float32 initializers.

    NanoDet's ONNX keeps its weights in float16 behind Cast nodes (its TF.js source is float16);
    the quantiser quantises a Conv's weight per channel only when it is an initializer, so the
    casts are folded first (float16 -> float32 is exact)."""
    m = onnx.load(model)
    g = m.graph
    inits = {i.name: i for i in g.initializer}
    users = {}
    for n in g.node:
        for x in n.input:
            users.setdefault(x, []).append(n)
    drop = []
    for n in g.node:
        to = next((a.i for a in n.attribute if a.name == "to"), None)
        if n.op_type != "Cast" or to != onnx.TensorProto.FLOAT or n.input[0] not in inits:
            continue
        src = inits[n.input[0]]
        if src.data_type != onnx.TensorProto.FLOAT16 or len(users[n.input[0]]) != 1:
            continue
        w = onnx.numpy_helper.to_array(src).astype(np.float32)
        g.initializer.append(onnx.numpy_helper.from_array(w, n.output[0]))
        g.initializer.remove(src)
        drop.append(n)
    for n in drop:
        g.node.remove(n)
    onnx.save(m, out)
    return len(drop)


def preprocess(model, tmp):
    """float16 weights folded, then onnxruntime's recommended pre-processing; deterministic for a
    given model and onnxruntime."""
    folded = os.path.join(tmp, "folded.onnx")
    fold_fp16_weights(model, folded)
    out = os.path.join(tmp, "pre.onnx")
    quant_pre_process(folded, out, skip_symbolic_shape=True)
    return out


def load_inputs(path, shape, limit=0):
    per = int(np.prod(shape))
    data = np.memmap(path, dtype="<f4", mode="r")
    if data.size % per:
        sys.exit(f"quantize: {path} holds {data.size} floats, not a multiple of {shape}")
    data = data.reshape((-1, *shape))
    return data[:limit] if limit else data


def input_name(model):
    return onnx.load(model, load_external_data=False).graph.input[0].name


def op_types(only=None, skip=None):
    # quantize_static's default: every op type it knows how to quantise (sorted: it is a set there)
    known = sorted(set(QLinearOpsRegistry.keys()) | set(QDQRegistry.keys()))
    return [t for t in known if (not only or t in only) and t not in (skip or [])]


def calibrate(a):
    shape = [int(x) for x in a.shape.split(",")]
    # several dumps (comma-separated) calibrate together, in the order given
    parts = [load_inputs(p, shape) for p in a.inputs.split(",")]
    xs = np.concatenate(parts) if len(parts) > 1 else parts[0]
    xs = xs[:a.limit] if a.limit else xs
    extra = {"percentile": a.percentile} if a.method == "percentile" else {}
    with tempfile.TemporaryDirectory(prefix="quant.") as tmp:
        pre = preprocess(a.model, tmp)
        name = input_name(pre)
        cal = create_calibrator(pre, op_types(a.op_types, a.skip_op_types), augmented_model_path=os.path.join(tmp, "aug.onnx"),
                                calibrate_method=METHODS[a.method], extra_options=extra)
        # meanminmax: each input's own min and max, averaged over the inputs (a few images with
        # extreme activations then widen a range by their share, not to their extreme)
        chunk = 1 if a.method == "meanminmax" else CHUNK
        per_input = []
        for i in range(0, len(xs), chunk):
            batch = [{name: np.array(x[None], dtype=np.float32)} for x in xs[i:i + chunk]]
            it = iter(batch)

            class Reader:
                def get_next(self):
                    return next(it, None)

            cal.collect_data(Reader())
            if a.method == "meanminmax":
                per_input.append({k: [float(np.asarray(v, np.float32).reshape(-1)[0]) for v in t.range_value]
                                  for k, t in cal.compute_data().data.items()})
                cal.calibrate_tensors_range = None
            print(f"\rcalibrate: {min(i + chunk, len(xs))}/{len(xs)}", end="", file=sys.stderr, flush=True)
        print(file=sys.stderr)
        if a.method == "meanminmax":
            found = {k: [np.float32(np.mean([r[k][0] for r in per_input])), np.float32(np.mean([r[k][1] for r in per_input]))]
                     for k in per_input[0]}
        else:
            found = {k: t.range_value for k, t in cal.compute_data().data.items()}
    ranges = {}
    for k in sorted(found):
        lo, hi = found[k]
        ranges[k] = [float(np.asarray(lo, np.float32).reshape(-1)[0]), float(np.asarray(hi, np.float32).reshape(-1)[0])]
        if not all(np.isfinite(ranges[k])):
            # e.g. NanoDet's MaxPool input, padded with -inf: leave that op type in float
            sys.exit(f"quantize: tensor {k} has range {ranges[k]}: skip the op type that reads it (--skip-op-types)")
    doc = {
        "model_sha256": sha256(a.model),
        "onnxruntime": ort.__version__,
        "method": a.method,
        "percentile": a.percentile if a.method == "percentile" else None,
        "calibration": {"inputs": ",".join(os.path.basename(p) for p in a.inputs.split(",")), "tensors": len(xs),
                        "shape": shape, "photos": a.photos},
        "op_types": op_types(a.op_types, a.skip_op_types),
        "quantization": {"format": "QDQ", "per_channel": True, "activations": "QUInt8", "weights": "QInt8"},
        "ranges": ranges,
    }
    if a.exclude_nodes:
        doc["nodes_to_exclude"] = a.exclude_nodes
    with open(a.out, "w") as f:
        json.dump(doc, f, indent=1, sort_keys=True)
        f.write("\n")
    print(f"calibrate: {len(ranges)} tensor ranges from {len(xs)} inputs ({a.method}) -> {a.out}")


class FixedRanges:
    """Stands in for onnxruntime's calibrator: the ranges come from the committed JSON."""

    def __init__(self, td):
        self.td = td

    def collect_data(self, _reader):
        pass

    def compute_data(self):
        return self.td


def build(a):
    with open(a.ranges) as f:
        doc = json.load(f)
    if doc["onnxruntime"] != ort.__version__:
        # The quantiser's output, not its kernels, matters here: 1.24.1 and 1.25.1 build the same
        # bytes from the same ranges, and quantize.sh checks the manifest's sha256.
        print(f"quantize: ranges made with onnxruntime {doc['onnxruntime']}, building with {ort.__version__}", file=sys.stderr)
    got = sha256(a.model)
    if got != doc["model_sha256"]:
        sys.exit(f"quantize: {a.model} has sha256 {got}, the ranges were calibrated on {doc['model_sha256']}")
    td = TensorsData(CalibrationMethod.MinMax, {
        k: TensorData(lowest=np.array(v[0], dtype=np.float32), highest=np.array(v[1], dtype=np.float32))
        for k, v in doc["ranges"].items()})

    class EmptyReader:
        def get_next(self):
            return None

    with tempfile.TemporaryDirectory(prefix="quant.") as tmp:
        pre = preprocess(a.model, tmp)
        # Same tensors as at calibration: same pre-processed graph, same op types.
        ops = doc["op_types"]
        names = _calibrated_tensors(pre, ops)
        missing = names - set(td.data)
        if missing:
            sys.exit(f"quantize: the ranges miss {len(missing)} tensors of this graph, e.g. {sorted(missing)[:3]}")
        saved = ort_quantize.create_calibrator
        ort_quantize.create_calibrator = lambda *args, **kw: FixedRanges(td)
        try:
            quantize_static(pre, a.out, EmptyReader(), quant_format=QuantFormat.QDQ, op_types_to_quantize=ops,
                            per_channel=True, reduce_range=False, nodes_to_exclude=doc.get("nodes_to_exclude") or None,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
        finally:
            ort_quantize.create_calibrator = saved
    print(f"build: {a.out} sha256 {sha256(a.out)}")


def _calibrated_tensors(pre, ops):
    """The tensors a calibrator would measure (its augmented outputs) for this graph."""
    with tempfile.TemporaryDirectory(prefix="quant.") as tmp:
        cal = create_calibrator(pre, ops, augmented_model_path=os.path.join(tmp, "aug.onnx"),
                                calibrate_method=CalibrationMethod.MinMax)
        tensors, _ = cal.select_tensors_to_calibrate(load_model_with_shape_infer(Path(pre)))
        return set(tensors)


def session(path, level):
    o = ort.SessionOptions()
    o.intra_op_num_threads = 1
    o.inter_op_num_threads = 1
    o.graph_optimization_level = level
    return ort.InferenceSession(path, o, providers=["CPUExecutionProvider"])


def persons(outs, names, score=0.4, iou=0.5):
    """NanoDet person boxes (class 0) as models/objectdetector.go decodes them: GFL sides, hard NMS."""
    boxes = []
    for i, n in enumerate(names):
        if not n.startswith("cls_"):
            continue
        st = int(n[4:])
        cls, reg = outs[i][0], outs[names.index("reg_" + n[4:])][0]
        grid = int(round(np.sqrt(cls.shape[0])))
        for c in np.nonzero(cls[:, 0] >= score)[0]:
            r = reg[c].reshape(4, -1).astype(np.float64)
            e = np.exp(r - r.max(1, keepdims=True))
            d = (e * np.arange(r.shape[1])).sum(1) / e.sum(1) * st
            cx, cy = (c % grid + 0.5) * st, (c // grid + 0.5) * st
            boxes.append((float(cls[c, 0]), cx - d[0], cy - d[1], cx + d[2], cy + d[3]))
    boxes.sort(key=lambda b: -b[0])
    kept = []
    for b in boxes:
        if all(_iou(b, k) <= iou for k in kept):
            kept.append(b)
    return kept


def _iou(a, b):
    w = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    h = max(0.0, min(a[4], b[4]) - max(a[2], b[2]))
    u = (a[3] - a[1]) * (a[4] - a[2]) + (b[3] - b[1]) * (b[4] - b[2]) - w * h
    return w * h / u if u > 0 else 0.0


def compare(a):
    import time

    shape = [int(x) for x in a.shape.split(",")]
    xs = load_inputs(a.inputs, shape, a.limit)
    s32 = session(a.model, ort.GraphOptimizationLevel.ORT_ENABLE_BASIC if a.fp32_basic
                  else ort.GraphOptimizationLevel.ORT_ENABLE_ALL)
    s8 = session(a.int8, ort.GraphOptimizationLevel.ORT_ENABLE_ALL)
    name = s32.get_inputs()[0].name
    outs = [o.name for o in s32.get_outputs()]
    cls = [i for i, o in enumerate(outs) if o.startswith("cls_")]  # NanoDet: class scores per level
    over32, over8, dmax = 0, 0, []
    n32, n8, same, fewer, more = 0, 0, 0, 0, 0
    two32, two8, twoboth = 0, 0, 0
    found, kept = 0, 0  # fp32 person boxes int8 finds (IoU >= 0.5), int8 boxes fp32 has
    cos, diff, t32, t8 = [], [], 0.0, 0.0
    for x in xs:
        feed = {name: np.array(x[None], dtype=np.float32)}
        c = time.process_time()
        o32 = s32.run(None, feed)
        t32 += time.process_time() - c
        c = time.process_time()
        o8 = s8.run(None, feed)
        t8 += time.process_time() - c
        for u, v in zip(o32, o8):
            u, v = u.ravel().astype(np.float64), v.ravel().astype(np.float64)
            diff.append(np.abs(u - v).max())
        if cls:
            # person (class 0) cells at or above the service's 0.4: what the persons count is made of
            over32 += sum(int((o32[i][0, :, 0] >= 0.4).sum()) for i in cls)
            over8 += sum(int((o8[i][0, :, 0] >= 0.4).sum()) for i in cls)
            dmax.append(abs(max(o32[i][0, :, 0].max() for i in cls) - max(o8[i][0, :, 0].max() for i in cls)))
            # person boxes per input, as the service counts them
            b32, b8 = persons(o32, outs), persons(o8, outs)
            found += sum(any(_iou(b, c) >= 0.5 for c in b8) for b in b32)
            kept += sum(any(_iou(b, c) >= 0.5 for c in b32) for b in b8)
            p32, p8 = len(b32), len(b8)
            n32, n8 = n32 + p32, n8 + p8
            same, fewer, more = same + (p32 == p8), fewer + (p8 < p32), more + (p8 > p32)
            # "more than one person", what EXTRA_PERSON acts on
            two32, two8, twoboth = two32 + (p32 >= 2), two8 + (p8 >= 2), twoboth + (p32 >= 2 and p8 >= 2)
        u, v = o32[0].ravel().astype(np.float64), o8[0].ravel().astype(np.float64)
        cos.append(float(u @ v / (np.linalg.norm(u) * np.linalg.norm(v) + 1e-12)))
    cos = np.array(cos)
    n = len(xs)
    print(f"compare: {n} inputs; first output cosine fp32 vs int8 mean {cos.mean():.4f} p5 {np.percentile(cos, 5):.4f} "
          f"min {cos.min():.4f}; max |diff| over outputs median {np.median(diff):.4f}; "
          f"CPU ms per run fp32 {t32 / n * 1000:.1f}, int8 {t8 / n * 1000:.1f}")
    if cls:
        print(f"compare: person cells >= 0.4: fp32 {over32}, int8 {over8}; |max person score fp32 - int8| "
              f"mean {np.mean(dmax):.3f} max {np.max(dmax):.3f}")
        print(f"compare: person boxes fp32 {n32}, int8 {n8}; inputs with the same count {same}/{n}, "
              f"int8 fewer {fewer}, more {more}; two or more people: fp32 {two32}, int8 {two8}, both {twoboth}")
        print(f"compare: fp32 person boxes int8 finds {found}/{n32} ({found / max(n32, 1):.3f}), "
              f"int8 boxes fp32 has {kept}/{n8} ({kept / max(n8, 1):.3f})")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("calibrate")
    c.add_argument("--model", required=True)
    c.add_argument("--inputs", required=True)
    c.add_argument("--shape", required=True)
    c.add_argument("--method", choices=sorted(METHODS), default="minmax")
    c.add_argument("--percentile", type=float, default=99.999)
    c.add_argument("--limit", type=int, default=0)
    c.add_argument("--op-types", type=lambda v: v.split(","), default=None,
                   help="quantise only these op types (comma-separated); default: every type onnxruntime can")
    c.add_argument("--skip-op-types", type=lambda v: v.split(","), default=None,
                   help="leave these op types in float (NanoDet: Pad; quantised, its output collapses)")
    c.add_argument("--exclude-nodes", type=lambda v: v.split(","), default=None,
                   help="leave these nodes (names in the model) in float, recorded in the JSON for build")
    c.add_argument("--photos", default="", help="what the inputs are, recorded in the JSON")
    c.add_argument("--out", required=True)
    b = sub.add_parser("build")
    b.add_argument("--model", required=True)
    b.add_argument("--ranges", required=True)
    b.add_argument("--out", required=True)
    k = sub.add_parser("compare")
    k.add_argument("--model", required=True)
    k.add_argument("--int8", required=True)
    k.add_argument("--inputs", required=True)
    k.add_argument("--shape", required=True)
    k.add_argument("--limit", type=int, default=0)
    k.add_argument("--fp32-basic", action="store_true", help="fp32 with basic graph optimisation (facenet's manifest)")
    a = p.parse_args()
    {"calibrate": calibrate, "build": build, "compare": compare}[a.cmd](a)


if __name__ == "__main__":
    main()
