package analyzers

import (
	"context"
	"errors"
	"fmt"
	"image/color"
	"slices"
	"time"

	"gocv.io/x/gocv"
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
	// CapturedAt is the client's capture time of the frame.
	CapturedAt time.Time
	// Enrolled is the session's registration embedding, nil if none.
	Enrolled *Enrollment
	// Plan decides which analyzers run (Schedule.Plan); nil runs them all.
	Plan Planner
}

// AnalyzeFrameJPEG decodes one posted JPEG once and runs every analyzer on it. Errors from a bad
// JPEG wrap the sentinel errors of decode.go (client errors); others are server-side.
func (s *Set) AnalyzeFrameJPEG(ctx context.Context, data []byte, meta FrameMeta) (Observation, error) {
	if err := ctx.Err(); err != nil {
		return Observation{}, err
	}
	if p, ok := meta.Plan.(*framePlan); ok {
		if obs, still := p.carryStill(data, meta, s.analyzers); still {
			if s.observe != nil {
				for _, a := range s.analyzers {
					s.observe(a.Name(), false, 0)
				}
			}
			return obs, nil
		}
	}
	f, err := DecodeJPEG(data, s.decodeSide)
	if err != nil {
		return Observation{}, err
	}
	defer f.Image.Close()
	f.Camera, f.Session, f.Enrolled, f.CapturedAt, f.Plan = meta.Camera, meta.Session, meta.Enrolled, meta.CapturedAt, meta.Plan
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
	defer func() { f.Image.Close() }()
	// Registration photos are often cropped tight around the face; the detector then clips the
	// box at the photo's edge and the landmarks slide off the face. A border restores the
	// context a camera frame has (measured on identities-rmfd: see models/cards).
	if err := PadFrame(&f, EnrollPadding); err != nil {
		return Enrollment{}, err
	}
	f.Camera = CameraMain
	obs := Observation{Width: f.Width, Height: f.Height}
	for _, a := range s.analyzers[:at] {
		if err := a.Analyze(ctx, &f, &obs); err != nil {
			return Enrollment{}, fmt.Errorf("enroll: analyzer %s: %w", a.Name(), err)
		}
	}
	return e.Enroll(&f, &obs)
}

// EnrollPadding is the border PadFrame adds around a registration photo, as a fraction of its
// width and height on each side.
const EnrollPadding = 0.5

// PadFrame surrounds f.Image with a replicated border of frac of its width and height on every
// side and scales Width and Height to match, so that a face filling a tight crop sits inside a
// frame the way it does in a camera frame.
func PadFrame(f *Frame, frac float64) error {
	if frac <= 0 {
		return nil
	}
	if f.Image.Empty() || f.Image.Cols() < 2 || f.Image.Rows() < 2 {
		return ErrDecode
	}
	cols, rows := f.Image.Cols(), f.Image.Rows()
	bw, bh := int(float64(cols)*frac+0.5), int(float64(rows)*frac+0.5)
	dst := gocv.NewMat()
	gocv.CopyMakeBorder(f.Image, &dst, bh, bh, bw, bw, gocv.BorderReplicate, color.RGBA{})
	if dst.Empty() || dst.Cols() != cols+2*bw || dst.Rows() != rows+2*bh {
		dst.Close()
		return fmt.Errorf("pad frame: border of %dx%d failed", bw, bh)
	}
	sx, sy := float64(f.Width)/float64(cols), float64(f.Height)/float64(rows)
	f.Image.Close()
	f.Image = dst
	f.Width += int(2 * float64(bw) * sx)
	f.Height += int(2 * float64(bh) * sy)
	return nil
}
