#!/usr/bin/env python3
"""Contact sheets for labelling occlusion by eye (issue #15): the service's aligned face crops
(go run ./training/vision/earcrops --face-crops) of faces not yet in occlusion-labels.tsv, 48 to a
sheet, each numbered; sheets.tsv maps sheet/number to photo, face and box for the manifest.

  go run ./training/vision/earcrops --root ../shared/data --out DIR --face-crops FOLDER...
  .cache/retrain-venv/bin/python training/vision/occlusion_sheets.py --crops DIR --out SHEETS [--prefix faces/identities-rmfd]"""
import argparse
import csv
import os
import sys

from PIL import Image, ImageDraw

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
from train_ears import iou  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--crops", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--labels", default=os.path.join(here, "occlusion-labels.tsv"))
    ap.add_argument("--prefix", default="")
    ap.add_argument("--per-sheet", type=int, default=48)
    ap.add_argument("--cols", type=int, default=8)
    a = ap.parse_args()
    done = {}
    with open(a.labels) as f:
        for r in csv.DictReader([l for l in f if not l.startswith("#")], delimiter="\t"):
            done.setdefault(r["photo"], []).append([float(v) for v in r["box"].split(",")])
    todo = []
    for r in csv.reader(open(os.path.join(a.crops, "faces.tsv")), delimiter="\t"):
        box = [float(v) for v in r[3:7]]
        if not r[1].startswith(a.prefix) or any(iou(box, b) >= 0.3 for b in done.get(r[1], [])):
            continue
        todo.append((r[0], r[1], r[2], box))
    os.makedirs(a.out, exist_ok=True)
    S = 112
    with open(os.path.join(a.out, "sheets.tsv"), "w") as idx:
        for s in range(0, len(todo), a.per_sheet):
            part = todo[s:s + a.per_sheet]
            rows = (len(part) + a.cols - 1) // a.cols
            sheet = Image.new("RGB", (a.cols * (S + 4), rows * (S + 16)), "white")
            d = ImageDraw.Draw(sheet)
            for k, (n, photo, face, box) in enumerate(part):
                x, y = (k % a.cols) * (S + 4), (k // a.cols) * (S + 16)
                sheet.paste(Image.open(os.path.join(a.crops, "crops", f"{n}_face.png")).convert("RGB"), (x, y + 14))
                d.text((x + 2, y + 1), str(k), fill="red")
                idx.write(f"{s // a.per_sheet}\t{k}\t{photo}\t{face}\t{','.join(str(round(v)) for v in box)}\n")
            sheet.save(os.path.join(a.out, f"sheet{s // a.per_sheet:02d}.png"))
    print(len(todo), "faces")


if __name__ == "__main__":
    main()
