package rules

import (
	"proctor/analyzers"
	"proctor/store"
)

// Earphones: the candidate wears earphones (in-ear, earbuds, headphones).
const Earphones = "EARPHONES"

// Settings of the earphones check.
const (
	SettingEarphonesAfter = "earphones_after_sec"
	SettingEarphonesScore = "earphones_score"
)

func init() {
	Register(Check{
		Name:      "earphones",
		Doc:       "The candidate wears no earphones or headphones.",
		Input:     InputFrames,
		Analyzers: []string{"faces", "landmarks", "ears"},
		DecidedBy: "ears",
		// A detection, not an alert: the model has seen 2 real earphones and many synthetic
		// ones (models/cards/ears-cnn.md), so a reviewer confirms before it weighs like one.
		Flags: []FlagType{{Type: Earphones, Severity: store.SeverityDetection, Weight: 0.4,
			Doc: "Earphones or headphones seen on an ear in view; the ear crops are in the flag's evidence."}},
		Settings: []Setting{
			// 5 s: an earbud is worn for the exam, not for a moment; single frames of hair or an
			// earring that look like one do not last.
			{Key: SettingEarphonesAfter, Unit: Seconds, Default: 5, Min: 0.5, Max: 600,
				Doc: "Earphones seen on the main face this long raise EARPHONES."},
			{Key: SettingEarphonesScore, Unit: Score, Min: 0.05, Max: 0.99,
				ZeroMeans: "the ear model's own threshold (the analyzer's present verdict)",
				Doc:       "Earphones score at or above which earphones count as worn."}},
		Labels: []string{"earphones"},
		// score: the main face's earphones score (highest over its ears in view); present: 1
		// when it reaches the model's threshold. Nothing when no ear is in view.
		Observe: func(obs *analyzers.Observation, _ string, _ Params) Signal {
			i := analyzers.MainFace(obs.Faces, 0)
			if i < 0 || obs.Faces[i].Earphones == nil || obs.Faces[i].Ears == nil {
				return nil
			}
			a := obs.Faces[i].Earphones
			s := Signal{"score": a.Score}
			if a.Present {
				s["present"] = 1
			}
			return s
		},
		Rules: func(p Params) []FrameRule {
			threshold := p.Value(SettingEarphonesScore)
			return []FrameRule{{Type: Earphones, Camera: analyzers.CameraMain, After: p.Duration(SettingEarphonesAfter),
				Holds: func(f *Frame) bool {
					s := f.Signal("earphones")
					if threshold == 0 {
						return s["present"] == 1
					}
					v, ok := s.Get("score")
					return ok && float64(v) >= threshold
				},
				Confidence: func(f *Frame) float64 { return float64(f.Signal("earphones")["score"]) },
				Measure: &Measure{Name: "earphones_score", Threshold: func(*Frame) float64 { return threshold },
					Value: func(f *Frame) (float64, bool) { s, ok := f.Signal("earphones").Get("score"); return float64(s), ok }}}}
		},
	})
}
