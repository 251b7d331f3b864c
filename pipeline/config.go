// Package pipeline moves exam streams through Kafka: the API produces video
// frames, audio chunks and exam events keyed by session id, and consumer-group
// workers hand each message to an analysis handler, committing its offset only
// after the handler has stored the result (at-least-once). This package is the
// transport and the message format only; the handlers are package worker's.
//
// The same kafka-go code path runs against a real Apache Kafka cluster and
// against the in-process kfake broker that StartEmbeddedBroker starts when no
// brokers are configured (the embedded default).
package pipeline

import (
	"log/slog"
	"strings"
	"time"
)

// Topics names the Kafka topics the pipeline uses. Empty fields take the
// defaults shown.
type Topics struct {
	// Frames carries JPEG video frames, one per message.
	//
	// Default: "proctor.frames"
	Frames string

	// Audio carries s16le mono PCM chunks.
	//
	// Default: "proctor.audio"
	Audio string

	// Events carries exam platform events (JSON payloads).
	//
	// Default: "proctor.events"
	Events string

	// DeadLetter receives messages that can never be processed (bad
	// encoding, handler says Permanent) with headers saying why and where
	// they came from, so they can be inspected and replayed after a fix.
	//
	// Default: "proctor.deadletter"
	DeadLetter string
}

// All returns the four topic names in a fixed order.
func (t Topics) All() []string {
	return []string{t.Frames, t.Audio, t.Events, t.DeadLetter}
}

// Config is the pipeline's Kafka configuration, shared by the producer, the
// consumers and topic creation. The zero value is usable: every zero field
// takes the default documented on it (see WithDefaults).
type Config struct {
	// Brokers are the bootstrap addresses (host:port) of the Kafka cluster.
	// Empty means "embedded default": the caller starts StartEmbeddedBroker
	// and puts its Addr here.
	//
	// Default: none
	Brokers []string

	// Topics names the four topics.
	Topics Topics

	// Partitions is the partition count used when EnsureTopics creates a
	// topic (existing topics are left alone). It caps the parallelism of
	// one consumer group: at most Partitions readers, across all worker
	// processes, receive messages; more sit idle as hot standbys.
	//
	// Default: 6
	Partitions int

	// ReplicationFactor used when creating topics. Production wants 3 with
	// min.insync.replicas=2, so RequireAll acks survive one broker loss.
	//
	// Default: 1
	ReplicationFactor int

	// Retention is the retention.ms set explicitly on topics that
	// EnsureTopics creates (topics that exist keep theirs). Frames and audio
	// are personal data: Kafka never deletes single messages, so a deleted
	// session's messages are gone only once this has passed (docs/privacy.md).
	// Frames are also the bulk of the data, about 50 KB per frame per camera.
	//
	// Default: 7 days
	Retention time.Duration

	// GroupID is the prefix of the consumer group ids: one group per topic,
	// e.g. "proctor-frames", so a slow frame analysis never holds back
	// events, and each topic scales its worker count independently.
	//
	// Default: "proctor"
	GroupID string

	// ClientID is sent to the brokers and shows up in their logs and
	// quotas.
	//
	// Default: "proctor"
	ClientID string

	// BatchTimeout is how long the producer waits for more messages before
	// sending an incomplete batch. Every synchronous Send waits up to this
	// long, so it is directly added to the API's 202 latency. kafka-go's own
	// default is 1 s, which makes each ingest request take a second.
	//
	// Default: 2ms
	BatchTimeout time.Duration

	// BatchSize is the maximum number of messages per partition batch. A
	// full batch is sent at once without waiting for BatchTimeout.
	//
	// Default: 100
	BatchSize int

	// BatchBytes is the maximum size of one produce batch, and therefore of
	// one message: keep it at or under the broker's message.max.bytes
	// (1 MiB by default). A 640x480 JPEG is typically 30-80 KB.
	//
	// Default: 1048576
	BatchBytes int64

	// WriteTimeout bounds one produce round trip. kafka-go retries a failed
	// write up to 10 times with backoff, so a Send to an unreachable broker
	// fails after roughly this long times the attempts, unless the caller's
	// context expires first.
	//
	// Default: 10s
	WriteTimeout time.Duration

	// MaxWait is how long the broker holds a fetch open waiting for new
	// data. Small values mean a new message reaches the handler quickly and
	// a closing reader is not stuck in a long poll; the cost is more fetch
	// requests on an idle topic (4 per second per partition at 250ms).
	// kafka-go's default is 10s.
	//
	// Default: 250ms
	MaxWait time.Duration

	// HeartbeatInterval is how often a consumer tells the group coordinator
	// it is alive. It is also how fast surviving members learn that a
	// rebalance started, so it adds directly to failover time. Keep it at
	// most a third of SessionTimeout.
	//
	// Default: 1s (kafka-go default 3s)
	HeartbeatInterval time.Duration

	// SessionTimeout is how long the coordinator waits without a heartbeat
	// before it declares a consumer dead and moves its partitions. A worker
	// that crashes (no LeaveGroup) holds its partitions for this long, so
	// failover takes about SessionTimeout + HeartbeatInterval + one join
	// round. Lower is faster failover but a GC pause, a CPU-starved
	// container or a network blip longer than this causes a needless
	// rebalance (every partition of the group pauses briefly). 6s is the
	// smallest value Kafka accepts by default (group.min.session.timeout.ms)
	// and kfake uses the same floor. A worker that shuts down cleanly leaves
	// the group at once and does not wait for this.
	//
	// Default: 6s (kafka-go default 30s)
	SessionTimeout time.Duration

	// RebalanceTimeout is how long the coordinator waits for all members to
	// rejoin during a rebalance. kafka-go rejoins from a background
	// goroutine, independently of a busy handler, so a small value is safe;
	// a member that misses it is dropped from the generation and rejoins
	// in the next one.
	//
	// Default: 5s (kafka-go default 30s)
	RebalanceTimeout time.Duration

	// JoinGroupBackoff is the pause before rejoining after a failed join
	// (coordinator moved, broker restarting).
	//
	// Default: 500ms (kafka-go default 5s)
	JoinGroupBackoff time.Duration

	// CommitInterval, if positive, makes offset commits asynchronous:
	// CommitMessages (still called only after the handler stored its
	// result) queues the offset and kafka-go commits the latest one per
	// partition at this interval and when the Reader closes. Zero commits
	// synchronously after every message, which costs one broker round trip
	// per message (on real Kafka a few ms, written to __consumer_offsets)
	// but redelivers at most the message in flight after a crash. With an
	// interval, a crash redelivers up to that much work; idempotent storage
	// absorbs it either way.
	//
	// Default: 0 (synchronous)
	CommitInterval time.Duration

	// Concurrency is the number of kafka-go Readers per consumer (per topic)
	// in this process. A kafka-go group Reader hands messages of all its
	// partitions to one FetchMessage loop, so handling within one Reader is
	// sequential; N Readers in the same group split the partitions between
	// them and handle N partitions in parallel.
	//
	// Default: 2
	Concurrency int

	// FrameReaders is the number of Readers of the frames topic in this
	// process, when more than Concurrency. Frames are analysed on
	// Concurrency analyzer sets (one per core), and a Reader holds its set
	// only while it analyses: with more Readers than sets, one Reader's
	// batch is stored, committed and the next one fetched while the others
	// keep the sets busy, and a session whose frames run late holds up only
	// its own Reader. More Readers than the topic's partitions sit idle
	// (group members without a partition); each Reader buffers at most one
	// fetch (4 MiB, or twice BatchBytes) and kafka-go's queue of 100
	// messages.
	//
	// Default: Partitions (measured: `proctor bench -n 600` 110 and 113
	// frames/s end to end against 96 and 96 with 2 Readers, docs/vision.md)
	FrameReaders int

	// FrameSets is the number of analyzer sets (frames analysed at once) the
	// frame Readers share. One more than the cores keeps both cores busy while
	// a Reader stores its batch or waits on the last session of its batch;
	// each set holds its own ONNX sessions (~350 MB with every analyzer).
	//
	// Default: Concurrency + 1 (measured: `proctor bench -n 600` on 2 cores,
	// 3 sets faster than 2 in 12 of 17 interleaved pairs, +7% on average,
	// docs/vision.md)
	FrameSets int

	// MaxBatch is the most messages a Reader hands to a BatchHandler at once
	// (Consumer.HandleBatches): what it fetched already, or receives within
	// BatchWait. One transaction and one offset commit per batch instead of
	// per message; a batch that fails is retried message by message. 1
	// turns batching off.
	//
	// Default: 16
	MaxBatch int

	// BatchWait is how long a Reader waits for more messages to fill a
	// batch once it has one: added to the latency of a lone message.
	//
	// Default: 2ms
	BatchWait time.Duration

	// RetryBackoffMin and RetryBackoffMax bound the exponential backoff
	// between attempts when a handler returns an error that is not
	// Permanent. While the database as a whole is unavailable
	// (store.Unavailable: connection refused, timeout, shutting down) the
	// message is retried until it succeeds or the consumer stops: a long
	// outage shows up as growing lag, not as lost data.
	//
	// Default: 100ms and 5s
	RetryBackoffMin time.Duration
	RetryBackoffMax time.Duration

	// MaxAttempts is how often a message is tried when it fails for a
	// reason of its own (the database refuses the row, a bug in a
	// handler), before it goes to the dead-letter topic so that the rest
	// of its partition is not held back. Failures while the database is
	// unavailable do not count. With the default backoff, 5 attempts take
	// about 1.5 s.
	//
	// Default: 5
	MaxAttempts int

	// ShutdownGrace is how long a handler that is running when the consumer
	// is asked to stop may still take before its context is cancelled. The
	// message it was handling is committed if it finishes in time.
	//
	// Default: 10s
	ShutdownGrace time.Duration

	// Logger receives the pipeline's logs. Nothing is logged per message at
	// info level.
	//
	// Default: slog.Default()
	Logger *slog.Logger
}

// WithDefaults returns a copy of c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	setStr := func(p *string, v string) {
		if *p == "" {
			*p = v
		}
	}
	setDur := func(p *time.Duration, v time.Duration) {
		if *p <= 0 {
			*p = v
		}
	}
	setInt := func(p *int, v int) {
		if *p <= 0 {
			*p = v
		}
	}
	setStr(&c.Topics.Frames, "proctor.frames")
	setStr(&c.Topics.Audio, "proctor.audio")
	setStr(&c.Topics.Events, "proctor.events")
	setStr(&c.Topics.DeadLetter, "proctor.deadletter")
	setInt(&c.Partitions, 6)
	setInt(&c.ReplicationFactor, 1)
	setStr(&c.GroupID, "proctor")
	setStr(&c.ClientID, "proctor")
	setDur(&c.BatchTimeout, 2*time.Millisecond)
	setInt(&c.BatchSize, 100)
	if c.BatchBytes <= 0 {
		c.BatchBytes = 1 << 20
	}
	setDur(&c.WriteTimeout, 10*time.Second)
	setDur(&c.MaxWait, 250*time.Millisecond)
	setDur(&c.HeartbeatInterval, time.Second)
	setDur(&c.SessionTimeout, 6*time.Second)
	setDur(&c.RebalanceTimeout, 5*time.Second)
	setDur(&c.JoinGroupBackoff, 500*time.Millisecond)
	setInt(&c.Concurrency, 2)
	setInt(&c.FrameSets, c.Concurrency+1)
	setInt(&c.FrameReaders, c.Partitions)
	c.FrameReaders = max(c.FrameReaders, c.FrameSets)
	setInt(&c.MaxBatch, 16)
	setDur(&c.BatchWait, 2*time.Millisecond)
	setDur(&c.RetryBackoffMin, 100*time.Millisecond)
	setDur(&c.RetryBackoffMax, 5*time.Second)
	setInt(&c.MaxAttempts, 5)
	setDur(&c.ShutdownGrace, 10*time.Second)
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	c.Brokers = append([]string(nil), c.Brokers...)
	if c.Retention <= 0 {
		c.Retention = 7 * 24 * time.Hour
	}
	return c
}

// GroupFor returns the consumer group id for topic: GroupID + "-frames",
// "-audio", "-events" or "-deadletter" for the configured topics, and
// GroupID + "-" + topic (dots replaced by dashes) for any other topic.
func (c Config) GroupFor(topic string) string {
	c = c.WithDefaults()
	switch topic {
	case c.Topics.Frames:
		return c.GroupID + "-frames"
	case c.Topics.Audio:
		return c.GroupID + "-audio"
	case c.Topics.Events:
		return c.GroupID + "-events"
	case c.Topics.DeadLetter:
		return c.GroupID + "-deadletter"
	}
	return c.GroupID + "-" + strings.ReplaceAll(topic, ".", "-")
}
