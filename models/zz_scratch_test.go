package models

import (
	"testing"

	"gocv.io/x/gocv"
)

func TestScratchPrint(t *testing.T) {
	d := newTestDetector(t, DetectorOptions{})
	for n := 1; n <= 6; n++ {
		img := readDemo(t, n, gocv.IMReadColor)
		f, top, _ := d.Detect(nil, img, img.Cols(), img.Rows())
		t.Logf("sample%d %dx%d top=%.3f %v", n, img.Cols(), img.Rows(), top, f)
	}
	img := readDemo(t, 1, gocv.IMReadReducedColor4)
	buf := make([]FaceBox, 0, 16)
	t.Log(testing.AllocsPerRun(20, func() { buf, _, _ = d.Detect(buf[:0], img, 1920, 1280) }))
}
