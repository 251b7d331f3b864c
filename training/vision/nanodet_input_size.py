"""Writes NanoDet-m with another square input size (default 320) from models/trained/nanodet-coco.onnx.

NanoDet is fully convolutional and its upsampling uses scales, so only the input's declared size
changes; the weights and every node stay byte-identical (same output on re-run). Run with the
pinned venv of training/vision (onnx 1.17, onnxruntime 1.24.1):
    .cache/vision-venv/bin/python training/vision/nanodet_input_size.py [--size 320]

With a manifest (models/manifests/nanodet-coco.json with the name, file, sha256 and input size
changed) `proctor eval vision --persons-model nanodet-coco-320` compares it; docs/vision.md has the
result (faster, less accurate: not the default, not committed).
"""
import argparse
import hashlib
import pathlib

import numpy as np
import onnx
import onnxruntime as ort

root = pathlib.Path(__file__).resolve().parents[2]
ap = argparse.ArgumentParser()
ap.add_argument("--size", type=int, default=320)
args = ap.parse_args()
if args.size % 32:
    raise SystemExit("the size must be a multiple of 32 (the largest stride)")
src = root / "models/trained/nanodet-coco.onnx"
dst = root / f"models/trained/nanodet-coco-{args.size}.onnx"
m = onnx.load(str(src))
dims = m.graph.input[0].type.tensor_type.shape.dim
dims[2].dim_value = args.size
dims[3].dim_value = args.size
del m.graph.value_info[:]  # shapes inferred for 416
for out in m.graph.output:  # cells per level: (size/stride)^2
    level = int(out.name.split("_")[1])
    out.type.tensor_type.shape.dim[1].dim_value = (args.size // level) ** 2
onnx.checker.check_model(m)
dst.write_bytes(m.SerializeToString())
s = ort.InferenceSession(str(dst))
outs = s.run(None, {"input": np.zeros((1, 3, args.size, args.size), np.float32)})
print(dst.relative_to(root), "sha256", hashlib.sha256(dst.read_bytes()).hexdigest(),
      "outputs", {o.name: x.shape for o, x in zip(s.get_outputs(), outs)})
