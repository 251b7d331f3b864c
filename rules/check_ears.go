package rules

import (
	"proctor/analyzers"
	"proctor/store"
)

// EarsCovered: an ear of the candidate's that the camera could see is covered (hair, hand,
// hood, cap, headphones); the exam rules want both ears uncovered (DESIGN.md §1).
const EarsCovered = "EARS_COVERED"

// Settings of the ears check.
const (
	SettingEarsCoveredAfter = "ears_covered_after_sec"
	SettingEarsCoveredScore = "ears_covered_score"
)

// Ear states in the signal (the analyzer's strings as numbers: signals are numbers).
const (
	earCodeVisible  = 0
	earCodeCovered  = 1
	earCodeNotInVew = 2
)

func earCode(s string) float32 {
	switch s {
	case analyzers.EarCovered:
		return earCodeCovered
	case analyzers.EarNotInView:
		return earCodeNotInVew
	}
	return earCodeVisible
}

func init() {
	Register(Check{
		Name:      "ears",
		Doc:       "The candidate's ears are uncovered (no hair, hand, hood or headphones over them).",
		Input:     InputFrames,
		Analyzers: []string{"faces", "landmarks", "ears"},
		DecidedBy: "ears",
		Flags: []FlagType{{Type: EarsCovered, Severity: store.SeverityDetection, Weight: 0.2,
			Doc: "An ear in view is covered, mostly by long hair; a reviewer checks for earphones under it."}},
		Settings: []Setting{
			// 10 s: hair falls over an ear and is pushed back; a hand scratching an ear is a moment.
			// What the rule is about (a covered ear for the whole exam) lasts minutes.
			{Key: SettingEarsCoveredAfter, Unit: Seconds, Default: 10, Min: 0.5, Max: 3600,
				Doc: "An ear of the main face covered this long raises EARS_COVERED."},
			{Key: SettingEarsCoveredScore, Unit: Score, Min: 0.05, Max: 0.99,
				ZeroMeans: "the ear model's own threshold (the analyzer's covered verdict)",
				Doc:       "Covered score at or above which an ear in view counts as covered."}},
		Labels: []string{"ears_covered"},
		// left, right: 0 visible, 1 covered, 2 not in view; score: the highest covered score of
		// the ears in view; covered: 1 when the analyzer called one of them covered. No ear in
		// view (head turned, ears beyond the frame): only left and right, and the frame abstains.
		Observe: func(obs *analyzers.Observation, _ string, _ Params) Signal {
			i := analyzers.MainFace(obs.Faces, 0)
			if i < 0 || obs.Faces[i].Ears == nil {
				return nil
			}
			e := obs.Faces[i].Ears
			s := Signal{"left": earCode(e.Left), "right": earCode(e.Right)}
			for side, st := range [2]string{e.Left, e.Right} {
				if st == analyzers.EarNotInView {
					continue
				}
				s["score"] = max(s["score"], e.Covered[side])
				if st == analyzers.EarCovered {
					s["covered"] = 1
				}
			}
			return s
		},
		Rules: func(p Params) []FrameRule {
			threshold := p.Value(SettingEarsCoveredScore)
			covered := func(f *Frame) bool {
				s := f.Signal("ears")
				if threshold == 0 {
					return s["covered"] == 1
				}
				v, ok := s.Get("score")
				return ok && float64(v) >= threshold
			}
			return []FrameRule{{Type: EarsCovered, Camera: analyzers.CameraMain, After: p.Duration(SettingEarsCoveredAfter),
				Holds: covered,
				// A turned head hides the ears without uncovering them: such frames abstain.
				Skip: func(f *Frame) bool {
					s := f.Signal("ears")
					_, inView := s.Get("score")
					return s != nil && !inView
				},
				Confidence: func(f *Frame) float64 { return float64(f.Signal("ears")["score"]) },
				Measure: &Measure{Name: "ears_covered_score", Threshold: func(*Frame) float64 { return threshold },
					Value: func(f *Frame) (float64, bool) { s, ok := f.Signal("ears").Get("score"); return float64(s), ok }}}}
		},
	})
}
