package rules

import (
	"proctor/analyzers"
	"proctor/store"
)

// NoRoomScan: no 360° scan at the start of the evidence recording.
const NoRoomScan = "NO_ROOM_SCAN"

// Settings of the room-scan check.
const (
	SettingScanWithin     = "scan_within_min"
	SettingScanMinDegrees = "scan_min_degrees"
)

// The room scan: reported by the platform, or measured as camera rotation at the start of the
// evidence recording.
func init() {
	Register(Check{
		Name:      "room-scan",
		Doc:       "The evidence phone scans the room 360° when its recording starts.",
		Input:     InputEvents,
		Analyzers: []string{"cameramotion"},
		Flags: []FlagType{{Type: NoRoomScan, Severity: store.SeverityDetection, Weight: 0.3,
			Doc: "No full room scan at the start of the evidence recording."}},
		Settings: []Setting{
			{Key: SettingScanWithin, Unit: Minutes, Default: 5, Min: 0.5, Max: 24 * 60,
				Doc: "The scan must happen within this long of the evidence recording's start."},
			// 300: a hand-held turn rarely measures a clean 360.
			{Key: SettingScanMinDegrees, Unit: Degrees, Default: 300, Min: 30, Max: 360,
				Doc: "Camera rotation that counts as a full scan when the platform sends no room_scan_completed."},
		},
		// yaw: how far the evidence camera turned since the session's previous evidence frame.
		Observe: func(obs *analyzers.Observation, camera string, _ Params) Signal {
			if camera != analyzers.CameraEvidence || obs.CameraYaw == nil {
				return nil
			}
			if obs.CameraYawLost {
				return Signal{"yaw": *obs.CameraYaw, "lost": 1}
			}
			return Signal{"yaw": *obs.CameraYaw}
		},
		Timing: func(v *TimingView, p Params, raise func(FlagSpec)) {
			within := p.Duration(SettingScanWithin).Milliseconds()
			rec := v.EvidenceStart()
			if rec <= 0 || (v.Now < rec+within && v.Now < v.Start) || v.First("room_scan_completed") != nil {
				return
			}
			var yaw []float32
			lost := 0
			for i := range v.Evidence {
				if f := &v.Evidence[i]; f.CapturedAtMs >= rec && f.CapturedAtMs <= rec+within {
					s := f.Signal("room-scan")
					yaw = append(yaw, s["yaw"])
					if s["lost"] > 0 {
						lost++
					}
				}
			}
			// turns_unmeasured: frames whose turn from the one before could not be measured
			// (they add nothing to the coverage); many of them make the flag doubtful.
			if cov := coverage(yaw); cov < p.Value(SettingScanMinDegrees) {
				raise(FlagSpec{NoRoomScan, "evidence", rec, rec + within, map[string]any{
					"degrees_covered": cov, "required_degrees": p.Value(SettingScanMinDegrees),
					"evidence_frames": len(yaw), "turns_unmeasured": lost}})
			}
		},
		Deadlines: func(v *TimingView, p Params) []int64 {
			if rec := v.EvidenceStart(); rec > 0 {
				return []int64{rec + p.Duration(SettingScanWithin).Milliseconds()}
			}
			return nil
		},
	})
}
