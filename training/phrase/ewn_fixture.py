"""Writes analyzers/testdata/ewn_fixture.json: what EfficientWord-Net's own Python feature code
(eff_word_net/audio_utils.py logfbank, read from the pinned wheel in .cache/pypi) and the int8
ONNX network compute for a deterministic 1.5 s test signal. analyzers.TestLogFbankMatchesPython
and TestEWNEmbeddingMatchesPython compare the Go port against it.

  .cache/phrase-venv/bin/python training/phrase/ewn_fixture.py
"""
import hashlib
import json
import os
import sys
import types
import zipfile

import numpy as np
import onnxruntime as ort

here = os.path.dirname(os.path.abspath(__file__))
root = os.path.abspath(os.path.join(here, "..", ".."))
cache = os.environ.get("PROCTOR_CACHE_DIR", os.path.join(root, ".cache"))
WHEEL = os.path.join(cache, "pypi", "efficientword_net-1.0.5-py3-none-any.whl")
WHEEL_SHA256 = "9094b1ac4f4d4ccb54069b15e87639e38f3c06443be383acccedc5c26055aa58"


def ewn_audio_utils():
    """The package's own audio_utils module, loaded from the wheel (its other imports need
    pyaudio; this module needs only numpy)."""
    data = open(WHEEL, "rb").read()
    if hashlib.sha256(data).hexdigest() != WHEEL_SHA256:
        sys.exit(f"{WHEEL}: sha256 mismatch (run training/phrase/fetch_ewn.sh)")
    src = zipfile.ZipFile(WHEEL).read("eff_word_net/audio_utils.py").decode()
    mod = types.ModuleType("eff_word_net_audio_utils")
    exec(compile(src, "eff_word_net/audio_utils.py", "exec"), mod.__dict__)
    return mod


def features(au, audio):
    # eff_word_net/audio_processing.py Resnet50_Arc_loss.compute_logfbank_features
    return au.logfbank(audio, samplerate=16000, winlen=0.025, winstep=0.01, nfilt=64, nfft=512, preemph=0.0)


def test_signal():
    """Same formula as analyzers/logfbank_test.go testSignal: a chirp, a hum, a burst of
    deterministic 'noise' and 0.2 s of digital silence at the end (the eps path)."""
    n = np.arange(24000, dtype=np.float64)
    t = n / 16000
    x = 0.3 * np.sin(2 * np.pi * (150 + 1500 * t) * t) + 0.05 * np.sin(2 * np.pi * 50 * t)
    x += 0.02 * np.sin(n * n * 0.001)
    x[n >= 20800] = 0
    return x.astype(np.float32)


def main():
    au = ewn_audio_utils()
    a = test_signal()
    f = features(au, a)
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(os.path.join(cache, "models", "ewn-resnet50-arc.onnx"), so, providers=["CPUExecutionProvider"])
    emb = sess.run(None, {"input": f[None, None].astype(np.float32)})[0][0]
    rows = list(range(0, len(f), 8)) + [len(f) - 1]
    out = {"note": "training/phrase/ewn_fixture.py: eff_word_net logfbank + ewn-resnet50-arc.onnx on testSignal()",
           "frames": len(f), "bins": f.shape[1], "rows": rows,
           "features": [[round(float(v), 5) for v in f[r]] for r in rows],
           "embedding": [round(float(v), 6) for v in emb]}
    path = os.path.join(root, "analyzers", "testdata", "ewn_fixture.json")
    with open(path, "w") as fh:
        json.dump(out, fh, separators=(",", ":"))
    print(f"wrote {path}: {len(rows)} feature rows, {len(emb)}-d embedding (norm {np.linalg.norm(emb):.4f})")


if __name__ == "__main__":
    main()
