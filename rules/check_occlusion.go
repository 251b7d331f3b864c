package rules

import (
	"proctor/analyzers"
	"proctor/store"
)

// FaceOccluded: the candidate's face is partly covered (hand, object, frame edge) other than by
// a mask, which raises MASK instead.
const FaceOccluded = "FACE_OCCLUDED"

// Settings of the occlusion check.
const (
	SettingOccludedAfter = "occluded_after_sec"
	SettingOccludedScore = "occluded_score"
)

// DefaultOccludedScore is the attire-cnn model's own occlusion threshold (see DefaultMaskScore).
const DefaultOccludedScore = 0.78

func init() {
	Register(Check{
		Name:      "occlusion",
		Doc:       "The candidate's face is not covered.",
		Input:     InputFrames,
		Analyzers: []string{"faces", "landmarks", "attire"},
		DecidedBy: "attire",
		Flags: []FlagType{{Type: FaceOccluded, Severity: store.SeverityDetection, Weight: 0.15,
			Doc: "The face is partly covered: mostly a hand on the chin or a sip of water."}},
		Settings: []Setting{
			// 5 s: a hand on the chin while thinking, or a sip of water, is normal for a moment.
			{Key: SettingOccludedAfter, Unit: Seconds, Default: 5, Min: 0.5, Max: 600,
				Doc: "The main face covered this long raises FACE_OCCLUDED."},
			{Key: SettingOccludedScore, Unit: Score, Default: DefaultOccludedScore, Min: 0.05, Max: 0.99,
				Doc: "Occlusion score at or above which the face counts as covered."}},
		Labels: []string{"occluded"},
		// score: the main face's occlusion score; mask: its mask score (a masked face is MASK's).
		Observe: func(obs *analyzers.Observation, _ string, _ Params) Signal {
			s := mainFaceAttribute(obs, "occluded")
			if m := mainFaceAttribute(obs, "mask"); s != nil && m != nil {
				s["mask"] = m["score"]
			}
			return s
		},
		Rules: func(p Params) []FrameRule {
			threshold, maskThreshold := p.Value(SettingOccludedScore), p.Value(SettingMaskScore)
			return []FrameRule{{Type: FaceOccluded, Camera: analyzers.CameraMain, After: p.Duration(SettingOccludedAfter),
				Holds: func(f *Frame) bool {
					s := f.Signal("occlusion")
					v, ok := s.Get("score")
					m, masked := s.Get("mask")
					return ok && float64(v) >= threshold && !(masked && float64(m) >= maskThreshold)
				},
				Confidence: func(f *Frame) float64 { return float64(f.Signal("occlusion")["score"]) },
				Measure: &Measure{Name: "occluded_score", Threshold: func(*Frame) float64 { return threshold },
					Value: func(f *Frame) (float64, bool) { s, ok := f.Signal("occlusion").Get("score"); return float64(s), ok }}}}
		},
	})
}
