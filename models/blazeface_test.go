package models

import (
	"fmt"
	"image"
	"testing"

	"gocv.io/x/gocv"
)

func newTestBlazeFace(t testing.TB, name string) *BlazeFace {
	t.Helper()
	requireCache(t)
	m, err := Load(name)
	if err != nil {
		t.Skipf("%s not installed (%v): run scripts/setup.sh to run this test", name, err)
	}
	b, err := NewBlazeFace(m, SessionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// The full-range (back) model finds every face of the demo photos (counted by eye, demoFaces)
// at its manifest threshold; the short-range (front) model, made for one face close to a phone,
// finds at least one on each. Both see nothing on a plain frame.
func TestBlazeFaceDemoSamples(t *testing.T) {
	for _, name := range []string{"blazeface-back-256", "blazeface-front-128"} {
		b := newTestBlazeFace(t, name)
		score := b.Manifest().Thresholds.Score
		for n := 1; n <= 6; n++ {
			t.Run(fmt.Sprintf("%s/sample%d", name, n), func(t *testing.T) {
				img := readDemo(t, n, gocv.IMReadColor)
				got, top, err := b.Detect(nil, img, score)
				if err != nil {
					t.Fatal(err)
				}
				if name == "blazeface-back-256" && len(got) != demoFaces[n] {
					t.Errorf("%d faces %v, want %d", len(got), got, demoFaces[n])
				}
				if len(got) == 0 || top != got[0].Score {
					t.Errorf("got %v, top score %.3f: want at least one face, best first", got, top)
				}
				W, H := float32(img.Cols()), float32(img.Rows())
				for _, f := range got {
					// Faces in these photos are 8-25% of the width: a box outside that is a
					// decoding error (anchors, scale), not a detector miss.
					if f.X < 0 || f.Y < 0 || f.X+f.W > W || f.Y+f.H > H || f.W < 0.05*W || f.W > 0.3*W {
						t.Errorf("implausible box %v in a %.0fx%.0f photo", f, W, H)
					}
				}
			})
		}
		grey := gocv.NewMatWithSizeFromScalar(gocv.NewScalar(127, 127, 127, 0), 480, 640, gocv.MatTypeCV8UC3)
		if got, _, err := b.Detect(nil, grey, score); err != nil || len(got) != 0 {
			t.Errorf("%s on a grey frame: %v, %v", name, got, err)
		}
		grey.Close()
		if _, _, err := b.Detect(nil, gocv.NewMat(), score); err != ErrBadImage {
			t.Errorf("%s on an empty image: %v, want ErrBadImage", name, err)
		}
	}
}

// The demo photo's faces are found in the same place whether the photo is passed whole or as
// a region of a larger frame (the verifier runs on regions of the decoded frame).
func TestBlazeFaceRegion(t *testing.T) {
	b := newTestBlazeFace(t, "blazeface-back-256")
	img := readDemo(t, 1, gocv.IMReadColor)
	whole, _, err := b.Detect(nil, img, 0.5)
	if err != nil || len(whole) == 0 {
		t.Fatalf("whole photo: %v, %v", whole, err)
	}
	big := gocv.NewMatWithSizeFromScalar(gocv.NewScalar(0, 0, 0, 0), img.Rows()+200, img.Cols()+300, gocv.MatTypeCV8UC3)
	defer big.Close()
	dst := big.Region(image.Rect(100, 50, 100+img.Cols(), 50+img.Rows()))
	img.CopyTo(&dst)
	dst.Close()
	region := big.Region(image.Rect(100, 50, 100+img.Cols(), 50+img.Rows()))
	defer region.Close()
	inRegion, _, err := b.Detect(nil, region, 0.5)
	if err != nil || len(inRegion) != len(whole) {
		t.Fatalf("region: %v, %v; whole: %v", inRegion, err, whole)
	}
	for i := range whole {
		if iou(whole[i], inRegion[i]) < 0.9 {
			t.Errorf("face %d: whole %v, region %v", i, whole[i], inRegion[i])
		}
	}
}

// BenchmarkBlazeFace: one detection on a 640x480 demo frame, one thread (the verifier's and the
// agreement pass's cost per frame they run on).
func BenchmarkBlazeFace(b *testing.B) {
	for _, name := range []string{"blazeface-back-256", "blazeface-front-128"} {
		b.Run(name, func(b *testing.B) {
			d := newTestBlazeFace(b, name)
			full := readDemo(b, 1, gocv.IMReadColor)
			img := gocv.NewMat()
			defer img.Close()
			gocv.Resize(full, &img, image.Pt(640, 480), 0, 0, gocv.InterpolationArea)
			var dst []FaceBox
			b.ResetTimer()
			for range b.N {
				dst, _, _ = d.Detect(dst[:0], img, 0.5)
			}
		})
	}
}
