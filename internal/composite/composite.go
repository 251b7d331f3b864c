// Package composite builds synthetic camera frames from real photos, for the tests that
// measure the detectors on scenes the dev data has no photos of (worker's evidence-camera
// composites) and for the calibration tensors of the int8 person detector (internal/eval).
package composite

import (
	"image"
	"image/color"
	"math/rand/v2"

	"gocv.io/x/gocv"
)

// Cover resizes src to cover w×h (cropping the excess, top kept: faces are high).
func Cover(src gocv.Mat, w, h int) gocv.Mat {
	s := max(float64(w)/float64(src.Cols()), float64(h)/float64(src.Rows()))
	big := gocv.NewMat()
	gocv.Resize(src, &big, image.Pt(int(float64(src.Cols())*s)+1, int(float64(src.Rows())*s)+1), 0, 0, gocv.InterpolationArea)
	x := (big.Cols() - w) / 2
	r := big.Region(image.Rect(x, 0, x+w, h))
	out := r.Clone()
	r.Close()
	big.Close()
	return out
}

// Screen draws the evidence camera's view (1280×720): person on the left, the laptop on the right
// showing video (the same person's other photo).
func Screen(rng *rand.Rand, person, video gocv.Mat) gocv.Mat {
	const W, H = 1280, 720
	frame := gocv.NewMatWithSizeFromScalar(gocv.NewScalar(float64(150+rng.IntN(60)), float64(150+rng.IntN(60)), float64(150+rng.IntN(60)), 0), H, W, gocv.MatTypeCV8UC3)
	// Desk.
	gocv.Rectangle(&frame, image.Rect(0, H*3/5+rng.IntN(60), W, H), color.RGBA{uint8(60 + rng.IntN(60)), uint8(80 + rng.IntN(40)), uint8(100 + rng.IntN(50)), 0}, -1)
	// The candidate (a real photo) on the left.
	pw := 480 + rng.IntN(160)
	p := Cover(person, pw, H)
	dst := frame.Region(image.Rect(0, 0, pw, H))
	p.CopyTo(&dst)
	dst.Close()
	p.Close()
	// The laptop screen: bezel, page, top bar, text lines, and the live-video box.
	const sw, sh = 480, 300
	screen := gocv.NewMatWithSizeFromScalar(gocv.NewScalar(25, 25, 25, 0), sh+24, sw+24, gocv.MatTypeCV8UC3)
	page := screen.Region(image.Rect(12, 12, 12+sw, 12+sh))
	page.SetTo(gocv.NewScalar(float64(225+rng.IntN(25)), float64(225+rng.IntN(25)), float64(225+rng.IntN(25)), 0))
	gocv.Rectangle(&page, image.Rect(0, 0, sw, 22), color.RGBA{60, 70, 90, 0}, -1)
	for i := range 6 {
		gocv.Rectangle(&page, image.Rect(16, 40+i*22, 16+80+rng.IntN(120), 48+i*22), color.RGBA{90, 90, 90, 0}, -1)
	}
	vw, vh := 230, 172
	v := Cover(video, vw, vh)
	vbox := page.Region(image.Rect(sw-vw-14, 34, sw-14, 34+vh))
	v.CopyTo(&vbox)
	vbox.Close()
	v.Close()
	page.Close()
	// Seen from 45° behind: one side shorter, on the desk right of the candidate.
	width := float32(W) * (0.28 + 0.12*rng.Float32())
	x0 := float32(pw) + float32(rng.IntN(max(1, W-pw-int(width)-10)))
	y0 := float32(H)*0.2 + float32(rng.IntN(120))
	height := width * float32(sh+24) / float32(sw+24) * (0.85 + 0.1*rng.Float32())
	k := 0.08 + 0.12*rng.Float32() // foreshortening of the far side
	src := gocv.NewPointVectorFromPoints([]image.Point{{0, 0}, {sw + 24, 0}, {sw + 24, sh + 24}, {0, sh + 24}})
	dstQ := gocv.NewPointVectorFromPoints([]image.Point{
		{int(x0), int(y0)}, {int(x0 + width), int(y0 + height*k)},
		{int(x0 + width), int(y0 + height*(1-k))}, {int(x0), int(y0 + height)}})
	m := gocv.GetPerspectiveTransform(src, dstQ)
	src.Close()
	warped, mask := gocv.NewMat(), gocv.NewMat()
	gocv.WarpPerspective(screen, &warped, m, image.Pt(W, H))
	white := gocv.NewMatWithSizeFromScalar(gocv.NewScalar(255, 255, 255, 0), sh+24, sw+24, gocv.MatTypeCV8U)
	gocv.WarpPerspective(white, &mask, m, image.Pt(W, H))
	warped.CopyToWithMask(&frame, mask)
	for _, x := range []*gocv.Mat{&m, &warped, &mask, &white, &screen} {
		x.Close()
	}
	dstQ.Close()
	return frame
}

// Room draws a room of small and distant people (1280×720): each photo in people pasted at a
// height of 80–340 px somewhere on a wall above a floor, as a group photo or an evidence
// camera's view of the room shows them. The caller closes the result.
func Room(rng *rand.Rand, people []gocv.Mat) gocv.Mat {
	const W, H = 1280, 720
	frame := gocv.NewMatWithSizeFromScalar(gocv.NewScalar(float64(90+rng.IntN(140)), float64(90+rng.IntN(140)), float64(90+rng.IntN(140)), 0), H, W, gocv.MatTypeCV8UC3)
	gocv.Rectangle(&frame, image.Rect(0, H/2+rng.IntN(H/3), W, H), color.RGBA{uint8(40 + rng.IntN(80)), uint8(50 + rng.IntN(70)), uint8(60 + rng.IntN(70)), 0}, -1)
	for _, p := range people {
		h := 80 + rng.IntN(261)
		w := max(p.Cols()*h/p.Rows(), 8)
		if w > W/2 {
			w, h = W/2, p.Rows()*(W/2)/p.Cols()
		}
		small := gocv.NewMat()
		gocv.Resize(p, &small, image.Pt(w, h), 0, 0, gocv.InterpolationArea)
		x, y := rng.IntN(W-w+1), H/8+rng.IntN(max(1, H-H/8-h+1))
		y = min(y, H-h)
		dst := frame.Region(image.Rect(x, y, x+w, y+h))
		small.CopyTo(&dst)
		dst.Close()
		small.Close()
	}
	return frame
}
