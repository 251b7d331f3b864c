package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"proctor/analyzers"
	"proctor/app"
	"proctor/internal/platform"
	"proctor/internal/scenario"
	"proctor/store"
)

// runDemo starts the service on the embedded defaults, replays a sample session through the HTTP
// API exactly as the exam platform would, prints the flags and keeps serving (or exits with --exit).
func runDemo(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	var sf serviceFlags
	sf.register(fs)
	exit := fs.Bool("exit", false, "exit after printing the flags instead of serving the API")
	if err := parse(fs, args); err != nil {
		return err
	}
	cfg := sf.config()
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
	fmt.Printf("demo: session %s — posting %d main-camera frames (1 per second of exam time) through %s\n",
		sess.ID, len(timeline), a.URL)
	for i, f := range timeline {
		if _, err := platformClient.PostFrame(ctx, sess.ID, analyzers.CameraMain, int64(i), start.Add(time.Duration(i)*time.Second), f.JPEG); err != nil {
			return fmt.Errorf("post frame %d: %w", i, err)
		}
	}
	if _, err := platformClient.PostEvents(ctx, sess.ID,
		platform.Event{Seq: 0, Type: "answering_started", CapturedAt: start.UnixMilli()},
		platform.Event{Seq: 1, Type: "question_shown", CapturedAt: start.UnixMilli(), Data: map[string]int{"question": 1}},
		platform.Event{Seq: 2, Type: "exam_ended", CapturedAt: start.Add(time.Duration(len(timeline)) * time.Second).UnixMilli()},
	); err != nil {
		return fmt.Errorf("post events: %w", err)
	}
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	detail, err := reviewer.WaitFrames(wctx, sess.ID, int64(len(timeline)))
	if err != nil {
		return err
	}
	fmt.Printf("demo: %d frames analysed; session risk %.1f/100; %d flag(s):\n", detail.Session.Frames, detail.Session.RiskScore, len(detail.Flags))
	fmt.Printf("  %-4s %-16s %-9s %-7s %-15s %s\n", "id", "type", "severity", "camera", "exam time", "confidence")
	for _, f := range detail.Flags {
		fmt.Printf("  %-4d %-16s %-9s %-7s %5.0fs – %4.0fs  %.2f\n", f.ID, f.Type, f.Severity, f.Camera,
			float64(f.StartMs-start.UnixMilli())/1000, float64(f.EndMs-start.UnixMilli())/1000, f.Confidence)
	}
	fmt.Println("demo: expected — FACE_ABSENT while the room is empty, MULTIPLE_FACES while the group is in view")
	if *exit {
		return nil
	}
	fmt.Printf("\nThe API keeps serving at %s (Ctrl-C to stop). Try:\n", a.URL)
	fmt.Printf("  curl -H 'Authorization: Bearer %s' %s/v1/sessions/%s\n", adminKey, a.URL, sess.ID)
	fmt.Printf("  curl -H 'Authorization: Bearer %s' -o evidence.jpg %s/v1/flags/<id>/evidence\n", adminKey, a.URL)
	<-ctx.Done()
	return a.Err()
}
