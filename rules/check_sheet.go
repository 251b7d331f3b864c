package rules

import (
	"proctor/analyzers"
	"proctor/store"
)

// SheetWriting: the A4 sheet shown to the evidence camera carries writing or drawing (the desk
// may hold only one blank sheet).
const SheetWriting = "A4_HAS_WRITING"

// SettingSheetWritingAfter is the writing check's duration.
const SettingSheetWritingAfter = "sheet_writing_after_sec"

func init() {
	Register(Check{
		Name:      "sheet",
		Doc:       "The only sheet on the desk is one blank A4 sheet.",
		Input:     InputFrames,
		Analyzers: []string{"sheet"},
		DecidedBy: "sheet",
		Flags: []FlagType{{Type: SheetWriting, Severity: store.SeverityAlert, Weight: 0.3,
			Doc: "The A4 sheet shown to the evidence camera carries writing."}},
		Settings: []Setting{
			// 2 s, so one frame where glare or a shadow looks like ink raises nothing.
			{Key: SettingSheetWritingAfter, Unit: Seconds, Default: 2, Min: 0.5, Max: 600,
				Doc: "A sheet with writing in view this long raises A4_HAS_WRITING."}},
		// writing: how sure the sheet analyzer is that the sheet in view carries writing; only
		// on frames that show a sheet with writing.
		Observe: func(obs *analyzers.Observation, _ string, _ Params) Signal {
			if sh := obs.Sheet; sh != nil && sh.Present && sh.Writing {
				return Signal{"writing": sh.WritingScore}
			}
			return nil
		},
		Rules: func(p Params) []FrameRule {
			return []FrameRule{{Type: SheetWriting, Camera: analyzers.CameraEvidence, After: p.Duration(SettingSheetWritingAfter),
				Holds:      func(f *Frame) bool { _, ok := f.Signal("sheet").Get("writing"); return ok },
				Confidence: func(f *Frame) float64 { return float64(f.Signal("sheet")["writing"]) }}}
		},
	})
}
