package pipeline

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/segmentio/kafka-go"
)

// envKafkaBrokers names a real Apache Kafka cluster (comma-separated
// host:port) to run the broker tests against as well, e.g. the one
// scripts/kafka.sh starts.
const envKafkaBrokers = "PROCTOR_TEST_KAFKA_BROKERS"

// forEachBroker runs fn against a fresh embedded kfake broker, and against the
// real Kafka named by PROCTOR_TEST_KAFKA_BROKERS when that is set.
func forEachBroker(t *testing.T, fn func(t *testing.T, cfg Config)) {
	t.Helper()
	t.Run("kfake", func(t *testing.T) {
		b, err := StartEmbeddedBroker(t.Context(), EmbeddedBrokerConfig{Logger: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(b.Close)
		fn(t, testConfig(t, b.Addr()))
	})
	t.Run("kafka", func(t *testing.T) {
		addrs := os.Getenv(envKafkaBrokers)
		if addrs == "" {
			t.Skipf("%s not set: start Apache Kafka (scripts/kafka.sh) and set it, e.g. %s=127.0.0.1:19092, to run this test against real Kafka", envKafkaBrokers, envKafkaBrokers)
		}
		fn(t, testConfig(t, strings.Split(addrs, ",")...))
	})
}

var nonName = regexp.MustCompile(`[^a-zA-Z0-9]+`)

// testConfig returns a Config with topic and group names unique to this test
// run, created on the broker, and timeouts that keep the tests quick.
func testConfig(t *testing.T, brokers ...string) Config {
	t.Helper()
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	base := strings.ToLower(strings.Trim(nonName.ReplaceAllString(t.Name(), "-"), "-")) + "-" + hex.EncodeToString(rnd[:])
	cfg := Config{
		Brokers: brokers,
		Topics: Topics{
			Frames:     base + ".frames",
			Audio:      base + ".audio",
			Events:     base + ".events",
			DeadLetter: base + ".deadletter",
		},
		GroupID:         "g-" + base,
		RetryBackoffMin: 20 * time.Millisecond,
		RetryBackoffMax: 200 * time.Millisecond,
		ShutdownGrace:   5 * time.Second,
		Logger:          testLogger(t),
	}.WithDefaults()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := EnsureTopics(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// testLogger writes warnings and errors to the test log; PROCTOR_TEST_LOG=debug
// shows everything.
func testLogger(t *testing.T) *slog.Logger {
	level := slog.LevelWarn
	if os.Getenv("PROCTOR_TEST_LOG") == "debug" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: level}))
}

func newTestProducer(t *testing.T, cfg Config) *Producer {
	t.Helper()
	p, err := NewProducer(cfg, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// runConsumer starts c and returns a function that stops it and waits for
// Run to return. The test's cleanup stops it too.
func runConsumer(t *testing.T, c *Consumer) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := c.Run(ctx); err != nil {
			t.Errorf("consumer run: %v", err)
		}
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				t.Errorf("consumer of %s did not stop within 30s", c.Topic())
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func adminForTest(t *testing.T, cfg Config) *kafka.Client {
	t.Helper()
	client, closeClient, err := adminClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(closeClient)
	return client
}

// waitGroupStable waits until group has members members and all partitions of
// topic are assigned, so a test can produce without racing a rebalance.
func waitGroupStable(t *testing.T, cfg Config, group, topic string, members int) {
	t.Helper()
	client := adminForTest(t, cfg)
	deadline := time.Now().Add(30 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		res, err := client.DescribeGroups(ctx, &kafka.DescribeGroupsRequest{GroupIDs: []string{group}})
		cancel()
		if err == nil && len(res.Groups) == 1 {
			g := res.Groups[0]
			assigned := 0
			for _, m := range g.Members {
				for _, a := range m.MemberAssignments.Topics {
					if a.Topic == topic {
						assigned += len(a.Partitions)
					}
				}
			}
			last = g.GroupState + " members=" + strconv.Itoa(len(g.Members)) + " assigned=" + strconv.Itoa(assigned)
			if g.Error == nil && g.GroupState == "Stable" && len(g.Members) == members && assigned == cfg.Partitions {
				return
			}
		} else if err != nil {
			last = err.Error()
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("group %s not stable with %d members within 30s (last: %s)", group, members, last)
}

// committedOffsets returns the group's committed offset and the end offset
// per partition of topic.
func committedOffsets(t *testing.T, cfg Config, group, topic string) (committed, end map[int]int64) {
	t.Helper()
	client := adminForTest(t, cfg)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	parts := make([]int, cfg.Partitions)
	reqs := make([]kafka.OffsetRequest, cfg.Partitions)
	for i := range parts {
		parts[i] = i
		reqs[i] = kafka.LastOffsetOf(i)
	}
	of, err := client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: parts}})
	if err != nil {
		t.Fatal(err)
	}
	committed = map[int]int64{}
	for _, p := range of.Topics[topic] {
		if p.Error != nil {
			t.Fatalf("offset fetch %s[%d]: %v", topic, p.Partition, p.Error)
		}
		committed[p.Partition] = p.CommittedOffset
	}
	lo, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
	if err != nil {
		t.Fatal(err)
	}
	end = map[int]int64{}
	for _, p := range lo.Topics[topic] {
		if p.Error != nil {
			t.Fatalf("list offsets %s[%d]: %v", topic, p.Partition, p.Error)
		}
		end[p.Partition] = p.LastOffset
	}
	return committed, end
}

// waitCommitted waits until every non-empty partition of topic has the
// group's offset at its end.
func waitCommitted(t *testing.T, cfg Config, group, topic string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		committed, end := committedOffsets(t, cfg, group, topic)
		ok := true
		for p, e := range end {
			if e > 0 && committed[p] != e {
				ok = false
			}
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("offsets of %s not committed to the end: committed %v, end %v", group, committed, end)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// collector records what a handler saw, safe for concurrent handlers.
type collector struct {
	mu   sync.Mutex
	msgs []kafka.Message
	ch   chan struct{}
}

func newCollector() *collector { return &collector{ch: make(chan struct{}, 1)} }

func (c *collector) add(m kafka.Message) {
	// Copy: the reader may reuse the buffers after the handler returns.
	m.Key = append([]byte(nil), m.Key...)
	m.Value = append([]byte(nil), m.Value...)
	hs := make([]kafka.Header, len(m.Headers))
	for i, h := range m.Headers {
		hs[i] = kafka.Header{Key: h.Key, Value: append([]byte(nil), h.Value...)}
	}
	m.Headers = hs
	c.mu.Lock()
	c.msgs = append(c.msgs, m)
	c.mu.Unlock()
	select {
	case c.ch <- struct{}{}:
	default:
	}
}

func (c *collector) snapshot() []kafka.Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]kafka.Message(nil), c.msgs...)
}

// waitFor waits until the collector holds n messages.
func (c *collector) waitFor(t *testing.T, n int, timeout time.Duration) []kafka.Message {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		if got := c.snapshot(); len(got) >= n {
			return got
		}
		select {
		case <-c.ch:
		case <-deadline.C:
			t.Fatalf("got %d messages within %v, want %d", len(c.snapshot()), timeout, n)
		}
	}
}

func header(m kafka.Message, key string) string {
	for _, h := range m.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// percentile returns the p-th percentile (0..100) of ds.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(float64(len(s)-1) * p / 100)
	return s[i]
}

// errTransient is what a handler returns while the database is down: store.Unavailable says so,
// and the consumer retries without limit.
var errTransient = fmt.Errorf("database unavailable (test): %w", syscall.ECONNREFUSED)

// metricValue reads a counter or gauge (prometheus/testutil would need a
// module that go.sum does not carry).
func metricValue(m prometheus.Metric) float64 {
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		panic(err)
	}
	switch {
	case d.Counter != nil:
		return d.Counter.GetValue()
	case d.Gauge != nil:
		return d.Gauge.GetValue()
	}
	panic("not a counter or gauge")
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
