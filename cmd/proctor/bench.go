package main

import (
	"context"
	"flag"
	"fmt"
	"os"
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

// runBench replays frames through API → Kafka → analyzers → DB on the embedded defaults (or the
// configured brokers/database) and then through the analyzers alone, so the pipeline's overhead
// is a ratio from one run.
func runBench(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	var sf serviceFlags
	sf.register(fs)
	n := fs.Int("n", 300, "frames to replay")
	sessions := fs.Int("sessions", 6, "concurrent candidate sessions (spread over Kafka partitions)")
	rate := fs.Float64("rate", 0, "frames/s to post in total (0 = as fast as the API takes them: measures throughput; a rate below capacity measures latency without queueing)")
	fs.Lookup("addr").DefValue = "127.0.0.1:0"
	if err := parse(fs, args); err != nil {
		return err
	}
	if sf.addr == ":8080" {
		sf.addr = "127.0.0.1:0"
	}
	if sf.dataDir == "data" && sf.dsn == "" {
		dir, err := os.MkdirTemp("", "proctor-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		sf.dataDir = dir
	}
	if sf.logLevel == "info" {
		sf.logLevel = "warn"
	}
	cfg := sf.config()
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
	ids := make([]string, *sessions)
	for i := range ids {
		s, err := client.CreateSession(ctx, platform.NewSession{ExamID: "bench", CandidateID: fmt.Sprint("c", i),
			ScheduledStart: start, DurationSec: 3600, Questions: 3, Photo: frames.Photo})
		if err != nil {
			return err
		}
		ids[i] = s.ID
	}

	fmt.Printf("bench: %d frames (%d×%d JPEG, ~%d KiB) over %d sessions, %d CPU, worker concurrency %d\n",
		*n, scenario.FrameSize, scenario.FrameSize*3/4, len(shots[0].JPEG)>>10, *sessions, runtime.NumCPU(), a.Kafka.Concurrency)
	// Each session posts its frames in order, as a platform would; sessions run in parallel.
	postedAt := make([]time.Time, *n)
	var posted atomic.Int64
	t0 := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, *sessions)
	for s := range *sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var tick *time.Ticker
			if *rate > 0 {
				tick = time.NewTicker(time.Duration(float64(*sessions) / *rate * float64(time.Second)))
				defer tick.Stop()
			}
			for i := s; i < *n; i += *sessions {
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
		if len(rows) >= *n || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(rows) < *n {
		return fmt.Errorf("only %d of %d frames were stored", len(rows), *n)
	}
	var last int64
	lat := make([]float64, 0, len(rows))
	for _, r := range rows {
		lat = append(lat, float64(r.StoredAtMs-postedAt[r.Seq].UnixMilli()))
		last = max(last, r.StoredAtMs)
	}
	total := time.UnixMilli(last).Sub(t0)
	sort.Float64s(lat)
	pipelineFPS := float64(*n) / total.Seconds()
	fmt.Printf("pipeline:   %6.1f frames/s analysed end to end (%d frames in %.2fs; posting took %.2fs)\n",
		pipelineFPS, *n, total.Seconds(), postDur.Seconds())
	fmt.Printf("latency:    p50 %.0f ms   p95 %.0f ms   p99 %.0f ms   (POST sent → result stored)\n",
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
			for i := next.Add(1) - 1; i < int64(*n); i = next.Add(1) - 1 {
				meta := analyzers.FrameMeta{Camera: analyzers.CameraMain, Session: ids[i%int64(len(ids))], Enrolled: enrolled}
				if _, err := sets[w].AnalyzeFrameJPEG(ctx, shots[i%int64(len(shots))].JPEG, meta); err != nil {
					fmt.Fprintln(os.Stderr, "analyze:", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	modelFPS := float64(*n) / time.Since(t1).Seconds()
	fmt.Printf("model-only: %6.1f frames/s (decode + analyzers, %d goroutines)\n", modelFPS, workers)
	if *rate == 0 {
		fmt.Printf("ratio:      pipeline runs at %.0f%% of model-only throughput\n", 100*pipelineFPS/modelFPS)
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
