package rules

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"proctor/internal/testdb"
	"proctor/store"
)

// A4_HAS_WRITING is about the desk check before the start: writing on the sheet while
// answering raises nothing unless the exam forbids notes (sheet_blank_after_start_min).
func TestSheetWritingBeforeStartOnly(t *testing.T) {
	start := time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)
	secs := func(from, to int) []int64 { // writing seen on one evidence frame per second
		var out []int64
		for s := from; s <= to; s++ {
			out = append(out, start.Add(time.Duration(s)*time.Second).UnixMilli())
		}
		return out
	}
	forbidden := ExamSettings{Values: Params{SettingSheetBlankAfter: 30}} // no notes in a 30 min exam
	cases := []struct {
		name      string
		settings  ExamSettings
		answering time.Duration // answering_started, from the scheduled start (Session.Phases)
		frames    []int64
		want      string // the flag's [start, end] in s from the start, or ""
	}{
		{"written sheet shown before the start", ExamSettings{}, 0, secs(-600, -595), "[-600 -595]"},
		{"notes while answering, notes allowed (default)", ExamSettings{}, 0, secs(60, 120), ""},
		{"notes while answering, notes forbidden", forbidden, 0, secs(60, 120), "[60 120]"},
		{"writing across the start: the part before it", ExamSettings{}, 0, secs(-4, 10), "[-4 -1]"},
		{"answering started early: writing after it is notes", ExamSettings{}, -2 * time.Minute, secs(-100, -90), ""},
		{"one second of writing before the start raises nothing", ExamSettings{}, 0, secs(-10, -9), ""},
	}
	for _, b := range testdb.Open(t) {
		for _, tc := range cases {
			t.Run(b.Name+"/"+tc.name, func(t *testing.T) {
				ctx := context.Background()
				eng := New(Config{}).ForExam(tc.settings)
				sess := &store.Session{OrgID: "org", ExamID: "e", CandidateID: "c", ScheduledStart: start, DurationSec: 1800}
				if tc.answering != 0 {
					spans, _ := json.Marshal([]PhaseSpan{{Phase: PhaseWaiting, StartMs: start.Add(-10 * time.Minute).UnixMilli()},
						{Phase: PhaseAnswering, StartMs: start.Add(tc.answering).UnixMilli()}})
					sess.Phases = string(spans)
				}
				if err := b.Store.CreateSession(ctx, sess); err != nil {
					t.Fatal(err)
				}
				for i, at := range tc.frames {
					storeAndApply(t, b.Store.DB, eng, &store.FrameResult{SessionID: sess.ID, Camera: "evidence", Seq: int64(i), CapturedAtMs: at,
						Signals: signals(t, map[string]Signal{"sheet": {"writing": 0.9}})}, sess)
				}
				flags, err := b.Store.SessionFlags(ctx, sess.ID)
				if err != nil {
					t.Fatal(err)
				}
				var got []string
				for _, f := range flags {
					if f.Type == SheetWriting {
						got = append(got, fmt.Sprint([]int64{(f.StartMs - start.UnixMilli()) / 1000, (f.EndMs - start.UnixMilli()) / 1000}))
					}
				}
				if strings.Join(got, " ") != tc.want {
					t.Errorf("A4_HAS_WRITING %v, want %q", got, tc.want)
				}
			})
		}
	}
}

// A4_NOT_SHOWN from the evidence camera alone: the sheet must be seen turned over (its
// outline changed), not just seen twice.
func TestSheetShownFrontAndBack(t *testing.T) {
	start := time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)
	sess := &store.Session{ScheduledStart: start, DurationSec: 1800, CreatedAt: start.Add(-time.Hour)}
	// quad is a sheet outline: a 200×283 px A4 at (x, y), its right side foreshortened by k.
	quad := func(x, y, k float32) Signal {
		return Signal{"blank": 1, "x0": x, "y0": y, "x1": x + 200*k, "y1": y + 10*(1-k), "x2": x + 200*k, "y2": y + 283 - 10*(1-k), "x3": x, "y3": y + 283}
	}
	window := Signal{"blank": 1, "x0": 500, "y0": 40, "x1": 700, "y1": 40, "x2": 700, "y2": 323, "x3": 500, "y3": 323}
	jitter := func(s Signal, d float32) Signal {
		o := Signal{}
		for k, v := range s {
			o[k] = v
			if k != "blank" {
				o[k] = v + d
			}
		}
		return o
	}
	type shot struct {
		sec int // from the start
		sig Signal
	}
	cases := []struct {
		name    string
		shots   []shot
		flagged bool
	}{
		{"shown, gone, shown again elsewhere (turned over)", []shot{{-300, quad(100, 50, 1)}, {-299, quad(102, 51, 1)}, {-298, nil}, {-297, quad(160, 70, 0.9)}, {-296, quad(161, 70, 0.9)}}, false},
		{"the other side seen on one frame only (not trusted)", []shot{{-300, quad(100, 50, 1)}, {-299, quad(102, 51, 1)}, {-298, nil}, {-297, quad(160, 70, 0.9)}, {-296, nil}}, true},
		{"a window whose outline jumps on one frame now and then", []shot{{-300, window}, {-299, window}, {-298, nil}, {-297, jitter(window, 12)}, {-296, window}, {-295, nil}, {-294, window}, {-293, jitter(window, -15)}}, true},
		{"turned within one sighting (outline jumps between frames)", []shot{{-300, quad(100, 50, 1)}, {-299, quad(100, 50, 0.35)}, {-298, quad(110, 55, 1)}}, false},
		{"a window detected now and then at the same pixels", []shot{{-300, window}, {-299, nil}, {-298, jitter(window, 1)}, {-200, nil}, {-199, window}}, true},
		{"held still and never turned", []shot{{-300, quad(100, 50, 1)}, {-299, quad(103, 52, 1)}, {-298, quad(105, 51, 1)}}, true},
		{"shown once", []shot{{-300, quad(100, 50, 1)}}, true},
		{"turned, but before the window", []shot{{-1200, quad(100, 50, 1)}, {-1199, nil}, {-1198, quad(160, 70, 1)}}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var frames []Frame
			for i, s := range tc.shots {
				f := Frame{Seq: int64(i + 1), CapturedAtMs: start.Add(time.Duration(s.sec) * time.Second).UnixMilli()}
				if s.sig != nil {
					f.signals = map[string]Signal{"sheet-shown": s.sig}
				}
				frames = append(frames, f)
			}
			v := newTimingView(sess, nil, frames, start.Add(time.Minute).UnixMilli())
			var got *FlagSpec
			for _, f := range New(Config{}).Timing(v) {
				if f.Type == SheetNotShown {
					got = &f
				}
			}
			if (got != nil) != tc.flagged {
				t.Fatalf("A4_NOT_SHOWN raised = %v, want %v", got != nil, tc.flagged)
			}
			if got != nil && len(tc.shots) > 1 && tc.shots[0].sec > -900 {
				// The reviewer sees the two frames the rule compared.
				front, _ := got.Details["front"].(map[string]any)
				if front == nil || front["seq"] != int64(1) {
					t.Errorf("details %v: want the first sighting as front", got.Details)
				}
				if tc.name != "held still and never turned" && got.Details["back"] == nil {
					t.Errorf("details %v: want the second sighting as back", got.Details)
				}
			}
		})
	}
}
