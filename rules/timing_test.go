package rules

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"proctor/internal/testdb"
	"proctor/store"
)

// ev is an event at an offset from the scheduled start.
type ev struct {
	at   time.Duration
	typ  string
	data string // JSON payload
}

// evid is an evidence frame at an offset from the start.
type evid struct {
	at    time.Duration
	sheet int8
	yaw   float32
}

// happyFlow is a well-behaved candidate's preparation (DESIGN.md §1).
var happyFlow = []ev{
	{-30 * time.Minute, "face_login", ""},
	{-25 * time.Minute, "evidence_bound", ""},
	{-24 * time.Minute, "evidence_recording_started", ""},
	{-23 * time.Minute, "room_scan_completed", ""},
	{-10 * time.Minute, "a4_sheet_shown", `{"side":"front"}`},
	{-9 * time.Minute, "a4_sheet_shown", `{"side":"back"}`},
	{-8 * time.Minute, "attachment_read", `{"attachment":"a"}`},
	{-7 * time.Minute, "attachment_read", `{"attachment":"b"}`},
	{-6 * time.Minute, "exam_entered", ""},
	{0, "answering_started", ""},
}

// replace returns happyFlow with the events of the given types removed and extra added.
func replace(drop []string, extra ...ev) []ev {
	var out []ev
	for _, e := range happyFlow {
		if !contains(drop, e.typ) {
			out = append(out, e)
		}
	}
	return append(out, extra...)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// everySecond returns evidence frames from..to, one per second.
func everySecond(from, to time.Duration) []evid {
	var out []evid
	for t := from; t <= to; t += time.Second {
		out = append(out, evid{at: t})
	}
	return out
}

const examLength = 30 * time.Minute

func TestTimingRules(t *testing.T) {
	end := examLength
	cases := []struct {
		name     string
		events   []ev
		late     []ev // posted after a first evaluation, as after a reconnect
		evidence []evid
		now      time.Duration // evaluation time, from the start
		want     []string      // "TYPE/camera@phase", sorted
	}{
		{"well-behaved candidate", happyFlow, nil, nil, 5 * time.Minute, nil},
		{"nothing judged before its deadline", replace([]string{"a4_sheet_shown"}), nil, nil, -2 * time.Minute, nil},
		{"login 90 min early", replace([]string{"face_login"}, ev{-90 * time.Minute, "face_login", ""}), nil, nil, time.Minute,
			[]string{"LOGIN_OUTSIDE_WINDOW/main@login"}},
		{"login after the start", replace([]string{"face_login"}, ev{time.Minute, "face_login", ""}), nil, nil, 2 * time.Minute,
			[]string{"LOGIN_OUTSIDE_WINDOW/main@answering"}},
		{"entered 20 min early", replace([]string{"exam_entered"}, ev{-20 * time.Minute, "exam_entered", ""}), nil, nil, time.Minute,
			// it also came before the attachments were read
			[]string{"ATTACHMENTS_NOT_READ/main@waiting", "ENTERED_BEFORE_OPEN/main@waiting"}},
		{"entered after the start", replace([]string{"exam_entered"}, ev{90 * time.Second, "exam_entered", ""}), nil, nil, 2 * time.Minute,
			[]string{"ENTERED_AFTER_START/main@answering"}},
		{"one attachment unread", replace([]string{"attachment_read"}, ev{-8 * time.Minute, "attachment_read", `{"attachment":"a"}`}), nil, nil, time.Minute,
			[]string{"ATTACHMENTS_NOT_READ/main@waiting"}},
		{"late event shows the attachment was read: flag withdrawn",
			replace([]string{"attachment_read"}, ev{-8 * time.Minute, "attachment_read", `{"attachment":"a"}`}),
			[]ev{{-7 * time.Minute, "attachment_read", `{"attachment":"b"}`}}, nil, time.Minute, nil},
		{"A4 sheet front only", replace([]string{"a4_sheet_shown"}, ev{-10 * time.Minute, "a4_sheet_shown", `{"side":"front"}`}), nil, nil, time.Minute,
			[]string{"A4_NOT_SHOWN/evidence@preparation"}},
		{"A4 sheet shown too early", replace([]string{"a4_sheet_shown"}, ev{-40 * time.Minute, "a4_sheet_shown", `{"side":"front"}`},
			ev{-39 * time.Minute, "a4_sheet_shown", `{"side":"back"}`}), nil, nil, time.Minute,
			[]string{"A4_NOT_SHOWN/evidence@preparation"}},
		{"A4 sheet seen twice by the evidence camera", replace([]string{"a4_sheet_shown"}), nil,
			[]evid{{-10 * time.Minute, 1, 0}, {-10*time.Minute + time.Second, 1, 0}, {-10*time.Minute + 2*time.Second, 0, 0}, {-10*time.Minute + 3*time.Second, 1, 0}},
			-time.Minute + time.Minute, nil},
		{"no room scan event and the camera barely turned", replace([]string{"room_scan_completed"}), nil,
			withYaw(everySecond(-24*time.Minute, -24*time.Minute+20*time.Second), 5), time.Minute,
			[]string{"NO_ROOM_SCAN/evidence@preparation"}},
		{"camera turned a full circle", replace([]string{"room_scan_completed"}), nil,
			withYaw(everySecond(-24*time.Minute, -24*time.Minute+40*time.Second), 9.5), time.Minute, nil},
		{"evidence recording with a 45 s gap", happyFlow, nil,
			append(everySecond(-24*time.Minute, -24*time.Minute+10*time.Second), everySecond(-24*time.Minute+55*time.Second, -24*time.Minute+60*time.Second)...),
			-23 * time.Minute, []string{"EVIDENCE_GAP/evidence@preparation"}},
		{"evidence recording stopped before the end", append(append([]ev{}, happyFlow...), ev{10 * time.Minute, "evidence_recording_stopped", ""}), nil, nil, 11 * time.Minute,
			[]string{"EVIDENCE_STOPPED/evidence@answering"}},
		{"evidence not uploaded 30 min after the end", append(append([]ev{}, happyFlow...), ev{end, "exam_ended", ""},
			ev{end + 10*time.Minute, "upload_completed", `{"camera":"main"}`}), nil, nil, end + 31*time.Minute,
			[]string{"UPLOAD_LATE/evidence@ended"}},
		{"upload in time, its event arriving late: flag withdrawn", append(append([]ev{}, happyFlow...), ev{end, "exam_ended", ""},
			ev{end + 10*time.Minute, "upload_completed", `{"camera":"main"}`}),
			[]ev{{end + 20*time.Minute, "upload_completed", `{"camera":"evidence"}`}}, nil, end + 31*time.Minute, nil},
		{"upload after the deadline", append(append([]ev{}, happyFlow...), ev{end, "exam_ended", ""},
			ev{end + 10*time.Minute, "upload_completed", `{"camera":"main"}`}, ev{end + 40*time.Minute, "upload_completed", `{"camera":"evidence"}`}),
			nil, nil, end + 41*time.Minute, []string{"UPLOAD_LATE/evidence@ended"}},
		{"window switch, screenshot and second screen while answering", append(append([]ev{}, happyFlow...),
			ev{2 * time.Minute, "window_switched", ""}, ev{3 * time.Minute, "screenshot_attempted", ""},
			ev{4 * time.Minute, "multiple_screens_detected", ""}, ev{-3 * time.Minute, "focus_lost", ""}), nil, nil, 5 * time.Minute,
			[]string{"MULTIPLE_SCREENS/main@answering", "SCREENSHOT_ATTEMPTED/main@answering", "WINDOW_SWITCH/main@answering"}},
		{"focus lost and window switched at the same instant: one flag", append(append([]ev{}, happyFlow...),
			ev{2 * time.Minute, "focus_lost", ""}, ev{2 * time.Minute, "window_switched", ""}), nil, nil, 5 * time.Minute,
			[]string{"WINDOW_SWITCH/main@answering"}},
		{"technical events raise nothing", append(append([]ev{}, happyFlow...),
			ev{2 * time.Minute, "network_lost", ""}, ev{3 * time.Minute, "network_restored", ""},
			ev{4 * time.Minute, "help_requested", ""}, ev{5 * time.Minute, "device_changed", ""}, ev{6 * time.Minute, "upload_failed", `{"camera":"main"}`}),
			nil, nil, 7 * time.Minute, nil},
	}
	for _, b := range testdb.Open(t) {
		for _, tc := range cases {
			t.Run(b.Name+"/"+tc.name, func(t *testing.T) {
				ctx := context.Background()
				eng := New(Config{})
				start := time.Now().Truncate(time.Second)
				sess := &store.Session{OrgID: "org", ExamID: "e", CandidateID: "c", ScheduledStart: start,
					DurationSec: int(examLength.Seconds()), Questions: 2, Attachments: 2, CreatedAt: start.Add(-2 * time.Hour)}
				if err := b.Store.CreateSession(ctx, sess); err != nil {
					t.Fatal(err)
				}
				seq := int64(0)
				// Events and frames are stored in a shuffled order: the rules go by captured_at.
				post := func(events []ev) {
					rand.Shuffle(len(events), func(i, j int) { events[i], events[j] = events[j], events[i] })
					for _, e := range events {
						seq++
						if _, err := store.InsertEvent(b.Store.DB, &store.Event{SessionID: sess.ID, Seq: seq, Type: e.typ,
							CapturedAtMs: start.Add(e.at).UnixMilli(), Payload: e.data}); err != nil {
							t.Fatal(err)
						}
					}
				}
				post(append([]ev{}, tc.events...))
				frames := append([]evid{}, tc.evidence...)
				rand.Shuffle(len(frames), func(i, j int) { frames[i], frames[j] = frames[j], frames[i] })
				for i, f := range frames {
					sig := map[string]Signal{"room-scan": {"yaw": f.yaw}}
					switch f.sheet {
					case 1:
						sig["sheet-shown"] = Signal{"blank": 1}
					case 2:
						sig["sheet"] = Signal{"writing": 0.9}
					}
					if _, err := store.InsertFrameResult(b.Store.DB, &store.FrameResult{SessionID: sess.ID, Camera: "evidence",
						Seq: int64(i), CapturedAtMs: start.Add(f.at).UnixMilli(), Signals: signals(t, sig)}); err != nil {
						t.Fatal(err)
					}
				}
				apply := func() {
					err := b.Store.DB.Transaction(func(tx *gorm.DB) error {
						return eng.ApplyTiming(tx, sess.ID, start.Add(tc.now))
					})
					if err != nil {
						t.Fatal(err)
					}
				}
				apply()
				if tc.late != nil {
					post(append([]ev{}, tc.late...))
				}
				apply()
				apply() // a third run with nothing new changes nothing

				flags, err := b.Store.SessionFlags(ctx, sess.ID)
				if err != nil {
					t.Fatal(err)
				}
				var got []string
				for _, f := range flags {
					got = append(got, fmt.Sprintf("%s/%s@%s", f.Type, f.Camera, f.Phase))
				}
				sort.Strings(got)
				if strings.Join(got, " ") != strings.Join(tc.want, " ") {
					t.Fatalf("flags %v, want %v", got, tc.want)
				}
				s, _ := b.Store.GetSession(ctx, "", sess.ID)
				if (len(tc.want) == 0) != (s.RiskScore == 0) {
					t.Errorf("risk %.1f with flags %v", s.RiskScore, got)
				}
				if s.NextCheckAtMs != 0 && s.NextCheckAtMs <= start.Add(tc.now).UnixMilli() {
					t.Errorf("next check %d is not after now", s.NextCheckAtMs)
				}
			})
		}
	}
}

func withYaw(frames []evid, deg float32) []evid {
	for i := range frames {
		frames[i].yaw = deg
	}
	return frames
}

func TestPhases(t *testing.T) {
	start := time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)
	sess := &store.Session{ScheduledStart: start, DurationSec: 1800, CreatedAt: start.Add(-2 * time.Hour)}
	mk := func(events ...ev) []store.Event {
		var out []store.Event
		for i, e := range events {
			out = append(out, store.Event{Seq: int64(i), Type: e.typ, CapturedAtMs: start.Add(e.at).UnixMilli(), Payload: e.data})
		}
		sort.Slice(out, func(i, j int) bool { return out[i].CapturedAtMs < out[j].CapturedAtMs })
		return out
	}
	names := func(spans []PhaseSpan) string {
		var p []string
		for _, s := range spans {
			p = append(p, fmt.Sprintf("%s@%d", s.Phase, (s.StartMs-start.UnixMilli())/60000))
		}
		return strings.Join(p, " ")
	}
	cases := []struct {
		name   string
		events []store.Event
		want   string
	}{
		{"schedule only", nil, "registered@-120 answering@0 ended@30"},
		{"full flow", mk(happyFlow...), "registered@-120 login@-30 preparation@-25 waiting@-6 answering@0 ended@30"},
		{"ended early and uploaded", mk(append(append([]ev{}, happyFlow...), ev{20 * time.Minute, "exam_ended", ""},
			ev{25 * time.Minute, "upload_completed", `{"camera":"main"}`}, ev{35 * time.Minute, "upload_completed", `{"camera":"evidence"}`})...),
			"registered@-120 login@-30 preparation@-25 waiting@-6 answering@0 ended@20 closed@35"},
		{"late login after entering is shadowed", mk(ev{-20 * time.Minute, "exam_entered", ""}, ev{-10 * time.Minute, "face_login", ""}),
			"registered@-120 waiting@-20 answering@0 ended@30"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := names(Phases(sess, tc.events)); got != tc.want {
				t.Errorf("phases %s\nwant   %s", got, tc.want)
			}
		})
	}
	spans := Phases(sess, mk(happyFlow...))
	if p := PhaseAt(spans, start.Add(-7*time.Minute).UnixMilli()); p != PhasePreparation {
		t.Errorf("7 min before start: %s", p)
	}
	js, _ := json.Marshal(spans)
	if !strings.Contains(string(js), `"phase":"answering"`) {
		t.Errorf("spans JSON %s", js)
	}
}
