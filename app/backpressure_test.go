package app

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"proctor/analyzers"
	"proctor/internal/platform"
	"proctor/pipeline"
	"proctor/store"
)

// TestBurstBackpressure is issue #19's 10× burst, at its extreme: frames are posted while no
// worker runs (capacity 0), so the backlog only grows. Ingest must start answering 429 with
// Retry-After once the oldest unanalysed frame is older than the bound, accept nothing more while
// the backlog stays, show the lag in /metrics, and, once a worker is started, every accepted
// frame must be analysed exactly once and ingest must accept again. It waits for conditions, never
// for fixed times, so a loaded machine only makes it slower.
func TestBurstBackpressure(t *testing.T) {
	f := sampleFrames(t)
	ctx := context.Background()
	br, err := pipeline.StartEmbeddedBroker(ctx, pipeline.EmbeddedBrokerConfig{Logger: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(br.Close)
	b := backend{name: "embedded-kafka+sqlite"}
	kcfg := kafkaConfig(b)
	kcfg.Brokers = []string{br.Addr()}
	dataDir := t.TempDir()
	const bound = 2 * time.Second
	api := startApp(t, b, func(c *Config) {
		c.RunAPI = true
		c.Kafka = kcfg
		c.Store.DataDir = dataDir
		c.API.MaxLag = bound
	})
	ingestKey, _ := keys(t, api, "org-burst")
	plat := platform.New(api.URL, ingestKey)
	start := time.Now().Add(-time.Hour).Truncate(time.Second)
	var ids []string
	for i := range 3 {
		s, err := plat.CreateSession(ctx, platform.NewSession{ExamID: "burst", CandidateID: "c" + strconv.Itoa(i),
			ScheduledStart: start, DurationSec: 3600, Questions: 2, Photo: f.Photo})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, s.ID)
	}
	jpeg := f.Candidate[0]

	// Four posters, as fast as the API answers, until 429s have been seen for a while.
	type accepted struct {
		session string
		seq     int64
	}
	var (
		mu        sync.Mutex
		ok        []accepted
		after429  int // frames posted after the first 429 came back and accepted (none may be: no worker runs)
		n429      atomic.Int64
		at429     time.Time
		first429  httpResult
		posterErr error
		failed    atomic.Bool
		seq       atomic.Int64
	)
	post := func(session string, s int64) (int, http.Header, []byte, error) {
		u := fmt.Sprintf("%s/v1/sessions/%s/frames?camera=main&seq=%d&captured_at=%d", api.URL, session, s,
			start.Add(time.Duration(s)*100*time.Millisecond).UnixMilli())
		req, _ := http.NewRequest(http.MethodPost, u, bytes.NewReader(jpeg))
		req.Header.Set("Authorization", "Bearer "+ingestKey)
		req.Header.Set("Content-Type", "image/jpeg")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, nil, nil, err
		}
		defer resp.Body.Close()
		var body bytes.Buffer
		body.ReadFrom(resp.Body)
		return resp.StatusCode, resp.Header, body.Bytes(), nil
	}
	var wg sync.WaitGroup
	for p := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n429.Load() < 40 {
				s := seq.Add(1)
				session := ids[p%len(ids)]
				sent := time.Now()
				code, hdr, body, err := post(session, s)
				mu.Lock()
				switch {
				case err != nil:
					posterErr = err
				case code == http.StatusAccepted:
					ok = append(ok, accepted{session, s})
					if !at429.IsZero() && sent.After(at429) {
						after429++
					}
				case code == http.StatusTooManyRequests:
					if n429.Add(1) == 1 {
						first429, at429 = httpResult{code, hdr, body}, time.Now()
					}
				default:
					posterErr = fmt.Errorf("frame %d: HTTP %d %s", s, code, body)
				}
				stop := posterErr != nil
				mu.Unlock()
				if stop {
					failed.Store(true)
					return
				}
				if n429.Load() > 0 {
					time.Sleep(20 * time.Millisecond) // the platform backs off; so do we
				}
			}
		}()
	}
	// Meanwhile /metrics must show the frames topic's lag.
	var sawLag bool
	for n429.Load() < 40 && !failed.Load() {
		lag, age := scrapeBacklog(t, api.URL, kcfg.Topics.Frames)
		if lag > 0 && age > 0 {
			sawLag = true
		}
		time.Sleep(200 * time.Millisecond)
	}
	wg.Wait()
	if posterErr != nil {
		t.Fatal(posterErr)
	}
	if !sawLag {
		t.Error("/metrics never showed the frames topic's lag and oldest unprocessed age")
	}
	t.Logf("%d frames accepted, then %d answered 429", len(ok), n429.Load())
	if len(ok) == 0 {
		t.Fatal("nothing was accepted before the backlog passed its bound")
	}
	if after429 != 0 {
		t.Errorf("%d frames accepted after the first 429 although no worker ran: the backlog grew past its bound", after429)
	}
	ra, err := strconv.Atoi(first429.header.Get("Retry-After"))
	var e struct{ Error string }
	if jerr := json.Unmarshal(first429.body, &e); err != nil || ra < 1 || jerr != nil || !strings.Contains(e.Error, "Retry-After") {
		t.Errorf("429: Retry-After %q, body %s; want whole seconds ≥ 1 and a JSON error saying to retry", first429.header.Get("Retry-After"), first429.body)
	}
	// The admin status shows the same backlog with the bound.
	adminKey, _, err := api.Store.CreateAPIKey(ctx, "org-burst", "admin", []string{store.ScopeAdmin})
	if err != nil {
		t.Fatal(err)
	}
	var status struct {
		Components struct {
			Kafka struct {
				Backlog map[string]struct {
					Messages int64   `json:"messages"`
					Oldest   float64 `json:"oldest_unprocessed_seconds"`
				} `json:"backlog"`
				MaxLag float64 `json:"max_lag_seconds"`
			} `json:"kafka"`
		} `json:"components"`
	}
	if _, err := platform.New(api.URL, adminKey).Do(ctx, http.MethodGet, "/v1/admin/status", "", nil, &status); err != nil {
		t.Fatal(err)
	}
	if k := status.Components.Kafka; k.Backlog[kcfg.Topics.Frames].Messages < int64(len(ok)) || k.Backlog[kcfg.Topics.Frames].Oldest <= 0 || k.MaxLag != bound.Seconds() {
		t.Errorf("admin status: %+v; want the frames topic's %d waiting, their age and the bound %v", k, len(ok), bound)
	}
	// Events are never refused for lag.
	if code, err := plat.PostEvents(ctx, ids[0], platform.Event{Seq: 1, Type: "window_switched", CapturedAt: start.UnixMilli()}); err != nil || code != http.StatusAccepted {
		t.Errorf("event during the backlog: %d %v; want 202", code, err)
	}

	// Capacity arrives: every accepted frame is analysed exactly once, and ingest accepts again.
	startApp(t, b, func(c *Config) {
		c.RunWorkers = true
		c.Kafka = kcfg
		c.Store.DataDir = dataDir
		c.Analyzers = analyzers.Config{Analyzers: []string{"faces"}}
	})
	stored := func() (int64, string) {
		var n int64
		api.Store.DB.Model(&store.FrameResult{}).Where("session_id IN ?", ids).Count(&n)
		return n, fmt.Sprintf("%d of %d accepted frames stored", n, len(ok))
	}
	waitWithin(t, "every accepted frame analysed", 5*time.Minute, func() (bool, string) {
		n, s := stored()
		return n >= int64(len(ok)), s
	})
	if n, s := stored(); n != int64(len(ok)) {
		t.Errorf("%s: frames stored that were never accepted", s)
	}
	for _, a := range ok {
		var n int64
		api.Store.DB.Model(&store.FrameResult{}).Where("session_id = ? AND camera = ? AND seq = ?", a.session, "main", a.seq).Count(&n)
		if n != 1 {
			t.Fatalf("accepted frame %s/%d stored %d times", a.session, a.seq, n)
		}
	}
	waitWithin(t, "ingest to accept again once the backlog drained", 2*time.Minute, func() (bool, string) {
		code, _, body, err := post(ids[0], seq.Add(1))
		return err == nil && code == http.StatusAccepted, fmt.Sprintf("%d %s %v", code, body, err)
	})
}

// scrapeBacklog reads the backlog gauges of topic from /metrics.
func scrapeBacklog(t *testing.T, base, topic string) (lag, age float64) {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	label := `{topic="` + topic + `"} `
	for sc.Scan() {
		line := sc.Text()
		for name, v := range map[string]*float64{"proctor_pipeline_group_lag_messages": &lag, "proctor_pipeline_group_oldest_unprocessed_seconds": &age} {
			if rest, ok := strings.CutPrefix(line, name+label); ok {
				*v, _ = strconv.ParseFloat(rest, 64)
			}
		}
	}
	return lag, age
}
