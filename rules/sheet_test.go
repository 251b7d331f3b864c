package rules

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"proctor/internal/testdb"
	"proctor/store"
)

// A4_HAS_WRITING is about the desk check before the start: writing on the sheet while
// answering raises nothing unless the exam forbids notes (sheet_notes_forbidden).
func TestSheetWritingBeforeStartOnly(t *testing.T) {
	start := time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)
	secs := func(from, to int) []int64 { // writing seen on one evidence frame per second
		var out []int64
		for s := from; s <= to; s++ {
			out = append(out, start.Add(time.Duration(s)*time.Second).UnixMilli())
		}
		return out
	}
	forbidden := ExamSettings{Values: Params{SettingSheetNotesBanned: 1}}
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
					err := b.Store.DB.Transaction(func(tx *gorm.DB) error {
						fr := &store.FrameResult{SessionID: sess.ID, Camera: "evidence", Seq: int64(i), CapturedAtMs: at,
							Signals: signals(t, map[string]Signal{"sheet": {"writing": 0.9}})}
						if _, err := store.InsertFrameResult(tx, fr); err != nil {
							return err
						}
						_, err := eng.ApplyFrame(tx, FrameInput{Result: fr, JPEG: []byte{0xff, 0xd8}, ModelVersion: "test", Session: sess})
						return err
					})
					if err != nil {
						t.Fatal(err)
					}
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
