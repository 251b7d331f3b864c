package analyzers

import (
	"fmt"
	"image"
	"image/color"
	"math"

	"gocv.io/x/gocv"
	"proctor/models"
)

// The tilted look (FacesConfig.NoTilted): on a frame every other pass found empty, the detector
// looks again at the frame turned TiltDegrees one way and the other, on a grey canvas large
// enough to hold it whole. A face counts only where both turns find one on the same spot. A
// head tilted against a hand, a face so close that forehead and chin leave the frame, a
// masked face cut at the edge: UltraFace's anchors are upright boxes, and a turned picture
// gives such a face a shape they cover. Either turn alone also finds faces in turned
// textures (tuning face-free crops, turns of 30° by the bare detector: 1 of 35 each way,
// never the same crop), so the two must agree.

// tiltedLook appends at most one face found by both turns, in the frame's pixels, with the
// lower of the two scores.
func (a *Faces) tiltedLook(dst []models.FaceBox, f *Frame) ([]models.FaceBox, error) {
	a.TiltedPasses++
	var found [2]models.FaceBox
	for i, deg := range [2]float64{a.tilt, -a.tilt} {
		b, ok, err := a.turnedPass(f, deg)
		if err != nil || !ok {
			return dst, err
		}
		found[i] = b
	}
	if faceIoU(found[0], found[1]) < agreeIoU {
		return dst, nil
	}
	best := found[0]
	if found[1].Score < best.Score {
		best.Score = found[1].Score
	}
	a.TiltedFound++
	return append(dst, best), nil
}

// turnedPass runs the passes (find) on the frame turned by deg degrees about its centre and
// returns its best face's box mapped back to the frame: the upright box around the turned
// box's corners, clipped to the frame.
func (a *Faces) turnedPass(f *Frame, deg float64) (models.FaceBox, bool, error) {
	cols, rows := f.Image.Cols(), f.Image.Rows()
	rad := deg * math.Pi / 180
	c, s := math.Abs(math.Cos(rad)), math.Abs(math.Sin(rad))
	cw, ch := int(float64(cols)*c+float64(rows)*s+0.5), int(float64(cols)*s+float64(rows)*c+0.5)
	m := gocv.GetRotationMatrix2D(image.Pt(cols/2, rows/2), deg, 1)
	defer m.Close()
	if m.Empty() {
		return models.FaceBox{}, false, fmt.Errorf("tilted look: rotation matrix for %g°", deg)
	}
	// Shift so the turned frame sits in the middle of a canvas that holds it whole.
	dx, dy := float64(cw-cols)/2, float64(ch-rows)/2
	m.SetDoubleAt(0, 2, m.GetDoubleAt(0, 2)+dx)
	m.SetDoubleAt(1, 2, m.GetDoubleAt(1, 2)+dy)
	gocv.WarpAffineWithParams(f.Image, &a.tilted, m, image.Pt(cw, ch), gocv.InterpolationLinear,
		gocv.BorderConstant, color.RGBA{127, 127, 127, 0})
	if a.tilted.Empty() || a.tilted.Cols() != cw || a.tilted.Rows() != ch {
		return models.FaceBox{}, false, fmt.Errorf("tilted look: turning by %g° failed", deg)
	}
	var err error
	if a.turned, _, err = a.find(a.turned[:0], &Frame{Image: a.tilted, Width: cw, Height: ch}, nil); err != nil || len(a.turned) == 0 {
		return models.FaceBox{}, false, err
	}
	b := a.turned[0] // best first
	// Back to the frame: undo the shift and the turn (the matrix's inverse is its transpose on
	// the rotation part), in the decoded image's pixels, then scale to the original frame.
	sx, sy := float64(f.Width)/float64(cols), float64(f.Height)/float64(rows)
	cx, cy := float64(cols)/2, float64(rows)/2
	cos, sin := math.Cos(rad), math.Sin(rad)
	x1, y1, x2, y2 := math.Inf(1), math.Inf(1), math.Inf(-1), math.Inf(-1)
	for _, p := range [4][2]float32{{b.X, b.Y}, {b.X + b.W, b.Y}, {b.X, b.Y + b.H}, {b.X + b.W, b.Y + b.H}} {
		// OpenCV turns counter-clockwise for positive angles with y pointing down:
		// x' = cos·(x-cx) + sin·(y-cy) + cx, y' = -sin·(x-cx) + cos·(y-cy) + cy.
		u, v := float64(p[0])-dx-cx, float64(p[1])-dy-cy
		x, y := cos*u-sin*v+cx, sin*u+cos*v+cy
		x1, y1, x2, y2 = min(x1, x), min(y1, y), max(x2, x), max(y2, y)
	}
	x1, y1 = max(x1*sx, 0), max(y1*sy, 0)
	x2, y2 = min(x2*sx, float64(f.Width)), min(y2*sy, float64(f.Height))
	if x2-x1 < 1 || y2-y1 < 1 {
		return models.FaceBox{}, false, nil
	}
	return models.FaceBox{X: float32(x1), Y: float32(y1), W: float32(x2 - x1), H: float32(y2 - y1), Score: b.Score}, true, nil
}
