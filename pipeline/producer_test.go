package pipeline

import (
	"context"
	"crypto/rand"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
)

// fakeFrame is a frame-sized payload that passes Validate (JPEG start marker)
// without being a decodable image; the pipeline never decodes it.
func fakeFrame(size int) []byte {
	b := make([]byte, size)
	_, _ = rand.Read(b)
	b[0], b[1] = 0xFF, 0xD8
	return b
}

// TestProducerLatencyConcurrent guards against kafka-go's classic pitfall: a
// synchronous WriteMessages waits for its batch, and the default BatchTimeout
// is 1 s, so every ingest request would take a second. With 50 concurrent
// senders (50 candidates' frames arriving at once) each Send must still
// return in about BatchTimeout plus a round trip.
func TestProducerLatencyConcurrent(t *testing.T) {
	forEachBroker(t, func(t *testing.T, cfg Config) {
		const senders, perSender, frameSize = 50, 20, 30 << 10
		reg := prometheus.NewRegistry()
		p, err := NewProducer(cfg, reg)
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		payload := fakeFrame(frameSize)

		// Warm up: metadata and connections.
		if err := p.Send(t.Context(), cfg.Topics.Frames, EncodeFrame(FrameMessage{
			SessionID: "warmup", Camera: "main", Seq: 0, CapturedAtMs: 1, ReceivedAtMs: 1, JPEG: payload,
		})); err != nil {
			t.Fatal(err)
		}

		lat := make([][]time.Duration, senders)
		var wg sync.WaitGroup
		start := time.Now()
		for s := range senders {
			wg.Add(1)
			go func() {
				defer wg.Done()
				session := fmt.Sprintf("session-%03d", s)
				for i := range perSender {
					now := time.Now()
					msg := EncodeFrame(FrameMessage{SessionID: session, Camera: "main", Seq: int64(i),
						CapturedAtMs: now.UnixMilli(), ReceivedAtMs: now.UnixMilli(), JPEG: payload})
					err := p.Send(t.Context(), cfg.Topics.Frames, msg)
					lat[s] = append(lat[s], time.Since(now))
					if err != nil {
						t.Errorf("send: %v", err)
						return
					}
				}
			}()
		}
		wg.Wait()
		elapsed := time.Since(start)
		var all []time.Duration
		for _, l := range lat {
			all = append(all, l...)
		}
		p50, p99 := percentile(all, 50), percentile(all, 99)
		n := senders * perSender
		t.Logf("produce latency, %d concurrent senders, %d KiB frames, BatchTimeout %v: p50 %v p99 %v max %v; %d msgs in %v (%.0f msg/s, %.1f MiB/s)",
			senders, frameSize>>10, cfg.BatchTimeout, p50.Round(10*time.Microsecond), p99.Round(10*time.Microsecond),
			percentile(all, 100).Round(time.Millisecond), n, elapsed.Round(time.Millisecond),
			float64(n)/elapsed.Seconds(), float64(n*frameSize)/elapsed.Seconds()/(1<<20))
		if p50 >= 200*time.Millisecond {
			t.Errorf("p50 produce latency %v >= 200ms: is BatchTimeout back to kafka-go's 1s default?", p50)
		}
		if got := metricValue(p.m.messages.WithLabelValues(cfg.Topics.Frames)); got != float64(n+1) {
			t.Errorf("produced messages counter = %v, want %d", got, n+1)
		}
		if got := metricValue(p.m.bytes.WithLabelValues(cfg.Topics.Frames)); got < float64((n+1)*frameSize) {
			t.Errorf("produced bytes counter = %v, want >= %d", got, (n+1)*frameSize)
		}
	})
}

// TestProducerSequentialLatency: a lone sender pays BatchTimeout plus one
// round trip per Send.
func TestProducerSequentialLatency(t *testing.T) {
	forEachBroker(t, func(t *testing.T, cfg Config) {
		p := newTestProducer(t, cfg)
		var lat []time.Duration
		for i := range 200 {
			now := time.Now()
			err := p.Send(t.Context(), cfg.Topics.Events, EncodeEvent(EventMessage{SessionID: "s", Seq: int64(i), Type: "ping",
				CapturedAtMs: now.UnixMilli(), ReceivedAtMs: now.UnixMilli(), Payload: []byte(`{}`)}))
			if err != nil {
				t.Fatal(err)
			}
			lat = append(lat, time.Since(now))
		}
		p50 := percentile(lat, 50)
		t.Logf("produce latency, 1 sender, BatchTimeout %v: p50 %v p99 %v", cfg.BatchTimeout,
			p50.Round(10*time.Microsecond), percentile(lat, 99).Round(10*time.Microsecond))
		if p50 >= 200*time.Millisecond {
			t.Errorf("p50 produce latency %v >= 200ms", p50)
		}
	})
}

func TestProducerErrors(t *testing.T) {
	forEachBroker(t, func(t *testing.T, cfg Config) {
		reg := prometheus.NewRegistry()
		p, err := NewProducer(cfg, reg)
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		// A frame larger than BatchBytes can never be sent.
		big := kafka.Message{Key: []byte("s"), Value: make([]byte, cfg.BatchBytes+1)}
		if err := p.Send(ctx, cfg.Topics.Frames, big); err == nil {
			t.Error("oversized message accepted")
		}
		if got := metricValue(p.m.errors.WithLabelValues(cfg.Topics.Frames)); got != 1 {
			t.Errorf("produce errors counter = %v, want 1", got)
		}
		if err := p.Send(ctx, ""); err != nil {
			t.Errorf("empty send: %v", err)
		}
		if _, err := NewProducer(Config{}, nil); err == nil {
			t.Error("NewProducer without brokers succeeded")
		}
	})
}
