package rules

import (
	"proctor/analyzers"
	"proctor/store"
)

// ExtraPerson: someone besides the candidate is in view, seen by the person detector. Main
// camera: a second body whose face is not seen; evidence camera (which films the candidate
// from behind): more than one body.
const ExtraPerson = "EXTRA_PERSON"

// SettingExtraPersonAfter is the extra-person check's duration.
const SettingExtraPersonAfter = "extra_person_after_sec"

func init() {
	Register(Check{
		Name:      "persons",
		Doc:       "Nobody besides the candidate is in either camera's view.",
		Input:     InputFrames,
		Analyzers: []string{"faces", "persons"},
		DecidedBy: "persons",
		Flags: []FlagType{{Type: ExtraPerson, Severity: store.SeverityAlert, Weight: 0.6,
			Doc: "A second person in view: someone who may be helping."}},
		Settings: []Setting{
			// 2 s, as MULTIPLE_FACES: at 1 frame/s three frames in a row, so someone walking
			// through the back of the room in one frame raises nothing.
			{Key: SettingExtraPersonAfter, Unit: Seconds, Default: 2, Min: 0.5, Max: 600,
				Doc: "More people than the candidate this long raises EXTRA_PERSON."}},
		Labels: []string{"persons"},
		// n: people in the room (found, less those on a screen or poster: the evidence camera
		// sees the candidate's own video on the laptop); screen: people on screens; faces: faces
		// found (two faces are MULTIPLE_FACES' business); second: the second person's score.
		// Absent when the detector did not run on the frame.
		Observe: func(obs *analyzers.Observation, _ string, _ Params) Signal {
			if obs.Persons == nil {
				return nil
			}
			var onScreen int
			var best, second float32 // scores of the people in the room
			for _, o := range obs.Objects {
				switch {
				case o.Class != analyzers.ClassPerson:
				case o.OnScreen:
					onScreen++
				case o.Score > best:
					best, second = o.Score, best
				case o.Score > second:
					second = o.Score
				}
			}
			return Signal{"n": float32(*obs.Persons - onScreen), "screen": float32(onScreen), "faces": float32(len(obs.Faces)),
				"second": second}
		},
		Rules: func(p Params) []FrameRule {
			after := p.Duration(SettingExtraPersonAfter)
			conf := func(f *Frame) float64 { return float64(f.Signal("persons")["second"]) }
			return []FrameRule{
				// A second body whose face is not seen (turned away, out of frame). Two visible
				// faces are MULTIPLE_FACES: one situation, one flag for the reviewer.
				{Type: ExtraPerson, Camera: analyzers.CameraMain, After: after, Confidence: conf,
					Holds: func(f *Frame) bool {
						s := f.Signal("persons")
						n, ok := s.Get("n")
						return ok && n >= 2 && s["faces"] < 2
					}},
				{Type: ExtraPerson, Camera: analyzers.CameraEvidence, After: after, Confidence: conf,
					Holds: func(f *Frame) bool { n, ok := f.Signal("persons").Get("n"); return ok && n >= 2 }},
			}
		},
	})
}
