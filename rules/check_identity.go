package rules

import (
	"math"

	"proctor/analyzers"
	"proctor/store"
)

// IdentityMismatch: the main face is not the registered candidate.
const IdentityMismatch = "IDENTITY_MISMATCH"

// Settings of the identity check.
const (
	SettingIdentityMismatchAfter = "identity_mismatch_after_sec"
	SettingIdentityThreshold     = "identity_threshold"
)

// The identity check compares the main camera's main face with the registration photo. Frames
// where the analyzer did not measure (no face, no enrolled photo, analyzer off) never continue
// a run.
func init() {
	Register(Check{
		Name:      "identity",
		Doc:       "The person in front of the main camera is the registered candidate.",
		Input:     InputFrames,
		Analyzers: []string{"faces", "landmarks", "identity"},
		DecidedBy: "identity",
		Flags: []FlagType{{Type: IdentityMismatch, Severity: store.SeverityAlert, Weight: 0.8,
			Doc: "The main face differs from the registration photo: someone else may be sitting the exam."}},
		Settings: []Setting{
			// 3 s: at 1 frame/s four frames in a row, so one blurred, turned or badly lit frame
			// never raises it, while a different person taking over is flagged within seconds.
			{Key: SettingIdentityMismatchAfter, Unit: Seconds, Default: 3, Min: 0.5, Max: 600,
				Doc: "The main face below the similarity threshold this long raises IDENTITY_MISMATCH."},
			{Key: SettingIdentityThreshold, Unit: Score, Min: 0.05, Max: 0.99,
				ZeroMeans: "the identity model's calibrated threshold, stored with each frame",
				Doc:       "Cosine similarity below which a face is someone else."},
		},
		// sim: the main face's similarity with the registration photo; thr: the model's
		// threshold in force when it was measured.
		Observe: func(obs *analyzers.Observation, _ string) Signal {
			for i := range obs.Faces {
				if m := obs.Faces[i].Match; m != nil { // identity matches the main face only
					return Signal{"sim": m.Similarity, "thr": m.Threshold}
				}
			}
			return nil
		},
		Rules: func(p Params) []FrameRule {
			override := p.Value(SettingIdentityThreshold)
			threshold := func(f *Frame) float64 {
				if override != 0 {
					return override
				}
				return float64(f.Signal("identity")["thr"])
			}
			sim := func(f *Frame) (float64, bool) {
				v, ok := f.Signal("identity").Get("sim")
				return float64(v), ok
			}
			return []FrameRule{{
				Type: IdentityMismatch, Camera: analyzers.CameraMain, After: p.Duration(SettingIdentityMismatchAfter),
				Holds: func(f *Frame) bool {
					s, ok := sim(f)
					t := threshold(f)
					return ok && t != 0 && s < t
				},
				// Logistic in the distance below the threshold: 0.5 at the threshold, ~0.95 at
				// 0.15 below it (about where the different-person pairs of the dev split start).
				Confidence: func(f *Frame) float64 {
					s, _ := sim(f)
					return 1 / (1 + math.Exp(-(threshold(f)-s)/0.05))
				},
				Measure: &Measure{Name: "similarity", Threshold: threshold, Value: sim},
			}}
		},
	})
}
