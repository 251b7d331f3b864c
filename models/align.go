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

// Template is where the five points sit in a Side×Side aligned crop.
type Template struct {
	Side   int
	Points [5][2]float64
}

// ArcFaceTemplate is the 112×112 ArcFace template scaled to a side×side crop with the face
// zoomed by zoom about the crop's centre (1 is the ArcFace crop itself, above 1 a tighter crop,
// below 1 more margin) and moved down by shift × side (negative: up, showing more chin and less
// forehead). Embedding models name their crop this way in their manifest (input.width, zoom,
// shift).
func ArcFaceTemplate(side int, zoom, shift float64) Template {
	if zoom <= 0 {
		zoom = 1
	}
	t := Template{Side: side}
	k := zoom * float64(side) / AlignedSize
	c := float64(side) / 2
	for i, p := range arcFaceTemplate {
		t.Points[i] = [2]float64{(p[0]-AlignedSize/2)*k + c, (p[1]-AlignedSize/2)*k + c + shift*float64(side)}
	}
	return t
}

// ErrDegeneratePoints means the landmarks do not span a face (all points equal or NaN).
var ErrDegeneratePoints = errors.New("facial points are degenerate")

// SimilarityToTemplate returns the least-squares similarity transform (rotation, uniform scale,
// translation) mapping pts onto the ArcFace template, as the 2×3 matrix [a -b tx; b a ty].
// Closed form (Umeyama without reflection), no allocation.
func SimilarityToTemplate(pts [5][2]float32) ([6]float64, error) {
	return similarityTo(pts, &arcFaceTemplate)
}

func similarityTo(pts [5][2]float32, tmpl *[5][2]float64) ([6]float64, error) {
	var px, py, qx, qy float64
	for i := range 5 {
		px += float64(pts[i][0])
		py += float64(pts[i][1])
		qx += tmpl[i][0]
		qy += tmpl[i][1]
	}
	px, py, qx, qy = px/5, py/5, qx/5, qy/5
	var num1, num2, den float64
	for i := range 5 {
		x, y := float64(pts[i][0])-px, float64(pts[i][1])-py
		u, v := tmpl[i][0]-qx, tmpl[i][1]-qy
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

// Aligner warps faces to aligned square crops (AlignedSize and the ArcFace template unless made
// with NewAlignerTo). It keeps its transform matrix between calls; like the models it is not safe
// for concurrent use.
type Aligner struct {
	xform gocv.Mat // 2×3 CV_64F
	tmpl  Template
}

// NewAligner aligns to the ArcFace 112×112 template (Frame.FaceCrops). Close frees it.
func NewAligner() *Aligner {
	return NewAlignerTo(ArcFaceTemplate(AlignedSize, 1, 0))
}

// NewAlignerTo aligns to t (an embedding model's own crop). Close frees it.
func NewAlignerTo(t Template) *Aligner {
	return &Aligner{xform: gocv.NewMatWithSize(2, 3, gocv.MatTypeCV64F), tmpl: t}
}

// Side is the side of the crops Align writes.
func (a *Aligner) Side() int { return a.tmpl.Side }

// Align warps the face whose five points (in img pixels) are pts into dst (8-bit, same channels
// as img, Side() square). Pixels outside img are black, as in the reference crops.
func (a *Aligner) Align(img gocv.Mat, pts [5][2]float32, dst *gocv.Mat) error {
	if img.Empty() || img.Rows() < 2 || img.Cols() < 2 {
		return ErrBadImage
	}
	m, err := similarityTo(pts, &a.tmpl.Points)
	if err != nil {
		return err
	}
	for i, v := range m {
		a.xform.SetDoubleAt(i/3, i%3, v)
	}
	side := a.tmpl.Side
	gocv.WarpAffine(img, dst, a.xform, image.Pt(side, side))
	if dst.Empty() || dst.Rows() != side || dst.Cols() != side {
		return errors.New("align face: warp produced no image")
	}
	return nil
}

// Close frees the matrix.
func (a *Aligner) Close() error { return a.xform.Close() }
