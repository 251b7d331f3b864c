package rules

import (
	"time"

	"proctor/store"
)

// Flag types raised by the object and attire rules (COCO detector, face-attribute classifier).
const (
	// ExtraPerson: someone besides the candidate is in view, seen by the person detector. Main
	// camera: a second body, or a second face on a frame the detector measured; evidence camera
	// (which films the candidate from behind): more than one body.
	ExtraPerson = "EXTRA_PERSON"
	// PhoneVisible: a mobile phone in either camera (the evidence camera is itself a phone and
	// does not see itself).
	PhoneVisible = "PHONE_VISIBLE"
	// Mask: the candidate's face is behind a mask.
	Mask = "MASK"
	// FaceOccluded: the candidate's face is partly covered (hand, object, frame edge) other than
	// by a mask, which raises MASK instead.
	FaceOccluded = "FACE_OCCLUDED"
)

// Earphones are not checked: no model can tell (no earphone photos exist to train or test one,
// docs/vision.md), so there is no EARPHONES rule rather than one that never fires.

// ObjectsConfig holds the thresholds of the object and attire rules. Zero values take the
// defaults.
type ObjectsConfig struct {
	// ExtraPersonAfter: more people than the candidate for this long → EXTRA_PERSON. Default 2s,
	// as MULTIPLE_FACES: at 1 frame/s three frames in a row, so someone walking through the back
	// of the room in one frame raises nothing.
	ExtraPersonAfter time.Duration
	// PhoneVisibleAfter: a phone in view this long → PHONE_VISIBLE. Default 2s: one frame of a
	// phone-like object (a remote, a dark wallet) raises nothing.
	PhoneVisibleAfter time.Duration
	// MaskAfter: the main face masked this long → MASK. Default 3s.
	MaskAfter time.Duration
	// OccludedAfter: the main face covered this long → FACE_OCCLUDED. Default 5s: a hand on the
	// chin while thinking, or a sip of water, is normal for a moment.
	OccludedAfter time.Duration
	// MaskScore and OccludedScore are the score thresholds. Defaults: the attire-cnn model's
	// own thresholds (models/manifests/attire-cnn.json vision.scores, chosen on its validation
	// split; a test keeps them equal), so flags agree with the "present" the analyzer reports.
	MaskScore, OccludedScore float64
}

// Defaults of ObjectsConfig's thresholds; keep equal to models/manifests/attire-cnn.json.
const (
	DefaultMaskScore     = 0.61
	DefaultOccludedScore = 0.78
)

func (c ObjectsConfig) withDefaults() ObjectsConfig {
	if c.ExtraPersonAfter == 0 {
		c.ExtraPersonAfter = 2 * time.Second
	}
	if c.PhoneVisibleAfter == 0 {
		c.PhoneVisibleAfter = 2 * time.Second
	}
	if c.MaskAfter == 0 {
		c.MaskAfter = 3 * time.Second
	}
	if c.OccludedAfter == 0 {
		c.OccludedAfter = 5 * time.Second
	}
	if c.MaskScore == 0 {
		c.MaskScore = DefaultMaskScore
	}
	if c.OccludedScore == 0 {
		c.OccludedScore = DefaultOccludedScore
	}
	return c
}

// objectRules: extra people and phones in either camera, mask and occlusion of the main face.
// Frames where an analyzer did not run (NULL columns) never continue a run.
func (e *Engine) objectRules() []FrameRule {
	c := e.cfg.Objects
	persons := func(f *store.FrameResult) int {
		if f.Persons == nil {
			return 0
		}
		return *f.Persons
	}
	masked := func(f *store.FrameResult) bool { return f.MaskScore != nil && float64(*f.MaskScore) >= c.MaskScore }
	return []FrameRule{
		{Type: ExtraPerson, Severity: store.SeverityAlert, Camera: "main", After: c.ExtraPersonAfter,
			// A second body whose face is not seen (turned away, out of frame). Two visible faces
			// are MULTIPLE_FACES' business: one situation, one flag for the reviewer.
			Holds:      func(f *store.FrameResult) bool { return persons(f) >= 2 && f.Faces < 2 },
			Confidence: func(f *store.FrameResult) float64 { return float64(f.SecondPersonScore) }},
		{Type: ExtraPerson, Severity: store.SeverityAlert, Camera: "evidence", After: c.ExtraPersonAfter,
			Holds:      func(f *store.FrameResult) bool { return persons(f) >= 2 },
			Confidence: func(f *store.FrameResult) float64 { return float64(f.SecondPersonScore) }},
		{Type: PhoneVisible, Severity: store.SeverityAlert, Camera: "", After: c.PhoneVisibleAfter,
			Holds:      func(f *store.FrameResult) bool { return f.Phones != nil && *f.Phones >= 1 },
			Confidence: func(f *store.FrameResult) float64 { return float64(f.PhoneScore) }},
		{Type: Mask, Severity: store.SeverityDetection, Camera: "main", After: c.MaskAfter,
			Holds:      masked,
			Confidence: func(f *store.FrameResult) float64 { return float64(*f.MaskScore) },
			Measure: &Measure{Name: "mask_score",
				Value: func(f *store.FrameResult) (float64, bool) {
					if f.MaskScore == nil {
						return 0, false
					}
					return float64(*f.MaskScore), true
				},
				Threshold: func(*store.FrameResult) float64 { return c.MaskScore }}},
		{Type: FaceOccluded, Severity: store.SeverityDetection, Camera: "main", After: c.OccludedAfter,
			Holds: func(f *store.FrameResult) bool {
				return f.OccludedScore != nil && float64(*f.OccludedScore) >= c.OccludedScore && !masked(f)
			},
			Confidence: func(f *store.FrameResult) float64 { return float64(*f.OccludedScore) },
			Measure: &Measure{Name: "occluded_score",
				Value: func(f *store.FrameResult) (float64, bool) {
					if f.OccludedScore == nil {
						return 0, false
					}
					return float64(*f.OccludedScore), true
				},
				Threshold: func(*store.FrameResult) float64 { return c.OccludedScore }}},
	}
}
