// Package demo starts the service on the embedded defaults and replays a sample session through
// the HTTP API exactly as the exam platform would (`proctor demo`).
package demo

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"proctor/analyzers"
	"proctor/app"
	"proctor/internal/platform"
	"proctor/internal/scenario"
	"proctor/store"
)

// Options configure Run.
type Options struct {
	// Exit returns after printing the flags instead of serving the API until ctx ends.
	Exit bool
}

// events is a well-behaved exam flow (DESIGN.md §1) with one window switch while answering
// and one network outage (technical).
func events(start time.Time, seconds int) []platform.Event {
	at := func(d time.Duration) int64 { return start.Add(d).UnixMilli() }
	type ev struct {
		d    time.Duration
		typ  string
		data any
	}
	flow := []ev{
		{-30 * time.Minute, "face_login", nil},
		{-25 * time.Minute, "evidence_bound", nil},
		{-24 * time.Minute, "evidence_recording_started", nil},
		{-23 * time.Minute, "room_scan_completed", nil},
		{-10 * time.Minute, "a4_sheet_shown", map[string]string{"side": "front"}},
		{-9 * time.Minute, "a4_sheet_shown", map[string]string{"side": "back"}},
		{-8 * time.Minute, "lottery_drawn", nil},
		{-7 * time.Minute, "attachment_read", map[string]string{"attachment": "exam-rules.pdf"}},
		{-6 * time.Minute, "exam_entered", nil},
		{-5 * time.Minute, "devices_confirmed", nil},
		{-5 * time.Minute, "waiting_started", nil},
		{0, "answering_started", nil},
		{0, "question_shown", map[string]int{"question": 1}},
		{15 * time.Second, "focus_lost", nil},
		{20 * time.Second, "network_lost", nil},
		{23 * time.Second, "network_restored", nil},
	}
	out := make([]platform.Event, len(flow))
	for i, e := range flow {
		out[i] = platform.Event{Seq: int64(i), Type: e.typ, CapturedAt: at(e.d), Data: e.data}
	}
	return out
}

// waitSettled waits until the session's timing rules have run on everything posted so far.
func waitSettled(ctx context.Context, st *store.Store, id string) error {
	for {
		s, err := st.GetSession(ctx, "", id)
		if err != nil {
			return err
		}
		if s.NextCheckAtMs == 0 || s.NextCheckAtMs > time.Now().Add(5*time.Second).UnixMilli() {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Run starts the service with cfg, creates the demo organisation's keys and users, replays the
// sample session, writes its flags to w and keeps serving (unless o.Exit) until ctx ends.
func Run(ctx context.Context, cfg app.Config, o Options, w io.Writer) error {
	a, err := app.Start(ctx, cfg)
	if err != nil {
		return err
	}
	defer a.Close()

	// Keys for the demo organisation: the platform's and a reviewer's.
	const org = "demo"
	if err := a.Store.EnsureOrganisation(ctx, org, "Demo exam company"); err != nil {
		return err
	}
	ingestKey, _, err := a.Store.CreateAPIKey(ctx, org, "demo platform", []string{store.ScopeIngest})
	if err != nil {
		return err
	}
	adminKey, _, err := a.Store.CreateAPIKey(ctx, org, "demo admin", []string{store.ScopeAdmin})
	if err != nil {
		return err
	}
	// People for the reviewer page; a re-run resets their passwords.
	reviewerPW, adminPW := store.NewPassword(), store.NewPassword()
	if _, err := a.Store.CreateUser(ctx, org, "demo@example.com", store.RoleReviewer, reviewerPW, true); err != nil {
		return err
	}
	if _, err := a.Store.CreateUser(ctx, org, "admin@example.com", store.RoleAdmin, adminPW, true); err != nil {
		return err
	}

	set, err := analyzers.NewSet(cfg.Analyzers)
	if err != nil {
		return err
	}
	dir, err := scenario.DemoDir()
	if err != nil {
		set.Close()
		return err
	}
	frames, err := scenario.Build(ctx, set, dir)
	set.Close()
	if err != nil {
		return err
	}

	platformClient := platform.New(a.URL, ingestKey)
	reviewer := platform.New(a.URL, adminKey)
	start := time.Now().Add(-2 * time.Minute).Truncate(time.Second)
	sess, err := platformClient.CreateSession(ctx, platform.NewSession{ExamID: "demo-oral-exam", CandidateID: "candidate-001",
		ScheduledStart: start, DurationSec: 1800, Questions: 3, Photo: frames.Photo})
	if err != nil {
		return fmt.Errorf("create session: %w", err)
	}
	timeline := scenario.DemoTimeline(frames)
	fmt.Fprintf(w, "demo: session %s — posting %d main-camera frames (1 per second of exam time) through %s\n",
		sess.ID, len(timeline), a.URL)
	for i, f := range timeline {
		if _, err := platformClient.PostFrame(ctx, sess.ID, analyzers.CameraMain, int64(i), start.Add(time.Duration(i)*time.Second), f.JPEG); err != nil {
			return fmt.Errorf("post frame %d: %w", i, err)
		}
	}
	if _, err := platformClient.PostEvents(ctx, sess.ID, events(start, len(timeline))...); err != nil {
		return fmt.Errorf("post events: %w", err)
	}
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if _, err := reviewer.WaitFrames(wctx, sess.ID, int64(len(timeline))); err != nil {
		return err
	}
	if err := waitSettled(wctx, a.Store, sess.ID); err != nil {
		return err
	}
	detail, err := reviewer.Session(ctx, sess.ID)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "demo: %d frames analysed; session risk %.1f/100; %d flag(s):\n", detail.Session.Frames, detail.Session.RiskScore, len(detail.Flags))
	fmt.Fprintf(w, "  %-4s %-18s %-9s %-7s %-10s %-15s %s\n", "id", "type", "severity", "camera", "phase", "exam time", "confidence")
	for _, f := range detail.Flags {
		fmt.Fprintf(w, "  %-4d %-18s %-9s %-7s %-10s %5.0fs – %4.0fs  %.2f\n", f.ID, f.Type, f.Severity, f.Camera, f.Phase,
			float64(f.StartMs-start.UnixMilli())/1000, float64(f.EndMs-start.UnixMilli())/1000, f.Confidence)
	}
	fmt.Fprintln(w, "demo: expected — FACE_ABSENT while the room is empty; MULTIPLE_FACES and IDENTITY_MISMATCH (the biggest")
	fmt.Fprintln(w, "      face is not the candidate's) while the group is in view;")
	fmt.Fprintln(w, "      WINDOW_SWITCH for the focus lost at 15 s; the network outage at 20 s is technical: no flag, no risk")
	if o.Exit {
		return nil
	}
	page := a.URL + "/ui/"
	if _, port, err := net.SplitHostPort(strings.TrimPrefix(a.URL, "http://")); err == nil {
		page = "http://localhost:" + port + "/ui/"
	}
	fmt.Fprintf(w, "\nReviewer page: %s\n", page)
	fmt.Fprintf(w, "  sign in as demo@example.com  / %s   (reviewer)\n", reviewerPW)
	fmt.Fprintf(w, "          or admin@example.com / %s   (admin: settings, audit log, users)\n", adminPW)
	fmt.Fprintf(w, "\nThe API keeps serving at %s (Ctrl-C to stop). Try:\n", a.URL)
	fmt.Fprintf(w, "  curl -H 'Authorization: Bearer %s' %s/v1/sessions/%s\n", adminKey, a.URL, sess.ID)
	fmt.Fprintf(w, "  curl -H 'Authorization: Bearer %s' -o evidence.jpg %s/v1/flags/<id>/evidence\n", adminKey, a.URL)
	<-ctx.Done()
	return a.Err()
}
