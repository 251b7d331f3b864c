package rules

import (
	"proctor/analyzers"
	"proctor/store"
)

// evidencePhone says whether a phone the main camera sees is where the exam puts the evidence
// phone: 45° behind the candidate, filming desk and screen. Then it is far behind the face —
// under 0.45 of the face's height (a 15 cm phone 1.5 m away against a 22 cm face 0.6 m away is
// ~0.27; one held to the ear ~0.7, one on the desk in front larger still) — clear of the face
// and hands (not within half a face of the face box), at or above shoulder height (not on the
// desk), and it stays put (analyzers.Object.Still: where the previous detection saw a phone; its
// first sighting counts, one frame, under the rule's duration). Without a face there is no
// scale to judge by, and the phone counts.
func evidencePhone(phone analyzers.Object, faces []analyzers.Face) bool {
	if !phone.Still {
		return false
	}
	var face *analyzers.Face
	for i := range faces {
		if face == nil || faces[i].Box[3] > face.Box[3] {
			face = &faces[i]
		}
	}
	if face == nil || face.Box[3] <= 0 {
		return false
	}
	fx, fy, fw, fh := face.Box[0], face.Box[1], face.Box[2], face.Box[3]
	px, py, pw, ph := phone.Box[0], phone.Box[1], phone.Box[2], phone.Box[3]
	if pw <= 0 || ph <= 0 || max(pw, ph) > 0.45*fh { // no size: nothing to judge by
		return false
	}
	// Half a face around the face box: a phone at the ear or held in front of the face.
	if px < fx+fw+fw/2 && px+pw > fx-fw/2 && py < fy+fh+fh/2 && py+ph > fy-fh/2 {
		return false
	}
	return py+ph/2 < fy+2*fh // above the desk: the face's bottom plus one face height
}

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
		// n: phones found, less the evidence phone behind the candidate in the main camera's
		// view (the rules require it there); behind: those left out; score: the best counted
		// phone's. Absent when the detector did not run.
		Observe: func(obs *analyzers.Observation, camera string, _ Params) Signal {
			if obs.Phones == nil {
				return nil
			}
			var behind int
			var score float32
			for _, o := range obs.Objects {
				switch {
				case o.Class != analyzers.ClassPhone:
				case camera == analyzers.CameraMain && evidencePhone(o, obs.Faces):
					behind++
				default:
					score = max(score, o.Score)
				}
			}
			return Signal{"n": float32(*obs.Phones - behind), "behind": float32(behind), "score": score}
		},
		Rules: func(p Params) []FrameRule {
			return []FrameRule{{Type: PhoneVisible, After: p.Duration(SettingPhoneVisibleAfter),
				Holds:      func(f *Frame) bool { n, ok := f.Signal("phone").Get("n"); return ok && n >= 1 },
				Confidence: func(f *Frame) float64 { return float64(f.Signal("phone")["score"]) }}}
		},
	})
}
