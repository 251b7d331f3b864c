package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime/debug"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"proctor/store"
)

// Handler processes one message and stores its result. It returns nil once
// the result is stored (the offset is committed after that), a Permanent
// error when the message can never be processed (it goes to the dead-letter
// topic at once), or any other error when it should be tried again. An error
// for which store.Unavailable is true (database down) is retried without
// limit; any other is retried Config.MaxAttempts times, then the message is
// dead-lettered. A message may be delivered more than once (after a crash, a
// rebalance, a failed commit), so storing must be idempotent.
//
// Messages of one partition, and so of one session, reach the handler one at
// a time and in order. Handlers for different partitions run concurrently
// (Config.Concurrency). msg.Value and header values are owned by the
// handler only for the duration of the call.
type Handler func(ctx context.Context, msg kafka.Message) error

// BatchHandler processes messages fetched together (of one or several
// partitions, each partition's in order) and stores all their results, or
// none, as one unit; the offsets are committed after it returned nil. On
// any error (a Permanent one included) the consumer hands the messages to
// the Handler one at a time, with its retries and dead-lettering, so one
// poison message costs its batch a retry but never blocks the others.
type BatchHandler func(ctx context.Context, msgs []kafka.Message) error

// Dead-letter headers, added to the original message's headers.
const (
	HeaderDLQReason    = "dlq-reason"    // the handler's error text
	HeaderDLQTopic     = "dlq-topic"     // where the message was consumed from
	HeaderDLQPartition = "dlq-partition" // its partition
	HeaderDLQOffset    = "dlq-offset"    // and offset there
	HeaderDLQGroup     = "dlq-group"     // the consumer group that gave up on it
	HeaderDLQTimeMs    = "dlq-time-ms"   // when, Unix ms
	HeaderDLQClass     = "dlq-class"     // why, as a DeadLetterReason
	HeaderDLQAttempts  = "dlq-attempts"  // how often the handler was tried
)

// DeadLetterReason classifies why a message was dead-lettered (the dlq-class
// header and the reason label of the dead-letter metric).
type DeadLetterReason string

const (
	// ReasonInvalid: the handler said Permanent (the message does not decode
	// or holds what can never be stored, such as invalid UTF-8 text).
	ReasonInvalid DeadLetterReason = "invalid"
	// ReasonPanic: the handler panicked on it.
	ReasonPanic DeadLetterReason = "panic"
	// ReasonStoreFailed: storing failed Config.MaxAttempts times while the
	// database was otherwise available (it refuses this row).
	ReasonStoreFailed DeadLetterReason = "store_failed"
)

// maxReasonLen bounds dlq-reason: error texts can embed payload excerpts.
const maxReasonLen = 1024

// Consumer runs one consumer group on one topic: Concurrency kafka-go Readers
// in this process, each handling its share of the partitions.
type Consumer struct {
	cfg     Config
	topic   string
	group   string
	handler Handler
	batch   BatchHandler
	dlq     *Producer
	log     *slog.Logger
	m       *consumerMetrics

	// partitions serialises handling per partition inside this process.
	// After a rebalance a partition can move from one of our Readers to
	// another while the first is still handling (or retrying) a message of
	// it; kafka-go does not wait for the handler before rejoining. The
	// lock keeps the second Reader from overtaking the first, so the
	// session's order holds within the process. Across processes the same
	// window exists and is covered by idempotent storage only.
	partitions partitionLocks

	// dial, if set, replaces the Readers' dialer (tests cut a consumer off
	// the network with it to simulate a crashed worker).
	dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// NewConsumer creates a consumer of topic in group cfg.GroupFor(topic).
// deadLetter writes permanently failing messages to cfg.Topics.DeadLetter;
// it may be nil only when topic is the dead-letter topic itself (whose
// consumer ignores it: it never dead-letters). Metrics are registered on reg
// (nil: not registered). Call Run, once, to start
// consuming. The topic must exist first (EnsureTopics): the Readers do not
// watch for partitions that appear later, so a topic created afterwards is
// only picked up at the next rebalance.
func NewConsumer(cfg Config, topic string, handler Handler, deadLetter *Producer, reg prometheus.Registerer) (*Consumer, error) {
	cfg = cfg.WithDefaults()
	if len(cfg.Brokers) == 0 {
		return nil, errNoBrokers
	}
	if handler == nil {
		return nil, errors.New("pipeline: NewConsumer with a nil handler")
	}
	if deadLetter == nil && topic != cfg.Topics.DeadLetter {
		return nil, fmt.Errorf("pipeline: consumer of %s needs a dead-letter producer", topic)
	}
	if topic == cfg.Topics.DeadLetter {
		deadLetter = nil // dead-lettering a dead letter would loop: it is logged and skipped
	}
	c := &Consumer{
		cfg:     cfg,
		topic:   topic,
		group:   cfg.GroupFor(topic),
		handler: handler,
		dlq:     deadLetter,
		log:     cfg.Logger.With("topic", topic, "group", cfg.GroupFor(topic)),
		m:       newConsumerMetrics(reg, topic),
	}
	rc := c.readerConfig(0)
	if err := rc.Validate(); err != nil { // kafka.NewReader panics on an invalid config
		return nil, fmt.Errorf("consumer of %s: %w", topic, err)
	}
	return c, nil
}

// HandleBatches makes the consumer hand up to Config.MaxBatch messages at a
// time to h, falling back to the Handler when h fails. Call it before Run.
func (c *Consumer) HandleBatches(h BatchHandler) { c.batch = h }

// Topic returns the topic consumed.
func (c *Consumer) Topic() string { return c.topic }

// GroupID returns the consumer group id.
func (c *Consumer) GroupID() string { return c.group }

func (c *Consumer) readerConfig(id int) kafka.ReaderConfig {
	cfg := c.cfg
	maxBytes := 4 << 20
	if b := int(2 * cfg.BatchBytes); b > maxBytes {
		maxBytes = b // a fetch must hold at least the largest batch the producer writes
	}
	return kafka.ReaderConfig{
		Brokers: cfg.Brokers,
		GroupID: c.group,
		Topic:   c.topic,
		Dialer: &kafka.Dialer{
			ClientID:  cfg.ClientID + "-" + c.group + "-" + strconv.Itoa(id),
			Timeout:   10 * time.Second,
			DualStack: true,
			DialFunc:  c.dial,
		},
		MinBytes: 1, // answer a fetch as soon as one message is there
		MaxBytes: maxBytes,
		MaxWait:  cfg.MaxWait,
		// Zero: synchronous commits, CommitMessages returns once the
		// broker stored the offset (see Config.CommitInterval).
		CommitInterval:    cfg.CommitInterval,
		HeartbeatInterval: cfg.HeartbeatInterval,
		SessionTimeout:    cfg.SessionTimeout,
		RebalanceTimeout:  cfg.RebalanceTimeout,
		JoinGroupBackoff:  cfg.JoinGroupBackoff,
		// A new group starts at the oldest retained message: frames
		// produced before the first worker came up must be analysed too.
		StartOffset:     kafka.FirstOffset,
		ReadLagInterval: -1, // lag comes from each message's high watermark instead
		ErrorLogger: kafka.LoggerFunc(func(format string, args ...any) {
			// kafka-go reports rebalances and reconnects here; they are
			// expected during failover, so debug, not warn.
			if c.log.Enabled(context.Background(), slog.LevelDebug) {
				c.log.Debug("kafka-go reader: "+fmt.Sprintf(format, args...), "reader", id)
			}
		}),
	}
}

// Run consumes until ctx is cancelled, then lets handlers that are running
// finish (up to Config.ShutdownGrace), commits what they finished, leaves the
// group (so the partitions move to other workers at once, without waiting for
// the session timeout) and returns nil.
func (c *Consumer) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for i := range c.cfg.Concurrency {
		r := kafka.NewReader(c.readerConfig(i))
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.runReader(ctx, r, i)
			// Close sends LeaveGroup: the survivors rebalance now instead
			// of after SessionTimeout.
			if err := r.Close(); err != nil {
				c.log.Warn("close kafka reader", "reader", i, "err", err)
			}
		}()
	}
	c.log.Info("consumer started", "readers", c.cfg.Concurrency)
	wg.Wait()
	c.log.Info("consumer stopped")
	return nil
}

func (c *Consumer) runReader(ctx context.Context, r *kafka.Reader, id int) {
	backoff := c.cfg.RetryBackoffMin
	for {
		msg, err := r.FetchMessage(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			// Group join failures and an unreachable broker land here;
			// kafka-go keeps trying in the background.
			c.m.fetchErrors.Inc()
			c.log.Warn("fetch from kafka failed; retrying", "reader", id, "err", err, "backoff", backoff)
			if !sleepCtx(ctx, backoff) {
				return
			}
			backoff = min(2*backoff, c.cfg.RetryBackoffMax)
			continue
		}
		backoff = c.cfg.RetryBackoffMin
		c.m.consumed.Inc()
		if c.batch != nil && c.cfg.MaxBatch > 1 {
			if !c.processBatch(ctx, r, c.fill(ctx, r, msg)) {
				return
			}
			continue
		}
		if !c.process(ctx, r, msg) {
			return
		}
	}
}

// fill adds to first what r has fetched already or receives within
// Config.BatchWait, up to Config.MaxBatch messages. A fetch cut short by
// its timeout takes no message (kafka-go keeps it for the next fetch).
func (c *Consumer) fill(ctx context.Context, r *kafka.Reader, first kafka.Message) []kafka.Message {
	msgs := []kafka.Message{first}
	wctx, cancel := context.WithTimeout(ctx, c.cfg.BatchWait)
	defer cancel()
	for len(msgs) < c.cfg.MaxBatch {
		m, err := r.FetchMessage(wctx)
		if err != nil {
			break
		}
		c.m.consumed.Inc()
		msgs = append(msgs, m)
	}
	return msgs
}

// processBatch hands msgs to the batch handler and commits them all once it
// stored them; if it fails, each message goes through process instead. It
// returns false when the consumer is stopping with messages unfinished.
func (c *Consumer) processBatch(ctx context.Context, r *kafka.Reader, msgs []kafka.Message) bool {
	if len(msgs) == 1 {
		return c.process(ctx, r, msgs[0])
	}
	parts := make([]int, 0, 2)
	for _, m := range msgs {
		if !slices.Contains(parts, m.Partition) {
			parts = append(parts, m.Partition)
		}
	}
	slices.Sort(parts) // always in the same order: two Readers never wait on each other
	unlocks := make([]func(), 0, len(parts))
	unlockAll := func() {
		for _, u := range unlocks {
			u()
		}
		unlocks = unlocks[:0]
	}
	for _, p := range parts {
		unlock, ok := c.partitions.lock(ctx, p)
		if !ok {
			unlockAll()
			return false
		}
		unlocks = append(unlocks, unlock)
	}
	if ctx.Err() != nil {
		unlockAll()
		return false
	}
	err := c.callBatch(ctx, msgs)
	if err == nil {
		c.m.handled.Add(float64(len(msgs)))
		c.commit(ctx, r, msgs...)
		unlockAll()
		for _, m := range msgs {
			c.m.lag.WithLabelValues(strconv.Itoa(m.Partition)).Set(float64(max(0, m.HighWaterMark-m.Offset-1)))
		}
		return true
	}
	unlockAll()
	if ctx.Err() != nil {
		return false
	}
	c.log.Debug("batch failed; handling its messages one at a time", "messages", len(msgs), "err", err)
	for _, m := range msgs {
		if !c.process(ctx, r, m) {
			return false
		}
	}
	return true
}

// callBatch runs the batch handler with the same grace on shutdown as
// process gives the Handler; a panic is returned as an error (the messages
// are then handled one at a time, where the culprit is dead-lettered).
func (c *Consumer) callBatch(ctx context.Context, msgs []kafka.Message) (err error) {
	hctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	stop := context.AfterFunc(ctx, func() {
		t := time.NewTimer(c.cfg.ShutdownGrace)
		defer t.Stop()
		select {
		case <-t.C:
			cancel()
		case <-hctx.Done():
		}
	})
	defer stop()
	start := time.Now()
	defer func() {
		c.m.latency.Observe(time.Since(start).Seconds())
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: %v", errHandlerPanic, p)
		}
	}()
	return c.batch(hctx, msgs)
}

// process handles msg until it is stored or dead-lettered, then commits its
// offset. It returns false when the consumer is stopping and msg was not
// finished: its offset is not committed and the next owner of the partition
// receives it again.
func (c *Consumer) process(ctx context.Context, r *kafka.Reader, msg kafka.Message) bool {
	unlock, ok := c.partitions.lock(ctx, msg.Partition)
	if !ok {
		return false
	}
	defer unlock()
	if ctx.Err() != nil {
		return false
	}

	// The handler's context outlives ctx by ShutdownGrace so that a
	// message being handled when shutdown starts is finished and committed
	// rather than abandoned half-way.
	hctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	stop := context.AfterFunc(ctx, func() {
		t := time.NewTimer(c.cfg.ShutdownGrace)
		defer t.Stop()
		select {
		case <-t.C:
			cancel()
		case <-hctx.Done():
		}
	})
	defer stop()

	backoff := c.cfg.RetryBackoffMin
	failures := 0 // failures of this message's own, not counting database outages
	for attempt := 1; ; attempt++ {
		err := c.call(hctx, msg)
		if err == nil {
			c.m.handled.Inc()
			break
		}
		if IsPermanent(err) {
			reason := ReasonInvalid
			if errors.Is(err, errHandlerPanic) {
				reason = ReasonPanic
			}
			if !c.deadLetter(ctx, msg, err, reason, attempt) {
				return false
			}
			break
		}
		if ctx.Err() != nil {
			return false
		}
		if store.Unavailable(err) {
			// The whole database is down or overloaded: every message would
			// fail alike. Wait on this one (the partition pauses) without
			// limit; skipping it would lose its result once a later offset
			// is committed.
			c.m.dbWaits.Inc()
			c.log.Warn("database unavailable; retrying the same message",
				"session", string(msg.Key), "partition", msg.Partition, "offset", msg.Offset,
				"attempt", attempt, "backoff", backoff, "err", err)
		} else {
			// This message's own failure (the database refuses the row, a
			// bug): a few tries, then dead-letter it so that the partition
			// moves on. It can be replayed after a fix.
			failures++
			if failures >= c.cfg.MaxAttempts {
				if !c.deadLetter(ctx, msg, err, ReasonStoreFailed, attempt) {
					return false
				}
				break
			}
			c.log.Warn("handler failed; retrying the same message",
				"session", string(msg.Key), "partition", msg.Partition, "offset", msg.Offset,
				"attempt", attempt, "of", c.cfg.MaxAttempts, "backoff", backoff, "err", err)
		}
		c.m.retries.Inc()
		if !sleepCtx(ctx, backoff) {
			return false
		}
		backoff = min(2*backoff, c.cfg.RetryBackoffMax)
	}

	c.commit(ctx, r, msg)
	c.m.lag.WithLabelValues(strconv.Itoa(msg.Partition)).Set(float64(max(0, msg.HighWaterMark-msg.Offset-1)))
	return true
}

// call runs the handler, turning a panic into a Permanent error: a panic
// caused by the message would recur on every redelivery and stall the
// partition; dead-lettered, the message can be replayed after a fix.
func (c *Consumer) call(ctx context.Context, msg kafka.Message) (err error) {
	start := time.Now()
	defer func() {
		c.m.latency.Observe(time.Since(start).Seconds())
		if p := recover(); p != nil {
			c.log.Error("handler panicked", "session", string(msg.Key), "partition", msg.Partition,
				"offset", msg.Offset, "panic", p, "stack", string(debug.Stack()))
			err = Permanent(fmt.Errorf("%w: %v", errHandlerPanic, p))
		}
	}()
	return c.handler(ctx, msg)
}

var errHandlerPanic = errors.New("handler panic")

// commit stores msg's offset + 1 for the group. Kafka keeps one offset per
// partition, so this also commits every earlier message of the partition,
// all of which this reader handled before msg. A failed commit is not fatal:
// the messages are delivered again and the idempotent store absorbs them.
func (c *Consumer) commit(ctx context.Context, r *kafka.Reader, msgs ...kafka.Message) {
	// Commit even while stopping: the messages are done. kafka-go commits
	// the highest offset of each partition among msgs.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := r.CommitMessages(cctx, msgs...); err != nil {
		c.m.commitErrors.Inc()
		last := msgs[len(msgs)-1]
		c.log.Warn("offset commit failed; the messages will be redelivered", "messages", len(msgs),
			"session", string(last.Key), "partition", last.Partition, "offset", last.Offset, "err", err)
	}
}

// deadLetter writes msg to the dead-letter topic, retrying until the write is
// acknowledged (the message must not be committed before that) or ctx ends.
func (c *Consumer) deadLetter(ctx context.Context, msg kafka.Message, cause error, class DeadLetterReason, attempts int) bool {
	// Error texts can quote the payload: keep the header storable text.
	reason := store.CleanText(cause.Error(), maxReasonLen)
	if c.dlq == nil {
		// Consuming the dead-letter topic itself: dead-lettering again
		// would loop forever. Log loudly and move on.
		c.log.Error("giving up on a message of the dead-letter topic; skipping it",
			"session", string(msg.Key), "partition", msg.Partition, "offset", msg.Offset, "err", reason)
		return true
	}
	headers := make([]kafka.Header, 0, len(msg.Headers)+8)
	headers = append(headers, msg.Headers...)
	headers = append(headers,
		kafka.Header{Key: HeaderDLQReason, Value: []byte(reason)},
		kafka.Header{Key: HeaderDLQTopic, Value: []byte(msg.Topic)},
		kafka.Header{Key: HeaderDLQPartition, Value: strconv.AppendInt(nil, int64(msg.Partition), 10)},
		kafka.Header{Key: HeaderDLQOffset, Value: strconv.AppendInt(nil, msg.Offset, 10)},
		kafka.Header{Key: HeaderDLQGroup, Value: []byte(c.group)},
		kafka.Header{Key: HeaderDLQTimeMs, Value: strconv.AppendInt(nil, time.Now().UnixMilli(), 10)},
		kafka.Header{Key: HeaderDLQClass, Value: []byte(class)},
		kafka.Header{Key: HeaderDLQAttempts, Value: strconv.AppendInt(nil, int64(attempts), 10)},
	)
	// Same key: a session's dead letters stay in order on one partition.
	dl := kafka.Message{Key: msg.Key, Value: msg.Value, Headers: headers}

	backoff := c.cfg.RetryBackoffMin
	for {
		err := c.dlq.Send(ctx, c.cfg.Topics.DeadLetter, dl)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return false
		}
		c.log.Warn("write to dead-letter topic failed; retrying", "session", string(msg.Key),
			"partition", msg.Partition, "offset", msg.Offset, "err", err, "backoff", backoff)
		if !sleepCtx(ctx, backoff) {
			return false
		}
		backoff = min(2*backoff, c.cfg.RetryBackoffMax)
	}
	c.m.deadLettered.WithLabelValues(string(class)).Inc()
	c.log.Warn("message dead-lettered", "session", string(msg.Key), "partition", msg.Partition,
		"offset", msg.Offset, "dead_letter_topic", c.cfg.Topics.DeadLetter, "class", class,
		"attempts", attempts, "reason", reason)
	return true
}

// partitionLocks is one lock per partition number, created on first use.
type partitionLocks struct {
	mu    sync.Mutex
	locks map[int]chan struct{}
}

// lock waits for partition p's lock or ctx; ok is false if ctx ended first.
func (l *partitionLocks) lock(ctx context.Context, p int) (unlock func(), ok bool) {
	l.mu.Lock()
	if l.locks == nil {
		l.locks = make(map[int]chan struct{})
	}
	ch := l.locks[p]
	if ch == nil {
		ch = make(chan struct{}, 1)
		l.locks[p] = ch
	}
	l.mu.Unlock()
	select {
	case ch <- struct{}{}:
		return func() { <-ch }, true
	case <-ctx.Done():
		return nil, false
	}
}

// sleepCtx sleeps for d; it returns false if ctx ended first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
