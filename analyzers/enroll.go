package analyzers

import (
	"context"
	"errors"
	"fmt"
	"slices"
)

// Requirer is implemented by analyzers that read what others left on the Frame or Observation
// (e.g. "identity" reads the crops of "landmarks"): Build refuses a set where a required
// analyzer is missing or comes later.
type Requirer interface {
	Requires() []string
}

func checkRequires(a Analyzer, before []string) error {
	r, ok := a.(Requirer)
	if !ok {
		return nil
	}
	for _, need := range r.Requires() {
		if !slices.Contains(before, need) {
			return fmt.Errorf("analyzer %q needs %q listed before it", a.Name(), need)
		}
	}
	return nil
}

// FrameMeta is what the pipeline knows about a frame besides its pixels.
type FrameMeta struct {
	Camera string
	// Session keys per-candidate state kept between frames (see Frame.Session).
	Session string
	// Enrolled is the session's registration embedding, nil if none.
	Enrolled *Enrollment
}

// AnalyzeFrameJPEG decodes one posted JPEG once and runs every analyzer on it. Errors from a bad
// JPEG wrap the sentinel errors of decode.go (client errors); others are server-side.
func (s *Set) AnalyzeFrameJPEG(ctx context.Context, data []byte, meta FrameMeta) (Observation, error) {
	if err := ctx.Err(); err != nil {
		return Observation{}, err
	}
	f, err := DecodeJPEG(data, s.decodeSide)
	if err != nil {
		return Observation{}, err
	}
	defer f.Image.Close()
	f.Camera, f.Session, f.Enrolled = meta.Camera, meta.Session, meta.Enrolled
	return s.Analyze(ctx, &f)
}

// ErrNoEnroller means the set has no analyzer that can enrol a registration photo (no
// "identity").
var ErrNoEnroller = errors.New("no identity analyzer in this set")

// EnrollModel is the embedding model the set's identity analyzer compares with ("" when the set
// has none): a session's stored enrollment is usable only if it names this model.
func (s *Set) EnrollModel() string {
	if e, _ := s.enroller(); e != nil {
		return e.EnrollModel()
	}
	return ""
}

// IdentityThreshold is the same-person similarity of the set's identity analyzer (0 when none).
func (s *Set) IdentityThreshold() float32 {
	if e, _ := s.enroller(); e != nil {
		return e.Threshold()
	}
	return 0
}

func (s *Set) enroller() (Enroller, int) {
	for i, a := range s.analyzers {
		if e, ok := a.(Enroller); ok {
			return e, i
		}
	}
	return nil, -1
}

// Enroll computes the reference embedding of a registration photo (JPEG): the analyzers before
// the enroller run on it as on a main-camera frame, then the enroller embeds the main (largest)
// face. ErrNoFaceInPhoto when there is none; decode errors as for frames.
func (s *Set) Enroll(ctx context.Context, photo []byte) (Enrollment, error) {
	e, at := s.enroller()
	if e == nil {
		return Enrollment{}, ErrNoEnroller
	}
	f, err := DecodeJPEG(photo, s.decodeSide)
	if err != nil {
		return Enrollment{}, err
	}
	defer f.Image.Close()
	f.Camera = CameraMain
	obs := Observation{Width: f.Width, Height: f.Height}
	for _, a := range s.analyzers[:at] {
		if err := a.Analyze(ctx, &f, &obs); err != nil {
			return Enrollment{}, fmt.Errorf("enroll: analyzer %s: %w", a.Name(), err)
		}
	}
	return e.Enroll(&f, &obs)
}
