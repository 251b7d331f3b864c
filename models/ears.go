package models

import (
	"errors"
	"image"
	"image/color"
	"math"

	"gocv.io/x/gocv"
)

// FamilyEarAttributes is a classifier of one ear region (EarCropper's crop) → [N,len(Labels)]
// independent sigmoid scores (e.g. covered, not_in_view, earphones).
const FamilyEarAttributes = "ear-attributes"

// Ear crop size: portrait, an ear is taller than wide. Both ears are warped so the face is on the
// crop's right and the outside of the head on its left (the image-right ear is mirrored): one
// classifier sees one kind of picture.
const (
	EarCropW = 48
	EarCropH = 64
)

// Ear-region geometry in units of the face width (jaw point 0 to 16, or twice the eye distance
// when the head is turned and the jaw narrows). Centre: jaw point 1 (level with the ear's middle
// on the photos), moved outwards by earOut and up by earUp; size earW × earH. Chosen by drawing
// the regions on the dev portraits: the whole ear with some hair around it at yaw 0–45°, and
// no eye in the crop.
const (
	earOut = 0.17
	earUp  = 0.0
	earW   = 0.40
	earH   = 0.60
)

// Ear sides as seen in the image (like the eyes of Landmarks68.Five): EarLeft is next to jaw point
// 0, the candidate's right ear on an unmirrored camera.
const (
	EarLeft  = 0
	EarRight = 1
)

// EarCropper warps the two ear regions of a face out of the frame. It keeps its matrix between
// calls: not safe for concurrent use.
type EarCropper struct {
	xform gocv.Mat // 2×3 CV_64F, crop → image (inverse map)
}

// NewEarCropper makes a cropper. Close frees it.
func NewEarCropper() *EarCropper {
	return &EarCropper{xform: gocv.NewMatWithSize(2, 3, gocv.MatTypeCV64F)}
}

// EarRegion is where one ear's crop lies in the image: crop pixel (u, v) is image point
// Origin + u·U + v·V.
type EarRegion struct {
	Origin, U, V [2]float64
}

// Corners are the region's four corners in image pixels (top-left, top-right, bottom-right,
// bottom-left of the crop).
func (r EarRegion) Corners() [4][2]float32 {
	pt := func(u, v float64) [2]float32 {
		return [2]float32{float32(r.Origin[0] + u*r.U[0] + v*r.V[0]), float32(r.Origin[1] + u*r.U[1] + v*r.V[1])}
	}
	return [4][2]float32{pt(0, 0), pt(EarCropW, 0), pt(EarCropW, EarCropH), pt(0, EarCropH)}
}

// Outside is the share of the region that lies outside a w×h image (8×8 sample grid): an ear
// beyond the frame edge is not in view, whatever the classifier says.
func (r EarRegion) Outside(w, h int) float32 {
	out := 0
	for i := range 8 {
		for j := range 8 {
			u, v := (float64(i)+0.5)*EarCropW/8, (float64(j)+0.5)*EarCropH/8
			x, y := r.Origin[0]+u*r.U[0]+v*r.V[0], r.Origin[1]+u*r.U[1]+v*r.V[1]
			if x < 0 || y < 0 || x >= float64(w) || y >= float64(h) {
				out++
			}
		}
	}
	return float32(out) / 64
}

// EarRegions locates both ears from the 68 points (image pixels).
func EarRegions(l *Landmarks68) ([2]EarRegion, error) {
	mean := func(from, to int) (x, y float64) {
		for i := from; i <= to; i++ {
			x += float64(l[i][0])
			y += float64(l[i][1])
		}
		n := float64(to - from + 1)
		return x / n, y / n
	}
	lx, ly := mean(36, 41)
	rx, ry := mean(42, 47)
	dx, dy := rx-lx, ry-ly
	eyes := math.Hypot(dx, dy)
	jaw := math.Hypot(float64(l[16][0]-l[0][0]), float64(l[16][1]-l[0][1]))
	if !(eyes > 1) || math.IsNaN(jaw) {
		return [2]EarRegion{}, ErrDegeneratePoints
	}
	ex, ey := dx/eyes, dy/eyes // towards the image-right eye
	dnx, dny := -ey, ex        // down the face
	s := max(jaw, 2*eyes)
	var out [2]EarRegion
	for side, idx := range [2]int{1, 15} {
		sign := -1.0 // outwards from the image-left ear is towards the image's left
		if side == EarRight {
			sign = 1
		}
		cx := float64(l[idx][0]) + sign*earOut*s*ex - earUp*s*dnx
		cy := float64(l[idx][1]) + sign*earOut*s*ey - earUp*s*dny
		// Crop u runs from the outside towards the face: +ex for the left ear, −ex (mirrored)
		// for the right one.
		ku, kv := earW*s/EarCropW, earH*s/EarCropH
		ux, uy := -sign*ex*ku, -sign*ey*ku
		vx, vy := dnx*kv, dny*kv
		out[side] = EarRegion{
			Origin: [2]float64{cx - ux*EarCropW/2 - vx*EarCropH/2, cy - uy*EarCropW/2 - vy*EarCropH/2},
			U:      [2]float64{ux, uy}, V: [2]float64{vx, vy},
		}
	}
	return out, nil
}

// Crop warps region r of img into dst (EarCropW×EarCropH, same type as img); black outside img.
func (c *EarCropper) Crop(img gocv.Mat, r EarRegion, dst *gocv.Mat) error {
	return c.CropScaled(img, r, dst, 1)
}

// CropScaled is Crop at scale times the resolution (the same region, a larger or smaller
// picture of it): training studies of the crop size (training/vision/earcrops --scale).
func (c *EarCropper) CropScaled(img gocv.Mat, r EarRegion, dst *gocv.Mat, scale float64) error {
	if img.Empty() || img.Rows() < 2 || img.Cols() < 2 {
		return ErrBadImage
	}
	if !(scale > 0) {
		return errors.New("ear crop: scale must be positive")
	}
	m := [6]float64{r.U[0] / scale, r.V[0] / scale, r.Origin[0], r.U[1] / scale, r.V[1] / scale, r.Origin[1]}
	for i, v := range m {
		c.xform.SetDoubleAt(i/3, i%3, v)
	}
	w, h := int(math.Round(EarCropW*scale)), int(math.Round(EarCropH*scale))
	gocv.WarpAffineWithParams(img, dst, c.xform, image.Pt(w, h),
		gocv.InterpolationLinear|gocv.WarpInverseMap, gocv.BorderConstant, color.RGBA{})
	if dst.Empty() || dst.Rows() != h || dst.Cols() != w {
		return errors.New("ear crop: warp produced no image")
	}
	return nil
}

// Close frees the matrix.
func (c *EarCropper) Close() error { return c.xform.Close() }
