package models

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	ort "github.com/yalue/onnxruntime_go"
	"gocv.io/x/gocv"
)

// FaceEmbedder turns an aligned face crop into a unit-length embedding. It owns its session and
// tensors: not safe for concurrent use.
type FaceEmbedder struct {
	m *Manifest
	*tensorSession
	lut [3][256]float32
	src [3]int // byte offset inside a BGR pixel of model channel c
	// mean and proj are the manifest's projection (nil without one); projected is scratch
	mean, proj, projected []float32
}

// NewFaceEmbedder creates an embedder for m (from Load).
func NewFaceEmbedder(m *Manifest, o SessionOptions) (*FaceEmbedder, error) {
	ts, err := openTensorSession("face embedder", m, FamilyFaceEmbedding, o, func(m *Manifest) (ort.Shape, []ort.Shape) {
		return ort.NewShape(1, 3, int64(m.Input.Height), int64(m.Input.Width)), []ort.Shape{ort.NewShape(1, int64(m.Decode.Dim))}
	})
	if err != nil {
		return nil, err
	}
	e := &FaceEmbedder{m: m, tensorSession: ts}
	e.lut, e.src = channelLUT(m.Input)
	if p := m.Decode.Projection; p != nil {
		if e.mean, e.proj, err = loadProjection(p, m.Decode.Dim); err != nil {
			ts.Close()
			return nil, fmt.Errorf("face embedder %s: %w", m.ID(), err)
		}
		e.projected = make([]float32, m.Decode.Dim)
	}
	return e, nil
}

// loadProjection reads and checks a whitening file compiled into the binary.
func loadProjection(p *Projection, dim int) (mean, proj []float32, err error) {
	data, err := embeddedFile(p.File, p.SHA256)
	if err != nil {
		return nil, nil, fmt.Errorf("projection: %w", err)
	}
	if len(data) != 4*(dim+1)*dim {
		return nil, nil, fmt.Errorf("projection %s has %d bytes, want %d for %d dimensions", p.File, len(data), 4*(dim+1)*dim, dim)
	}
	v := make([]float32, (dim+1)*dim)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(data[4*i:]))
	}
	return v[:dim], v[dim:], nil
}

// project replaces the unit embedding v by normalise((v − mean)·proj).
func (e *FaceEmbedder) project(v []float32) {
	d := len(v)
	for i := range v {
		v[i] -= e.mean[i]
	}
	clear(e.projected)
	for i, x := range v {
		row := e.proj[i*d : (i+1)*d]
		for j, w := range row {
			e.projected[j] += x * w
		}
	}
	copy(v, e.projected)
	Normalize(v)
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

// Input is the tensor the latest Embed fed the model (3×side×side, normalised as the manifest
// says; the mirrored crop after a mirror run); valid until the next call. Calibration tools
// quantise on exactly these values (training/vision/quantize.py).
func (e *FaceEmbedder) Input() []float32 { return e.input.GetData() }

// Dim is the embedding length.
func (e *FaceEmbedder) Dim() int { return e.m.Decode.Dim }

// Template is where the model wants the five facial points in its input crop (its training crop).
func (e *FaceEmbedder) Template() Template {
	return ArcFaceTemplate(e.m.Input.Width, e.m.Input.Zoom, e.m.Input.Shift)
}

// TakesFaceCrops reports whether the model's crop is the ArcFace 112×112 crop the landmarks
// analyzer already makes (Frame.FaceCrops); otherwise the caller aligns to Template itself.
func (e *FaceEmbedder) TakesFaceCrops() bool {
	in := e.m.Input
	return in.Width == AlignedSize && (in.Zoom == 0 || in.Zoom == 1) && in.Shift == 0
}

// Threshold is the manifest's same-person cosine similarity.
func (e *FaceEmbedder) Threshold() float32 { return e.m.Thresholds.Similarity }

// Embed writes the unit-length embedding of aligned (8-bit BGR, the model's input side square,
// aligned to Template) into dst, which must have Dim() elements. With the manifest's
// input.mirror the crop and its mirror image are embedded and added (two runs); with a
// decode.projection the unit vector is then whitened and normalised again.
func (e *FaceEmbedder) Embed(aligned gocv.Mat, dst []float32) error {
	if e.session == nil {
		return errors.New("face embedder is closed")
	}
	if len(dst) != e.Dim() {
		return fmt.Errorf("embed: destination has %d values, want %d", len(dst), e.Dim())
	}
	side := e.m.Input.Width
	if aligned.Empty() || aligned.Type() != gocv.MatTypeCV8UC3 || aligned.Rows() != side ||
		aligned.Cols() != side || !aligned.IsContinuous() {
		return ErrBadImage
	}
	pix, err := aligned.DataPtrUint8()
	if err != nil {
		return err
	}
	writePlanar(e.input.GetData(), pix, side*side, &e.lut, e.src)
	if err := e.session.Run(); err != nil {
		return fmt.Errorf("run %s: %w", e.m.ID(), err)
	}
	copy(dst, e.outputs[0].GetData())
	if e.m.Input.Mirror {
		mirrorRows(e.input.GetData(), side)
		if err := e.session.Run(); err != nil {
			return fmt.Errorf("run %s: %w", e.m.ID(), err)
		}
		for i, v := range e.outputs[0].GetData() {
			dst[i] += v
		}
	}
	Normalize(dst)
	if e.proj != nil {
		e.project(dst)
	}
	return nil
}

// mirrorRows flips a planar side×side tensor left to right in place.
func mirrorRows(t []float32, side int) {
	for r := 0; r+side <= len(t); r += side {
		row := t[r : r+side]
		for i, j := 0, side-1; i < j; i, j = i+1, j-1 {
			row[i], row[j] = row[j], row[i]
		}
	}
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
	return e.tensorSession.Close()
}
