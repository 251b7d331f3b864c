package rules

import (
	"proctor/analyzers"
	"proctor/store"
)

// SheetNotShown: the A4 sheet was not shown front and back in the 15 minutes before the start.
const SheetNotShown = "A4_NOT_SHOWN"

// SettingSheetWindow is how long before the start the sheet must be shown.
const SettingSheetWindow = "sheet_window_min"

// The A4 sheet, front and back, in the window before the start: from the platform's events or,
// failing those, from the evidence camera (two separate sightings of a blank sheet: it was
// turned over in between).
func init() {
	Register(Check{
		Name:      "sheet-shown",
		Doc:       "The blank A4 sheet is shown front and back to the evidence camera within 15 minutes before the start.",
		Input:     InputEvents,
		Analyzers: []string{"sheet"},
		Flags: []FlagType{{Type: SheetNotShown, Severity: store.SeverityDetection, Weight: 0.3,
			Doc: "The sheet was not shown front and back before the start."}},
		Settings: []Setting{{Key: SettingSheetWindow, Unit: Minutes, Default: 15, Min: 1, Max: 24 * 60,
			Doc: "The sheet must be shown within this long before the start."}},
		// blank: the evidence frame shows a blank sheet.
		Observe: func(obs *analyzers.Observation, camera string, _ Params) Signal {
			if sh := obs.Sheet; camera == analyzers.CameraEvidence && sh != nil && sh.Present && !sh.Writing {
				return Signal{"blank": 1}
			}
			return nil
		},
		Timing: func(v *TimingView, p Params, raise func(FlagSpec)) {
			if v.Now < v.Start {
				return
			}
			from := v.Start - p.Duration(SettingSheetWindow).Milliseconds()
			sides := map[string]bool{}
			for _, ev := range v.Events {
				if ev.Type == "a4_sheet_shown" && ev.CapturedAtMs >= from && ev.CapturedAtMs <= v.Start {
					sides[payloadString(ev.Payload, "side")] = true
				}
			}
			sightings, seen := 0, false
			for i := range v.Evidence {
				f := &v.Evidence[i]
				if f.CapturedAtMs < from || f.CapturedAtMs > v.Start {
					continue
				}
				_, blank := f.Signal("sheet-shown").Get("blank")
				if blank && !seen {
					sightings++
				}
				seen = blank
			}
			if !(sides["front"] && sides["back"]) && sightings < 2 {
				raise(FlagSpec{SheetNotShown, "evidence", from, v.Start, map[string]any{
					"sides_reported": keys(sides), "camera_sightings": sightings}})
			}
		},
		Deadlines: func(v *TimingView, _ Params) []int64 { return []int64{v.Start} },
	})
}
