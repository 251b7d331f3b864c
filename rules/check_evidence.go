package rules

import "proctor/store"

// Flag types of the evidence-recording check.
const (
	EvidenceGap     = "EVIDENCE_GAP"     // evidence recording interrupted longer than allowed
	EvidenceStopped = "EVIDENCE_STOPPED" // phone stopped recording before the end
)

// SettingEvidenceMaxGap is the longest allowed interruption of the evidence recording.
const SettingEvidenceMaxGap = "evidence_max_gap_sec"

// Evidence recording gaps come from the evidence frames' own timestamps: between frames, and
// from the last frame to the end once the exam is over.
func init() {
	Register(Check{
		Name:  "evidence-recording",
		Doc:   "The evidence phone records without interruption until the end of the exam.",
		Input: InputEvents,
		Flags: []FlagType{
			{Type: EvidenceGap, Severity: store.SeverityAlert, Weight: 0.4, Doc: "The evidence recording was interrupted."},
			{Type: EvidenceStopped, Severity: store.SeverityAlert, Weight: 0.5, Doc: "The phone stopped recording before the end."},
		},
		Settings: []Setting{{Key: SettingEvidenceMaxGap, Unit: Seconds, Default: 30, Min: 1, Max: 3600,
			Doc: "A gap in the evidence recording longer than this raises EVIDENCE_GAP."}},
		Timing: func(v *TimingView, p Params, raise func(FlagSpec)) {
			if n := len(v.Evidence); n > 0 {
				gap := p.Duration(SettingEvidenceMaxGap).Milliseconds()
				prev := v.Evidence[0].CapturedAtMs
				for _, f := range v.Evidence[1:] {
					if f.CapturedAtMs-prev > gap && prev < v.End {
						raise(FlagSpec{EvidenceGap, "evidence", prev, f.CapturedAtMs, map[string]any{"seconds": float64(f.CapturedAtMs-prev) / 1000}})
					}
					prev = f.CapturedAtMs
				}
				if v.Now >= v.End && v.End-prev > gap {
					raise(FlagSpec{EvidenceGap, "evidence", prev, v.End, map[string]any{"seconds": float64(v.End-prev) / 1000, "until_end": true}})
				}
			}
			if ev := v.First("evidence_recording_stopped"); ev != nil && ev.CapturedAtMs < v.End {
				ended := v.First("exam_ended")
				if ended == nil || ev.CapturedAtMs < ended.CapturedAtMs {
					raise(FlagSpec{EvidenceStopped, "evidence", ev.CapturedAtMs, v.End, nil})
				}
			}
		},
		Deadlines: func(v *TimingView, _ Params) []int64 { return []int64{v.End} },
	})
}
