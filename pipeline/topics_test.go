package pipeline

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

func TestEnsureTopicsIsIdempotent(t *testing.T) {
	forEachBroker(t, func(t *testing.T, cfg Config) {
		// testConfig created them once already.
		if err := EnsureTopics(t.Context(), cfg); err != nil {
			t.Fatalf("second EnsureTopics: %v", err)
		}
		parts, err := readPartitions(t.Context(), cfg, cfg.Topics.All())
		if err != nil {
			t.Fatal(err)
		}
		for _, topic := range cfg.Topics.All() {
			if parts[topic] != cfg.Partitions {
				t.Errorf("%s has %d partitions, want %d", topic, parts[topic], cfg.Partitions)
			}
		}
		v, err := BrokerVersion(t.Context(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("broker: %s", v)
		if !strings.Contains(v, "Produce=v") || !strings.Contains(v, "brokers=") {
			t.Errorf("BrokerVersion = %q", v)
		}
	})
}

func TestNoBrokersSaysWhatToDo(t *testing.T) {
	for name, err := range map[string]error{
		"EnsureTopics": EnsureTopics(t.Context(), Config{}),
		"NewProducer":  func() error { _, err := NewProducer(Config{}, nil); return err }(),
		"NewConsumer": func() error {
			_, err := NewConsumer(Config{}, "t", func(context.Context, kafka.Message) error { return nil }, nil, nil)
			return err
		}(),
	} {
		if err == nil || !strings.Contains(err.Error(), "StartEmbeddedBroker") {
			t.Errorf("%s without brokers: %v", name, err)
		}
	}
}

// TestEmbeddedBrokerPersists: with a DataDir, messages and committed offsets
// survive a restart of the embedded broker (and so of the process).
func TestEmbeddedBrokerPersists(t *testing.T) {
	dir := t.TempDir()
	b, err := StartEmbeddedBroker(t.Context(), EmbeddedBrokerConfig{DataDir: dir, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	port := b.Port()
	cfg := testConfig(t, b.Addr())
	p, err := NewProducer(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UnixMilli()
	for i := range 3 {
		if err := p.Send(t.Context(), cfg.Topics.Events, EncodeEvent(EventMessage{SessionID: "s", Seq: int64(i), Type: "x", CapturedAtMs: now, ReceivedAtMs: now})); err != nil {
			t.Fatal(err)
		}
	}
	_ = p.Close()
	first := newCollector()
	stop := runConsumer(t, newTestConsumer(t, cfg, cfg.Topics.Events, func(_ context.Context, m kafka.Message) error {
		first.add(m)
		if header(m, HeaderSeq) == "1" {
			return errTransient // seq 1 and 2 stay uncommitted
		}
		return nil
	}, newTestProducer(t, cfg)))
	first.waitFor(t, 1, 30*time.Second)
	stop()
	b.Close()

	b2, err := StartEmbeddedBroker(t.Context(), EmbeddedBrokerConfig{Port: port, DataDir: dir, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b2.Close) // after the consumer below has stopped
	again := newCollector()
	runConsumer(t, newTestConsumer(t, cfg, cfg.Topics.Events, func(_ context.Context, m kafka.Message) error {
		again.add(m)
		return nil
	}, newTestProducer(t, cfg)))
	got := again.waitFor(t, 2, 30*time.Second)
	if s := header(got[0], HeaderSeq) + "," + header(got[1], HeaderSeq); s != "1,2" {
		t.Errorf("after restart got seqs %s, want 1,2", s)
	}
}

// TestTopicsHaveRetention: topics are created with an explicit retention.ms, 7 days unless
// configured (Kafka deletes no single message: deletion on request completes when it passes).
func TestTopicsHaveRetention(t *testing.T) {
	if got := (Config{}).WithDefaults().Retention; got != 7*24*time.Hour {
		t.Errorf("default retention %v, want 7 days", got)
	}
	forEachBroker(t, func(t *testing.T, cfg Config) {
		client, closeClient, err := adminClient(cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer closeClient()
		req := &kafka.DescribeConfigsRequest{}
		for _, topic := range cfg.Topics.All() {
			req.Resources = append(req.Resources, kafka.DescribeConfigRequestResource{ResourceType: kafka.ResourceTypeTopic,
				ResourceName: topic, ConfigNames: []string{"retention.ms"}})
		}
		res, err := client.DescribeConfigs(t.Context(), req)
		if err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprint(cfg.Retention.Milliseconds())
		for _, r := range res.Resources {
			got := ""
			for _, e := range r.ConfigEntries {
				if e.ConfigName == "retention.ms" {
					got = e.ConfigValue
				}
			}
			if r.Error != nil || got != want {
				t.Errorf("topic %s: retention.ms %q (%v), want %s", r.ResourceName, got, r.Error, want)
			}
		}
		if len(res.Resources) != len(cfg.Topics.All()) {
			t.Errorf("described %d topics, want %d", len(res.Resources), len(cfg.Topics.All()))
		}
	})
}
