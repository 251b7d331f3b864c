package models

import (
	"errors"
	"fmt"

	ort "github.com/yalue/onnxruntime_go"
)

// tensorSession is an ORT session with float32 input and output tensors allocated once and
// reused on every Run: the per-face models (landmarks, embedding, head pose) call it on the hot
// path, so nothing is allocated per call.
type tensorSession struct {
	session *ort.AdvancedSession
	input   *ort.Tensor[float32]
	outputs []*ort.Tensor[float32]
}

// openTensorSession checks that m is a verified manifest (from Load) of the given decode family
// and opens its session with the input and output tensors shapes gives (named by m.Input.Name
// and m.Decode.Outputs). what names the model in errors.
func openTensorSession(what string, m *Manifest, family string, o SessionOptions,
	shapes func(m *Manifest) (in ort.Shape, outs []ort.Shape)) (*tensorSession, error) {
	if m == nil || m.Path == "" {
		return nil, fmt.Errorf("new %s: manifest must come from models.Load (no verified file path)", what)
	}
	if m.Decode.Family != family {
		return nil, fmt.Errorf("new %s %s: decode family %q is not %s", what, m.ID(), m.Decode.Family, family)
	}
	if err := InitRuntime(); err != nil {
		return nil, err
	}
	in, outs := shapes(m)
	s := &tensorSession{}
	fail := func(step string, err error) (*tensorSession, error) {
		s.Close()
		return nil, fmt.Errorf("new %s %s: %s: %w", what, m.ID(), step, err)
	}
	var err error
	if s.input, err = ort.NewEmptyTensor[float32](in); err != nil {
		return fail("input tensor", err)
	}
	values := make([]ort.Value, len(outs))
	for i, shape := range outs {
		t, err := ort.NewEmptyTensor[float32](shape)
		if err != nil {
			return fail("output tensor", err)
		}
		s.outputs = append(s.outputs, t)
		values[i] = t
	}
	if o.GraphOptimization == "" {
		o.GraphOptimization = m.GraphOptimization
	}
	if s.session, err = openSession(o, func(opts *ort.SessionOptions) (*ort.AdvancedSession, error) {
		return ort.NewAdvancedSession(m.Path, []string{m.Input.Name}, m.Decode.Outputs, []ort.Value{s.input}, values, opts)
	}); err != nil {
		return fail("session", err)
	}
	return s, nil
}

// Close releases the session and its tensors; safe on a partly opened or nil session.
func (s *tensorSession) Close() error {
	if s == nil {
		return nil
	}
	var errs []error
	if s.session != nil {
		errs = append(errs, s.session.Destroy())
		s.session = nil
	}
	for _, t := range append([]*ort.Tensor[float32]{s.input}, s.outputs...) {
		if t != nil {
			errs = append(errs, t.Destroy())
		}
	}
	s.input, s.outputs = nil, nil
	return errors.Join(errs...)
}
