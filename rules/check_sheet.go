package rules

import (
	"proctor/analyzers"
	"proctor/store"
)

// SheetWriting: the A4 sheet shown to the evidence camera before the start carries writing or
// drawing (the desk may hold only one blank sheet), or, where the exam forbids notes, the sheet
// carries writing during the exam.
const SheetWriting = "A4_HAS_WRITING"

// Settings of the writing check.
const (
	SettingSheetWritingAfter = "sheet_writing_after_sec"
	SettingSheetBlankAfter   = "sheet_blank_after_start_min"
)

func init() {
	Register(Check{
		Name:      "sheet",
		Doc:       "The only sheet on the desk is one blank A4 sheet.",
		Input:     InputFrames,
		Analyzers: []string{"sheet"},
		DecidedBy: "sheet",
		Flags: []FlagType{{Type: SheetWriting, Severity: store.SeverityAlert, Weight: 0.3,
			Doc: "The A4 sheet shown to the evidence camera before the start carries writing (or during the exam, where notes are forbidden)."}},
		Settings: []Setting{
			// 2 s, so one frame where glare or a shadow looks like ink raises nothing.
			{Key: SettingSheetWritingAfter, Unit: Seconds, Default: 2, Min: 0.5, Max: 600,
				Doc: "A sheet with writing in view this long raises A4_HAS_WRITING."},
			// The rules ask for a blank sheet on the desk before the start; the pen is there
			// for notes, so writing while answering is the exam's choice.
			{Key: SettingSheetBlankAfter, Unit: Minutes, Min: 1, Max: 24 * 60,
				ZeroMeans: "notes allowed: only the sheet shown before the start must be blank",
				Doc:       "Notes forbidden: writing on the sheet this long into the answering also raises A4_HAS_WRITING (the exam's length: no notes at all)."}},
		// writing: how sure the sheet analyzer is that the sheet in view carries writing; only
		// on frames that show a sheet with writing.
		Observe: func(obs *analyzers.Observation, _ string, _ Params) Signal {
			if sh := obs.Sheet; sh != nil && sh.Present && sh.Writing {
				return Signal{"writing": sh.WritingScore}
			}
			return nil
		},
		Rules: func(p Params) []FrameRule {
			blankFor := p.Duration(SettingSheetBlankAfter).Milliseconds()
			return []FrameRule{{Type: SheetWriting, Camera: analyzers.CameraEvidence, After: p.Duration(SettingSheetWritingAfter),
				Holds:      func(f *Frame) bool { _, ok := f.Signal("sheet").Get("writing"); return ok },
				Confidence: func(f *Frame) float64 { return float64(f.Signal("sheet")["writing"]) },
				// The desk check is before the start; after it, notes are the exam's choice. With
				// no known start every frame counts.
				During: func(sess *store.Session, atMs int64) bool {
					start := AnsweringStart(sess)
					return start == 0 || atMs < start+blankFor
				}}}
		},
	})
}
