package pipeline_test

import (
	"context"
	"log/slog"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"proctor/pipeline"
)

// Wiring for cmd/proctor: embedded broker when no brokers are configured,
// topics, one producer for the API, one consumer per topic for the workers.
func Example() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	reg := prometheus.NewRegistry()
	cfg := pipeline.Config{} // Brokers from flags; empty = embedded
	if len(cfg.Brokers) == 0 {
		b, err := pipeline.StartEmbeddedBroker(ctx, pipeline.EmbeddedBrokerConfig{DataDir: "data/kafka"})
		if err != nil {
			panic(err)
		}
		defer b.Close()
		cfg.Brokers = []string{b.Addr()}
	}
	cfg = cfg.WithDefaults()
	if err := pipeline.EnsureTopics(ctx, cfg); err != nil {
		panic(err)
	}
	if v, err := pipeline.BrokerVersion(ctx, cfg); err == nil {
		slog.Info("kafka", "broker", v)
	}
	producer, err := pipeline.NewProducer(cfg, reg)
	if err != nil {
		panic(err)
	}
	defer producer.Close()

	// API handler: answer 202 only after Send returned nil.
	now := time.Now().UnixMilli()
	_ = producer.Send(ctx, cfg.Topics.Frames, pipeline.EncodeFrame(pipeline.FrameMessage{
		SessionID: "S-1", Camera: "main", Seq: 1, CapturedAtMs: now, ReceivedAtMs: now, JPEG: []byte{0xFF, 0xD8, 0xFF, 0xD9},
	}))

	// Worker: decode, analyse, store idempotently, return nil.
	frames, err := pipeline.NewConsumer(cfg, cfg.Topics.Frames, func(ctx context.Context, m kafka.Message) error {
		f, err := pipeline.DecodeFrame(m) // errors are Permanent: dead-lettered
		if err != nil {
			return err
		}
		_ = f      // analyse f.JPEG, store observations keyed by (session, camera, seq)
		return nil // a DB error returned here is retried
	}, producer, reg)
	if err != nil {
		panic(err)
	}
	_ = frames.Run(ctx) // blocks until ctx is cancelled
}
