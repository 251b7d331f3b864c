package rules

import (
	"math"

	"proctor/analyzers"
	"proctor/store"
)

// LookingAway: the candidate's head is turned away from the screen.
const LookingAway = "LOOKING_AWAY"

// Settings of the head-pose check.
const (
	SettingLookingAwayAfter = "looking_away_after_sec"
	SettingYawLimit         = "yaw_limit_deg"
	SettingPitchLimit       = "pitch_limit_deg"
)

func init() {
	Register(Check{
		Name:      "headpose",
		Doc:       "The candidate looks at the exam screen, not at notes off to the side.",
		Input:     InputFrames,
		Analyzers: []string{"faces", "headpose"},
		DecidedBy: "headpose",
		Flags: []FlagType{{Type: LookingAway, Severity: store.SeverityDetection, Weight: 0.2,
			Doc: "The head turned beyond the limits: often reading notes, as often thinking."}},
		Settings: []Setting{
			// 5 s: glancing at the keyboard or thinking with the eyes up is normal; reading
			// something off to the side for five seconds is not.
			{Key: SettingLookingAwayAfter, Unit: Seconds, Default: 5, Min: 0.5, Max: 600,
				Doc: "The head turned beyond the limits this long raises LOOKING_AWAY."},
			// 35° and 25°: a laptop screen spans roughly ±20° horizontally and ±15° vertically
			// from the camera at arm's length, and the pose model errs by ~5–10° on frontal
			// faces (model card).
			{Key: SettingYawLimit, Unit: Degrees, Default: 35, Min: 5, Max: 90,
				Doc: "Head turn left/right (absolute) beyond which the candidate looks away."},
			{Key: SettingPitchLimit, Unit: Degrees, Default: 25, Min: 5, Max: 90,
				Doc: "Head tilt up/down (absolute) beyond which the candidate looks away."},
		},
		// yaw, pitch: the main face's pose in degrees.
		Observe: func(obs *analyzers.Observation, _ string, _ Params) Signal {
			i := analyzers.MainFace(obs.Faces, 0)
			if i < 0 || obs.Faces[i].Yaw == nil || obs.Faces[i].Pitch == nil {
				return nil
			}
			return Signal{"yaw": *obs.Faces[i].Yaw, "pitch": *obs.Faces[i].Pitch}
		},
		Rules: func(p Params) []FrameRule {
			yawLimit, pitchLimit := p.Value(SettingYawLimit), p.Value(SettingPitchLimit)
			excess := func(f *Frame) (float64, bool) {
				s := f.Signal("headpose")
				yaw, ok1 := s.Get("yaw")
				pitch, ok2 := s.Get("pitch")
				return math.Max(math.Abs(float64(yaw))-yawLimit, math.Abs(float64(pitch))-pitchLimit), ok1 && ok2
			}
			return []FrameRule{{
				Type: LookingAway, Camera: analyzers.CameraMain, After: p.Duration(SettingLookingAwayAfter),
				Holds: func(f *Frame) bool { x, ok := excess(f); return ok && x > 0 },
				// 0.5 just past the limit, 1 at 15° beyond it.
				Confidence: func(f *Frame) float64 { x, _ := excess(f); return clamp01(0.5 + x/30) },
				Measure: &Measure{Name: "yaw", Threshold: func(*Frame) float64 { return yawLimit },
					Value: func(f *Frame) (float64, bool) {
						v, ok := f.Signal("headpose").Get("yaw")
						return float64(v), ok
					}},
			}}
		},
	})
}
