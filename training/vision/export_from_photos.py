#!/usr/bin/env python3
"""Writes an export directory (docs/data-loop.md, format version 1) from folders of labelled
photos, as `proctor export` would write it for reviewer-labelled MASK flags: frames/<item>.jpg,
crops/<item>.png (the service's 112x112 aligned crop of the main face: faces.py, the same steps as
the Go "landmarks" analyzer), manifest.jsonl with labels {"mask": true|false}, export.json.

For tests and for turning photos the data team collected outside the service into training data
(training/vision/finetune_attire.sh --export DIR). Runs in .cache/vision-venv (OpenCV):
  .cache/vision-venv/bin/python training/vision/export_from_photos.py --out .cache/retrain-test/export \\
      --with-mask ../shared/data/faces/mask/train/with_mask --without-mask ../shared/data/faces/mask/train/without_mask -n 20
Photos whose face is not found become items without a crop (as in a real export)."""
import argparse
import datetime
import hashlib
import json
import os
import shutil
import sys

import numpy as np
import cv2

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
import faces as F  # noqa: E402
from train_attire import as_frame, find_faces, images, ROOT  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="export directory to write (replaced)")
    ap.add_argument("--with-mask", action="append", default=[], help="folder of photos of masked faces (repeatable)")
    ap.add_argument("--without-mask", action="append", default=[], help="folder of photos of unmasked faces (repeatable)")
    ap.add_argument("-n", type=int, default=0, help="at most this many photos per label, chosen at random (0 = all)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--id", default="", help="export id (default exp_photos_<hash of the chosen files>)")
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    chosen = []
    for dirs, label in ((args.with_mask, True), (args.without_mask, False)):
        ps = [p for d in dirs for p in images(d)]
        if args.n and len(ps) > args.n:
            ps = [ps[i] for i in sorted(rng.choice(len(ps), args.n, replace=False))]
        chosen += [(p, label) for p in ps]
    if not chosen:
        sys.exit("export_from_photos: no photos: give --with-mask and/or --without-mask folders")
    key = hashlib.sha256("\n".join(f"{p}\t{m}" for p, m in chosen).encode()).hexdigest()[:12]
    eid = args.id or f"exp_photos_{key}"
    cache = os.path.join(ROOT, ".cache", "models")
    det = F.FaceDetector(os.path.join(cache, "ultraface-rfb-320.onnx"))
    ali = F.Aligner(os.path.join(cache, "faceplugin-landmarks68.onnx"))
    out = os.path.abspath(args.out)
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(os.path.join(out, "frames"))
    os.makedirs(os.path.join(out, "crops"))
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    lines, by_label, no_crop = [], {"mask": 0, "no_mask": 0}, 0
    for i, (p, mask) in enumerate(chosen, 1):
        iid = f"v{i:06d}"
        img = cv2.imread(p, cv2.IMREAD_COLOR)
        if img is None:
            continue
        img = as_frame(img)
        cv2.imwrite(os.path.join(out, "frames", iid + ".jpg"), img, [cv2.IMWRITE_JPEG_QUALITY, 92])
        item = {"id": iid, "kind": "vision", "session": "s_photos", "candidate": "c_" + hashlib.sha256(p.encode()).hexdigest()[:12],
                "exam": "photos", "camera": "main", "captured_at_ms": 0,
                "flag": {"id": i, "type": "MASK", "status": "confirmed" if mask else "dismissed", "model": "attire-cnn@1", "confidence": 0},
                "frame": f"frames/{iid}.jpg"}
        frame, boxes = find_faces(det, img, 4)
        if boxes:
            # The main face: the largest box (analyzers.MainFace picks by area too).
            b = max(boxes, key=lambda b: b[2] * b[3])
            c = ali.align(frame, b)
            if c is not None:
                cv2.imwrite(os.path.join(out, "crops", iid + ".png"), c)
                item["crop"] = f"crops/{iid}.png"
                # Box in the frame as written; on a padded canvas, shifted back and clipped.
                dx, dy = (frame.shape[1] - img.shape[1]) // 2, (frame.shape[0] - img.shape[0]) // 2
                x1, y1 = max(0, b[0] - dx), max(0, b[1] - dy)
                x2, y2 = min(img.shape[1], b[0] + b[2] - dx), min(img.shape[0], b[1] + b[3] - dy)
                item["face_box"] = [int(x1), int(y1), int(x2), int(y2)]
        if "crop" not in item:
            no_crop += 1
        item.update({"labels": {"mask": mask}, "label_source": "reviewer", "labelled_by": "r_photos",
                     "labelled_at": now, "why": "photo folder " + os.path.basename(os.path.dirname(p))})
        by_label["mask" if mask else "no_mask"] += 1
        lines.append(json.dumps(item, separators=(",", ":")))
    mj = os.path.join(out, "manifest.jsonl")
    with open(mj, "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(mj, "rb") as f:
        msha = hashlib.sha256(f.read()).hexdigest()
    info = {"format": "proctor-export", "format_version": 1, "id": eid, "created_at": now,
            "created_by": "training/vision/export_from_photos.py", "purpose": "labelled photo folders: " +
            ", ".join(os.path.relpath(d, ROOT) for d in args.with_mask + args.without_mask),
            "filters": {}, "counts": {"items": len(lines), "vision": len(lines), "audio": 0, "by_label": by_label},
            "active_models": {"attire-cnn": "attire-cnn@1"}, "manifest_sha256": msha, "pseudonyms": "sha256 of the photo path"}
    with open(os.path.join(out, "export.json"), "w") as f:
        json.dump(info, f, indent=1)
    print(f"export_from_photos: {out}: {len(lines)} items ({by_label['mask']} mask, {by_label['no_mask']} no mask), "
          f"{no_crop} without a crop (face not found), id {eid}")


if __name__ == "__main__":
    main()
