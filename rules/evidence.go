package rules

import (
	"time"

	"proctor/store"
)

// SheetWriting: the A4 sheet shown to the evidence camera carries writing or drawing (the desk
// may hold only one blank sheet).
const SheetWriting = "A4_HAS_WRITING"

// evidenceRules judge what the evidence camera shows of the desk.
func (e *Engine) evidenceRules() []FrameRule {
	return []FrameRule{
		// 2 s, so one frame where glare or a shadow looks like ink raises nothing.
		{SheetWriting, store.SeverityAlert, "evidence", 2 * time.Second,
			func(f *store.FrameResult) bool { return f.Sheet == 2 },
			func(f *store.FrameResult) float64 { return float64(f.SheetWritingScore) }, nil},
	}
}
