package composite

import (
	"errors"
	"image"
	"image/color"
	"math"

	"gocv.io/x/gocv"
)

// Pan renders a camera turning inside a cylindrical 360° panorama made of photos joined side by
// side: a w×h pinhole view with a horizontal field of view of fovDeg, at yawAt(t) degrees, one
// frame every 1/fps s for seconds, with motion blur over a 1/30 s exposure at the current turn
// rate. emit gets each frame (valid during the call only). The room-scan tests use it: the
// evidence phone turning in a room, as an uploaded video or as live frames.
func Pan(photos []gocv.Mat, w, h int, fovDeg, fps, seconds float64, yawAt func(sec float64) float64, emit func(frame gocv.Mat) error) error {
	if len(photos) < 2 || w < 16 || h < 16 || fovDeg <= 0 || fovDeg >= 170 || fps <= 0 {
		return errors.New("composite.Pan: need two photos or more, a frame of 16 px or more, 0 < fovDeg < 170 and fps > 0")
	}
	focal := float64(w) / 2 / math.Tan(fovDeg*math.Pi/360)
	width := int(math.Round(2 * math.Pi * focal))
	height := int(2*focal*math.Tan(30*math.Pi/180)) + 1
	strip := gocv.NewMat()
	defer strip.Close()
	for _, p := range photos {
		if p.Empty() {
			return errors.New("composite.Pan: empty photo")
		}
		r := gocv.NewMat()
		gocv.Resize(p, &r, image.Pt(p.Cols()*height/p.Rows(), height), 0, 0, gocv.InterpolationArea)
		if strip.Empty() {
			r.CopyTo(&strip)
		} else {
			gocv.Hconcat(strip, r, &strip)
		}
		r.Close()
	}
	pano, padded := gocv.NewMat(), gocv.NewMat()
	defer pano.Close()
	defer padded.Close()
	gocv.Resize(strip, &pano, image.Pt(width, height), 0, 0, gocv.InterpolationArea)
	gocv.CopyMakeBorder(pano, &padded, 0, 0, w, w, gocv.BorderWrap, color.RGBA{})

	// The view's rays in panorama coordinates at yaw 0; a turn adds to x.
	baseX := gocv.NewMatWithSize(h, w, gocv.MatTypeCV32F)
	baseY := gocv.NewMatWithSize(h, w, gocv.MatTypeCV32F)
	defer baseX.Close()
	defer baseY.Close()
	mx, _ := baseX.DataPtrFloat32()
	my, _ := baseY.DataPtrFloat32()
	for y := range h {
		for x := range w {
			X, Y := float64(x)-float64(w)/2, float64(y)-float64(h)/2
			mx[y*w+x] = float32(float64(w) + focal*math.Atan2(X, focal))
			my[y*w+x] = float32(float64(height)/2 + focal*Y/math.Hypot(X, focal))
		}
	}
	frame := gocv.NewMat()
	defer frame.Close()
	prev := yawAt(0)
	for i := range int(seconds * fps) {
		turned := yawAt(float64(i) / fps)
		yaw := math.Mod(turned, 360)
		if yaw < 0 {
			yaw += 360
		}
		x, y := baseX.Clone(), baseY.Clone()
		x.AddFloat(float32(yaw * math.Pi / 180 * focal))
		gocv.Remap(padded, &frame, &x, &y, gocv.InterpolationLinear, gocv.BorderReplicate, color.RGBA{})
		x.Close()
		y.Close()
		if blur := int(math.Abs(turned-prev) * fps / 30 * math.Pi / 180 * focal); blur >= 2 {
			k := gocv.NewMatWithSizeFromScalar(gocv.NewScalar(1/float64(blur), 0, 0, 0), 1, blur, gocv.MatTypeCV32F)
			gocv.Filter2D(frame, &frame, -1, k, image.Pt(-1, -1), 0, gocv.BorderReplicate)
			k.Close()
		}
		prev = turned
		if err := emit(frame); err != nil {
			return err
		}
	}
	return nil
}

// Turn is a yaw track for Pan: still for before s, turning by degrees at a steady rate over
// turnSec s, then still.
func Turn(before, turnSec, degrees float64) func(float64) float64 {
	return func(s float64) float64 {
		switch {
		case s < before:
			return 0
		case s < before+turnSec:
			return degrees * (s - before) / turnSec
		}
		return degrees
	}
}
