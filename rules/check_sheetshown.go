package rules

import (
	"math"

	"proctor/analyzers"
	"proctor/store"
)

// SheetNotShown: the A4 sheet was not shown front and back in the 15 minutes before the start.
const SheetNotShown = "A4_NOT_SHOWN"

// SettingSheetWindow is how long before the start the sheet must be shown.
const SettingSheetWindow = "sheet_window_min"

// How much the sheet's outline must change for the camera to have seen it turned over, as the
// mean corner displacement over the outline's diagonal. A later sighting counts as the other
// side when none of its frames comes within 0.03 of an outline seen before: the detector's
// outline of a still sheet moves by a median 0.000 and p90 0.004 between frames, but 6.5% of
// re-detections jump (another corner fit; analyzers.TestSheetOutlineJitter), so single frames
// are not trusted — a window or poster detected now and then keeps matching its earlier
// outlines, and a sighting needs 2 frames. Within one sighting, a jump of 0.25 between
// consecutive frames (turned within a second at 1 frame/s) counts: the largest jitter seen was
// 0.115.
const (
	sheetTurnAcrossGap  = 0.03
	sheetTurnWithinView = 0.25
	sheetKnownOutlines  = 64 // distinct outlines remembered (a still window keeps one or two)
)

// sheetQuadKeys name the corners (TL, TR, BR, BL) in the check's signal.
var sheetQuadKeys = [4][2]string{{"x0", "y0"}, {"x1", "y1"}, {"x2", "y2"}, {"x3", "y3"}}

// The A4 sheet, front and back, in the window before the start: from the platform's events or,
// failing those, from the evidence camera: a blank sheet seen, then seen again with its outline
// changed (turned over), not just seen twice.
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
		// blank: the evidence frame shows a blank sheet; x0..y3: its outline (corners in pixels).
		Observe: func(obs *analyzers.Observation, camera string, _ Params) Signal {
			sh := obs.Sheet
			if camera != analyzers.CameraEvidence || sh == nil || !sh.Present || sh.Writing {
				return nil
			}
			s := Signal{"blank": 1}
			for i, k := range sheetQuadKeys {
				s[k[0]], s[k[1]] = sh.Quad[i][0], sh.Quad[i][1]
			}
			return s
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
			if sides["front"] && sides["back"] {
				return
			}
			sh := sheetSides(v.Evidence, from, v.Start)
			if sh.turned {
				return
			}
			details := map[string]any{"sides_reported": keys(sides), "camera_sightings": sh.sightings, "camera_turned": false}
			// The frames the reviewer compares (the page shows them side by side).
			if sh.front != nil {
				details["front"] = map[string]any{"camera": analyzers.CameraEvidence, "seq": sh.front.Seq, "captured_at_ms": sh.front.CapturedAtMs}
			}
			if sh.back != nil {
				details["back"] = map[string]any{"camera": analyzers.CameraEvidence, "seq": sh.back.Seq, "captured_at_ms": sh.back.CapturedAtMs}
				details["outline_change"] = math.Round(sh.change*1000) / 1000
			}
			raise(FlagSpec{SheetNotShown, "evidence", from, v.Start, details})
		},
		Deadlines: func(v *TimingView, _ Params) []int64 { return []int64{v.Start} },
	})
}

// sheetShowing is what the evidence camera saw of the sheet in a window.
type sheetShowing struct {
	sightings   int     // runs of frames showing a blank sheet
	turned      bool    // the outline changed as a sheet turned over would
	front, back *Frame  // first sighting's frame, and the frame after the turn (or the last sighting's)
	change      float64 // how far back's outline is from the nearest one seen before it
}

// sheetSides follows the blank sheet through the evidence frames in [from, to].
func sheetSides(frames []Frame, from, to int64) sheetShowing {
	var out sheetShowing
	var known []Signal // distinct outlines of the earlier sightings
	var run []*Frame   // the current sighting's frames
	// nearest is the outline change from s to the closest known outline (+Inf: none known;
	// -1: s has no outline, as frames stored before outlines were kept).
	nearest := func(s Signal) float64 {
		d := math.Inf(1)
		for _, k := range known {
			c, ok := outlineChange(k, s)
			if !ok {
				return -1
			}
			d = min(d, c)
		}
		return d
	}
	// endRun judges a finished sighting against the earlier ones and remembers its outlines.
	endRun := func() {
		if len(run) == 0 {
			return
		}
		if out.front == nil {
			out.front = run[0]
		} else if !out.turned {
			d, legacy := math.Inf(1), false
			for _, f := range run {
				n := nearest(f.Signal("sheet-shown"))
				legacy = legacy || n < 0
				d = min(d, n)
			}
			switch {
			case legacy: // no outlines stored: two sightings count, as they did
				out.turned, out.back, out.change = true, run[0], 0
			case len(run) >= 2 && d >= sheetTurnAcrossGap:
				out.turned, out.back, out.change = true, run[0], d
			default:
				out.back, out.change = run[0], max(d, 0)
			}
		}
		for _, f := range run {
			s := f.Signal("sheet-shown")
			if n := nearest(s); n >= sheetTurnAcrossGap && len(known) < sheetKnownOutlines {
				known = append(known, s)
			}
		}
		run = run[:0]
	}
	for i := range frames {
		f := &frames[i]
		if f.CapturedAtMs < from || f.CapturedAtMs > to {
			continue
		}
		s := f.Signal("sheet-shown")
		if _, blank := s.Get("blank"); !blank {
			endRun()
			continue
		}
		if len(run) == 0 {
			out.sightings++
		} else if d, ok := outlineChange(run[len(run)-1].Signal("sheet-shown"), s); ok && d >= sheetTurnWithinView && !out.turned {
			// Turned over between two frames without leaving the view.
			if out.front == nil {
				out.front = run[0]
			}
			out.turned, out.back, out.change = true, f, d
		}
		run = append(run, f)
	}
	endRun()
	return out
}

// outlineChange is the mean displacement of the sheet's corners between two frames over the
// first outline's diagonal; false when either frame has no outline.
func outlineChange(a, b Signal) (float64, bool) {
	var sum float64
	for _, k := range sheetQuadKeys {
		_, ok1 := a.Get(k[0])
		_, ok2 := b.Get(k[0])
		if !ok1 || !ok2 {
			return 0, false
		}
		sum += math.Hypot(float64(a[k[0]]-b[k[0]]), float64(a[k[1]]-b[k[1]]))
	}
	diag := math.Hypot(float64(a["x2"]-a["x0"]), float64(a["y2"]-a["y0"]))
	if diag <= 0 {
		return 0, false
	}
	return sum / 4 / diag, true
}
