#!/usr/bin/env python3
"""Unit tests of the fast retraining (finetune_attire.py) and the export reader (exports.py) on
synthetic exports: no ../shared/data needed, a few seconds. Run in .cache/retrain-venv:
  training/vision/finetune_attire.sh --self-test [-v]
The end-to-end check that the Go service loads the result is `proctor eval vision --attire-model`
(docs/data-loop.md); test_version_dir_contract checks what models.FromBytes checks."""
import hashlib
import json
import os
import shutil
import sys
import tempfile
import unittest

import numpy as np
from PIL import Image

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
import exports as E  # noqa: E402
import finetune_attire as T  # noqa: E402


def write_export(d, items, eid="exp_test", files=None, bad_sha=False):
    """items: manifest.jsonl objects; files: {relative path: uint8 RGB array}."""
    os.makedirs(d, exist_ok=True)
    for rel, arr in (files or {}).items():
        os.makedirs(os.path.dirname(os.path.join(d, rel)), exist_ok=True)
        Image.fromarray(arr).save(os.path.join(d, rel))
    body = "".join(json.dumps(it) + "\n" for it in items)
    with open(os.path.join(d, "manifest.jsonl"), "w") as f:
        f.write(body)
    sha = hashlib.sha256(body.encode()).hexdigest()
    info = {"format": "proctor-export", "format_version": 1, "id": eid, "created_at": "2026-11-26T00:00:00Z",
            "created_by": "test", "purpose": "test", "filters": {}, "counts": {"items": len(items)},
            "active_models": {"attire-cnn": "attire-cnn@1"}, "manifest_sha256": "0" * 64 if bad_sha else sha, "pseudonyms": "test"}
    with open(os.path.join(d, "export.json"), "w") as f:
        json.dump(info, f)


def face(rng, mask):
    """A crude synthetic 'face' crop: skin-coloured oval, a light-blue lower half when masked."""
    yy, xx = np.mgrid[0:112, 0:112]
    img = np.full((112, 112, 3), 30, np.uint8)
    oval = ((xx - 56) / 40.0) ** 2 + ((yy - 60) / 52.0) ** 2 <= 1
    img[oval] = (rng.integers(150, 230), rng.integers(110, 180), rng.integers(80, 150))
    if mask:
        img[oval & (yy > 68)] = (170, 200, 230)
    noise = rng.normal(0, 8, img.shape)
    return np.clip(img + noise, 0, 255).astype(np.uint8)


def vision(iid, labels, crop=True):
    it = {"id": iid, "kind": "vision", "session": "s_1", "candidate": "c_1", "exam": "e", "camera": "main",
          "captured_at_ms": 0, "flag": {"id": 1, "type": "MASK", "status": "confirmed", "model": "attire-cnn@1", "confidence": 0.9},
          "frame": f"frames/{iid}.jpg", "labels": labels, "label_source": "reviewer"}
    if crop:
        it["crop"] = f"crops/{iid}.png"
    return it


class FinetuneTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        T.log = lambda *a: None  # the runs below would print their summaries
        cls.tmp = tempfile.mkdtemp(prefix="finetune-test-")
        rng = np.random.default_rng(1)
        # Export A: 12 usable items and one of each kind the reader must skip.
        items, files = [], {}
        for i in range(12):
            iid = f"v{i:06d}"
            items.append(vision(iid, {"mask": i % 3 != 0}))
            files[f"crops/{iid}.png"] = face(rng, i % 3 != 0)
        items.append(vision("v000100", {"mask": True}, crop=False))                 # no crop (no face found)
        items.append(vision("v000101", {"earphones": True}))                        # no mask/occluded label
        files["crops/v000101.png"] = face(rng, False)
        items.append(vision("v000102", {"mask": False}))                            # crop file missing
        items.append(vision("v000103", {"mask": False}))                            # wrong size
        files["crops/v000103.png"] = np.zeros((64, 64, 3), np.uint8)
        items.append({"id": "a000001", "kind": "audio", "audio": "audio/a000001.wav", "phrase": True})
        cls.a = os.path.join(cls.tmp, "exp_a")
        write_export(cls.a, items, "exp_a", files)
        # Export B: the first crop of A again (relabelled), and two items with an occluded label.
        b_files = {"crops/v000001.png": files["crops/v000000.png"],
                   "crops/v000002.png": face(rng, False), "crops/v000003.png": face(rng, False)}
        b_items = [vision("v000001", {"mask": True}), vision("v000002", {"occluded": True, "mask": False}),
                   vision("v000003", {"occluded": False})]
        cls.b = os.path.join(cls.tmp, "exp_b")
        write_export(cls.b, b_items, "exp_b", b_files, bad_sha=True)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_read_export_counts_skips(self):
        ex = E.read_export(self.a)
        self.assertEqual(ex.id, "exp_a")
        self.assertTrue(ex.manifest_sha256_ok)
        self.assertEqual(len(ex.items), 13)  # 12 + the wrong-size crop (load_crops rejects it)
        self.assertEqual(ex.skipped, {"no crop": 1, "no mask/occluded label": 1, "crop file missing": 1, "not vision": 1})
        self.assertFalse(E.read_export(self.b).manifest_sha256_ok)
        fr = E.read_export(self.a, "frame")  # frames were not written: every item is "frame file missing"
        self.assertEqual(len(fr.items), 0)

    def test_read_export_rejects_other_formats(self):
        d = os.path.join(self.tmp, "not_export")
        os.makedirs(d, exist_ok=True)
        with self.assertRaises(E.ExportError):
            E.read_export(d)
        write_export(d, [vision("v1", {"mask": True}) | {"crop": "../../etc/passwd"}], "x", {})
        with self.assertRaises(E.ExportError):
            E.read_export(d)

    def test_attire_sources_for_full_retraining(self):
        # train_attire.py --export: frames with a face box and a mask and/or occluded label.
        rng = np.random.default_rng(9)
        items = [vision("v1", {"mask": True}) | {"face_box": [10, 12, 90, 100]},
                 vision("v2", {"occluded": True}) | {"face_box": [0, 0, 50, 60]},
                 vision("v3", {"mask": False}, crop=False),      # no face found: no crop, no box
                 vision("v4", {"persons": 2}) | {"face_box": [1, 2, 3, 4]}]
        files = {f"frames/{i}.jpg": face(rng, False) for i in ("v1", "v2", "v3", "v4")}
        d = os.path.join(self.tmp, "exp_frames")
        write_export(d, items, "exp_frames", files)
        srcs, ex = E.attire_sources(d)
        self.assertEqual([(os.path.basename(p), m, o, g, b) for p, m, o, g, b in srcs],
                         [("v1.jpg", 1, None, "export:exp_frames", [10.0, 12.0, 90.0, 100.0]),
                          ("v2.jpg", None, 1, "export:exp_frames", [0.0, 0.0, 50.0, 60.0])])
        self.assertEqual(ex.skipped, {"no face box": 1, "no mask/occluded label": 1})

    def test_load_crops_dedupes_and_checks_size(self):
        exps = [E.read_export(self.a), E.read_export(self.b)]
        rows, dup = T.load_crops(exps)
        self.assertEqual(len(rows), 12 + 2)
        self.assertEqual(sum(dup.values()), 1)
        self.assertEqual(exps[0].skipped.get("crop not 112x112"), 1)
        # The later export's label wins for the duplicated crop (A said no mask).
        first = [r for r in rows if r["from"].startswith("exp_b/v000001")]
        self.assertEqual(len(first), 1)
        self.assertTrue(first[0]["labels"]["mask"])

    def test_head_of_builtin_model(self):
        import onnx
        proto = onnx.load(T.BUILTIN_ONNX)
        head = T.find_head(proto.graph, "scores")
        w, b = T.head_weights(proto.graph, head)
        self.assertEqual(w.shape[1], 2)
        self.assertEqual(b.shape, (2,))
        crops = np.stack([face(np.random.default_rng(i), i % 2 == 0) for i in range(4)])
        scores, feats = T.Runner(proto, head, "scores")(crops)
        np.testing.assert_allclose(T.sigmoid(feats @ w + b), scores, atol=1e-5)

    def test_gemm_head_round_trip(self):
        import onnx
        from onnx import helper, numpy_helper, TensorProto
        import onnxruntime as ort
        rng = np.random.default_rng(0)
        w = rng.normal(size=(3, 5)).astype(np.float32)  # transB: [K, F]
        c = rng.normal(size=(3,)).astype(np.float32)
        g = helper.make_graph(
            [helper.make_node("Relu", ["x"], ["f"]),
             helper.make_node("Gemm", ["f", "W", "C"], ["z"], transB=1, alpha=2.0, beta=0.5),
             helper.make_node("Sigmoid", ["z"], ["y"])],
            "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 5])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 3])],
            [numpy_helper.from_array(w, "W"), numpy_helper.from_array(c, "C")])
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 15)])
        head = T.find_head(m.graph, "y")
        self.assertEqual((head["kind"], head["feat"], head["transB"]), ("Gemm", "f", 1))
        w0, b0 = T.head_weights(m.graph, head)
        np.testing.assert_allclose(w0, 2 * w.T, rtol=1e-6)
        np.testing.assert_allclose(b0, 0.5 * c, rtol=1e-6)
        nw, nb = w0 + 1, b0 - 1
        T.set_head_weights(m.graph, head, nw, nb)
        x = np.abs(rng.normal(size=(4, 5))).astype(np.float32)
        y = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(["y"], {"x": x})[0]
        np.testing.assert_allclose(y, T.sigmoid(x @ nw + nb), atol=1e-5)

    def test_head_must_feed_a_sigmoid(self):
        from onnx import helper, TensorProto
        g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])])
        with self.assertRaises(T.Fail):
            T.find_head(g, "y")

    def test_fit_is_pulled_toward_the_base(self):
        rng = np.random.default_rng(2)
        x = np.abs(rng.normal(1, 0.7, (10, 96)))
        w0, b0 = rng.normal(0, 0.2, 96), 0.0
        y = (rng.random(10) < 0.5).astype(float)
        small = T.fit_logistic(x, y, w0, b0, 300)[0]
        loose = T.fit_logistic(x, y, w0, b0, 0.01)[0]
        huge = T.fit_logistic(x, y, w0, b0, 1e7)[0]
        d = lambda w: np.linalg.norm(w - w0) / np.linalg.norm(w0)  # noqa: E731
        self.assertLess(d(huge), 1e-3)
        self.assertLess(d(small), d(loose))
        self.assertLess(d(small), 0.5)
        # Nearly unpenalised, ten points in 96 dimensions are separated.
        p = T.sigmoid(x @ loose + T.fit_logistic(x, y, w0, b0, 0.01)[1])
        self.assertTrue(np.all((p >= 0.5) == (y > 0.5)))

    def test_threshold_rule(self):
        s = np.array([0.1, 0.2, 0.3, 0.7, 0.8, 0.9])
        # F1 is 1 for every threshold in (0.3, 0.7]: the highest is taken.
        self.assertEqual(T.best_threshold(s, s > 0.5), 0.7)
        self.assertEqual(T.best_threshold(np.array([0.95, 0.05]), np.array([True, False])), 0.9)

    def run_main(self, out, *extra):
        T.main(["--export", self.a, "--export", self.b, "--out", out, *extra])
        with open(os.path.join(out, "manifest.json")) as f:
            m = json.load(f)
        with open(os.path.join(out, "eval.json")) as f:
            ev = json.load(f)
        return m, ev

    def test_version_dir_contract(self):
        import onnxruntime as ort
        out = os.path.join(self.tmp, "v2")
        m, ev = self.run_main(out)
        with open(T.BUILTIN_MANIFEST) as f:
            base = json.load(f)
        self.assertEqual(sorted(os.listdir(out)), ["attire-cnn.onnx", "card.md", "eval.json", "manifest.json"])
        # What models.FromBytes checks: no unknown keys, same contract, sha256 of the file.
        self.assertLessEqual(set(m), set(base) | {"licence_note", "notes", "graph_optimization"})
        for k in ("name", "task", "input", "decode"):
            self.assertEqual(m[k], base[k], k)
        self.assertEqual(m["vision"]["labels"], base["vision"]["labels"])
        self.assertEqual(m["version"], str(int(base["version"]) + 1))
        self.assertEqual(m["file"], "attire-cnn.onnx")
        self.assertEqual(m["sha256"], E.sha256_file(os.path.join(out, "attire-cnn.onnx")))
        self.assertEqual(m["source"], {"registry": "registered", "package": "training/vision/finetune_attire.py",
                                       "package_sha256": m["sha256"], "member": "attire-cnn.onnx"})
        self.assertEqual(m["licence"], "Apache-2.0")
        self.assertIn("exp_a", m["notes"])
        self.assertIn(ev["exports"][0]["manifest_sha256"], m["notes"])
        # Few examples: thresholds kept; both labels had examples, so both heads moved a little.
        self.assertEqual(m["vision"]["scores"], base["vision"]["scores"])
        for lab in ("mask", "occluded"):
            self.assertGreater(ev["labels"][lab]["weight_change"], 0)
            self.assertLess(ev["labels"][lab]["weight_change"], 0.5)
        self.assertEqual(ev["items"], 14)
        self.assertFalse(ev["exports"][1]["manifest_sha256_ok"])
        self.assertEqual(ev["in_sample"]["mask"]["new"]["n"], 13)
        self.assertIsNone(ev["benchmark"])
        # The model runs and keeps the built-in's interface.
        s = ort.InferenceSession(os.path.join(out, "attire-cnn.onnx"), providers=["CPUExecutionProvider"])
        self.assertEqual([i.name for i in s.get_inputs()], ["crop"])
        y = s.run(["scores"], {"crop": np.zeros((1, 3, 112, 112), np.float32)})[0]
        self.assertEqual(y.shape, (1, 2))
        # A second run refuses to overwrite without --force, and --version sets the version.
        with self.assertRaises(SystemExit):
            self.run_main(out)
        m, _ = self.run_main(out, "--force", "--version", "7", "--base", out)
        self.assertEqual(m["version"], "7")
        self.assertIn("attire-cnn@2", m["notes"])  # the base named is the version directory's

    def test_enough_examples_rechoose_threshold(self):
        rng = np.random.default_rng(5)
        items, files = [], {}
        for i in range(70):
            iid = f"v{i:06d}"
            items.append(vision(iid, {"mask": i % 2 == 0}))
            files[f"crops/{iid}.png"] = face(rng, i % 2 == 0)
        d = os.path.join(self.tmp, "exp_many")
        write_export(d, items, "exp_many", files)
        out = os.path.join(self.tmp, "v_many")
        T.main(["--export", d, "--out", out])
        with open(os.path.join(out, "eval.json")) as f:
            ev = json.load(f)
        self.assertIn("chosen", ev["labels"]["mask"]["threshold"])
        self.assertIn("kept", ev["labels"]["occluded"].get("threshold", "kept"))
        self.assertIn("mask", ev["cross_validated"])
        self.assertTrue(0.1 <= ev["thresholds"]["new"]["mask"] <= 0.9)
        self.assertEqual(ev["thresholds"]["new"]["occluded"], ev["thresholds"]["base"]["occluded"])


if __name__ == "__main__":
    unittest.main()
