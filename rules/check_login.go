package rules

import "proctor/store"

// LoginOutsideWindow: face login before it opens (60 min before the start) or after the start.
const LoginOutsideWindow = "LOGIN_OUTSIDE_WINDOW"

// SettingLoginOpensBefore is when face login opens, before the start.
const SettingLoginOpensBefore = "login_opens_before_min"

func init() {
	Register(Check{
		Name:  "login",
		Doc:   "Face login happens in its window: from 60 minutes before the start until the start.",
		Input: InputEvents,
		Flags: []FlagType{{Type: LoginOutsideWindow, Severity: store.SeverityDetection, Weight: 0.2,
			Doc: "Face login before it opened or after the start."}},
		Settings: []Setting{{Key: SettingLoginOpensBefore, Unit: Minutes, Default: 60, Min: 1, Max: 24 * 60,
			Doc: "Face login opens this long before the start."}},
		Timing: func(v *TimingView, p Params, raise func(FlagSpec)) {
			ev := v.First("face_login")
			if ev == nil {
				return
			}
			window := p.Duration(SettingLoginOpensBefore)
			if ev.CapturedAtMs < v.Start-window.Milliseconds() || ev.CapturedAtMs > v.Start {
				raise(FlagSpec{LoginOutsideWindow, "main", ev.CapturedAtMs, ev.CapturedAtMs, map[string]any{
					"minutes_before_start": float64(v.Start-ev.CapturedAtMs) / 60000, "window_minutes": window.Minutes()}})
			}
		},
	})
}
