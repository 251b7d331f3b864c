// Package bench replays realistic candidate sessions through API → Kafka → analyzers → database
// and then through the analyzers alone, so the pipeline's overhead is a ratio from one run
// (`proctor bench`).
package bench

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	dto "github.com/prometheus/client_model/go"

	"proctor/analyzers"
	"proctor/app"
	"proctor/internal/platform"
	"proctor/internal/scenario"
	"proctor/rules"
	"proctor/store"
)

// Options configure Run.
type Options struct {
	// N is how many frames are replayed. Default 300.
	N int
	// Sessions is how many candidate sessions post concurrently (spread over Kafka partitions),
	// each at 1 frame/s of capture time. Default 6.
	Sessions int
	// Rate is the total frames/s posted; 0 posts as fast as the API takes them (throughput), a
	// rate below capacity measures latency without queueing.
	Rate float64
	// Workers, when positive, runs the API alone in this process and the workers as separate
	// processes (StartWorkers): first 1, then Workers, against the same broker and database.
	Workers int
	// StartWorkers starts n `proctor worker` processes on brokers and returns how to stop them.
	StartWorkers func(ctx context.Context, n int, brokers []string) (stop func() error, err error)
	// ModelOnlyAll also times the analyzers without the schedule on up to this many frames
	// (every analyzer on every frame: the cost the schedule saves). Default N/4; negative: not.
	ModelOnlyAll int
	// Moving makes the candidates shift in view every few seconds (the schedule's harder case:
	// the scene around the face changes, so the person detector runs more often).
	Moving bool
	// Login replays the face-login hour instead of the answering phase: the sessions' exams start
	// later, so their frames are login frames, measured for the gallery and the login check.
	Login bool
	// CPUProfile, when set, is where a Go CPU profile of the pipeline round is written.
	CPUProfile string
}

// Run starts the service with cfg, replays o.N frames over o.Sessions sessions through its HTTP
// API and writes throughput, latency and the analyzers' cost, then the analyzers' model-only
// throughput, to stdout.
func Run(ctx context.Context, cfg app.Config, o Options, stdout, stderr io.Writer) error {
	if o.N <= 0 {
		o.N = 300
	}
	if o.Sessions <= 0 {
		o.Sessions = 6
	}
	if o.ModelOnlyAll == 0 {
		o.ModelOnlyAll = o.N / 4
	}
	set, err := analyzers.NewSet(cfg.Analyzers)
	if err != nil {
		return err
	}
	defer set.Close()
	dir, err := scenario.DemoDir()
	if err != nil {
		return err
	}
	frames, err := scenario.Build(ctx, set, dir)
	if err != nil {
		return err
	}
	perSession := (o.N + o.Sessions - 1) / o.Sessions
	timelines, err := sessionTimelines(frames, o.Sessions, perSession, o.Moving, 1)
	if err != nil {
		return err
	}

	if o.Workers > 0 {
		cfg.RunAPI, cfg.RunWorkers = true, false
	}
	a, err := app.Start(ctx, cfg)
	if err != nil {
		return err
	}
	defer a.Close()
	if err := a.Store.EnsureOrganisation(ctx, "bench", "bench"); err != nil {
		return err
	}
	token, _, err := a.Store.CreateAPIKey(ctx, "bench", fmt.Sprint("bench-", time.Now().UnixNano()), []string{store.ScopeIngest, store.ScopeReview})
	if err != nil {
		return err
	}
	r := &round{a: a, client: platform.New(a.URL, token), o: o, timelines: timelines, photo: frames.Photo,
		enrols: set.EnrollModel() != ""}

	transport, db := "embedded Kafka (kfake)", "SQLite"
	if a.Broker == nil {
		transport = "Apache Kafka " + strings.Join(a.Kafka.Brokers, ",")
	}
	if cfg.Store.DSN != "" {
		db = "PostgreSQL"
	}
	labels := map[string]int{}
	for _, tl := range timelines {
		for _, s := range tl {
			labels[s.label]++
		}
	}
	fmt.Fprintf(stdout, "bench: %d frames over %d sessions at 1 frame/s each (candidate %d, empty room %d, second person %d; %d×%d JPEG ~%d KiB), %s, %s, %d CPU, worker concurrency %d (frame readers %d, analyzer sets %d)\n",
		o.N, o.Sessions, labels["candidate"], labels["nobody"], labels["group"], scenario.FrameSize, scenario.FrameSize*3/4,
		len(timelines[0][0].jpeg)>>10, transport, db, runtime.NumCPU(), a.Kafka.Concurrency, a.Kafka.FrameReaders, a.Kafka.FrameSets)

	if o.Workers > 0 {
		return r.scaleOut(ctx, stdout)
	}
	refBefore, err := hostSpeed()
	if err != nil {
		fmt.Fprintf(stderr, "bench: no host speed reference: %v\n", err)
	}
	stopProfile, err := startCPUProfile(o.CPUProfile)
	if err != nil {
		return err
	}
	t0, cpu0 := time.Now(), processCPU()
	ids, start, err := r.sessions(ctx, "")
	if err != nil {
		stopProfile()
		return err
	}
	if r.enrols {
		state := "answering"
		if o.Login {
			state = "before their exam (face login)"
		}
		fmt.Fprintf(stdout, "sessions:    %d created, %s and enrolled in %.2fs, %.0f ms CPU each (once per session, before its first frame: not in the figures below)\n",
			len(ids), state, time.Since(t0).Seconds(), (processCPU()-cpu0).Seconds()*1000/float64(len(ids)))
	}
	cpu0 = processCPU()
	res, err := r.run(ctx, ids, start)
	stopProfile()
	if err != nil {
		return err
	}
	pipeCPU := (processCPU() - cpu0).Seconds() * 1000 / float64(o.N)
	res.print(stdout, "pipeline:  ")
	if a.Metrics != nil {
		if st, err := gatherAnalyzerStats(a.Metrics); err == nil {
			fmt.Fprintln(stdout, "analyzers in the pipeline (thread CPU ms per run, share of frames it ran on, CPU ms per frame):")
			st.print(stdout)
		}
	}

	// The same sessions through the analyzers alone, with as many sets as the workers use, each
	// session's frames in order on one goroutine and under the same schedule.
	workers := max(a.Kafka.FrameSets, 1)
	set.Close()
	if set, err = analyzers.NewSet(cfg.Analyzers.Scheduled()); err != nil { // as the workers run them
		return err
	}
	defer set.Close()
	sets := []*analyzers.Set{set}
	for len(sets) < workers {
		s, err := analyzers.NewSet(cfg.Analyzers.Scheduled())
		if err != nil {
			return err
		}
		defer s.Close()
		sets = append(sets, s)
	}
	var enrolled *analyzers.Enrollment
	if e, err := set.Enroll(ctx, frames.Photo); err == nil {
		enrolled = &e
	}
	stats := newStats()
	for _, s := range sets {
		s.ObserveAnalyzers(stats.observe)
	}
	cpu1 := processCPU()
	modelFPS, err := modelOnly(ctx, sets, timelines, o.N, enrolled, analyzers.NewSchedule(cfg.Analyzers.Schedule))
	if err != nil {
		return err
	}
	modelCPU := (processCPU() - cpu1).Seconds() * 1000 / float64(o.N)
	under := "under the same schedule"
	if sc := cfg.Analyzers.Schedule; sc.PersonsEvery < 0 && sc.HeadPoseEvery < 0 && sc.StillMax < 0 {
		under = "every analyzer on every frame, as the workers"
	}
	fmt.Fprintf(stdout, "model-only: %6.1f frames/s (decode + analyzers %s, %d goroutines)\n", modelFPS, under, workers)
	if o.Rate == 0 {
		fmt.Fprintf(stdout, "ratio:      pipeline runs at %.0f%% of model-only throughput\n", 100*res.fps/modelFPS)
	}
	// CPU time per frame is what other jobs on a shared machine do not change: it gives the
	// throughput the same work reaches on idle cores.
	if pipeCPU > 0 && modelCPU > 0 {
		fmt.Fprintf(stdout, "CPU:        %.1f ms per frame end to end (API, Kafka, analyzers, rules, database: this process), %.1f ms model-only: "+
			"model-only is %.0f%% of the pipeline's CPU; on %d idle cores that is %.0f frames/s end to end, %.0f model-only\n",
			pipeCPU, modelCPU, 100*modelCPU/pipeCPU, runtime.NumCPU(), 1000*float64(runtime.NumCPU())/pipeCPU, 1000*float64(runtime.NumCPU())/modelCPU)
	}
	fmt.Fprintln(stdout, "analyzers model-only (thread CPU ms per run, share of frames it ran on, CPU ms per frame):")
	stats.print(stdout)
	printFirstLook(stdout, sets)
	if refBefore > 0 {
		if refAfter, err := hostSpeed(); err == nil {
			printHostSpeed(stdout, refBefore, refAfter, pipeCPU)
		}
	}
	if o.ModelOnlyAll > 0 {
		n := min(o.ModelOnlyAll, o.N)
		all, err := modelOnly(ctx, sets, timelines, n, enrolled, nil)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "model-only without the schedule: %6.1f frames/s (every analyzer on every frame, %d frames)\n", all, n)
	}
	return nil
}

// startCPUProfile starts a CPU profile into path (nothing when path is empty) and returns what
// stops it.
func startCPUProfile(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

// waitReady waits until the event consumer has moved every session to phase and, when the
// analyzers check identity, the workers have enrolled its registration photo: what an exam room
// is like at the start, its sessions created and enrolled ahead of the exam.
func (r *round) waitReady(ctx context.Context, ids []string, phase string) error {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		q := r.a.Store.DB.WithContext(ctx).Model(&store.Session{}).Where("id IN ?", ids)
		if phase != "" {
			q = q.Where("phase = ?", phase)
		}
		if r.enrols {
			q = q.Where("face_embedding_model <> ''")
		}
		var n int64
		if err := q.Count(&n).Error; err != nil {
			return err
		}
		if n == int64(len(ids)) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d sessions reached phase %s (and were enrolled) within 2 minutes", n, len(ids), phase)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// round posts the sessions' frames through the API and waits until all are stored.
type round struct {
	a         *app.App
	client    *platform.Client
	o         Options
	timelines [][]shot
	photo     []byte
	enrols    bool // the analyzers check identity: sessions are enrolled before their frames
}

type result struct {
	fps, postSecs, totalSecs float64
	n                        int
	lat                      []float64
	rate                     float64
}

func (res result) print(w io.Writer, label string) {
	fmt.Fprintf(w, "%s %6.1f frames/s analysed end to end (%d frames in %.2fs; posting took %.2fs)\n",
		label, res.fps, res.n, res.totalSecs, res.postSecs)
	at := "all posted at once: queueing included"
	if res.rate > 0 {
		at = fmt.Sprintf("posted at %.0f frames/s", res.rate)
	}
	fmt.Fprintf(w, "latency:     p50 %.0f ms   p95 %.0f ms   p99 %.0f ms   (POST sent → result stored; %s)\n",
		pct(res.lat, 50), pct(res.lat, 95), pct(res.lat, 99), at)
}

// sessions creates the round's sessions and waits until they are answering and enrolled, as an
// exam room's are when its frames start; it returns their ids and capture start.
func (r *round) sessions(ctx context.Context, tag string) ([]string, time.Time, error) {
	start := time.Now().Add(-time.Hour).Truncate(time.Second)
	scheduled, phase := start, rules.PhaseAnswering
	if r.o.Login {
		scheduled, phase = start.Add(2*time.Hour), ""
	}
	ids := make([]string, r.o.Sessions)
	for i := range ids {
		s, err := r.client.CreateSession(ctx, platform.NewSession{ExamID: "bench", CandidateID: fmt.Sprint("c", tag, i),
			ScheduledStart: scheduled, DurationSec: 3 * 3600, Questions: 3, Photo: r.photo})
		if err != nil {
			return nil, start, err
		}
		ids[i] = s.ID
		if r.o.Login {
			continue
		}
		// An exam room is answering: the platform's event, so that frames are judged as in the
		// answering phase (not as face-login frames that may join the gallery).
		if _, err := r.client.PostEvents(ctx, s.ID, platform.Event{Seq: 1, Type: "answering_started", CapturedAt: start.UnixMilli()}); err != nil {
			return nil, start, err
		}
	}
	return ids, start, r.waitReady(ctx, ids, phase)
}

// run posts the sessions' frames and waits until all are stored.
func (r *round) run(ctx context.Context, ids []string, start time.Time) (result, error) {
	o := r.o
	// Frame i is session i%S's frame i/S, captured i/S seconds into the session; its seq is i.
	postedAt := make([]time.Time, o.N)
	t0 := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, o.Sessions)
	for s := range o.Sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var tick *time.Ticker
			if o.Rate > 0 {
				tick = time.NewTicker(time.Duration(float64(o.Sessions) / o.Rate * float64(time.Second)))
				defer tick.Stop()
			}
			for i := s; i < o.N; i += o.Sessions {
				if tick != nil {
					<-tick.C
				}
				k := i / o.Sessions
				postedAt[i] = time.Now()
				if _, err := r.client.PostFrame(ctx, ids[s], analyzers.CameraMain, int64(i), start.Add(time.Duration(k)*time.Second), r.timelines[s][k].jpeg); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return result{}, fmt.Errorf("post: %w", err)
	}
	postDur := time.Since(t0)
	// Wait with a cheap count (the bench's own queries are CPU this process spends, not the
	// pipeline), then read the store times once.
	deadline := time.Now().Add(10 * time.Minute)
	for {
		var stored int64
		if err := r.a.Store.DB.WithContext(ctx).Model(&store.FrameResult{}).Where("session_id IN ?", ids).Count(&stored).Error; err != nil {
			return result{}, err
		}
		if stored >= int64(o.N) || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	var rows []store.FrameResult
	if err := r.a.Store.DB.WithContext(ctx).Select("seq, stored_at_ms").Where("session_id IN ?", ids).Find(&rows).Error; err != nil {
		return result{}, err
	}
	if len(rows) < o.N {
		return result{}, fmt.Errorf("only %d of %d frames were stored", len(rows), o.N)
	}
	var last int64
	lat := make([]float64, 0, len(rows))
	for _, row := range rows {
		lat = append(lat, float64(row.StoredAtMs-postedAt[row.Seq].UnixMilli()))
		last = max(last, row.StoredAtMs)
	}
	total := time.UnixMilli(last).Sub(t0)
	sort.Float64s(lat)
	return result{fps: float64(o.N) / total.Seconds(), postSecs: postDur.Seconds(), totalSecs: total.Seconds(),
		n: o.N, lat: lat, rate: o.Rate}, nil
}

// scaleOut runs the sessions against 1 worker process, then against o.Workers.
func (r *round) scaleOut(ctx context.Context, w io.Writer) error {
	if r.o.StartWorkers == nil {
		return fmt.Errorf("--workers needs a way to start worker processes")
	}
	var fps []float64
	for _, n := range []int{1, r.o.Workers} {
		stop, err := r.o.StartWorkers(ctx, n, r.a.Kafka.Brokers)
		if err != nil {
			return err
		}
		ids, start, err := r.sessions(ctx, fmt.Sprint("w", n, "-"))
		var res result
		if err == nil {
			res, err = r.run(ctx, ids, start)
		}
		if serr := stop(); err == nil {
			err = serr
		}
		if err != nil {
			return err
		}
		res.print(w, fmt.Sprintf("%d worker process(es):", n))
		fps = append(fps, res.fps)
	}
	fmt.Fprintf(w, "scale-out: %d processes analyse %.2f× the frames/s of 1 (same broker, same database)\n", r.o.Workers, fps[1]/fps[0])
	return nil
}

// modelOnly analyses the first n frames of the timelines (frame i: session i%S, its frame i/S),
// each session's frames in order on one goroutine, and returns frames/s.
func modelOnly(ctx context.Context, sets []*analyzers.Set, timelines [][]shot, n int, enrolled *analyzers.Enrollment, sched *analyzers.Schedule) (float64, error) {
	S := len(timelines)
	tag := fmt.Sprint("model-only-", time.Now().UnixNano(), "-")
	var failed atomic.Value
	var wg sync.WaitGroup
	t0 := time.Now()
	start := time.Now().Add(-time.Hour)
	for w := range sets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Goroutine w takes sessions w, w+G, …, frame by frame of capture time.
			var mine []int
			for s := w; s < S; s += len(sets) {
				mine = append(mine, s)
			}
			for k := 0; ; k++ {
				any := false
				for _, s := range mine {
					i := k*S + s
					if i >= n {
						continue
					}
					any = true
					session := tag + fmt.Sprint(s)
					meta := analyzers.FrameMeta{Camera: analyzers.CameraMain, Session: session, Enrolled: enrolled,
						CapturedAt: start.Add(time.Duration(k) * time.Second), Plan: sched.Plan(session, analyzers.CameraMain)}
					if _, err := sets[w].AnalyzeFrameJPEG(ctx, timelines[s][k].jpeg, meta); err != nil {
						failed.Store(err)
						return
					}
				}
				if !any {
					return
				}
			}
		}()
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		return 0, fmt.Errorf("analyze: %w", err)
	}
	return float64(n) / time.Since(t0).Seconds(), nil
}

// stats sums analyzer runs, skips and time.
type stats struct {
	mu      sync.Mutex
	order   []string
	ran     map[string]float64
	skipped map[string]float64
	secs    map[string]float64
}

func newStats() *stats {
	return &stats{ran: map[string]float64{}, skipped: map[string]float64{}, secs: map[string]float64{}}
}

func (s *stats) observe(name string, ran bool, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.ran[name]; !ok && !slices.Contains(s.order, name) {
		s.order = append(s.order, name)
	}
	if ran {
		s.ran[name]++
		s.secs[name] += d.Seconds()
	} else {
		s.skipped[name]++
	}
}

func (s *stats) print(w io.Writer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var total float64
	for _, name := range s.order {
		ran, frames := s.ran[name], s.ran[name]+s.skipped[name]
		if frames == 0 {
			continue
		}
		perRun := 0.0
		if ran > 0 {
			perRun = 1000 * s.secs[name] / ran
		}
		perFrame := 1000 * s.secs[name] / frames
		total += perFrame
		fmt.Fprintf(w, "  %-13s %6.2f ms per run  ran on %5.1f%% of %4.0f frames  %6.2f ms per frame\n",
			name, perRun, 100*ran/frames, frames, perFrame)
	}
	fmt.Fprintf(w, "  %-13s %54s %6.2f ms per frame (decode not included)\n", "all", "", total)
	// A still frame skips every analyzer (schedule.go: nothing runs, the frame is not decoded, the
	// last analysed frame's observation is carried); each analyzer is also skipped on frames of its
	// own, so the fewest skips of any analyzer are the still frames.
	still, frames := math.Inf(1), 0.0
	for _, name := range s.order {
		if s.skipped[name] < still {
			still, frames = s.skipped[name], s.ran[name]+s.skipped[name]
		}
	}
	if frames > 0 {
		fmt.Fprintf(w, "  still frames: %.1f%% (nothing ran, not decoded: the observation of the second before carried)\n", 100*still/frames)
	}
}

// gatherAnalyzerStats reads the workers' analyzer counters (proctor_analyzer_*).
func gatherAnalyzerStats(g interface {
	Gather() ([]*dto.MetricFamily, error)
}) (*stats, error) {
	mfs, err := g.Gather()
	if err != nil {
		return nil, err
	}
	s := newStats()
	label := func(m *dto.Metric, name string) string {
		for _, l := range m.GetLabel() {
			if l.GetName() == name {
				return l.GetValue()
			}
		}
		return ""
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			name := label(m, "analyzer")
			switch mf.GetName() {
			case "proctor_analyzer_seconds_total":
				s.secs[name] += m.GetCounter().GetValue()
			case "proctor_analyzer_frames_total":
				if label(m, "ran") == "true" {
					s.ran[name] += m.GetCounter().GetValue()
				} else {
					s.skipped[name] += m.GetCounter().GetValue()
				}
			default:
				continue
			}
			if !slices.Contains(s.order, name) {
				s.order = append(s.order, name)
			}
		}
	}
	return s, nil
}

func pct(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted)-1) * p / 100)
	return sorted[i]
}

// printFirstLook says how many of the faces identity measured model-only its first look settled
// (IdentityConfig.FirstLook): the rest cost the full model too.
func printFirstLook(w io.Writer, sets []*analyzers.Set) {
	var first, stranger, full int
	for _, s := range sets {
		for _, a := range s.Analyzers() {
			if id, ok := a.(*analyzers.Identity); ok {
				f, o, m := id.Looks()
				first, stranger, full = first+f, stranger+o, full+m
			}
		}
	}
	if n := first + stranger + full; first+stranger > 0 {
		fmt.Fprintf(w, "  identity: the first look settled %d of %d faces measured as the candidate (%.0f%%) and %d as someone else (%.0f%%); the full model measured the rest\n",
			first, n, 100*float64(first)/float64(n), stranger, 100*float64(stranger)/float64(n))
	}
}
