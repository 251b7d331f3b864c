package models

import (
	"errors"
	"image"
	"testing"

	"gocv.io/x/gocv"
)

func TestVisionManifests(t *testing.T) {
	for _, name := range []string{"nanodet-coco", "attire-cnn"} {
		m, err := Lookup(name)
		if err != nil {
			t.Fatal(err)
		}
		// Project models are compiled into the binary: their checksum is checked without setup.
		if err := m.verifyEmbedded(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	bad := Manifest{Name: "x", Version: "1", File: "trained/x.onnx", SHA256: "00",
		Decode: Decode{Family: FamilyNanoDet}, Input: Input{Name: "in", Width: 416, Height: 416, Layout: "NCHW", Colour: "BGR", Resize: "stretch"},
		Vision: &VisionSpec{Strides: []int{8}, RegMax: 10, NumClasses: 80, Classes: map[string]int{"person": 90}}}
	if err := bad.validate(); !errors.Is(err, ErrBadManifest) {
		t.Errorf("bad nanodet manifest accepted: %v", err)
	}
	noScores := Manifest{Name: "y", Version: "1", File: "trained/y.onnx", SHA256: "00",
		Decode: Decode{Family: FamilyFaceAttributes, Outputs: []string{"scores"}},
		Input:  Input{Name: "crop", Width: AlignedSize, Height: AlignedSize, Layout: "NCHW", Colour: "BGR", Resize: "align"},
		Vision: &VisionSpec{Labels: []string{"mask"}}}
	if err := noScores.validate(); !errors.Is(err, ErrBadManifest) {
		t.Errorf("face-attributes manifest without thresholds accepted: %v", err)
	}
}

func newTestObjects(t testing.TB) *ObjectDetector {
	t.Helper()
	requireCache(t)
	m, err := Load("nanodet-coco")
	if err != nil {
		t.Fatal(err)
	}
	d, err := NewObjectDetector(m, ObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// The demo photos (npm @vladmandic/face-api) show groups and single people: the detector must
// find several people in the group photo and none in a blank frame, and refuse bad input.
func TestObjectDetector(t *testing.T) {
	d := newTestObjects(t)
	img := readDemo(t, 1, gocv.IMReadColor) // a group of people
	boxes, err := d.Detect(nil, img, img.Cols(), img.Rows())
	if err != nil {
		t.Fatal(err)
	}
	persons := 0
	for _, b := range boxes {
		if b.Class == "person" {
			persons++
		}
		if b.X < 0 || b.Y < 0 || b.X+b.W > float32(img.Cols())+0.5 || b.Y+b.H > float32(img.Rows())+0.5 {
			t.Errorf("box %+v outside the %dx%d frame", b, img.Cols(), img.Rows())
		}
	}
	if persons < 2 {
		t.Errorf("group photo: %d persons, want >= 2 (%+v)", persons, boxes)
	}
	blank := gocv.NewMatWithSizeFromScalar(gocv.NewScalar(200, 200, 200, 0), 480, 640, gocv.MatTypeCV8UC3)
	defer blank.Close()
	if boxes, err = d.Detect(boxes[:0], blank, 0, 0); err != nil || len(boxes) != 0 {
		t.Errorf("blank frame: %v %v", boxes, err)
	}
	empty := gocv.NewMat()
	defer empty.Close()
	if _, err := d.Detect(nil, empty, 0, 0); !errors.Is(err, ErrBadImage) {
		t.Errorf("empty image: %v, want ErrBadImage", err)
	}
}

func TestAttributeClassifierInput(t *testing.T) {
	requireCache(t)
	m, err := Load("attire-cnn")
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewAttributeClassifier(m, SessionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	out := make([]float32, len(c.Labels()))
	wrong := gocv.NewMatWithSize(64, 64, gocv.MatTypeCV8UC3)
	defer wrong.Close()
	if err := c.Classify(wrong, out); err == nil {
		t.Error("a 64x64 crop was accepted")
	}
	crop := gocv.NewMatWithSizeFromScalar(gocv.NewScalar(90, 120, 160, 0), AlignedSize, AlignedSize, gocv.MatTypeCV8UC3)
	defer crop.Close()
	if err := c.Classify(crop, out); err != nil {
		t.Fatal(err)
	}
	for i, s := range out {
		if !(s >= 0 && s <= 1) {
			t.Errorf("%s score %v outside [0,1]", c.Labels()[i], s)
		}
	}
}

func BenchmarkObjectDetector(b *testing.B) {
	d := newTestObjects(b)
	img := readDemo(b, 1, gocv.IMReadColor)
	small := gocv.NewMat()
	defer small.Close()
	gocv.Resize(img, &small, image.Pt(640, 427), 0, 0, gocv.InterpolationArea)
	var boxes []ObjectBox
	b.ResetTimer()
	for range b.N {
		var err error
		if boxes, err = d.Detect(boxes[:0], small, 640, 427); err != nil {
			b.Fatal(err)
		}
	}
}
