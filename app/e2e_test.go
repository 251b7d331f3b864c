package app

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"image/jpeg"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"proctor/analyzers"
	"proctor/internal/platform"
	"proctor/internal/scenario"
	"proctor/internal/testdb"
	"proctor/pipeline"
	"proctor/rules"
	"proctor/store"
)

// backend is one Kafka + database combination the end-to-end tests run against.
type backend struct {
	name    string
	brokers []string // nil: embedded broker
	dsn     string   // "": SQLite in a temp dir
}

// backends returns the embedded defaults always, and real Apache Kafka + PostgreSQL when
// scripts/test.sh started them (PROCTOR_TEST_KAFKA_BROKERS, PROCTOR_TEST_POSTGRES_DSN).
func backends(t *testing.T) []backend {
	out := []backend{{name: "embedded-kafka+sqlite"}}
	kafkaAddr, dsn := os.Getenv("PROCTOR_TEST_KAFKA_BROKERS"), testdb.PostgresDSN()
	if kafkaAddr != "" && dsn != "" {
		out = append(out, backend{name: "apache-kafka+postgres", brokers: strings.Split(kafkaAddr, ","), dsn: dsn})
	} else {
		t.Log("PROCTOR_TEST_KAFKA_BROKERS / PROCTOR_TEST_POSTGRES_DSN not set: real Kafka + PostgreSQL run skipped (scripts/test.sh sets them)")
	}
	return out
}

// kafkaConfig gives each test its own topics and groups, so runs against a long-lived real broker
// never see each other's messages.
func kafkaConfig(b backend) pipeline.Config {
	id := store.NewID()[:8]
	return pipeline.Config{Brokers: b.brokers, Partitions: 3, GroupID: "test-" + id,
		Topics: pipeline.Topics{Frames: "t" + id + ".frames", Audio: "t" + id + ".audio",
			Events: "t" + id + ".events", DeadLetter: "t" + id + ".dlq"}}
}

func quietLog() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func startApp(t *testing.T, b backend, mutate func(*Config)) *App {
	t.Helper()
	cfg := Config{Addr: "127.0.0.1:0", Store: store.Config{DSN: b.dsn, DataDir: t.TempDir(), Keys: store.InsecureTestKeys()},
		Kafka: kafkaConfig(b), Log: quietLog()}
	if mutate != nil {
		mutate(&cfg)
	}
	a, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("start service on %s: %v", b.name, err)
	}
	t.Cleanup(a.Close)
	if b.brokers != nil {
		v, err := pipeline.BrokerVersion(context.Background(), a.Kafka)
		t.Logf("%s: broker %s (%v), database postgres", b.name, v, err)
	}
	return a
}

// keys creates an organisation with an ingest key and a review key.
func keys(t *testing.T, a *App, org string) (ingest, review string) {
	t.Helper()
	ctx := context.Background()
	if err := a.Store.EnsureOrganisation(ctx, org, org); err != nil {
		t.Fatal(err)
	}
	ingest, _, err := a.Store.CreateAPIKey(ctx, org, "platform", []string{store.ScopeIngest})
	if err != nil {
		t.Fatal(err)
	}
	review, _, err = a.Store.CreateAPIKey(ctx, org, "reviewer", []string{store.ScopeReview})
	if err != nil {
		t.Fatal(err)
	}
	return ingest, review
}

var (
	framesOnce sync.Once
	frames     *scenario.Frames
	framesErr  error
)

// sampleFrames builds the scenario once per test binary (it runs the face model on the photos).
func sampleFrames(t *testing.T) *scenario.Frames {
	t.Helper()
	framesOnce.Do(func() {
		dir, err := scenario.DemoDir()
		if err != nil {
			framesErr = err
			return
		}
		set, err := analyzers.NewSet(analyzers.Config{})
		if err != nil {
			framesErr = err
			return
		}
		defer set.Close()
		frames, framesErr = scenario.Build(context.Background(), set, dir)
	})
	if framesErr != nil {
		t.Skipf("sample frames unavailable (%v): run scripts/setup.sh", framesErr)
	}
	return frames
}

func TestEndToEnd(t *testing.T) {
	f := sampleFrames(t)
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			a := startApp(t, b, nil)
			// A fresh organisation per run: a reused PostgreSQL keeps earlier runs' sessions.
			org := "org-e2e-" + store.NewID()[:8]
			ingestKey, reviewKey := keys(t, a, org)
			plat, rev := platform.New(a.URL, ingestKey), platform.New(a.URL, reviewKey)
			start := time.Now().Add(-10 * time.Minute).Truncate(time.Second)
			sess, err := plat.CreateSession(ctx, platform.NewSession{ExamID: "exam-1", CandidateID: "cand-1",
				ScheduledStart: start, DurationSec: 1800, Questions: 3, Photo: f.Photo})
			if err != nil {
				t.Fatal(err)
			}
			timeline := scenario.DemoTimeline(f)
			for i, shot := range timeline {
				code, err := plat.PostFrame(ctx, sess.ID, analyzers.CameraMain, int64(i), start.Add(time.Duration(i)*time.Second), shot.JPEG)
				if err != nil || code != http.StatusAccepted {
					t.Fatalf("frame %d: %d %v", i, code, err)
				}
			}
			// The platform retries a frame whose answer it lost: analysed once all the same.
			if _, err := plat.PostFrame(ctx, sess.ID, analyzers.CameraMain, 12, start.Add(12*time.Second), timeline[12].JPEG); err != nil {
				t.Fatal(err)
			}
			if _, err := plat.PostEvents(ctx, sess.ID,
				platform.Event{Seq: 1, Type: "answering_started", CapturedAt: start.UnixMilli()},
				platform.Event{Seq: 2, Type: "question_shown", CapturedAt: start.UnixMilli(), Data: map[string]int{"question": 1}}); err != nil {
				t.Fatal(err)
			}
			pcm := make([]byte, 32000) // one second of silence
			if code, err := plat.PostAudio(ctx, sess.ID, 0, start, "application/octet-stream", pcm); err != nil || code != http.StatusAccepted {
				t.Fatalf("audio: %d %v", code, err)
			}

			detail, err := rev.WaitFramesProgress(ctx, sess.ID, int64(len(timeline)), stallLimit)
			if err != nil {
				t.Fatal(err)
			}
			// Only the face rules are under test here; the exam-flow rules (no A4 sheet shown…)
			// have scenario tests of their own.
			detail.Flags = faceFlags(detail.Flags)
			got := map[string]int{}
			for _, fl := range detail.Flags {
				got[fl.Type]++
				ev, err := rev.Evidence(ctx, fl.ID)
				if err != nil {
					t.Fatalf("evidence of flag %d: %v", fl.ID, err)
				}
				if _, err := jpeg.DecodeConfig(bytes.NewReader(ev)); err != nil {
					t.Errorf("evidence of %s is not a JPEG: %v", fl.Type, err)
				}
				if fl.ModelVersion == "" || fl.Status != store.StatusOpen {
					t.Errorf("flag %s: model version %q status %q", fl.Type, fl.ModelVersion, fl.Status)
				}
			}
			if got[rules.FaceAbsent] != 1 || got[rules.MultipleFaces] != 1 || len(detail.Flags) != 2 {
				t.Fatalf("flags %v, want one FACE_ABSENT and one MULTIPLE_FACES", got)
			}
			for _, fl := range detail.Flags {
				// The empty room is shown at 10–17 s, the group at 22–26 s of exam time.
				wantStart := map[string]int64{rules.FaceAbsent: 10, rules.MultipleFaces: 22}[fl.Type]
				if s := (fl.StartMs - start.UnixMilli()) / 1000; s != wantStart {
					t.Errorf("%s starts at %d s, want %d s", fl.Type, s, wantStart)
				}
			}
			if detail.Session.Frames != int64(len(timeline)) {
				t.Errorf("frames analysed %d, want %d (the resend must not count)", detail.Session.Frames, len(timeline))
			}
			risk := detail.Session.RiskScore
			if risk <= 0 {
				t.Errorf("risk %.1f with two open flags", risk)
			}

			// Verdicts: dismissing lowers the risk, confirming raises it to the maximum.
			var absent, multi store.Flag
			for _, fl := range detail.Flags {
				if fl.Type == rules.FaceAbsent {
					absent = fl
				} else {
					multi = fl
				}
			}
			if err := rev.Verdict(ctx, absent.ID, "dismissed", "bent down to pick up the pen"); err != nil {
				t.Fatal(err)
			}
			after, _ := rev.Session(ctx, sess.ID)
			if after.Session.RiskScore >= risk {
				t.Errorf("risk %.1f after dismissing, was %.1f", after.Session.RiskScore, risk)
			}
			if err := rev.Verdict(ctx, multi.ID, "confirmed", ""); err != nil {
				t.Fatal(err)
			}
			after, _ = rev.Session(ctx, sess.ID)
			if after.Session.RiskScore != 100 {
				t.Errorf("after confirming: risk %.1f, want 100", after.Session.RiskScore)
			}
			audit, err := a.Store.ListAudit(ctx, org, 100)
			if err != nil {
				t.Fatal(err)
			}
			actions := map[string]int{}
			for _, e := range audit {
				actions[e.Action]++
			}
			if actions["flag.verdict"] != 2 || actions["evidence.view"] != 2 {
				t.Errorf("audit actions %v, want 2 verdicts and 2 evidence views", actions)
			}

			// Events and audio went through Kafka into the store.
			waitFor(t, func() bool {
				evs, _ := a.Store.SessionEvents(ctx, sess.ID)
				var n int64
				a.Store.DB.Model(&store.AudioChunk{}).Where("session_id = ?", sess.ID).Count(&n)
				return len(evs) == 2 && n == 1
			}, "2 events and 1 audio chunk stored")

			// The timeline puts them on one axis: phases from the events and the schedule, each
			// event with its class and phase, and the face flags stamped "answering" once the
			// timing check ran (it is debounced by ~2 s after new input).
			waitFor(t, func() bool {
				var tl struct {
					Phases []struct {
						Phase string `json:"phase"`
					} `json:"phases"`
					Events []struct {
						Type, Class, Phase string
					} `json:"events"`
					Flags []store.Flag `json:"flags"`
				}
				if _, err := rev.Do(ctx, "GET", "/v1/sessions/"+sess.ID+"/timeline", "", nil, &tl); err != nil {
					return false
				}
				stamped := 0
				for _, f := range faceFlags(tl.Flags) {
					if f.Phase == "answering" {
						stamped++
					}
				}
				var phases []string
				for _, p := range tl.Phases {
					phases = append(phases, p.Phase)
				}
				// The scheduled end is on the axis ahead of time.
				return len(tl.Events) == 2 && tl.Events[0].Class == "flow" && tl.Events[1].Phase == "answering" &&
					strings.Join(phases, ",") == "registered,answering,ended" && stamped == 2
			}, "timeline with phases, classified events and phase-stamped flags")

			// The queue ranks by risk and never shows another organisation's sessions.
			list, err := rev.Sessions(ctx)
			if err != nil || len(list) != 1 || list[0].ID != sess.ID {
				t.Errorf("queue = %v, %v", list, err)
			}
			_, otherReview := keys(t, a, "org-other-"+store.NewID()[:8])
			other := platform.New(a.URL, otherReview)
			if _, err := other.Session(ctx, sess.ID); !isStatus(err, 404) {
				t.Errorf("other organisation reading the session: %v, want 404", err)
			}
			if _, err := other.Evidence(ctx, absent.ID); !isStatus(err, 404) {
				t.Errorf("other organisation reading evidence: %v, want 404", err)
			}
		})
	}
}

func faceFlags(flags []store.Flag) []store.Flag {
	var out []store.Flag
	for _, f := range flags {
		if f.Type == rules.FaceAbsent || f.Type == rules.MultipleFaces {
			out = append(out, f)
		}
	}
	return out
}

func isStatus(err error, code int) bool {
	var se *platform.StatusError
	return errors.As(err, &se) && se.Code == code
}

// stallLimit is how long the end-to-end tests wait for analysis without progress (no new frame
// analysed, a recording not advancing) before they fail: analysis that keeps going is waited for
// however slow a loaded machine is (go test -timeout bounds the whole run).
const stallLimit = 90 * time.Second

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestBadInput posts every kind of bad request: each gets a 4xx with a message, the service keeps
// serving, and nothing reaches the database or the dead-letter topic.
func TestBadInput(t *testing.T) {
	f := sampleFrames(t)
	b := backends(t)[0]
	ctx := context.Background()
	a := startApp(t, b, nil)
	ingestKey, reviewKey := keys(t, a, "org-bad")
	plat := platform.New(a.URL, ingestKey)
	now := time.Now()
	sess, err := plat.CreateSession(ctx, platform.NewSession{ExamID: "e", CandidateID: "c",
		ScheduledStart: now, DurationSec: 600, Questions: 1, Photo: f.Photo})
	if err != nil {
		t.Fatal(err)
	}
	good := f.Candidate[0]
	ms := fmt.Sprint(now.UnixMilli())
	frameURL := "/v1/sessions/" + sess.ID + "/frames?camera=main&seq=1&captured_at=" + ms
	wav := func(channels, bits, rate int) []byte {
		var buf bytes.Buffer
		le := func(v, n int) {
			for i := range n {
				buf.WriteByte(byte(v >> (8 * i)))
			}
		}
		buf.WriteString("RIFF")
		le(36+8, 4)
		buf.WriteString("WAVEfmt ")
		le(16, 4)
		le(1, 2)
		le(channels, 2)
		le(rate, 4)
		le(rate*channels*bits/8, 4)
		le(channels*bits/8, 2)
		le(bits, 2)
		buf.WriteString("data")
		le(8, 4)
		buf.Write(make([]byte, 8))
		return buf.Bytes()
	}
	cases := []struct {
		name, token, method, path, ctype string
		body                             []byte
		want                             int
		msg                              string // part of the error message
	}{
		{"missing key", "", "POST", frameURL, "image/jpeg", good, 401, "missing API key"},
		{"bad key", "pk_0123456789abcdef_" + strings.Repeat("0", 64), "POST", frameURL, "image/jpeg", good, 401, "invalid"},
		{"wrong scope", reviewKey, "POST", frameURL, "image/jpeg", good, 403, "'ingest' scope"},
		{"ingest key reading flags", ingestKey, "GET", "/v1/sessions/" + sess.ID, "", nil, 403, "'review' scope"},
		{"unknown session", ingestKey, "POST", "/v1/sessions/nope/frames?camera=main&seq=1&captured_at=" + ms, "image/jpeg", good, 404, "unknown session"},
		{"truncated JPEG", ingestKey, "POST", frameURL, "image/jpeg", good[:len(good)/2], 422, "truncated"},
		{"not an image", ingestKey, "POST", frameURL, "image/jpeg", []byte("hello, this is not a picture"), 422, "not a JPEG"},
		{"PNG instead of JPEG", ingestKey, "POST", frameURL, "image/png", []byte("\x89PNG\r\n\x1a\n0000000000000000"), 422, "not a JPEG"},
		{"empty body", ingestKey, "POST", frameURL, "image/jpeg", nil, 400, "empty body"},
		{"oversized body", ingestKey, "POST", frameURL, "image/jpeg", append(append([]byte{}, good...), make([]byte, 1<<20)...), 413, "limit"},
		{"bad camera", ingestKey, "POST", strings.Replace(frameURL, "camera=main", "camera=webcam", 1), "image/jpeg", good, 400, "camera"},
		{"negative seq", ingestKey, "POST", strings.Replace(frameURL, "seq=1", "seq=-4", 1), "image/jpeg", good, 400, "seq"},
		{"timestamp in seconds", ingestKey, "POST", strings.Replace(frameURL, ms, fmt.Sprint(now.Unix()), 1), "image/jpeg", good, 400, "seconds instead of milliseconds"},
		{"timestamp in the future", ingestKey, "POST", strings.Replace(frameURL, ms, fmt.Sprint(now.Add(time.Hour).UnixMilli()), 1), "image/jpeg", good, 400, "future"},
		{"stereo WAV", ingestKey, "POST", "/v1/sessions/" + sess.ID + "/audio?seq=1&captured_at=" + ms, "audio/wav", wav(2, 16, 16000), 422, "mono"},
		{"odd PCM", ingestKey, "POST", "/v1/sessions/" + sess.ID + "/audio?seq=1&captured_at=" + ms, "application/octet-stream", []byte{1, 2, 3}, 422, "even"},
		{"unknown event", ingestKey, "POST", "/v1/sessions/" + sess.ID + "/events", "application/json", []byte(`{"seq":1,"type":"teleported","captured_at":` + ms + `}`), 400, "unknown type"},
		{"event without seq", ingestKey, "POST", "/v1/sessions/" + sess.ID + "/events", "application/json", []byte(`[{"type":"focus_lost","captured_at":` + ms + `}]`), 400, "seq"},
		{"event batch with one bad", ingestKey, "POST", "/v1/sessions/" + sess.ID + "/events", "application/json", []byte(`[{"seq":1,"type":"focus_lost","captured_at":` + ms + `},{"seq":2,"type":"x","captured_at":` + ms + `}]`), 400, "event 1"},
		{"events not JSON", ingestKey, "POST", "/v1/sessions/" + sess.ID + "/events", "application/json", []byte(`{"seq":`), 400, "invalid JSON"},
		{"session without photo", ingestKey, "POST", "/v1/sessions", "application/x-www-form-urlencoded", []byte("exam_id=e&candidate_id=c&scheduled_start=" + ms + "&duration_sec=600&questions=1"), 400, "photo"},
		{"verdict not JSON", reviewKey, "POST", "/v1/flags/1/verdict", "application/json", []byte("yes"), 404, "no flag"},
		{"flag id not a number", reviewKey, "GET", "/v1/flags/abc", "", nil, 400, "whole number from 1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := platform.New(a.URL, tc.token)
			code, err := c.Do(ctx, tc.method, tc.path, tc.ctype, tc.body, nil)
			if code != tc.want {
				t.Fatalf("status %d (%v), want %d", code, err, tc.want)
			}
			if err == nil || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("message %q does not mention %q", err, tc.msg)
			}
		})
	}
	// A body over the server-wide limit is refused with 413 as soon as it passes the limit. The
	// server stops reading there, so the client keeps writing while the answer arrives: a raw
	// connection reads the answer concurrently (an HTTP client could see the reset instead).
	u, _ := url.Parse(a.URL)
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Type: image/jpeg\r\n"+
		"Content-Length: %d\r\n\r\n", frameURL, u.Host, ingestKey, 8<<20)
	go conn.Write(make([]byte, 8<<20)) // fails once the server closes: expected
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if resp, err := http.ReadResponse(bufio.NewReader(conn), nil); err != nil || resp.StatusCode != 413 {
		t.Errorf("8 MiB body: %v %v, want 413", resp, err)
	} else {
		msg, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(msg), "too large") {
			t.Errorf("8 MiB body: message %s", msg)
		}
	}

	// Still serving, and a good frame still goes through. It shares the session's partition with
	// anything a bad request might have queued, so once it is stored, nothing else was.
	if code, err := plat.PostFrame(ctx, sess.ID, analyzers.CameraMain, 99, now, good); err != nil || code != 202 {
		t.Fatalf("good frame after bad ones: %d %v", code, err)
	}
	waitFor(t, func() bool {
		n, _ := a.Store.CountFrames(ctx, sess.ID)
		return n == 1
	}, "the good frame")
	var events, audio int64
	a.Store.DB.Model(&store.Event{}).Where("session_id = ?", sess.ID).Count(&events)
	a.Store.DB.Model(&store.AudioChunk{}).Where("session_id = ?", sess.ID).Count(&audio)
	if n, _ := a.Store.CountFrames(ctx, sess.ID); n != 1 || events != 0 || audio != 0 {
		t.Errorf("after bad input: %d frames, %d events, %d audio chunks stored; want 1, 0, 0", n, events, audio)
	}
	resp, err := http.Get(a.URL + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz after bad input: %v %v", resp, err)
	}
	resp.Body.Close()
}
