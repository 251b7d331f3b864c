package models

import (
	"errors"
	"fmt"
	"math"

	ort "github.com/yalue/onnxruntime_go"
	"gocv.io/x/gocv"
)

// FaceEmbedder turns an aligned face crop into a unit-length embedding. It owns its session and
// tensors: not safe for concurrent use.
type FaceEmbedder struct {
	m       *Manifest
	session *ort.AdvancedSession
	input   *ort.Tensor[float32]
	output  *ort.Tensor[float32]
	lut     [3][256]float32
	src     [3]int // byte offset inside a BGR pixel of model channel c
}

// NewFaceEmbedder creates an embedder for m (from Load).
func NewFaceEmbedder(m *Manifest, o SessionOptions) (*FaceEmbedder, error) {
	if m == nil || m.Path == "" {
		return nil, errors.New("new face embedder: manifest must come from models.Load (no verified file path)")
	}
	if m.Decode.Family != FamilyFaceEmbedding {
		return nil, fmt.Errorf("new face embedder %s: decode family %q is not %s", m.ID(), m.Decode.Family, FamilyFaceEmbedding)
	}
	if err := InitRuntime(); err != nil {
		return nil, err
	}
	e := &FaceEmbedder{m: m}
	e.lut, e.src = channelLUT(m.Input)
	fail := func(step string, err error) (*FaceEmbedder, error) {
		e.Close()
		return nil, fmt.Errorf("new face embedder %s: %s: %w", m.ID(), step, err)
	}
	var err error
	if e.input, err = ort.NewEmptyTensor[float32](ort.NewShape(1, 3, AlignedSize, AlignedSize)); err != nil {
		return fail("input tensor", err)
	}
	if e.output, err = ort.NewEmptyTensor[float32](ort.NewShape(1, int64(m.Decode.Dim))); err != nil {
		return fail("output tensor", err)
	}
	if o.GraphOptimization == "" {
		o.GraphOptimization = m.GraphOptimization
	}
	opts, err := newSessionOptions(o)
	if err != nil {
		return fail("session options", err)
	}
	defer opts.Destroy()
	if e.session, err = ort.NewAdvancedSession(m.Path, []string{m.Input.Name}, m.Decode.Outputs,
		[]ort.Value{e.input}, []ort.Value{e.output}, opts); err != nil {
		return fail("session", err)
	}
	return e, nil
}

// channelLUT precomputes (v-mean)*scale per model channel and where each channel sits in a BGR
// pixel.
func channelLUT(in Input) (lut [3][256]float32, src [3]int) {
	for c := range 3 {
		src[c] = c
		if in.Colour == "RGB" {
			src[c] = 2 - c
		}
		for v := range 256 {
			lut[c][v] = (float32(v) - in.Mean[c]) * in.Scale[c]
		}
	}
	return lut, src
}

// Manifest returns the model's manifest.
func (e *FaceEmbedder) Manifest() *Manifest { return e.m }

// Dim is the embedding length.
func (e *FaceEmbedder) Dim() int { return e.m.Decode.Dim }

// Threshold is the manifest's same-person cosine similarity.
func (e *FaceEmbedder) Threshold() float32 { return e.m.Thresholds.Similarity }

// Embed writes the unit-length embedding of aligned (8-bit BGR, AlignedSize square) into dst,
// which must have Dim() elements.
func (e *FaceEmbedder) Embed(aligned gocv.Mat, dst []float32) error {
	if e.session == nil {
		return errors.New("face embedder is closed")
	}
	if len(dst) != e.Dim() {
		return fmt.Errorf("embed: destination has %d values, want %d", len(dst), e.Dim())
	}
	if aligned.Empty() || aligned.Type() != gocv.MatTypeCV8UC3 || aligned.Rows() != AlignedSize ||
		aligned.Cols() != AlignedSize || !aligned.IsContinuous() {
		return ErrBadImage
	}
	pix, err := aligned.DataPtrUint8()
	if err != nil {
		return err
	}
	writePlanar(e.input.GetData(), pix, AlignedSize*AlignedSize, &e.lut, e.src)
	if err := e.session.Run(); err != nil {
		return fmt.Errorf("run %s: %w", e.m.ID(), err)
	}
	copy(dst, e.output.GetData())
	Normalize(dst)
	return nil
}

// writePlanar writes n BGR pixels into a channel-planar tensor through the lookup tables.
func writePlanar(t []float32, pix []uint8, n int, lut *[3][256]float32, src [3]int) {
	c0, c1, c2 := t[:n], t[n:2*n], t[2*n:3*n]
	s0, s1, s2 := src[0], src[1], src[2]
	for i := range n {
		p := pix[3*i : 3*i+3]
		c0[i] = lut[0][p[s0]]
		c1[i] = lut[1][p[s1]]
		c2[i] = lut[2][p[s2]]
	}
}

// Normalize scales v to unit length in place (a zero vector stays zero).
func Normalize(v []float32) {
	var ss float64
	for _, x := range v {
		ss += float64(x) * float64(x)
	}
	if ss == 0 {
		return
	}
	inv := float32(1 / math.Sqrt(ss))
	for i := range v {
		v[i] *= inv
	}
}

// Cosine is the cosine similarity of two unit-length vectors (their dot product); vectors of
// different length give 0.
func Cosine(a, b []float32) float32 {
	if len(a) != len(b) {
		return 0
	}
	var s float32
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

// Close frees the session and tensors.
func (e *FaceEmbedder) Close() error {
	var errs []error
	if e.session != nil {
		errs = append(errs, e.session.Destroy())
		e.session = nil
	}
	for _, t := range []*ort.Tensor[float32]{e.input, e.output} {
		if t != nil {
			errs = append(errs, t.Destroy())
		}
	}
	e.input, e.output = nil, nil
	return errors.Join(errs...)
}
