#!/usr/bin/env python3
"""int8 (static QDQ) openWakeWord speech embedding: the phrase spotter's cost is this network.

  calibrate  run the fp32 network over embedding inputs from the dev split's audio
             (.cache/phrase-data/dev, the voices that chose the thresholds; never the test
             split) and write every activation's min/max to RANGES (committed).
  build      rebuild the int8 model from the committed RANGES (no audio needed, so setup can run
             it): per-channel int8 weights, uint8 activations, QDQ format.

Usage:
  quantize_oww.py calibrate [--cache .cache] [--files 24] [--ranges training/phrase/oww-embedding-int8.ranges.json]
  quantize_oww.py build [--cache .cache] [--ranges ...] [--out .cache/models/oww-embedding-int8.onnx]
"""
import argparse
import glob
import json
import os
import sys
import tempfile
import wave

import numpy as np
import onnx
from onnxruntime.quantization import CalibrationDataReader, QuantType
from onnxruntime.quantization.calibrate import CalibrationMethod, TensorData, TensorsData, create_calibrator
from onnxruntime.quantization.qdq_quantizer import QDQQuantizer
from onnxruntime.quantization.shape_inference import quant_pre_process

sys.path.insert(0, os.path.dirname(__file__))
import features  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
RANGES = os.path.join(HERE, "oww-embedding-int8.ranges.json")


def read_wav(path):
    with wave.open(path) as w:
        assert w.getframerate() == 16000 and w.getsampwidth() == 2 and w.getnchannels() == 1, path
        return np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float32) / 32768


class Windows(CalibrationDataReader):
    """Embedding inputs (76 mel frames) of every 4th window of the first n dev files."""

    def __init__(self, cache, n):
        f = features.Features(cache)
        files = sorted(glob.glob(os.path.join(cache, "phrase-data", "dev", "*.wav")))[:n]
        if not files:
            sys.exit(f"no dev split under {cache}/phrase-data/dev: run training/phrase/train.sh (or ewn_data.py)")
        wins = []
        for p in files:
            m = f.mels(read_wav(p))
            for i in range(0, (len(m) - features.MEL_WINDOW) // features.MEL_STEP + 1, 4):
                s = i * features.MEL_STEP
                wins.append(m[s:s + features.MEL_WINDOW][None, :, :, None].astype(np.float32))
        print(f"calibration: {len(wins)} windows from {len(files)} dev files", file=sys.stderr)
        self.batches = [np.concatenate(wins[i:i + 256]) for i in range(0, len(wins), 256)]
        self.i = 0

    def get_next(self):
        if self.i >= len(self.batches):
            return None
        self.i += 1
        return {"input_1": self.batches[self.i - 1]}


def preprocessed(cache, tmp):
    out = os.path.join(tmp, "pre.onnx")
    quant_pre_process(os.path.join(cache, "models", "oww-embedding.onnx"), out)
    return out


def calibrate(a):
    with tempfile.TemporaryDirectory() as tmp:
        model = preprocessed(a.cache, tmp)
        cal = create_calibrator(model, [], augmented_model_path=os.path.join(tmp, "aug.onnx"),
                                calibrate_method=CalibrationMethod.MinMax)
        cal.collect_data(Windows(a.cache, a.files))
        rng = cal.compute_data()
    out = {k: [float(np.asarray(v.range_value[0]).ravel()[0]), float(np.asarray(v.range_value[1]).ravel()[0])] for k, v in sorted(rng.items())}
    with open(a.ranges, "w") as fh:
        json.dump({"method": "MinMax", "calibration": f"first {a.files} files of .cache/phrase-data/dev, every 4th window",
                   "ranges": out}, fh, indent=1, sort_keys=True)
        fh.write("\n")
    print(f"wrote {a.ranges} ({len(out)} tensors)")


def build(a):
    with open(a.ranges) as fh:
        ranges = json.load(fh)["ranges"]
    data = TensorsData(CalibrationMethod.MinMax,
                       {k: TensorData(lowest=np.float32(lo), highest=np.float32(hi)) for k, (lo, hi) in ranges.items()})
    with tempfile.TemporaryDirectory() as tmp:
        model = onnx.load(preprocessed(a.cache, tmp))
        q = QDQQuantizer(model, True, False, QuantType.QInt8, QuantType.QUInt8, data, [], [], ["Conv", "MaxPool"], {})
        q.quantize_model()
        q.model.save_model_to_file(a.out, False)
    print(f"wrote {a.out}")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("cmd", choices=["calibrate", "build"])
    p.add_argument("--cache", default=".cache")
    p.add_argument("--files", type=int, default=24)
    p.add_argument("--ranges", default=RANGES)
    p.add_argument("--out", default=os.path.join(".cache", "models", "oww-embedding-int8.onnx"))
    a = p.parse_args()
    (calibrate if a.cmd == "calibrate" else build)(a)


if __name__ == "__main__":
    main()
