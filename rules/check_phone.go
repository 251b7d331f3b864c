package rules

import (
	"proctor/analyzers"
	"proctor/store"
)

// PhoneVisible: a mobile phone in either camera (the evidence camera is itself a phone and does
// not see itself).
const PhoneVisible = "PHONE_VISIBLE"

// SettingPhoneVisibleAfter is the phone check's duration.
const SettingPhoneVisibleAfter = "phone_visible_after_sec"

func init() {
	Register(Check{
		Name:      "phone",
		Doc:       "No mobile phone in reach during the exam.",
		Input:     InputFrames,
		Analyzers: []string{"persons"},
		DecidedBy: "persons",
		Flags: []FlagType{{Type: PhoneVisible, Severity: store.SeverityAlert, Weight: 0.5,
			Doc: "A phone in view during an oral exam: notes or a helper."}},
		Settings: []Setting{
			// 2 s: one frame of a phone-like object (a remote, a dark wallet) raises nothing.
			{Key: SettingPhoneVisibleAfter, Unit: Seconds, Default: 2, Min: 0.5, Max: 600,
				Doc: "A phone in view this long raises PHONE_VISIBLE."}},
		// n: phones found; score: the best phone's. Absent when the detector did not run.
		Observe: func(obs *analyzers.Observation, _ string, _ Params) Signal {
			if obs.Phones == nil {
				return nil
			}
			return Signal{"n": float32(*obs.Phones), "score": analyzers.Best(obs.Objects, analyzers.ClassPhone)}
		},
		Rules: func(p Params) []FrameRule {
			return []FrameRule{{Type: PhoneVisible, After: p.Duration(SettingPhoneVisibleAfter),
				Holds:      func(f *Frame) bool { n, ok := f.Signal("phone").Get("n"); return ok && n >= 1 },
				Confidence: func(f *Frame) float64 { return float64(f.Signal("phone")["score"]) }}}
		},
	})
}
