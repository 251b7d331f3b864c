package models

import (
	"errors"
	"fmt"
	"image"
	"math"

	ort "github.com/yalue/onnxruntime_go"
	"gocv.io/x/gocv"
)

// HeadPose estimates yaw, pitch and roll of a face with a hopenet-family model. It owns its
// session, tensors and scratch image: not safe for concurrent use.
type HeadPose struct {
	m *Manifest
	*tensorSession
	resized gocv.Mat
	lut     [3][256]float32
	src     [3]int
}

// Pose is a head orientation in degrees (0, 0, 0 = facing the camera). Signs are the model's;
// the model card says which way each one turns, as measured on the dev photos.
type Pose struct {
	Yaw, Pitch, Roll float32
}

// Hopenet bins: Dim bins of binDegrees starting at binStart (66 × 3° from −99° in the reference).
const (
	hopenetBinDegrees = 3
	hopenetBinStart   = -99
)

// NewHeadPose creates a head-pose estimator for m (from Load).
func NewHeadPose(m *Manifest, o SessionOptions) (*HeadPose, error) {
	ts, err := openTensorSession("head pose", m, FamilyHopenet, o, func(m *Manifest) (ort.Shape, []ort.Shape) {
		bins := ort.NewShape(1, int64(m.Decode.Dim)) // yaw, pitch, roll
		return ort.NewShape(1, 3, int64(m.Input.Height), int64(m.Input.Width)), []ort.Shape{bins, bins, bins}
	})
	if err != nil {
		return nil, err
	}
	h := &HeadPose{m: m, tensorSession: ts}
	h.lut, h.src = channelLUT(m.Input)
	h.resized = gocv.NewMatWithSize(m.Input.Height, m.Input.Width, gocv.MatTypeCV8UC3)
	return h, nil
}

// Manifest returns the model's manifest.
func (h *HeadPose) Manifest() *Manifest { return h.m }

// Estimate returns the pose of the face in box (x, y, w, h in img pixels).
func (h *HeadPose) Estimate(img gocv.Mat, box [4]float32) (Pose, error) {
	if h.session == nil {
		return Pose{}, errors.New("head pose is closed")
	}
	if img.Empty() || img.Type() != gocv.MatTypeCV8UC3 {
		return Pose{}, ErrBadImage
	}
	// The reference crops the detector box grown by a quarter of its size on every side.
	gx, gy := box[2]/4, box[3]/4
	r, ok := clipBox([4]float32{box[0] - gx, box[1] - gy, box[2] + 2*gx, box[3] + 2*gy}, img.Cols(), img.Rows())
	if !ok {
		return Pose{}, ErrFaceTooSmall
	}
	W, H := h.m.Input.Width, h.m.Input.Height
	crop := img.Region(r)
	gocv.Resize(crop, &h.resized, image.Pt(W, H), 0, 0, gocv.InterpolationLinear)
	crop.Close()
	if h.resized.Empty() || h.resized.Cols() != W || h.resized.Rows() != H || !h.resized.IsContinuous() {
		return Pose{}, errors.New("head pose: resize failed")
	}
	pix, err := h.resized.DataPtrUint8()
	if err != nil {
		return Pose{}, err
	}
	writePlanar(h.input.GetData(), pix, W*H, &h.lut, h.src)
	if err := h.session.Run(); err != nil {
		return Pose{}, fmt.Errorf("run %s: %w", h.m.ID(), err)
	}
	return Pose{
		Yaw:   binExpectation(h.outputs[0].GetData()),
		Pitch: binExpectation(h.outputs[1].GetData()),
		Roll:  binExpectation(h.outputs[2].GetData()),
	}, nil
}

// binExpectation is the softmax-weighted mean bin angle of logits.
func binExpectation(logits []float32) float32 {
	hi := logits[0]
	for _, v := range logits {
		hi = max(hi, v)
	}
	var sum, acc float64
	for i, v := range logits {
		e := math.Exp(float64(v - hi))
		sum += e
		acc += e * float64(i)
	}
	return float32(acc/sum*hopenetBinDegrees + hopenetBinStart)
}

// Close frees the session, tensors and scratch image.
func (h *HeadPose) Close() error {
	errs := []error{h.tensorSession.Close()}
	errs = append(errs, h.resized.Close())
	return errors.Join(errs...)
}
