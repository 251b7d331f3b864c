package models

import (
	"fmt"
	"image"
	"testing"

	"gocv.io/x/gocv"
)

// loadInstalled loads a cache model or skips the test when setup has not built it.
func loadInstalled(t *testing.T, name string) *Manifest {
	t.Helper()
	requireCache(t)
	m, err := Load(name)
	if err != nil {
		t.Skipf("%s not installed (%v): run scripts/setup.sh to run this test", name, err)
	}
	return m
}

// The int8 NanoDet (training/vision/quantize.sh) must see the people the float model sees on
// the demo photos: every box either model scores clearly above the threshold (by 0.05) has a
// box of the other at IoU >= 0.7 and a score within 0.1. Near the threshold the two may differ
// (sample3: int8 adds a 0.41 box between two women); docs/vision.md measures what that costs.
func TestNanoDetInt8MatchesFloat(t *testing.T) {
	f32 := newTestObjects(t)
	q, err := NewObjectDetector(loadInstalled(t, "nanodet-coco-int8"), ObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	matched := 0
	for n := 1; n <= 6; n++ {
		img := readDemo(t, n, gocv.IMReadColor)
		a, err := f32.Detect(nil, img, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		b, err := q.Detect(nil, img, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if countClass(b, "person") < 2 {
			t.Errorf("sample%d (a group): %d persons in int8 (%+v)", n, countClass(b, "person"), b)
		}
		check := func(from, to []ObjectBox, what string) {
			th := f32.Scores()
			for _, x := range from {
				if x.Score < th[x.Class]+0.05 {
					continue
				}
				var best ObjectBox
				iou := float32(0)
				for _, y := range to {
					if y.Class == x.Class && boxIoU(x, y) > iou {
						best, iou = y, boxIoU(x, y)
					}
				}
				if iou < 0.7 || best.Score < x.Score-0.1 || best.Score > x.Score+0.1 {
					t.Errorf("sample%d: %s box %+v: best match %+v at IoU %.2f", n, what, x, best, iou)
				}
				matched++
			}
		}
		check(a, b, "float")
		check(b, a, "int8")
	}
	if matched < 12 {
		t.Errorf("only %d boxes clear of the threshold on the demo photos", matched)
	}
}

func countClass(boxes []ObjectBox, class string) int {
	n := 0
	for _, b := range boxes {
		if b.Class == class {
			n++
		}
	}
	return n
}

// The int8 FaceNet must embed a face as the float model does (cosine of the two embeddings),
// and keep different people apart: the demo faces, each cropped around its detector box.
func TestFaceNetInt8MatchesFloat(t *testing.T) {
	mq := loadInstalled(t, "facenet-keras-int8")
	ef, eq := openEmbedder(t, loadInstalled(t, "facenet-keras")), openEmbedder(t, mq)
	var floats, ints [][]float32
	for _, crop := range demoFaceCrops(t, mq.Input.Width) {
		a, b := make([]float32, ef.Dim()), make([]float32, eq.Dim())
		if err := ef.Embed(crop.Mat, a); err != nil {
			t.Fatal(err)
		}
		if err := eq.Embed(crop.Mat, b); err != nil {
			t.Fatal(err)
		}
		if c := Cosine(a, b); c < 0.98 {
			t.Errorf("%s: float and int8 embeddings at cosine %.3f, want >= 0.98", crop.name, c)
		}
		floats, ints = append(floats, a), append(ints, b)
	}
	if len(floats) < 10 {
		t.Fatalf("only %d demo faces embedded", len(floats))
	}
	// Pairs of different faces: int8 similarity within 0.05 of the float one (the threshold 0.61
	// is shared by both manifests).
	for i := range floats {
		for j := i + 1; j < len(floats); j++ {
			df, dq := Cosine(floats[i], floats[j]), Cosine(ints[i], ints[j])
			if d := df - dq; d > 0.05 || d < -0.05 {
				t.Errorf("faces %d,%d: similarity %.3f float, %.3f int8", i, j, df, dq)
			}
		}
	}
}

// faceCrop is a demo face resized to a model's input side; closed by the test's cleanup.
type faceCrop struct {
	gocv.Mat
	name string
}

// demoFaceCrops crops every face the detector finds on the demo photos around its box, resized
// to side×side.
func demoFaceCrops(t *testing.T, side int) []faceCrop {
	t.Helper()
	det := newTestDetector(t, DetectorOptions{})
	var crops []faceCrop
	for n := 1; n <= 6; n++ {
		img := readDemo(t, n, gocv.IMReadColor)
		faces, _, err := det.Detect(nil, img, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range faces {
			r := image.Rect(int(f.X), int(f.Y), int(f.X+f.W), int(f.Y+f.H)).Intersect(image.Rect(0, 0, img.Cols(), img.Rows()))
			if r.Dx() < 20 || r.Dy() < 20 {
				continue
			}
			region := img.Region(r)
			crop := gocv.NewMat()
			t.Cleanup(func() { crop.Close() })
			gocv.Resize(region, &crop, image.Pt(side, side), 0, 0, gocv.InterpolationArea)
			region.Close()
			crops = append(crops, faceCrop{crop, fmt.Sprintf("sample%d face %+v", n, f)})
		}
	}
	return crops
}

// openEmbedder opens a face embedder closed by the test's cleanup.
func openEmbedder(t *testing.T, m *Manifest) *FaceEmbedder {
	t.Helper()
	e, err := NewFaceEmbedder(m, SessionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}
