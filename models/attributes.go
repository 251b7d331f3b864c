package models

import (
	"errors"
	"fmt"

	ort "github.com/yalue/onnxruntime_go"
	"gocv.io/x/gocv"
)

// AttributeClassifier runs a "face-attributes" model on aligned 112×112 face crops, or an
// "ear-attributes" model on EarCropper's crops: one sigmoid score per label of the manifest
// (e.g. mask, occluded; covered, not_in_view, earphones). It owns its session and tensors: not
// safe for concurrent use.
type AttributeClassifier struct {
	m       *Manifest
	session *ort.AdvancedSession
	input   *ort.Tensor[float32]
	output  *ort.Tensor[float32]
	lut     [3][256]float32
	src     [3]int
}

// NewAttributeClassifier creates a classifier for m (from Load).
func NewAttributeClassifier(m *Manifest, o SessionOptions) (*AttributeClassifier, error) {
	if m == nil || m.Vision == nil || (m.Decode.Family != FamilyFaceAttributes && m.Decode.Family != FamilyEarAttributes) {
		return nil, errors.New("new attribute classifier: manifest of family face-attributes or ear-attributes from models.Load required")
	}
	if err := InitRuntime(); err != nil {
		return nil, err
	}
	c := &AttributeClassifier{m: m}
	in := m.Input
	for k := range 3 {
		c.src[k] = k
		if in.Colour == "RGB" {
			c.src[k] = 2 - k
		}
		for v := range 256 {
			c.lut[k][v] = (float32(v) - in.Mean[k]) * in.Scale[k]
		}
	}
	fail := func(step string, err error) (*AttributeClassifier, error) {
		c.Close()
		return nil, fmt.Errorf("new attribute classifier %s: %s: %w", m.ID(), step, err)
	}
	var err error
	if c.input, err = ort.NewEmptyTensor[float32](ort.NewShape(1, 3, int64(in.Height), int64(in.Width))); err != nil {
		return fail("input tensor", err)
	}
	if c.output, err = ort.NewEmptyTensor[float32](ort.NewShape(1, int64(len(m.Vision.Labels)))); err != nil {
		return fail("output tensor", err)
	}
	if c.session, err = newVisionSession(m, []string{in.Name}, m.Decode.Outputs,
		[]ort.Value{c.input}, []ort.Value{c.output}, o); err != nil {
		return fail("session", err)
	}
	return c, nil
}

// Manifest returns the model's manifest.
func (c *AttributeClassifier) Manifest() *Manifest { return c.m }

// Labels are the names of the scores Classify writes, in order.
func (c *AttributeClassifier) Labels() []string { return c.m.Vision.Labels }

// Classify scores one crop (8-bit BGR, the manifest's input size) into dst, which must have
// len(Labels()) elements.
func (c *AttributeClassifier) Classify(crop gocv.Mat, dst []float32) error {
	if c.session == nil {
		return errors.New("attribute classifier is closed")
	}
	W, H := c.m.Input.Width, c.m.Input.Height
	if crop.Empty() || crop.Type() != gocv.MatTypeCV8UC3 || crop.Cols() != W || crop.Rows() != H || !crop.IsContinuous() {
		return fmt.Errorf("attribute classifier wants a continuous %dx%d 8-bit BGR crop", W, H)
	}
	if len(dst) != len(c.m.Vision.Labels) {
		return fmt.Errorf("attribute classifier: dst has %d slots for %d labels", len(dst), len(c.m.Vision.Labels))
	}
	pix, err := crop.DataPtrUint8()
	if err != nil {
		return err
	}
	t := c.input.GetData()
	plane := W * H
	c0, c1, c2 := t[:plane], t[plane:2*plane], t[2*plane:]
	l0, l1, l2 := &c.lut[0], &c.lut[1], &c.lut[2]
	s0, s1, s2 := c.src[0], c.src[1], c.src[2]
	for i := range plane {
		p := pix[3*i : 3*i+3]
		c0[i] = l0[p[s0]]
		c1[i] = l1[p[s1]]
		c2[i] = l2[p[s2]]
	}
	if err := c.session.Run(); err != nil {
		return fmt.Errorf("run %s: %w", c.m.ID(), err)
	}
	copy(dst, c.output.GetData())
	return nil
}

// Close frees the session and tensors.
func (c *AttributeClassifier) Close() error {
	var errs []error
	if c.session != nil {
		errs = append(errs, c.session.Destroy())
		c.session = nil
	}
	for _, t := range []*ort.Tensor[float32]{c.input, c.output} {
		if t != nil {
			errs = append(errs, t.Destroy())
		}
	}
	c.input, c.output = nil, nil
	return errors.Join(errs...)
}
