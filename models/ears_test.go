package models

import (
	"math"
	"testing"

	"gocv.io/x/gocv"
)

// frontal68 is a symmetric frontal face: jaw from (100,100) to (200,100) curving to the chin at
// (150,200), eyes at y 90.
func frontal68() Landmarks68 {
	var l Landmarks68
	for i := range 17 {
		a := math.Pi * float64(i) / 16 // 0 → π along the lower half circle
		l[i] = [2]float32{float32(150 - 50*math.Cos(a)), float32(100 + 100*math.Sin(a))}
	}
	for i := 36; i <= 41; i++ {
		l[i] = [2]float32{125, 90}
	}
	for i := 42; i <= 47; i++ {
		l[i] = [2]float32{175, 90}
	}
	return l
}

func TestEarRegionsFrontal(t *testing.T) {
	l := frontal68()
	r, err := EarRegions(&l)
	if err != nil {
		t.Fatal(err)
	}
	for side, reg := range r {
		c := reg.Corners()
		cx, cy := (c[0][0]+c[2][0])/2, (c[0][1]+c[2][1])/2
		// Outside the jaw on its own side, level with jaw point 1/15.
		if side == EarLeft && !(cx < l[1][0]) || side == EarRight && !(cx > l[15][0]) {
			t.Errorf("ear %d centre x %.1f not outside the jaw (%.1f / %.1f)", side, cx, l[1][0], l[15][0])
		}
		if math.Abs(float64(cy-l[1][1])) > 1 {
			t.Errorf("ear %d centre y %.1f, want level with jaw point 1 (%.1f)", side, cy, l[1][1])
		}
		// Crop u runs from the outside towards the face: the top-left corner is outermost.
		if side == EarLeft && !(c[0][0] < c[1][0]) || side == EarRight && !(c[0][0] > c[1][0]) {
			t.Errorf("ear %d not oriented outside-left: corners %v", side, c)
		}
		if reg.Outside(400, 400) != 0 {
			t.Errorf("ear %d outside share %.2f in a 400 px frame", side, reg.Outside(400, 400))
		}
	}
	// Mirror images of each other about the face's axis x = 150.
	l0, r0 := r[EarLeft].Corners(), r[EarRight].Corners()
	for k := range 4 {
		if math.Abs(float64(l0[k][0]+r0[k][0]-300)) > 0.01 || math.Abs(float64(l0[k][1]-r0[k][1])) > 0.01 {
			t.Fatalf("corner %d: left %v right %v are not mirrored", k, l0[k], r0[k])
		}
	}
	// A frame cut at x = 150 (the face's axis) holds the left ear and none of the right one.
	if o := r[EarLeft].Outside(150, 400); o != 0 {
		t.Errorf("left ear %.2f outside a frame cut at the face's axis", o)
	}
	if o := r[EarRight].Outside(150, 400); o != 1 {
		t.Errorf("right ear %.2f outside a frame cut at the face's axis, want 1", o)
	}
	var flat Landmarks68
	if _, err := EarRegions(&flat); err == nil {
		t.Error("degenerate points gave ear regions")
	}
}

func TestEarCropperSize(t *testing.T) {
	l := frontal68()
	r, _ := EarRegions(&l)
	img := gocv.NewMatWithSizeFromScalar(gocv.NewScalar(0, 0, 255, 0), 300, 300, gocv.MatTypeCV8UC3)
	defer img.Close()
	c := NewEarCropper()
	defer c.Close()
	dst := gocv.NewMat()
	defer dst.Close()
	if err := c.Crop(img, r[EarRight], &dst); err != nil {
		t.Fatal(err)
	}
	if dst.Cols() != EarCropW || dst.Rows() != EarCropH || dst.Type() != gocv.MatTypeCV8UC3 {
		t.Fatalf("crop %dx%d type %v", dst.Cols(), dst.Rows(), dst.Type())
	}
	if v := dst.GetVecbAt(EarCropH/2, EarCropW/2); v[2] != 255 {
		t.Errorf("crop centre %v, want the image's red", v)
	}
	if err := c.Crop(gocv.NewMat(), r[EarLeft], &dst); err == nil {
		t.Error("empty image cropped")
	}
	// The same region at twice the resolution (a crop-size study): twice the pixels each way,
	// the same picture in the middle.
	if err := c.CropScaled(img, r[EarRight], &dst, 2); err != nil {
		t.Fatal(err)
	}
	if dst.Cols() != 2*EarCropW || dst.Rows() != 2*EarCropH {
		t.Fatalf("crop at scale 2: %dx%d", dst.Cols(), dst.Rows())
	}
	if v := dst.GetVecbAt(EarCropH, EarCropW); v[2] != 255 {
		t.Errorf("crop centre at scale 2 %v, want the image's red", v)
	}
	if err := c.CropScaled(img, r[EarRight], &dst, 0); err == nil {
		t.Error("scale 0 accepted")
	}
}
