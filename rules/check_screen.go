package rules

import "proctor/store"

// Flag types of the screen check: the client reports them while the candidate answers.
const (
	WindowSwitch        = "WINDOW_SWITCH"        // focus lost / window switched while answering
	ScreenshotAttempted = "SCREENSHOT_ATTEMPTED" // screenshot while answering
	MultipleScreens     = "MULTIPLE_SCREENS"     // a second display while answering
)

// screenEvents maps the client's events to the flags they raise while answering.
var screenEvents = map[string]string{"focus_lost": WindowSwitch, "window_switched": WindowSwitch,
	"screenshot_attempted": ScreenshotAttempted, "multiple_screens_detected": MultipleScreens}

func init() {
	Register(Check{
		Name:  "screen",
		Doc:   "One screen, no window switching and no screenshots while answering.",
		Input: InputEvents,
		Flags: []FlagType{
			{Type: WindowSwitch, Severity: store.SeverityAlert, Weight: 0.5, Doc: "The exam window lost focus while answering."},
			{Type: ScreenshotAttempted, Severity: store.SeverityAlert, Weight: 0.6, Doc: "A screenshot was attempted while answering."},
			{Type: MultipleScreens, Severity: store.SeverityAlert, Weight: 0.5, Doc: "A second display while answering."},
		},
		Timing: func(v *TimingView, _ Params, raise func(FlagSpec)) {
			for _, ev := range v.Events {
				if typ := screenEvents[ev.Type]; typ != "" && PhaseAt(v.Spans, ev.CapturedAtMs) == PhaseAnswering {
					raise(FlagSpec{typ, "main", ev.CapturedAtMs, ev.CapturedAtMs, map[string]any{"event": ev.Type, "event_seq": ev.Seq}})
				}
			}
		},
	})
}
