package models

import (
	"errors"
	"image"

	"gocv.io/x/gocv"
)

// AlignedSize is the side of an aligned face crop: the input of face-embedding models and what
// attribute classifiers receive (analyzers.Frame.FaceCrops).
const AlignedSize = 112

// Five facial points, in this order everywhere: left eye, right eye (as seen in the image: the
// left one has the smaller x), nose tip, left and right mouth corner.
const (
	PointLeftEye = iota
	PointRightEye
	PointNose
	PointMouthLeft
	PointMouthRight
)

// arcFaceTemplate is where the five points sit in a 112×112 aligned crop: the reference of
// InsightFace's ArcFace training crops, which face-embedding models of this family expect.
var arcFaceTemplate = [5][2]float64{
	{38.2946, 51.6963},
	{73.5318, 51.5014},
	{56.0252, 71.7366},
	{41.5493, 92.3655},
	{70.7299, 92.2041},
}

// ErrDegeneratePoints means the landmarks do not span a face (all points equal or NaN).
var ErrDegeneratePoints = errors.New("facial points are degenerate")

// SimilarityToTemplate returns the least-squares similarity transform (rotation, uniform scale,
// translation) mapping pts onto the ArcFace template, as the 2×3 matrix [a -b tx; b a ty].
// Closed form (Umeyama without reflection), no allocation.
func SimilarityToTemplate(pts [5][2]float32) ([6]float64, error) {
	var px, py, qx, qy float64
	for i := range 5 {
		px += float64(pts[i][0])
		py += float64(pts[i][1])
		qx += arcFaceTemplate[i][0]
		qy += arcFaceTemplate[i][1]
	}
	px, py, qx, qy = px/5, py/5, qx/5, qy/5
	var num1, num2, den float64
	for i := range 5 {
		x, y := float64(pts[i][0])-px, float64(pts[i][1])-py
		u, v := arcFaceTemplate[i][0]-qx, arcFaceTemplate[i][1]-qy
		num1 += x*u + y*v
		num2 += x*v - y*u
		den += x*x + y*y
	}
	if !(den > 1e-6) { // also catches NaN
		return [6]float64{}, ErrDegeneratePoints
	}
	a, b := num1/den, num2/den
	tx := qx - (a*px - b*py)
	ty := qy - (b*px + a*py)
	return [6]float64{a, -b, tx, b, a, ty}, nil
}

// Aligner warps faces to AlignedSize×AlignedSize crops. It keeps its transform matrix between
// calls; like the models it is not safe for concurrent use.
type Aligner struct {
	xform gocv.Mat // 2×3 CV_64F
}

// NewAligner allocates the transform matrix. Close frees it.
func NewAligner() *Aligner {
	return &Aligner{xform: gocv.NewMatWithSize(2, 3, gocv.MatTypeCV64F)}
}

// Align warps the face whose five points (in img pixels) are pts into dst (8-bit, same channels
// as img, AlignedSize square). Pixels outside img are black, as in the reference crops.
func (a *Aligner) Align(img gocv.Mat, pts [5][2]float32, dst *gocv.Mat) error {
	if img.Empty() || img.Rows() < 2 || img.Cols() < 2 {
		return ErrBadImage
	}
	m, err := SimilarityToTemplate(pts)
	if err != nil {
		return err
	}
	for i, v := range m {
		a.xform.SetDoubleAt(i/3, i%3, v)
	}
	gocv.WarpAffine(img, dst, a.xform, image.Pt(AlignedSize, AlignedSize))
	if dst.Empty() || dst.Rows() != AlignedSize || dst.Cols() != AlignedSize {
		return errors.New("align face: warp produced no image")
	}
	return nil
}

// Close frees the matrix.
func (a *Aligner) Close() error { return a.xform.Close() }
