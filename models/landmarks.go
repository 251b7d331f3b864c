package models

import (
	"errors"
	"fmt"
	"image"

	ort "github.com/yalue/onnxruntime_go"
	"gocv.io/x/gocv"
)

// Landmarks68 are 68 facial points (x, y) in image pixels, iBUG-300W order.
type Landmarks68 [68][2]float32

// Five reduces 68 points to the five used for alignment: eye centres (mean of four eyelid points,
// as the model's reference code does), nose tip, mouth corners (mean of outer and inner corner).
func (l *Landmarks68) Five() [5][2]float32 {
	mean := func(idx ...int) [2]float32 {
		var x, y float32
		for _, i := range idx {
			x += l[i][0]
			y += l[i][1]
		}
		n := float32(len(idx))
		return [2]float32{x / n, y / n}
	}
	return [5][2]float32{
		PointLeftEye:    mean(37, 38, 40, 41),
		PointRightEye:   mean(43, 44, 46, 47),
		PointNose:       l[30],
		PointMouthLeft:  mean(48, 60),
		PointMouthRight: mean(54, 64),
	}
}

// Landmarker runs a landmarks68 model on face boxes. It owns its session, tensors and scratch
// images: not safe for concurrent use.
type Landmarker struct {
	m *Manifest
	*tensorSession
	resized gocv.Mat
	grey    gocv.Mat
}

// NewLandmarker creates a landmarker for m (from Load).
func NewLandmarker(m *Manifest, o SessionOptions) (*Landmarker, error) {
	ts, err := openTensorSession("landmarker", m, FamilyLandmarks68, o, func(m *Manifest) (ort.Shape, []ort.Shape) {
		return ort.NewShape(1, 1, int64(m.Input.Height), int64(m.Input.Width)), []ort.Shape{ort.NewShape(1, int64(m.Decode.Dim))}
	})
	if err != nil {
		return nil, err
	}
	l := &Landmarker{m: m, tensorSession: ts}
	l.resized = gocv.NewMat()
	l.grey = gocv.NewMat()
	return l, nil
}

// Manifest returns the model's manifest.
func (l *Landmarker) Manifest() *Manifest { return l.m }

// Landmarks finds the 68 points of the face in box (x, y, w, h in img pixels) and writes them,
// in img pixels, to dst.
func (l *Landmarker) Landmarks(img gocv.Mat, box [4]float32, dst *Landmarks68) error {
	if l.session == nil {
		return errors.New("landmarker is closed")
	}
	if img.Empty() || img.Type() != gocv.MatTypeCV8UC3 {
		return ErrBadImage
	}
	r, ok := clipBox(box, img.Cols(), img.Rows())
	if !ok {
		return ErrFaceTooSmall
	}
	crop := img.Region(r)
	gocv.Resize(crop, &l.resized, image.Pt(l.m.Input.Width, l.m.Input.Height), 0, 0, gocv.InterpolationLinear)
	crop.Close()
	if l.resized.Empty() {
		return errors.New("landmarks: resize failed")
	}
	gocv.CvtColor(l.resized, &l.grey, gocv.ColorBGRToGray)
	if l.grey.Empty() || !l.grey.IsContinuous() {
		return errors.New("landmarks: grey conversion failed")
	}
	pix, err := l.grey.DataPtrUint8()
	if err != nil {
		return err
	}
	in := l.input.GetData()
	if len(pix) != len(in) {
		return fmt.Errorf("landmarks: %d pixels for a %d-value input", len(pix), len(in))
	}
	for i, p := range pix {
		in[i] = float32(p) / 256 // the reference divides by 256, not 255
	}
	if err := l.session.Run(); err != nil {
		return fmt.Errorf("run %s: %w", l.m.ID(), err)
	}
	out := l.outputs[0].GetData()
	x0, y0, w, h := float32(r.Min.X), float32(r.Min.Y), float32(r.Dx()), float32(r.Dy())
	for i := range dst {
		dst[i] = [2]float32{x0 + out[2*i]*w, y0 + out[2*i+1]*h}
	}
	return nil
}

// ErrFaceTooSmall means a face box has less than 2×2 pixels inside the image.
var ErrFaceTooSmall = errors.New("face box too small or outside the image")

// clipBox turns x, y, w, h into an integer rectangle inside a cols×rows image.
func clipBox(b [4]float32, cols, rows int) (image.Rectangle, bool) {
	r := image.Rect(int(b[0]), int(b[1]), int(b[0]+b[2]+0.5), int(b[1]+b[3]+0.5)).Intersect(image.Rect(0, 0, cols, rows))
	return r, r.Dx() >= 2 && r.Dy() >= 2
}

// Close frees the session, tensors and scratch images.
func (l *Landmarker) Close() error {
	errs := []error{l.tensorSession.Close()}
	errs = append(errs, l.resized.Close(), l.grey.Close())
	return errors.Join(errs...)
}
