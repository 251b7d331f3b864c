// Package faults is the fault suite (`proctor faults`, scripts/faults.sh): it replays exam
// sessions through a running service while it breaks things — SIGKILLs workers, restarts the
// broker and the database, produces a poison message, offers a burst far above the workers'
// capacity — and counts, per fault, the frames posted, stored, lost and duplicated, the flags
// expected and raised, the longest wait of a frame between acceptance and storage (failover),
// and the p99 ingest latency. Any loss or duplicate makes the run fail.
//
// A fault sees the service through a Target: the HTTP API, the database and Kafka, plus, for the
// faults that need them, the means to kill a worker or halt the broker or the database. The
// poison and burst faults need none of those, so they also run against an in-process service
// (the package's test); the others need the real processes that scripts/faults.sh starts.
package faults

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"

	"proctor/analyzers"
	"proctor/internal/platform"
	"proctor/internal/scenario"
	"proctor/pipeline"
	"proctor/rules"
	"proctor/store"
)

// Target is the service under test.
type Target struct {
	// URL of the HTTP API.
	URL string
	// Store is the service's database, for counting what was stored.
	Store *store.Store
	// Kafka is the service's Kafka configuration (brokers, topics), for producing poison.
	Kafka pipeline.Config
	// IngestKey and ReviewKey are API keys of one organisation.
	IngestKey, ReviewKey string

	// KillWorker SIGKILLs worker i (0 or 1) and starts it again after restartAfter; nil: the
	// worker-kill fault is skipped.
	KillWorker func(i int, restartAfter time.Duration) error
	// HaltBroker / ResumeBroker stop and start the Kafka broker keeping its data; nil: skipped.
	HaltBroker, ResumeBroker func() error
	// HaltDatabase / ResumeDatabase the same for the database; nil: skipped.
	HaltDatabase, ResumeDatabase func() error
}

// Options size the run.
type Options struct {
	// Sessions per fault (the burst takes BurstSessions). Default 4.
	Sessions int
	// BurstSessions post concurrently, as fast as the API answers, BurstRepeat times the
	// timeline each (a longer burst on fast workers). Defaults 16 and 1.
	BurstSessions, BurstRepeat int
	// Kills is how many times the worker-kill fault SIGKILLs a worker. Default 4.
	Kills int
	// Pace between two frames of one session in the paced faults. Default 400 ms.
	Pace time.Duration
	// MaxRetryWait caps how long a client waits after a 429 or 503 (it waits Retry-After up to
	// this). Default 2 s.
	MaxRetryWait time.Duration
	// Drain bounds the wait for everything accepted to be stored after a fault. Default 3 min.
	Drain time.Duration
	// Only runs these faults (names as in Faults); empty: all that the Target supports.
	Only []string
	// Log receives progress lines; nil: none.
	Log io.Writer
}

func (o Options) withDefaults() Options {
	if o.Sessions <= 0 {
		o.Sessions = 4
	}
	if o.BurstSessions <= 0 {
		o.BurstSessions = 16
	}
	if o.Kills <= 0 {
		o.Kills = 4
	}
	if o.BurstRepeat <= 0 {
		o.BurstRepeat = 1
	}
	if o.Pace <= 0 {
		o.Pace = 400 * time.Millisecond
	}
	if o.MaxRetryWait <= 0 {
		o.MaxRetryWait = 2 * time.Second
	}
	if o.Drain <= 0 {
		o.Drain = 3 * time.Minute
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	return o
}

// Faults are the faults in the order they run.
var Faults = []string{"worker-kill", "broker-restart", "database-restart", "poison", "burst"}

// Result is one fault's figures.
type Result struct {
	Fault    string
	Skipped  string // why it did not run, if it did not
	Sessions int

	Posted     int64 // distinct frames the API accepted (202, or 200: already analysed)
	Stored     int64 // distinct frames stored
	Lost       int64 // Posted - Stored after the drain
	Duplicated int64 // frames analysed more than once + flags raised more than once

	FlagsExpected, FlagsRaised int

	Refused429, Refused503, ServerErrors, ClientErrors int64 // answers that were retried (5xx other than 503: must be 0)
	DeadLettered                                       int64 // poison: dead letters recorded for the fault's sessions

	MaxWait    time.Duration // longest accepted → stored of the fault's frames: the failover time
	P99Ingest  time.Duration // p99 latency of the posts that were accepted
	Offered    float64       // burst: posts per second offered (accepted + refused)
	Capacity   float64       // burst: frames stored per second while the backlog drained
	Duration   time.Duration
	Notes      []string
	Failed     []string // what makes the run fail
	sessionIDs []string
	repeat     int       // times each session posts the timeline
	burstStart time.Time // burst: when posting began
}

// OK says whether the fault passed.
func (r *Result) OK() bool { return len(r.Failed) == 0 }

func (r *Result) fail(format string, args ...any) {
	r.Failed = append(r.Failed, fmt.Sprintf(format, args...))
}

// Run runs the faults against t and returns one Result per fault.
func Run(ctx context.Context, t Target, opt Options) ([]*Result, error) {
	opt = opt.withDefaults()
	frames, err := sampleFrames(ctx)
	if err != nil {
		return nil, err
	}
	r := &runner{t: t, opt: opt, timeline: scenario.DemoTimeline(frames), photo: frames.Photo,
		http: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}
	var out []*Result
	for _, name := range Faults {
		if len(opt.Only) > 0 && !slices.Contains(opt.Only, name) {
			continue
		}
		res := &Result{Fault: name}
		start := time.Now()
		fmt.Fprintf(opt.Log, "faults: %s: start\n", name)
		switch name {
		case "worker-kill":
			err = r.workerKill(ctx, res)
		case "broker-restart":
			err = r.outage(ctx, res, t.HaltBroker, t.ResumeBroker, 5*time.Second)
		case "database-restart":
			err = r.outage(ctx, res, t.HaltDatabase, t.ResumeDatabase, 8*time.Second)
		case "poison":
			err = r.poison(ctx, res)
		case "burst":
			err = r.burst(ctx, res)
		}
		if err != nil {
			return out, fmt.Errorf("fault %s: %w", name, err)
		}
		if res.Skipped == "" {
			if err := r.settle(ctx, res); err != nil {
				return out, fmt.Errorf("fault %s: %w", name, err)
			}
		}
		res.Duration = time.Since(start)
		fmt.Fprintf(opt.Log, "faults: %s: done in %s, lost %d, duplicated %d %v\n", name, res.Duration.Round(time.Second), res.Lost, res.Duplicated, res.Failed)
		out = append(out, res)
	}
	return out, nil
}

// sampleFrames builds the demo scenario (the face model checks every frame).
func sampleFrames(ctx context.Context) (*scenario.Frames, error) {
	dir, err := scenario.DemoDir()
	if err != nil {
		return nil, err
	}
	set, err := analyzers.NewSet(analyzers.Config{Analyzers: []string{"faces"}})
	if err != nil {
		return nil, err
	}
	defer set.Close()
	return scenario.Build(ctx, set, dir)
}

type kafkaMessage = kafka.Message

type runner struct {
	t        Target
	opt      Options
	timeline []scenario.Shot
	photo    []byte
	http     *http.Client
	seq      atomic.Int64
}

// tally is what the posters saw during one fault.
type tally struct {
	mu        sync.Mutex
	latencies []time.Duration
	posted    atomic.Int64
	n429      atomic.Int64
	n503      atomic.Int64
	n5xx      atomic.Int64
	n4xx      atomic.Int64
	attempts  atomic.Int64
	first429  time.Time // when the first 429 came back
	before429 int64     // frames accepted until then
}

// sessions creates n sessions for a fault; their scheduled start is an hour ago, so frames'
// captured_at (start + i s) fall inside the exam.
func (r *runner) sessions(ctx context.Context, res *Result, n int) (time.Time, error) {
	plat := platform.New(r.t.URL, r.t.IngestKey)
	start := time.Now().Add(-time.Hour).Truncate(time.Second)
	for i := range n {
		id := fmt.Sprintf("%s-%d-%d", res.Fault, r.seq.Add(1), i)
		err := retry(ctx, 2*time.Minute, func() error {
			_, err := plat.CreateSession(ctx, platform.NewSession{ID: id, ExamID: "faults", CandidateID: id,
				ScheduledStart: start, DurationSec: 2 * 3600, Questions: 2, Photo: r.photo})
			return err
		})
		if err != nil {
			return start, fmt.Errorf("create session %s: %w", id, err)
		}
		res.sessionIDs = append(res.sessionIDs, id)
	}
	res.Sessions = n
	return start, nil
}

// postSession posts the timeline as one platform client does: in order, each frame until it is
// accepted, waiting Retry-After (at most MaxRetryWait) after a 429 or 503 and 0.5 s after a
// network error.
func (r *runner) postSession(ctx context.Context, tl *tally, id string, start time.Time, pace time.Duration, repeat int) {
	for i := range repeat * len(r.timeline) {
		shot := r.timeline[i%len(r.timeline)]
		for ctx.Err() == nil {
			t0 := time.Now()
			code, retryAfter, err := r.postFrame(ctx, id, int64(i), start.Add(time.Duration(i)*time.Second), shot.JPEG)
			tl.attempts.Add(1)
			wait := 500 * time.Millisecond
			switch {
			case err != nil:
			case code == http.StatusAccepted || code == http.StatusOK:
				tl.posted.Add(1)
				tl.mu.Lock()
				tl.latencies = append(tl.latencies, time.Since(t0))
				tl.mu.Unlock()
				wait = -1
			case code == http.StatusTooManyRequests:
				if tl.n429.Add(1) == 1 {
					tl.mu.Lock()
					tl.first429, tl.before429 = time.Now(), tl.posted.Load()
					tl.mu.Unlock()
				}
				wait = min(retryAfter, r.opt.MaxRetryWait)
			case code == http.StatusServiceUnavailable:
				tl.n503.Add(1)
				wait = min(retryAfter, r.opt.MaxRetryWait)
			case code >= 500:
				tl.n5xx.Add(1)
			default:
				tl.n4xx.Add(1)
				wait = -1 // a 4xx will not change: give the frame up (counted, fails the run)
			}
			if wait < 0 {
				break
			}
			sleep(ctx, wait)
		}
		sleep(ctx, pace)
	}
}

func (r *runner) postFrame(ctx context.Context, id string, seq int64, at time.Time, jpeg []byte) (int, time.Duration, error) {
	u := fmt.Sprintf("%s/v1/sessions/%s/frames?camera=%s&seq=%d&captured_at=%d", r.t.URL, id, analyzers.CameraMain, seq, at.UnixMilli())
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(jpeg))
	if err != nil {
		return 0, 0, err
	}
	req.Header.Set("Authorization", "Bearer "+r.t.IngestKey)
	req.Header.Set("Content-Type", "image/jpeg")
	resp, err := r.http.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	ra := time.Second
	if n, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && n > 0 {
		ra = time.Duration(n) * time.Second
	}
	return resp.StatusCode, ra, nil
}

// postAll posts every session of res concurrently and returns when all are done.
func (r *runner) postAll(ctx context.Context, res *Result, tl *tally, start time.Time, pace time.Duration) {
	var wg sync.WaitGroup
	for _, id := range res.sessionIDs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.postSession(ctx, tl, id, start, pace, max(res.repeat, 1))
		}()
	}
	wg.Wait()
}

// workerKill SIGKILLs the workers in turn during a paced replay, restarting each 1 s later.
func (r *runner) workerKill(ctx context.Context, res *Result) error {
	if r.t.KillWorker == nil {
		res.Skipped = "no worker processes to kill"
		return nil
	}
	start, err := r.sessions(ctx, res, r.opt.Sessions)
	if err != nil {
		return err
	}
	tl := &tally{}
	done := make(chan struct{})
	go func() { r.postAll(ctx, res, tl, start, r.opt.Pace); close(done) }()
	// Kill only a worker that has been making progress: at least 10 more frames stored since the
	// last kill, and 3 s apart, so every kill interrupts real work. At most Kills kills.
	kills, last, lastAt := 0, int64(0), time.Now()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
wait:
	for {
		select {
		case <-done:
			break wait
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		if kills >= r.opt.Kills || time.Since(lastAt) < 3*time.Second {
			continue
		}
		var n int64
		if err := r.t.Store.DB.WithContext(ctx).Model(&store.FrameResult{}).Where("session_id IN ?", res.sessionIDs).Count(&n).Error; err != nil || n < last+10 {
			continue
		}
		if err := r.t.KillWorker(kills%2, time.Second); err != nil {
			return err
		}
		kills, last, lastAt = kills+1, n, time.Now()
	}
	res.Notes = append(res.Notes, fmt.Sprintf("%d SIGKILLs", kills))
	r.collect(res, tl)
	return nil
}

// outage halts a component for down while sessions are posted, then resumes it.
func (r *runner) outage(ctx context.Context, res *Result, halt, resume func() error, down time.Duration) error {
	if halt == nil || resume == nil {
		res.Skipped = "no way to halt it"
		return nil
	}
	start, err := r.sessions(ctx, res, r.opt.Sessions)
	if err != nil {
		return err
	}
	tl := &tally{}
	done := make(chan struct{})
	go func() { r.postAll(ctx, res, tl, start, r.opt.Pace); close(done) }()
	sleep(ctx, 3*time.Second)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	t0 := time.Now()
	if err := halt(); err != nil {
		return fmt.Errorf("halt: %w", err)
	}
	sleep(ctx, down)
	if err := resume(); err != nil {
		return fmt.Errorf("resume: %w", err)
	}
	res.Notes = append(res.Notes, fmt.Sprintf("down %s (halt to ready)", time.Since(t0).Round(100*time.Millisecond)))
	<-done
	r.collect(res, tl)
	return nil
}

// poison produces, straight to the events topic of each session, a valid event, an event whose
// data is invalid UTF-8, and a window switch, while the session's frames are posted. The window
// switch must raise its flag and the poison must be dead-lettered.
func (r *runner) poison(ctx context.Context, res *Result) error {
	start, err := r.sessions(ctx, res, r.opt.Sessions)
	if err != nil {
		return err
	}
	producer, err := pipeline.NewProducer(r.t.Kafka, nil)
	if err != nil {
		return err
	}
	defer producer.Close()
	tl := &tally{}
	done := make(chan struct{})
	go func() { r.postAll(ctx, res, tl, start, r.opt.Pace/2); close(done) }()
	now := time.Now()
	for _, id := range res.sessionIDs {
		ev := func(seq int64, typ string, payload []byte) kafkaMessage {
			return pipeline.EncodeEvent(pipeline.EventMessage{SessionID: id, Seq: seq, Type: typ,
				CapturedAtMs: now.UnixMilli(), ReceivedAtMs: now.UnixMilli(), Payload: payload})
		}
		msgs := []kafkaMessage{ev(1, "focus_lost", []byte(`{"note":"fine"}`)),
			ev(2, "focus_lost", []byte("{\"note\":\"bad \xff\xfe bytes\"}")),
			ev(3, "window_switched", nil)}
		if err := retry(ctx, time.Minute, func() error { return producer.Send(ctx, r.t.Kafka.Topics.Events, msgs...) }); err != nil {
			return err
		}
	}
	<-done
	r.collect(res, tl)
	return nil
}

// burst posts BurstSessions sessions at once, as fast as the API answers.
func (r *runner) burst(ctx context.Context, res *Result) error {
	start, err := r.sessions(ctx, res, r.opt.BurstSessions)
	if err != nil {
		return err
	}
	res.repeat = r.opt.BurstRepeat
	tl := &tally{}
	t0 := time.Now()
	res.burstStart = t0
	r.postAll(ctx, res, tl, start, 0)
	// Offered: the rate the API accepted at before it pushed back (after that the clients wait
	// Retry-After, as they should).
	if tl.first429.IsZero() {
		res.Offered = float64(tl.posted.Load()) / time.Since(t0).Seconds()
	} else {
		res.Offered = float64(tl.before429) / tl.first429.Sub(t0).Seconds()
	}
	r.collect(res, tl)
	if res.Refused429 == 0 {
		res.fail("no 429 during the burst: backpressure did not engage")
	}
	return nil
}

// collect copies the posters' counts into res.
func (r *runner) collect(res *Result, tl *tally) {
	res.Posted = tl.posted.Load()
	res.Refused429, res.Refused503, res.ServerErrors, res.ClientErrors = tl.n429.Load(), tl.n503.Load(), tl.n5xx.Load(), tl.n4xx.Load()
	res.P99Ingest = percentile(tl.latencies, 0.99)
	if res.ServerErrors > 0 {
		res.fail("%d answers 5xx other than 503", res.ServerErrors)
	}
	if res.ClientErrors > 0 {
		res.fail("%d frames refused with a 4xx", res.ClientErrors)
	}
	if want := int64(len(res.sessionIDs) * len(r.timeline) * max(res.repeat, 1)); res.Posted != want {
		res.fail("%d of %d frames accepted (posting gave up)", res.Posted, want)
	}
}

// settle waits until everything accepted is stored (or Drain passes), then counts.
func (r *runner) settle(ctx context.Context, res *Result) error {
	ids := res.sessionIDs
	db := r.t.Store.DB.WithContext(ctx)
	deadline := time.Now().Add(r.opt.Drain)
	for {
		var n int64
		err := db.Model(&store.FrameResult{}).Where("session_id IN ?", ids).Count(&n).Error
		if err == nil {
			res.Stored = n
			if n >= res.Posted && r.flagsSettled(ctx, res) {
				break
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Now().After(deadline) {
			res.Notes = append(res.Notes, "drain deadline passed")
			break
		}
		sleep(ctx, 250*time.Millisecond)
	}
	if !res.burstStart.IsZero() { // the workers were busy from the first frame to the last
		res.Capacity = float64(res.Stored) / time.Since(res.burstStart).Seconds()
	}
	res.Lost = max(0, res.Posted-res.Stored)
	if res.Lost > 0 {
		res.fail("%d accepted frames lost", res.Lost)
	}
	// Frames analysed more than once: the sessions' counters against the distinct rows.
	var analysed int64
	if err := db.Model(&store.Session{}).Where("id IN ?", ids).Select("COALESCE(SUM(frames), 0)").Scan(&analysed).Error; err != nil {
		return err
	}
	res.Duplicated = max(0, analysed-res.Stored)
	var maxWait int64
	if err := db.Model(&store.FrameResult{}).Where("session_id IN ?", ids).
		Select("COALESCE(MAX(stored_at_ms - received_at_ms), 0)").Scan(&maxWait).Error; err != nil {
		return err
	}
	res.MaxWait = time.Duration(maxWait) * time.Millisecond
	// Flags: one FACE_ABSENT and one MULTIPLE_FACES per session and replay of the demo timeline, and one
	// WINDOW_SWITCH per session in the poison fault.
	want := map[string]int{rules.FaceAbsent: max(res.repeat, 1), rules.MultipleFaces: max(res.repeat, 1)}
	if res.Fault == "poison" {
		want[rules.WindowSwitch] = 1
	}
	var flags []store.Flag
	if err := db.Where("session_id IN ?", ids).Find(&flags).Error; err != nil {
		return err
	}
	got := map[string]map[string]int{}
	for _, f := range flags {
		if want[f.Type] == 0 {
			continue
		}
		if got[f.SessionID] == nil {
			got[f.SessionID] = map[string]int{}
		}
		got[f.SessionID][f.Type]++
	}
	for _, id := range ids {
		for typ, n := range want {
			res.FlagsExpected += n
			res.FlagsRaised += got[id][typ]
			if extra := got[id][typ] - n; extra > 0 {
				res.Duplicated += int64(extra)
			}
		}
	}
	if res.FlagsRaised != res.FlagsExpected {
		res.fail("flags raised %d, expected %d", res.FlagsRaised, res.FlagsExpected)
	}
	if res.Duplicated > 0 {
		res.fail("%d duplicated", res.Duplicated)
	}
	if res.Fault == "poison" {
		if err := db.Model(&store.DeadLetter{}).Where("session_id IN ?", ids).Count(&res.DeadLettered).Error; err != nil {
			return err
		}
		if res.DeadLettered != int64(len(ids)) {
			res.fail("%d poison messages dead-lettered, want %d", res.DeadLettered, len(ids))
		}
	}
	return nil
}

// flagsSettled: the poison fault also waits for its window switches and dead letters.
func (r *runner) flagsSettled(ctx context.Context, res *Result) bool {
	if res.Fault != "poison" {
		return true
	}
	db := r.t.Store.DB.WithContext(ctx)
	var flags, dead int64
	db.Model(&store.Flag{}).Where("session_id IN ? AND type = ?", res.sessionIDs, rules.WindowSwitch).Count(&flags)
	db.Model(&store.DeadLetter{}).Where("session_id IN ?", res.sessionIDs).Count(&dead)
	return flags >= int64(len(res.sessionIDs)) && dead >= int64(len(res.sessionIDs))
}

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

// retry calls f until it succeeds or budget passes.
func retry(ctx context.Context, budget time.Duration, f func() error) error {
	deadline := time.Now().Add(budget)
	for {
		err := f()
		if err == nil || time.Now().After(deadline) || ctx.Err() != nil {
			return errors.Join(err, ctx.Err())
		}
		sleep(ctx, time.Duration(300+rand.IntN(400))*time.Millisecond)
	}
}

func sleep(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
