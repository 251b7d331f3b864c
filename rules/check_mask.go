package rules

import (
	"proctor/analyzers"
	"proctor/store"
)

// Mask: the candidate's face is behind a mask.
const Mask = "MASK"

// Settings of the mask check.
const (
	SettingMaskAfter = "mask_after_sec"
	SettingMaskScore = "mask_score"
)

// DefaultMaskScore is the attire-cnn model's own mask threshold (models/manifests/attire-cnn.json
// vision.scores, chosen on its validation split; a test keeps them equal), so flags agree with
// the "present" the analyzer reports.
const DefaultMaskScore = 0.61

func init() {
	Register(Check{
		Name:      "mask",
		Doc:       "The candidate wears no mask (the face must be visible).",
		Input:     InputFrames,
		Analyzers: []string{"faces", "landmarks", "attire"},
		DecidedBy: "attire",
		Flags: []FlagType{{Type: Mask, Severity: store.SeverityDetection, Weight: 0.3,
			Doc: "The face is behind a mask: identity and lip movement unverifiable."}},
		Settings: []Setting{
			{Key: SettingMaskAfter, Unit: Seconds, Default: 3, Min: 0.5, Max: 600,
				Doc: "The main face masked this long raises MASK."},
			{Key: SettingMaskScore, Unit: Score, Default: DefaultMaskScore, Min: 0.05, Max: 0.99,
				Doc: "Mask score at or above which the face counts as masked."}},
		Labels:  []string{"mask"},
		Observe: func(obs *analyzers.Observation, _ string, _ Params) Signal { return mainFaceAttribute(obs, "mask") },
		Rules: func(p Params) []FrameRule {
			threshold := p.Value(SettingMaskScore)
			return []FrameRule{{Type: Mask, Camera: analyzers.CameraMain, After: p.Duration(SettingMaskAfter),
				Holds:      func(f *Frame) bool { s, ok := f.Signal("mask").Get("score"); return ok && float64(s) >= threshold },
				Confidence: func(f *Frame) float64 { return float64(f.Signal("mask")["score"]) },
				Measure: &Measure{Name: "mask_score", Threshold: func(*Frame) float64 { return threshold },
					Value: func(f *Frame) (float64, bool) { s, ok := f.Signal("mask").Get("score"); return float64(s), ok }}}}
		},
	})
}

// mainFaceAttribute is the main face's score of one attire label ("mask", "occluded") among the
// faces the attire analyzer classified (a prefix of Faces); nil when not measured.
func mainFaceAttribute(obs *analyzers.Observation, label string) Signal {
	n := 0
	for n < len(obs.Faces) && (obs.Faces[n].Mask != nil || obs.Faces[n].Occluded != nil) {
		n++
	}
	i := analyzers.MainFace(obs.Faces, n)
	if n == 0 || i < 0 {
		return nil
	}
	a := obs.Faces[i].Mask
	if label == "occluded" {
		a = obs.Faces[i].Occluded
	}
	if a == nil {
		return nil
	}
	return Signal{"score": a.Score}
}
