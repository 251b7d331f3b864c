package models

import (
	"math"
	"testing"

	"gocv.io/x/gocv"
)

func TestArcFaceTemplate(t *testing.T) {
	if got := ArcFaceTemplate(AlignedSize, 1, 0); got.Points != arcFaceTemplate || got.Side != AlignedSize {
		t.Errorf("ArcFaceTemplate(112, 1, 0) = %v, want the ArcFace template", got)
	}
	// 160 px, zoom 1.25, shift -0.05: the eye distance grows by 160/112 × 1.25 and the face
	// centre moves up by 8 px.
	tp := ArcFaceTemplate(160, 1.25, -0.05)
	eyes := tp.Points[PointRightEye][0] - tp.Points[PointLeftEye][0]
	want := (arcFaceTemplate[PointRightEye][0] - arcFaceTemplate[PointLeftEye][0]) * 160 / 112 * 1.25
	if math.Abs(eyes-want) > 1e-9 {
		t.Errorf("eye distance %.3f, want %.3f", eyes, want)
	}
	noseY := (arcFaceTemplate[PointNose][1]-56)*160/112*1.25 + 80 - 8
	if math.Abs(tp.Points[PointNose][1]-noseY) > 1e-9 {
		t.Errorf("nose y %.3f, want %.3f", tp.Points[PointNose][1], noseY)
	}
}

func TestAlignerToTemplate(t *testing.T) {
	img := gocv.NewMatWithSizeFromScalar(gocv.NewScalar(90, 120, 150, 0), 480, 640, gocv.MatTypeCV8UC3)
	defer img.Close()
	a := NewAlignerTo(ArcFaceTemplate(160, 1.15, -0.03))
	defer a.Close()
	dst := gocv.NewMat()
	defer dst.Close()
	pts := [5][2]float32{{300, 200}, {360, 202}, {330, 240}, {305, 270}, {355, 271}}
	if err := a.Align(img, pts, &dst); err != nil {
		t.Fatal(err)
	}
	if dst.Rows() != 160 || dst.Cols() != 160 || a.Side() != 160 {
		t.Fatalf("crop %dx%d, want 160x160", dst.Cols(), dst.Rows())
	}
	if v := dst.GetVecbAt(80, 80); v[0] != 90 || v[2] != 150 {
		t.Errorf("crop centre %v, want the image colour", v)
	}
}

func TestMirrorRows(t *testing.T) {
	x := []float32{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18}
	mirrorRows(x, 3) // two 3×3 planes
	want := []float32{3, 2, 1, 6, 5, 4, 9, 8, 7, 12, 11, 10, 15, 14, 13, 18, 17, 16}
	for i := range x {
		if x[i] != want[i] {
			t.Fatalf("mirrorRows = %v, want %v", x, want)
		}
	}
}
