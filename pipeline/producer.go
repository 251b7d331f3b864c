package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
)

// Sender produces messages and returns only once Kafka acknowledged them. Producer is the one
// implementation; the API and the recordings processor take a Sender so tests can record or fail
// sends without a broker.
type Sender interface {
	Send(ctx context.Context, topic string, msgs ...kafka.Message) error
}

// Producer writes messages to Kafka and returns only once the broker has
// acknowledged them. Use one per process: it is safe for concurrent use, and
// concurrent Sends to the same partition share one produce request.
type Producer struct {
	w   *kafka.Writer
	tr  *kafka.Transport
	log *slog.Logger
	m   *producerMetrics
}

// NewProducer creates the process's producer. Metrics are registered on reg
// (nil: not registered). The topics must exist (EnsureTopics): automatic
// topic creation is off so that a typo in a topic name fails loudly instead
// of creating a topic nobody consumes.
func NewProducer(cfg Config, reg prometheus.Registerer) (*Producer, error) {
	cfg = cfg.WithDefaults()
	if len(cfg.Brokers) == 0 {
		return nil, errNoBrokers
	}
	tr := &kafka.Transport{ClientID: cfg.ClientID + "-producer"}
	w := &kafka.Writer{
		Addr:      kafka.TCP(cfg.Brokers...),
		Transport: tr,
		// Hash of the key (session id) picks the partition, so one
		// session's messages stay in order on one partition. kafka.Hash is
		// FNV-1a, not the Java client's murmur2: only kafka-go producers
		// may write these topics, or a session would split over partitions.
		Balancer: &kafka.Hash{},
		// RequireAll: the 202 the API answers is a promise that the data
		// survives a broker loss (with min.insync.replicas=2 on a
		// replicated cluster). kafka-go's default is RequireNone, which
		// does not even wait for the leader.
		RequiredAcks: kafka.RequireAll,
		// kafka-go's default BatchTimeout is 1 s and a synchronous
		// WriteMessages waits for its batch to be sent: every request would
		// take a second. A few ms still lets concurrent Sends share a batch.
		BatchTimeout:           cfg.BatchTimeout,
		BatchSize:              cfg.BatchSize,
		BatchBytes:             cfg.BatchBytes,
		WriteTimeout:           cfg.WriteTimeout,
		ReadTimeout:            cfg.WriteTimeout,
		AllowAutoTopicCreation: false,
		ErrorLogger: kafka.LoggerFunc(func(format string, args ...any) {
			cfg.Logger.Warn("kafka-go writer: "+fmt.Sprintf(format, args...), "component", "producer")
		}),
	}
	return &Producer{w: w, tr: tr, log: cfg.Logger, m: newProducerMetrics(reg)}, nil
}

// Send writes msgs to topic and returns nil once Kafka acknowledged all of
// them (RequireAll). msgs must not carry a Topic of their own. On error some
// of the messages may nevertheless have been written (a partial batch
// failure, or ctx expiring after the request went out): a retry by the
// caller can duplicate them, which the consumers' idempotent storage
// absorbs. Keys and values must not be modified until Send returned, and
// after an error not at all: a batch may still be in flight.
func (p *Producer) Send(ctx context.Context, topic string, msgs ...kafka.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	if topic == "" {
		return errors.New("pipeline: Send with an empty topic")
	}
	// kafka-go takes the topic from each message when Writer.Topic is
	// empty; copy so the caller's slice is left as it was.
	batch := make([]kafka.Message, len(msgs))
	var size int
	now := time.Now()
	for i := range msgs {
		batch[i] = msgs[i]
		batch[i].Topic = topic
		if batch[i].Time.IsZero() {
			// The timestamp is when the API accepted the message: the backlog's age
			// (KafkaProbe.Check) is measured from it.
			batch[i].Time = now
		}
		size += messageSize(&msgs[i])
	}
	start := time.Now()
	err := p.w.WriteMessages(ctx, batch...)
	p.m.latency.WithLabelValues(topic).Observe(time.Since(start).Seconds())
	if err != nil {
		failed := len(batch)
		var werr kafka.WriteErrors
		if errors.As(err, &werr) {
			// A partial failure: the messages without an error did go
			// through and are acknowledged.
			failed = werr.Count()
			okBytes := 0
			for i := range werr {
				if werr[i] == nil {
					okBytes += messageSize(&msgs[i])
				}
			}
			p.m.messages.WithLabelValues(topic).Add(float64(len(batch) - failed))
			p.m.bytes.WithLabelValues(topic).Add(float64(okBytes))
		}
		p.m.errors.WithLabelValues(topic).Add(float64(failed))
		return fmt.Errorf("produce %d message(s) to %s: %w", len(batch), topic, err)
	}
	p.m.messages.WithLabelValues(topic).Add(float64(len(batch)))
	p.m.bytes.WithLabelValues(topic).Add(float64(size))
	return nil
}

func messageSize(m *kafka.Message) int {
	n := len(m.Key) + len(m.Value)
	for _, h := range m.Headers {
		n += len(h.Key) + len(h.Value)
	}
	return n
}

// Close flushes pending batches, waits for their acknowledgements and closes
// the connections. Sends after Close fail.
func (p *Producer) Close() error {
	err := p.w.Close()
	p.tr.CloseIdleConnections()
	if err != nil {
		return fmt.Errorf("close kafka writer: %w", err)
	}
	return nil
}
