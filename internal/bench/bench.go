// Package bench replays the demo scenario's frames through API → Kafka → analyzers → database
// and then through the analyzers alone, so the pipeline's overhead is a ratio from one run
// (`proctor bench`).
package bench

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"proctor/analyzers"
	"proctor/app"
	"proctor/internal/platform"
	"proctor/internal/scenario"
	"proctor/store"
)

// Options configure Run.
type Options struct {
	// N is how many frames are replayed. Default 300.
	N int
	// Sessions is how many candidate sessions post concurrently (spread over Kafka partitions).
	// Default 6.
	Sessions int
	// Rate is the total frames/s posted; 0 posts as fast as the API takes them (throughput), a
	// rate below capacity measures latency without queueing.
	Rate float64
}

// Run starts the service with cfg, replays o.N frames over o.Sessions sessions through its HTTP
// API and writes throughput and latency, then the analyzers' model-only throughput, to stdout.
func Run(ctx context.Context, cfg app.Config, o Options, stdout, stderr io.Writer) error {
	if o.N <= 0 {
		o.N = 300
	}
	if o.Sessions <= 0 {
		o.Sessions = 6
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
	shots := scenario.DemoTimeline(frames)

	a, err := app.Start(ctx, cfg)
	if err != nil {
		return err
	}
	defer a.Close()
	if err := a.Store.EnsureOrganisation(ctx, "bench", "bench"); err != nil {
		return err
	}
	token, _, err := a.Store.CreateAPIKey(ctx, "bench", "bench", []string{store.ScopeIngest, store.ScopeReview})
	if err != nil {
		return err
	}
	client := platform.New(a.URL, token)
	start := time.Now().Add(-time.Hour)
	ids := make([]string, o.Sessions)
	for i := range ids {
		s, err := client.CreateSession(ctx, platform.NewSession{ExamID: "bench", CandidateID: fmt.Sprint("c", i),
			ScheduledStart: start, DurationSec: 3600, Questions: 3, Photo: frames.Photo})
		if err != nil {
			return err
		}
		ids[i] = s.ID
	}

	fmt.Fprintf(stdout, "bench: %d frames (%d×%d JPEG, ~%d KiB) over %d sessions, %d CPU, worker concurrency %d\n",
		o.N, scenario.FrameSize, scenario.FrameSize*3/4, len(shots[0].JPEG)>>10, o.Sessions, runtime.NumCPU(), a.Kafka.Concurrency)
	// Each session posts its frames in order, as a platform would; sessions run in parallel.
	postedAt := make([]time.Time, o.N)
	var posted atomic.Int64
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
				postedAt[i] = time.Now()
				if _, err := client.PostFrame(ctx, ids[s], analyzers.CameraMain, int64(i), start.Add(time.Duration(i)*time.Second), shots[i%len(shots)].JPEG); err != nil {
					errs <- err
					return
				}
				posted.Add(1)
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return fmt.Errorf("post: %w", err)
	}
	postDur := time.Since(t0)
	var rows []store.FrameResult
	deadline := time.Now().Add(5 * time.Minute)
	for {
		rows = rows[:0]
		if err := a.Store.DB.WithContext(ctx).Select("seq, stored_at_ms").Where("session_id IN ?", ids).Find(&rows).Error; err != nil {
			return err
		}
		if len(rows) >= o.N || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(rows) < o.N {
		return fmt.Errorf("only %d of %d frames were stored", len(rows), o.N)
	}
	var last int64
	lat := make([]float64, 0, len(rows))
	for _, r := range rows {
		lat = append(lat, float64(r.StoredAtMs-postedAt[r.Seq].UnixMilli()))
		last = max(last, r.StoredAtMs)
	}
	total := time.UnixMilli(last).Sub(t0)
	sort.Float64s(lat)
	pipelineFPS := float64(o.N) / total.Seconds()
	fmt.Fprintf(stdout, "pipeline:   %6.1f frames/s analysed end to end (%d frames in %.2fs; posting took %.2fs)\n",
		pipelineFPS, o.N, total.Seconds(), postDur.Seconds())
	fmt.Fprintf(stdout, "latency:    p50 %.0f ms   p95 %.0f ms   p99 %.0f ms   (POST sent → result stored)\n",
		pct(lat, 50), pct(lat, 95), pct(lat, 99))

	// The same frames through the analyzers alone, with as many sets as the workers use.
	workers := max(a.Kafka.Concurrency, 1)
	sets := []*analyzers.Set{set}
	for len(sets) < workers {
		s, err := analyzers.NewSet(cfg.Analyzers)
		if err != nil {
			return err
		}
		defer s.Close()
		sets = append(sets, s)
	}
	// As in the pipeline: each frame belongs to a session with an enrolled registration photo,
	// so identity does the same work here (nil when the set has no identity analyzer).
	var enrolled *analyzers.Enrollment
	if e, err := set.Enroll(ctx, frames.Photo); err == nil {
		enrolled = &e
	}
	var next atomic.Int64
	t1 := time.Now()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1) - 1; i < int64(o.N); i = next.Add(1) - 1 {
				meta := analyzers.FrameMeta{Camera: analyzers.CameraMain, Session: ids[i%int64(len(ids))], Enrolled: enrolled}
				if _, err := sets[w].AnalyzeFrameJPEG(ctx, shots[i%int64(len(shots))].JPEG, meta); err != nil {
					fmt.Fprintln(stderr, "analyze:", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	modelFPS := float64(o.N) / time.Since(t1).Seconds()
	fmt.Fprintf(stdout, "model-only: %6.1f frames/s (decode + analyzers, %d goroutines)\n", modelFPS, workers)
	if o.Rate == 0 {
		fmt.Fprintf(stdout, "ratio:      pipeline runs at %.0f%% of model-only throughput\n", 100*pipelineFPS/modelFPS)
	}
	return nil
}

func pct(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted)-1) * p / 100)
	return sorted[i]
}
