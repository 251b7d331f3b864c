package rules

import "proctor/store"

// UploadLate: a recording not uploaded within 30 minutes after the end.
const UploadLate = "UPLOAD_LATE"

// SettingUploadWithin is how long after the end both recordings must be uploaded.
const SettingUploadWithin = "upload_within_min"

// Uploads are judged only once the deadline passed (the scheduler wakes up for it), by the
// upload's own captured_at: an upload confirmed in time whose event arrives late withdraws the
// flag.
func init() {
	Register(Check{
		Name:  "upload",
		Doc:   "The main and evidence recordings are uploaded and confirmed within 30 minutes after the end.",
		Input: InputEvents,
		Flags: []FlagType{{Type: UploadLate, Severity: store.SeverityDetection, Weight: 0.3,
			Doc: "A recording was not uploaded in time."}},
		Settings: []Setting{{Key: SettingUploadWithin, Unit: Minutes, Default: 30, Min: 1, Max: 7 * 24 * 60,
			Doc: "Both recordings must be uploaded within this long after the end."}},
		Timing: func(v *TimingView, p Params, raise func(FlagSpec)) {
			within := p.Duration(SettingUploadWithin)
			deadline := v.End + within.Milliseconds()
			if v.Now < deadline {
				return
			}
			done := map[string]bool{}
			for _, ev := range v.Events {
				if ev.Type == "upload_completed" && ev.CapturedAtMs <= deadline {
					done[payloadString(ev.Payload, "camera")] = true
				}
			}
			for _, cam := range []string{"main", "evidence"} {
				if !done[cam] {
					raise(FlagSpec{UploadLate, cam, v.End, deadline, map[string]any{"within_minutes": within.Minutes()}})
				}
			}
		},
		Deadlines: func(v *TimingView, p Params) []int64 {
			return []int64{v.End + p.Duration(SettingUploadWithin).Milliseconds()}
		},
	})
}
