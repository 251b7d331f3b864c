package rules

import (
	"math"
	"time"

	"proctor/store"
)

// Flag types raised by the vision rules (identity and head pose of the main camera's main face).
const (
	IdentityMismatch = "IDENTITY_MISMATCH"
	LookingAway      = "LOOKING_AWAY"
)

// VisionConfig holds the thresholds of the identity and head-pose rules. Zero values take the
// defaults.
type VisionConfig struct {
	// IdentityMismatchAfter: the main face differs from the registration photo (similarity
	// below threshold) for this long → IDENTITY_MISMATCH. Default 3s: at 1 frame/s that is four
	// frames in a row, so one blurred, turned or badly lit frame never raises it, while a
	// different person taking over is flagged within seconds.
	IdentityMismatchAfter time.Duration
	// IdentityThreshold overrides the same-person cosine similarity stored with each frame (the
	// identity model's calibrated threshold, see the model card). Default 0: use the stored one.
	IdentityThreshold float64
	// LookingAwayAfter: the head turned beyond the limits below for this long → LOOKING_AWAY.
	// Default 5s: glancing at the keyboard or thinking with the eyes up is normal; reading
	// something off to the side for five seconds is not.
	LookingAwayAfter time.Duration
	// YawLimit and PitchLimit are the head angles (degrees, absolute) beyond which the candidate
	// is taken to look away from the screen. Defaults 35° and 25°: a laptop screen spans roughly
	// ±20° horizontally and ±15° vertically from the camera at arm's length, and the pose model
	// errs by ~5–10° on frontal faces (model card).
	YawLimit, PitchLimit float64
}

func (c VisionConfig) withDefaults() VisionConfig {
	if c.IdentityMismatchAfter == 0 {
		c.IdentityMismatchAfter = 3 * time.Second
	}
	if c.LookingAwayAfter == 0 {
		c.LookingAwayAfter = 5 * time.Second
	}
	if c.YawLimit == 0 {
		c.YawLimit = 35
	}
	if c.PitchLimit == 0 {
		c.PitchLimit = 25
	}
	return c
}

// Measure is a per-frame score a FrameRule summarises over its run into the flag's details:
// Name (mean), Name_min, Name_max and, with Threshold, Name_threshold (at the latest frame).
type Measure struct {
	Name      string
	Value     func(f *store.FrameResult) (float64, bool)
	Threshold func(f *store.FrameResult) float64
}

// measureSummary accumulates up to one Measure over a run.
type measureSummary struct {
	sum, lo, hi float64
	n           int
	threshold   float64
}

func (s *measureSummary) add(m *Measure, f *store.FrameResult) {
	if m == nil {
		return
	}
	v, ok := m.Value(f)
	if !ok {
		return
	}
	if s.n == 0 {
		s.lo, s.hi = v, v
		if m.Threshold != nil {
			s.threshold = m.Threshold(f)
		}
	}
	s.sum += v
	s.lo, s.hi = math.Min(s.lo, v), math.Max(s.hi, v)
	s.n++
}

func (s *measureSummary) into(m *Measure, details map[string]any) {
	if m == nil || s.n == 0 {
		return
	}
	r := func(x float64) float64 { return math.Round(x*1000) / 1000 }
	details[m.Name] = r(s.sum / float64(s.n))
	details[m.Name+"_min"] = r(s.lo)
	details[m.Name+"_max"] = r(s.hi)
	if m.Threshold != nil {
		details[m.Name+"_threshold"] = r(s.threshold)
	}
}

// visionRules judge the main camera's main face. Frames where the analyzer did not measure
// (no face, no enrolled photo, analyzer off) never continue a run.
func (e *Engine) visionRules() []FrameRule {
	return append(e.identityRules(), e.poseRules()...)
}

// identityRules: a different person in front of the main camera.
func (e *Engine) identityRules() []FrameRule {
	v := e.cfg.Vision
	threshold := func(f *store.FrameResult) float64 {
		if v.IdentityThreshold != 0 {
			return v.IdentityThreshold
		}
		return float64(f.IdentityThreshold)
	}
	return []FrameRule{{
		Type: IdentityMismatch, Severity: store.SeverityAlert, Camera: "main", After: v.IdentityMismatchAfter,
		Holds: func(f *store.FrameResult) bool {
			t := threshold(f)
			return f.Faces >= 1 && f.IdentitySim != nil && t != 0 && float64(*f.IdentitySim) < t
		},
		// Logistic in the distance below the threshold: 0.5 at the threshold, ~0.95 at 0.15
		// below it (about where the different-person pairs of the dev split start).
		Confidence: func(f *store.FrameResult) float64 {
			return 1 / (1 + math.Exp(-(threshold(f)-float64(*f.IdentitySim))/0.05))
		},
		Measure: &Measure{Name: "similarity", Threshold: threshold,
			Value: func(f *store.FrameResult) (float64, bool) {
				if f.IdentitySim == nil {
					return 0, false
				}
				return float64(*f.IdentitySim), true
			}},
	}}
}

// poseRules: the candidate's head turned away from the screen.
func (e *Engine) poseRules() []FrameRule {
	v := e.cfg.Vision
	excess := func(f *store.FrameResult) float64 {
		return math.Max(math.Abs(float64(*f.HeadYaw))-v.YawLimit, math.Abs(float64(*f.HeadPitch))-v.PitchLimit)
	}
	return []FrameRule{{
		Type: LookingAway, Severity: store.SeverityDetection, Camera: "main", After: v.LookingAwayAfter,
		Holds: func(f *store.FrameResult) bool {
			return f.Faces >= 1 && f.HeadYaw != nil && f.HeadPitch != nil && excess(f) > 0
		},
		// 0.5 just past the limit, 1 at 15° beyond it.
		Confidence: func(f *store.FrameResult) float64 { return clamp01(0.5 + excess(f)/30) },
		Measure: &Measure{Name: "yaw", Threshold: func(*store.FrameResult) float64 { return v.YawLimit },
			Value: func(f *store.FrameResult) (float64, bool) {
				if f.HeadYaw == nil {
					return 0, false
				}
				return float64(*f.HeadYaw), true
			}},
	}}
}
