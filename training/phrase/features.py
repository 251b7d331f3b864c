"""openWakeWord features exactly as the Go service computes them (analyzers/phrase.go).

16 kHz mono audio at int16 scale (not -1..1: the melspectrogram model was built for raw int16
values) -> melspectrogram ONNX (frame i covers samples [160 i, 160 i + 512), 32 bins) -> x/10 + 2
-> speech-embedding ONNX over 76-frame windows every 8 frames (one 96-d embedding per 80 ms)
-> the classifier looks at the last EMB_WINDOW embeddings (16 = 1.98 s of audio; train.py --window
sets another, which the head's manifest records as audio.window).
"""
import os

import numpy as np
import onnxruntime as ort

SR = 16000
HOP = 160
WIN = 512
MEL_WINDOW = 76
MEL_STEP = 8
EMB_WINDOW = 16  # the default; train.py --window replaces it before featurising
EMB_DIM = 96


def session(path):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


# The embedding networks a head can be trained on (models/manifests/NAME.json, file
# CACHE/models/NAME.onnx): the fp32 original and its int8 build (training/phrase/quantize_oww.sh).
EMBEDDINGS = ("oww-embedding", "oww-embedding-int8")


class Features:
    def __init__(self, cache, embedding="oww-embedding"):
        if embedding not in EMBEDDINGS:
            raise ValueError(f"embedding {embedding!r}: want one of {EMBEDDINGS}")
        self.mel = session(os.path.join(cache, "models", "oww-melspectrogram.onnx"))
        self.emb = session(os.path.join(cache, "models", embedding + ".onnx"))

    def mels(self, audio):
        """audio: float32 in -1..1. Returns [frames, 32]."""
        if len(audio) < WIN:
            return np.zeros((0, 32), np.float32)
        x = (np.clip(audio, -1, 1) * 32767.0).astype(np.float32)[None, :]
        m = self.mel.run(None, {"input": x})[0].reshape(-1, 32)
        return m / 10.0 + 2.0

    def embeddings(self, audio):
        """Returns (emb [n, 96], end_s [n]): end_s is when embedding i's audio ends."""
        m = self.mels(audio)
        n = 0 if len(m) < MEL_WINDOW else (len(m) - MEL_WINDOW) // MEL_STEP + 1
        if n == 0:
            return np.zeros((0, EMB_DIM), np.float32), np.zeros(0)
        idx = np.arange(n)[:, None] * MEL_STEP + np.arange(MEL_WINDOW)[None, :]
        wins = m[idx][..., None].astype(np.float32)
        out = []
        for i in range(0, n, 256):
            out.append(self.emb.run(None, {"input_1": wins[i:i + 256]})[0].reshape(-1, EMB_DIM))
        return np.concatenate(out), emb_end_seconds(np.arange(n))


def emb_end_seconds(i):
    """End (s) of the audio embedding i depends on: its last mel frame 8i+75 ends at
    (8i+75)*160+512 samples."""
    return ((np.asarray(i) * MEL_STEP + MEL_WINDOW - 1) * HOP + WIN) / SR


def windows(emb):
    """Stacks the classifier inputs: window j (j >= W-1, W = EMB_WINDOW) = embeddings j-W+1..j.
    Returns (X [n, W, 96], emb index of each window's last embedding)."""
    n = len(emb) - EMB_WINDOW + 1
    if n <= 0:
        return np.zeros((0, EMB_WINDOW, EMB_DIM), np.float32), np.zeros(0, int)
    idx = np.arange(n)[:, None] + np.arange(EMB_WINDOW)[None, :]
    return emb[idx], np.arange(n) + EMB_WINDOW - 1


def detect(scores, ends, threshold, hold=6, refractory_s=1.5, min_run=1):
    """Peak picking identical to analyzers/phrase.go: the first window that completes a run of
    min_run consecutive scores >= threshold opens a candidate; the best score within `hold`
    further steps is the detection (its window end is the phrase end); no new candidate opens
    within refractory_s after that end."""
    out = []
    j, n = 0, len(scores)
    blocked_until = -1.0
    run = 0
    while j < n:
        run = run + 1 if scores[j] >= threshold else 0
        if run >= min_run and ends[j] > blocked_until:
            best = j
            for k in range(j + 1, min(n, j + hold + 1)):
                if scores[k] > scores[best]:
                    best = k
            out.append((ends[best], float(scores[best])))
            blocked_until = ends[best] + refractory_s
            j = min(n, j + hold + 1)
            run = 0
            continue
        j += 1
    return out
