package rules

import "proctor/store"

// Flag types of the exam-entry check.
const (
	EnteredBeforeOpen  = "ENTERED_BEFORE_OPEN"  // "enter exam" before it opens (15 min before)
	EnteredAfterStart  = "ENTERED_AFTER_START"  // no entry after the start
	AttachmentsNotRead = "ATTACHMENTS_NOT_READ" // entered before reading every attachment
)

// SettingEnterOpensBefore is when "enter exam" opens, before the start.
const SettingEnterOpensBefore = "enter_opens_before_min"

func init() {
	Register(Check{
		Name: "entry",
		Doc: "The candidate enters the exam in its window (15 minutes before the start, no entry after it), " +
			"having read every attachment.",
		Input: InputEvents,
		Flags: []FlagType{
			{Type: EnteredBeforeOpen, Severity: store.SeverityDetection, Weight: 0.1, Doc: "Entered before entry opened."},
			{Type: EnteredAfterStart, Severity: store.SeverityAlert, Weight: 0.4, Doc: "Entered after the start."},
			{Type: AttachmentsNotRead, Severity: store.SeverityDetection, Weight: 0.1,
				Doc: "Entered before marking every attachment read."},
		},
		Settings: []Setting{{Key: SettingEnterOpensBefore, Unit: Minutes, Default: 15, Min: 1, Max: 24 * 60,
			Doc: "\"Enter exam\" opens this long before the start."}},
		Timing: func(v *TimingView, p Params, raise func(FlagSpec)) {
			ev := v.First("exam_entered")
			if ev == nil {
				return
			}
			if ev.CapturedAtMs < v.Start-p.Duration(SettingEnterOpensBefore).Milliseconds() {
				raise(FlagSpec{EnteredBeforeOpen, "main", ev.CapturedAtMs, ev.CapturedAtMs, map[string]any{
					"minutes_before_start": float64(v.Start-ev.CapturedAtMs) / 60000}})
			}
			if ev.CapturedAtMs > v.Start {
				raise(FlagSpec{EnteredAfterStart, "main", ev.CapturedAtMs, ev.CapturedAtMs, map[string]any{
					"seconds_late": float64(ev.CapturedAtMs-v.Start) / 1000}})
			}
			if v.Session.Attachments > 0 {
				read := map[string]bool{}
				for _, a := range v.Events {
					if a.Type == "attachment_read" && a.CapturedAtMs <= ev.CapturedAtMs {
						read[payloadString(a.Payload, "attachment")] = true
					}
				}
				if len(read) < v.Session.Attachments {
					raise(FlagSpec{AttachmentsNotRead, "main", ev.CapturedAtMs, ev.CapturedAtMs, map[string]any{
						"read": len(read), "required": v.Session.Attachments}})
				}
			}
		},
		Deadlines: func(v *TimingView, _ Params) []int64 { return []int64{v.Start} },
	})
}
