#!/usr/bin/env python3
"""Study (issue #15, not shipped): does a hand detector find the occluded faces that attire-cnn
misses? MediaPipe's palm detector and hand-landmark model (Apache-2.0, bundled in the `mediapipe`
wheel on PyPI) are converted to ONNX here; a face counts as covered by a hand when a palm found in
a square region around the face has hand landmarks inside the face box. Scores are printed for
the tuning people of training/vision/occlusion-labels.tsv (the split of eval_occlusion.py);
--held-back adds the held-back people.

  .cache/vision-venv/bin/python training/vision/hand_occlusion_study.py [--region 3] [--held-back]

Downloads the pinned wheel into .cache/mediapipe (a registry, at setup time; nothing at run time
of the service) and converts the two .tflite files with the venv's tf2onnx."""
import argparse
import csv
import hashlib
import os
import subprocess
import sys
import zipfile

import cv2
import numpy as np

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
from eval_occlusion import load_items  # noqa: E402
from train_ears import DATA, ROOT, iou  # noqa: E402
from train_occlusion import average_precision  # noqa: E402

WHEEL = "mediapipe-0.10.21-cp311-cp311-manylinux_2_28_x86_64.whl"
WHEEL_SHA256 = "05dc4a9e593655a79558d05d6227d31018c2537a4bd3362b51e230cf22aecfe3"
MODELS = {"palm": "mediapipe/modules/palm_detection/palm_detection_lite.tflite",
          "hand": "mediapipe/modules/hand_landmark/hand_landmark_lite.tflite"}


def fetch(cache):
    """The two models as ONNX, from the pinned wheel (checked by sha256)."""
    os.makedirs(cache, exist_ok=True)
    whl = os.path.join(cache, WHEEL)
    if not os.path.exists(whl):
        subprocess.run([sys.executable, "-m", "pip", "download", "mediapipe==0.10.21", "--no-deps",
                        "--only-binary=:all:", "--platform", "manylinux_2_28_x86_64", "--python-version", "3.11",
                        "-d", cache], check=True)
    if hashlib.sha256(open(whl, "rb").read()).hexdigest() != WHEEL_SHA256:
        sys.exit(f"{whl}: sha256 differs from the pinned one")
    out = {}
    for name, member in MODELS.items():
        onnx = os.path.join(cache, name + ".onnx")
        if not os.path.exists(onnx):
            tfl = os.path.join(cache, name + ".tflite")
            with zipfile.ZipFile(whl) as z, open(tfl, "wb") as f:
                f.write(z.read(member))
            subprocess.run([sys.executable, "-m", "tf2onnx.convert", "--tflite", tfl, "--output", onnx, "--opset", "13"],
                           check=True, capture_output=True)
        out[name] = onnx
    return out


def anchors():
    """The palm model's 2016 SSD anchor centres: stride 8 (2 per cell), stride 16 (6 per cell), 192 px."""
    a = []
    for stride, n in ((8, 2), (16, 6)):
        g = 192 // stride
        a += [((x + 0.5) / g, (y + 0.5) / g) for y in range(g) for x in range(g) for _ in range(n)]
    return np.array(a, np.float32)


ANCHORS = anchors()


def region(img, box, k):
    """A square k face sizes wide around the face box at 192 px (black beyond the photo); the
    face box in region units."""
    s = k * max(box[2], box[3])
    x0, y0 = box[0] + box[2] / 2 - s / 2, box[1] + box[3] / 2 - s / 2
    m = np.float32([[192 / s, 0, -x0 * 192 / s], [0, 192 / s, -y0 * 192 / s]])
    face = ((box[0] - x0) / s, (box[1] - y0) / s, box[2] / s, box[3] / s)
    return cv2.warpAffine(img, m, (192, 192)), face


def palms(sess, reg, thr=0.2, most=4):
    """Palms (score, box x,y,w,h, 7 keypoints) in region units, after non-maximum suppression."""
    raw, sc = sess.run(None, {"input_1": (reg.astype(np.float32) / 255)[None]})
    raw, sc = raw[0], 1 / (1 + np.exp(-np.clip(sc[0, :, 0], -80, 80)))
    out = []
    for i in np.argsort(-sc):
        if sc[i] < thr or len(out) == most:
            break
        cx, cy = raw[i, :2] / 192 + ANCHORS[i]
        w, h = raw[i, 2:4] / 192
        b = (cx - w / 2, cy - h / 2, w, h)
        if all(iou(b, o[1]) <= 0.3 for o in out):
            out.append((float(sc[i]), b, raw[i, 4:18].reshape(7, 2) / 192 + ANCHORS[i]))
    return out


def hand(sess, reg, palm):
    """MediaPipe's hand box from a palm (turned wrist → middle knuckle upright, moved half a palm
    towards the fingers, 2.6× the palm, square), then the landmark model: hand flag and the 21
    points in region units."""
    _, (x, y, w, h), kp = palm
    (ax, ay), (bx, by) = kp[0] * 192, kp[2] * 192
    rot = np.pi / 2 - np.arctan2(-(by - ay), bx - ax)
    cx, cy, w, h = (x + w / 2) * 192, (y + h / 2) * 192, w * 192, h * 192
    cx, cy = cx + 0.5 * h * np.sin(rot), cy - 0.5 * h * np.cos(rot)
    k, c, s = max(w, h) * 2.6 / 224, np.cos(rot), np.sin(rot)
    m = np.float32([[c * k, -s * k, cx - (c - s) * 112 * k], [s * k, c * k, cy - (s + c) * 112 * k]])
    crop = cv2.warpAffine(reg, m, (224, 224), flags=cv2.WARP_INVERSE_MAP | cv2.INTER_LINEAR)
    out = sess.run(None, {"input_1": (crop.astype(np.float32) / 255)[None]})
    pts = out[0][0].reshape(21, 3)[:, :2] @ m[:, :2].T + m[:, 2]
    return float(out[1][0, 0]), pts / 192


def best_f1(y, s):
    """Best F1 over thresholds, with its threshold, precision and recall."""
    best = (0.0, 0.0, 0.0, 0.0)
    for t in np.unique(s):
        p = s >= t
        tp = int((p & y).sum())
        pr, rc = tp / max(1, p.sum()), tp / max(1, y.sum())
        f = 2 * pr * rc / max(1e-9, pr + rc)
        if f > best[0]:
            best = (f, float(t), pr, rc)
    return best


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--region", type=float, default=3.0, help="region side in face sizes")
    ap.add_argument("--held-back", action="store_true")
    a = ap.parse_args()
    import onnxruntime as ort
    cache = os.path.join(os.environ.get("PROCTOR_CACHE_DIR", os.path.join(ROOT, ".cache")))
    paths = fetch(os.path.join(cache, "mediapipe"))
    palm_s, hand_s = (ort.InferenceSession(paths[n], providers=["CPUExecutionProvider"]) for n in ("palm", "hand"))
    _, items = load_items(os.path.join(here, "occlusion-labels.tsv"), os.path.join(cache, "occlusion-data"))
    faces = {int(r[0]): (r[1], [float(v) for v in r[3:7]])
             for r in csv.reader(open(os.path.join(cache, "occlusion-data", "faces.tsv")), delimiter="\t")}
    rows = []
    for crop, occluded, kind, held, _ in items:
        photo, box = faces[int(os.path.basename(crop).split("_")[0])]
        reg, (fx, fy, fw, fh) = region(cv2.cvtColor(cv2.imread(os.path.join(DATA, photo)), cv2.COLOR_BGR2RGB), box, a.region)
        score = 0.0
        for p in palms(palm_s, reg):
            flag, pts = hand(hand_s, reg, p)
            if any(fx <= x <= fx + fw and fy <= y <= fy + fh for x, y in pts):
                score = max(score, p[0] * flag)
        rows.append((occluded, kind, held, "rmfd" in photo, score))
    splits = [("tuning", lambda r: not r[2]), ("tuning, identities-rmfd", lambda r: not r[2] and r[3]),
              ("tuning, other photos", lambda r: not r[2] and not r[3])]
    if a.held_back:
        splits += [("held back", lambda r: r[2]), ("held back, other photos", lambda r: r[2] and not r[3])]
    tuned = None  # the tuning people's best threshold, applied to the held-back people
    for name, keep in splits:
        rs = [r for r in rows if keep(r)]
        y, s = np.array([r[0] for r in rs]), np.array([r[4] for r in rs])
        f, t, p, r = best_f1(y, s)
        tuned = t if tuned is None else tuned
        if name.startswith("held back"):
            tp, fp = int(((s >= tuned) & y).sum()), int(((s >= tuned) & ~y).sum())
            pr, rc = tp / max(1, tp + fp), tp / max(1, y.sum())
            print(f"{name}, at the tuning threshold {tuned:.3f}: P {pr:.3f} R {rc:.3f} F1 {2 * pr * rc / max(1e-9, pr + rc):.3f} "
                  f"({fp} clear faces flagged)")
        kinds = {}
        for row in rs:
            if row[0]:
                kinds.setdefault(row[1], [0, 0])[0] += int(row[4] >= 0.25)
                kinds[row[1]][1] += 1
        print(f"{name}: {len(rs)} faces, {int(y.sum())} occluded; AP {average_precision(y, s):.3f}; best F1 {f:.3f} "
              f"(threshold {t:.3f}, P {p:.3f} R {r:.3f}); at 0.25: clear faces flagged {int(((s >= 0.25) & ~y).sum())}, "
              + ", ".join(f"{k} {v[0]}/{v[1]}" for k, v in sorted(kinds.items())))


if __name__ == "__main__":
    main()
