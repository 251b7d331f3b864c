"""Reads the data team's exports (docs/data-loop.md, format version 1) for the attire trainers:
training/vision/finetune_attire.py (fast: the crops) and train_attire.py --export (full: the
frames). Standard library only, so both virtual environments can import it.

An export directory holds export.json, manifest.jsonl (one item per line) and the item files.
read_export() keeps the vision items that have the wanted file and at least one of the wanted
labels, and counts every item it skips, by reason."""
import collections
import hashlib
import json
import os

FORMAT = "proctor-export"
FORMAT_VERSION = 1
# The attire model's labels an export item may carry (labels.mask, labels.occluded: bool).
ATTIRE_LABELS = ("mask", "occluded")


class ExportError(Exception):
    pass


Export = collections.namedtuple("Export", "dir id info manifest_sha256 manifest_sha256_ok items skipped")
# path: the crop or frame file; labels: {label: bool}, only the wanted labels the item has;
# face_box: [x1, y1, x2, y2] of the labelled face in the frame, None when no face was found.
Item = collections.namedtuple("Item", "id path labels export_id flag_type label_source face_box")


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_export(d, file_key="crop", labels=ATTIRE_LABELS):
    """Reads export directory d. file_key is "crop" (crops/<item>.png, the attire model's input)
    or "frame" (frames/<item>.jpg). Raises ExportError when d is not a version-1 export."""
    d = os.path.abspath(d)
    ej = os.path.join(d, "export.json")
    mj = os.path.join(d, "manifest.jsonl")
    for p in (ej, mj):
        if not os.path.isfile(p):
            raise ExportError(f"{d}: {os.path.basename(p)} missing: not an export directory "
                              "(proctor export --out DIR, or unzip GET /v1/exports/{id}/archive)")
    try:
        with open(ej) as f:
            info = json.load(f)
    except ValueError as e:
        raise ExportError(f"{ej}: {e}")
    if info.get("format") != FORMAT or info.get("format_version") != FORMAT_VERSION:
        raise ExportError(f"{ej}: format {info.get('format')!r} version {info.get('format_version')!r}, "
                          f"want {FORMAT!r} version {FORMAT_VERSION}")
    got = sha256_file(mj)
    want = str(info.get("manifest_sha256", "")).lower()
    items, skipped = [], collections.Counter()
    with open(mj) as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                it = json.loads(line)
            except ValueError as e:
                raise ExportError(f"{mj}:{n}: {e}")
            if it.get("kind") != "vision":
                skipped["not vision"] += 1
                continue
            rel = it.get(file_key)
            if not rel:
                skipped[f"no {file_key}"] += 1
                continue
            # Item paths are relative to the export; never follow one out of it.
            path = os.path.normpath(os.path.join(d, rel))
            if not path.startswith(d + os.sep):
                raise ExportError(f"{mj}:{n}: {file_key} path {rel!r} leaves the export directory")
            if not os.path.isfile(path):
                skipped[f"{file_key} file missing"] += 1
                continue
            lab = {k: v for k, v in (it.get("labels") or {}).items() if k in labels and isinstance(v, bool)}
            if not lab:
                skipped["no " + "/".join(labels) + " label"] += 1
                continue
            flag = it.get("flag") or {}
            box = it.get("face_box")
            if not (isinstance(box, list) and len(box) == 4 and all(isinstance(v, (int, float)) for v in box)):
                box = None
            items.append(Item(str(it.get("id", n)), path, lab, info.get("id", os.path.basename(d)),
                              flag.get("type", ""), it.get("label_source", ""), box))
    return Export(d, info.get("id", os.path.basename(d)), info, want, want == got, items, dict(skipped))


def attire_sources(d):
    """The full retraining's view of export d (train_attire.py --export): one
    (frame path, mask 1/0/None, occluded 1/0/None, group, face box [x1,y1,x2,y2]) per vision item
    with a frame, a face box and a mask or occluded label; None where the label is unknown (that
    head does not learn from the item). Returns (sources, Export); skips are counted in
    Export.skipped."""
    ex = read_export(d, "frame")
    out = []
    for it in ex.items:
        if it.face_box is None:
            # No face was found in the frame (the export has no crop): nothing to say which face.
            ex.skipped["no face box"] = ex.skipped.get("no face box", 0) + 1
            continue
        m, o = it.labels.get("mask"), it.labels.get("occluded")
        out.append((it.path, None if m is None else int(m), None if o is None else int(o), "export:" + ex.id,
                    [float(v) for v in it.face_box]))
    return out, ex
