package api

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"

	"proctor/pipeline"
)

// Backpressure: when the workers fall behind, ingest of frames and audio answers 429 with
// Retry-After, so the delay between a frame's capture and its analysis stays bounded instead of
// growing without limit. The platform's client keeps a refused frame and resends it with the same
// seq, as after a network loss. The lag is read from Kafka (the consumer groups' committed offsets
// against the topics' ends, and the timestamp of the oldest unprocessed message), so it works
// with `proctor api` and `proctor worker` in separate processes, and is cached for
// Config.BacklogEvery: a request never waits for Kafka.
//
// The bound is on the wait of a frame accepted now: the backlog ahead of it divided by the rate
// at which the workers drain it (measured from the groups' positions over the last
// drainWindow), and, when there is no drain rate to go by (no worker has processed anything in
// that window), the age of the oldest unprocessed message. The age alone would let a burst
// queue accept-rate × bound messages before it reacts, which takes far longer than the bound to
// drain.
//
// Events are never refused for lag: they are tiny, cheap to analyse, and a late exam-flow event
// (entered, window switched) changes flags; holding them back would gain nothing.

// backlogState is the last reading of the consumer groups' backlog.
type backlogState struct {
	mu         sync.Mutex
	reading    map[string]pipeline.TopicBacklog
	at         time.Time // when reading was taken; zero: never
	refreshing bool
	history    []positions        // readings of the last drainWindow, oldest first
	rates      map[string]float64 // the last drain rate measured per topic (messages/s)
	// since counts what this process accepted per topic since the reading: a burst between two
	// readings counts at once, not a second later.
	since map[string]*atomic.Int64

	lag       *prometheus.GaugeVec
	age       *prometheus.GaugeVec
	wait      *prometheus.GaugeVec
	throttled *prometheus.CounterVec
}

// positions is one reading of the groups' positions, per topic.
type positions struct {
	at   time.Time
	pos  map[string]int64
	busy map[string]bool // messages were waiting
}

// drainWindow is how far back the drain rate is measured: long enough to smooth the workers'
// commits, short enough to follow a worker that dies or joins.
const drainWindow = 10 * time.Second

// backlogStale: a reading older than this (Kafka unreachable, refresh failing) is not used to
// refuse anything. Past it, produce errors answer 503 anyway.
const backlogStale = 30 * time.Second

// throttling reports whether backpressure is configured at all.
func (s *Server) throttling() bool {
	return s.cfg.Kafka != nil && (s.cfg.MaxLag > 0 || s.cfg.MaxLagMessages > 0)
}

// backlog returns the last reading, starting a refresh in the background when it is older than
// BacklogEvery. wait makes the caller wait for that refresh (the /metrics scrape, the tests).
func (s *Server) backlog(ctx context.Context, wait bool) (map[string]pipeline.TopicBacklog, time.Time) {
	b := &s.backlogs
	b.mu.Lock()
	if time.Since(b.at) < s.cfg.BacklogEvery || b.refreshing {
		r, at := b.reading, b.at
		b.mu.Unlock()
		return r, at
	}
	b.refreshing = true
	b.mu.Unlock()
	done := make(chan struct{})
	go func() {
		defer close(done)
		// Not the request's context: the refresh outlives the request that started it.
		st, err := s.cfg.Kafka.Check(context.Background(), true)
		b.mu.Lock()
		defer b.mu.Unlock()
		b.refreshing = false
		if err != nil || st.LagError != "" {
			s.log.Debug("backlog reading failed", "err", err, "lag_error", st.LagError)
			return // keep the previous reading until it is stale
		}
		now := time.Now()
		b.reading, b.at = st.Backlog, now
		for _, n := range b.since {
			n.Store(0)
		}
		p := positions{at: now, pos: map[string]int64{}, busy: map[string]bool{}}
		for topic, tb := range st.Backlog {
			p.pos[topic], p.busy[topic] = tb.Position, tb.Messages > 0
		}
		b.history = append(b.history, p)
		for len(b.history) > 2 && now.Sub(b.history[1].at) >= drainWindow {
			b.history = b.history[1:]
		}
		for topic := range st.Backlog {
			b.measureRate(topic)
		}
		for topic, tb := range st.Backlog {
			b.lag.WithLabelValues(topic).Set(float64(tb.Messages))
			b.age.WithLabelValues(topic).Set(tb.OldestSeconds)
			b.wait.WithLabelValues(topic).Set(b.estimate(topic, tb).Seconds())
		}
	}()
	if wait {
		select {
		case <-done:
		case <-ctx.Done():
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.reading, b.at
}

// measureRate updates the drain rate of topic from the readings of the last drainWindow: the
// messages processed over the intervals that began with messages waiting (idle time says nothing
// about how fast the workers go). Without at least 1 s of such intervals, the rate measured
// before stays. Called with b.mu held.
func (b *backlogState) measureRate(topic string) {
	var done int64
	var busy time.Duration
	for i := 1; i < len(b.history); i++ {
		if prev, cur := b.history[i-1], b.history[i]; prev.busy[topic] {
			done += cur.pos[topic] - prev.pos[topic]
			busy += cur.at.Sub(prev.at)
		}
	}
	if busy >= time.Second && done > 0 {
		if b.rates == nil {
			b.rates = map[string]float64{}
		}
		b.rates[topic] = float64(done) / busy.Seconds()
	}
}

// estimate is the wait of a message of topic accepted now: the messages ahead of it over the
// drain rate, never less than the oldest one's age; the age alone while no rate was measured.
// Called with b.mu held.
func (b *backlogState) estimate(topic string, tb pipeline.TopicBacklog) time.Duration {
	if tb.Messages == 0 {
		return 0
	}
	rate := b.rates[topic]
	if rate <= 0 {
		return tb.OldestAge
	}
	return max(time.Duration(float64(tb.Messages)/rate*float64(time.Second)), tb.OldestAge)
}

// throttle answers 429 with Retry-After when topic's backlog is past the configured bound. It
// costs a map lookup per request: the reading is refreshed in the background.
func (s *Server) throttle(c *fiber.Ctx, topic string) error {
	if !s.throttling() {
		return nil
	}
	reading, at := s.backlog(c.UserContext(), false)
	if at.IsZero() || time.Since(at) > backlogStale {
		return nil
	}
	tb := reading[topic]
	if n := s.backlogs.since[topic]; n != nil {
		tb.Messages += n.Load()
	}
	s.backlogs.mu.Lock()
	wait := s.backlogs.estimate(topic, tb)
	s.backlogs.mu.Unlock()
	over := s.cfg.MaxLag > 0 && wait > s.cfg.MaxLag
	if s.cfg.MaxLagMessages > 0 && tb.Messages > s.cfg.MaxLagMessages {
		over = true
	}
	if !over {
		return nil
	}
	s.backlogs.throttled.WithLabelValues(topic).Inc()
	// Retry once the backlog could have drained below the bound: how far past it the expected
	// wait is, at least 1 s, at most 30 s.
	retry := 1.0
	if s.cfg.MaxLag > 0 {
		retry = math.Ceil((wait - s.cfg.MaxLag).Seconds()) + 1
	}
	retry = min(max(retry, 1), 30)
	c.Set(fiber.HeaderRetryAfter, strconv.Itoa(int(retry)))
	return bad(fiber.StatusTooManyRequests, fmt.Sprintf(
		"analysis is behind (%d messages waiting, about %.0f s of work, the oldest for %.0f s; bound %s): not accepted, resend it with the same seq after Retry-After seconds",
		tb.Messages, wait.Seconds(), tb.OldestAge.Seconds(), s.lagBound()))
}

func (s *Server) lagBound() string {
	switch {
	case s.cfg.MaxLag > 0 && s.cfg.MaxLagMessages > 0:
		return fmt.Sprintf("%s or %d messages", s.cfg.MaxLag, s.cfg.MaxLagMessages)
	case s.cfg.MaxLag > 0:
		return s.cfg.MaxLag.String()
	}
	return fmt.Sprintf("%d messages", s.cfg.MaxLagMessages)
}

// accepted counts a message of topic that this process produced, for the next throttle decisions.
func (s *Server) accepted(topic string) {
	if n := s.backlogs.since[topic]; n != nil {
		n.Add(1)
	}
}

// backlogCollector reads the backlog (at most every BacklogEvery) when /metrics is scraped, so
// the gauges are fresh even when no frame is being posted.
type backlogCollector struct{ s *Server }

func (c backlogCollector) Describe(ch chan<- *prometheus.Desc) {
	c.s.backlogs.lag.Describe(ch)
	c.s.backlogs.age.Describe(ch)
	c.s.backlogs.wait.Describe(ch)
}

func (c backlogCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	c.s.backlog(ctx, true)
	cancel()
	c.s.backlogs.lag.Collect(ch)
	c.s.backlogs.age.Collect(ch)
	c.s.backlogs.wait.Collect(ch)
}

// registerBacklog creates the backlog metrics on registry.
func (s *Server) registerBacklog(registry *prometheus.Registry) {
	b := &s.backlogs
	b.lag = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "proctor_pipeline_group_lag_messages",
		Help: "Messages past the consumer group's committed offsets, by topic, read from Kafka by the API (every worker process together).",
	}, []string{"topic"})
	b.age = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "proctor_pipeline_group_oldest_unprocessed_seconds",
		Help: "Age of the oldest message its consumer group has not committed (since the API accepted it), by topic; 0 when none waits.",
	}, []string{"topic"})
	b.wait = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "proctor_pipeline_group_expected_wait_seconds",
		Help: "Expected wait of a message accepted now, by topic: the backlog over the workers' drain rate of the last 10 s (the oldest message's age when nothing drained); what --max-lag bounds.",
	}, []string{"topic"})
	b.throttled = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "proctor_ingest_throttled_requests_total",
		Help: "Ingest requests answered 429 because the analysis backlog passed --max-lag / --max-lag-messages, by topic.",
	}, []string{"topic"})
	b.since = map[string]*atomic.Int64{s.cfg.Topics.Frames: {}, s.cfg.Topics.Audio: {}}
	registry.MustRegister(b.throttled)
	if s.cfg.Kafka != nil {
		registry.MustRegister(backlogCollector{s})
	}
}
