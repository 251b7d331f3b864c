#!/usr/bin/env python3
"""Reference for analyzers/voice_mel.go: Resemblyzer's front end (resemblyzer/audio.py
wav_to_mel_spectrogram = librosa.feature.melspectrogram(sr=16000, n_fft=400, hop_length=160,
n_mels=40), power 2, no log) written with numpy from librosa's formulas (filters.mel with
htk=False, norm="slaney"; a periodic Hann window; |rfft|²), because librosa and its numba
dependency are not in the retrain venv. Frames are not centred: frame f covers samples
[160 f, 160 f + 400), as in the streaming Go code. Uses librosa.filters.mel instead when librosa
is importable (and says so).

Usage: mel_reference.py IN.f32 OUT.f32   (raw little-endian float32 samples in, [frames, 40] out)"""
import sys

import numpy as np

SR, NFFT, HOP, NMELS = 16000, 400, 160, 40


def hz_to_mel(f):
    f = np.asarray(f, dtype=np.float64)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0
    return np.where(f >= min_log_hz, min_log_mel + np.log(np.maximum(f, 1e-10) / min_log_hz) / logstep, f / f_sp)


def mel_to_hz(m):
    m = np.asarray(m, dtype=np.float64)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)


def mel_filters():
    try:
        import librosa
        print("mel_reference: librosa", librosa.__version__, file=sys.stderr)
        return librosa.filters.mel(sr=SR, n_fft=NFFT, n_mels=NMELS).astype(np.float64)
    except ImportError:
        pass
    fftfreqs = np.linspace(0, SR / 2, 1 + NFFT // 2)
    mel_f = mel_to_hz(np.linspace(hz_to_mel(0.0), hz_to_mel(SR / 2), NMELS + 2))
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fftfreqs[None, :]
    w = np.zeros((NMELS, 1 + NFFT // 2))
    for i in range(NMELS):
        lower = -ramps[i] / fdiff[i]
        upper = ramps[i + 2] / fdiff[i + 1]
        w[i] = np.maximum(0, np.minimum(lower, upper))
    enorm = 2.0 / (mel_f[2:NMELS + 2] - mel_f[:NMELS])
    return w * enorm[:, None]


def mel(x):
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(NFFT) / NFFT)  # scipy hann, fftbins=True
    n = 1 + (len(x) - NFFT) // HOP if len(x) >= NFFT else 0
    frames = np.stack([x[f * HOP:f * HOP + NFFT] for f in range(n)]).astype(np.float64) * window
    power = np.abs(np.fft.rfft(frames, n=NFFT, axis=1)) ** 2
    return (power @ mel_filters().T).astype(np.float32)


if __name__ == "__main__":
    x = np.fromfile(sys.argv[1], dtype="<f4")
    mel(x).astype("<f4").tofile(sys.argv[2])
