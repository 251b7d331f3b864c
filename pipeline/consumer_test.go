package pipeline

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
)

func newTestConsumer(t *testing.T, cfg Config, topic string, h Handler, dlq *Producer) *Consumer {
	t.Helper()
	c, err := NewConsumer(cfg, topic, h, dlq, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestRoundTripEachMessageType(t *testing.T) {
	forEachBroker(t, func(t *testing.T, cfg Config) {
		p := newTestProducer(t, cfg)
		now := time.Now().UnixMilli()
		frame := FrameMessage{SessionID: "sess-a", Camera: "evidence", Seq: 3, CapturedAtMs: now - 40, ReceivedAtMs: now, JPEG: testJPEG(t, 64, 48)}
		audio := AudioMessage{SessionID: "sess-a", Seq: 9, CapturedAtMs: now - 500, ReceivedAtMs: now, SampleRate: 16000, PCM: make([]byte, 3200)}
		event := EventMessage{SessionID: "sess-a", Seq: 1, Type: "face_login", CapturedAtMs: now - 5, ReceivedAtMs: now, Payload: []byte(`{"ok":true}`)}
		ctx := t.Context()
		if err := p.Send(ctx, cfg.Topics.Frames, EncodeFrame(frame)); err != nil {
			t.Fatal(err)
		}
		if err := p.Send(ctx, cfg.Topics.Audio, EncodeAudio(audio)); err != nil {
			t.Fatal(err)
		}
		if err := p.Send(ctx, cfg.Topics.Events, EncodeEvent(event)); err != nil {
			t.Fatal(err)
		}

		frames, audios, events := make(chan FrameMessage, 1), make(chan AudioMessage, 1), make(chan EventMessage, 1)
		raw := newCollector()
		runConsumer(t, newTestConsumer(t, cfg, cfg.Topics.Frames, func(_ context.Context, m kafka.Message) error {
			raw.add(m)
			f, err := DecodeFrame(m)
			if err != nil {
				return err
			}
			f.JPEG = append([]byte(nil), f.JPEG...)
			frames <- f
			return nil
		}, p))
		runConsumer(t, newTestConsumer(t, cfg, cfg.Topics.Audio, func(_ context.Context, m kafka.Message) error {
			a, err := DecodeAudio(m)
			if err != nil {
				return err
			}
			a.PCM = append([]byte(nil), a.PCM...)
			audios <- a
			return nil
		}, p))
		runConsumer(t, newTestConsumer(t, cfg, cfg.Topics.Events, func(_ context.Context, m kafka.Message) error {
			e, err := DecodeEvent(m)
			if err != nil {
				return err
			}
			e.Payload = append([]byte(nil), e.Payload...)
			events <- e
			return nil
		}, p))

		timeout := time.After(30 * time.Second)
		for range 3 {
			select {
			case got := <-frames:
				if !reflect.DeepEqual(got, frame) {
					t.Errorf("frame: got %+v, want %+v", got, frame)
				}
			case got := <-audios:
				if !reflect.DeepEqual(got, audio) {
					t.Errorf("audio: got %+v, want %+v", got, audio)
				}
			case got := <-events:
				if !reflect.DeepEqual(got, event) {
					t.Errorf("event: got %+v, want %+v", got, event)
				}
			case <-timeout:
				t.Fatal("not all message types came back within 30s")
			}
		}
		m := raw.snapshot()[0]
		if string(m.Key) != "sess-a" || header(m, HeaderVersion) != SchemaVersion || header(m, HeaderCamera) != "evidence" {
			t.Errorf("frame on the wire: key %q, headers %v", m.Key, m.Headers)
		}
	})
}

// TestOrderingPerSession: many sessions produced concurrently, consumed by
// two Readers with a handler of varying speed; each session's messages must
// arrive exactly once and in order.
func TestOrderingPerSession(t *testing.T) {
	forEachBroker(t, func(t *testing.T, cfg Config) {
		const sessions, perSession = 24, 40
		p := newTestProducer(t, cfg)
		var mu sync.Mutex
		seen := map[string][]int64{}
		var total atomic.Int64
		var busy, maxBusy atomic.Int64 // how many handlers run at once
		c := newTestConsumer(t, cfg, cfg.Topics.Events, func(_ context.Context, m kafka.Message) error {
			n := busy.Add(1)
			defer busy.Add(-1)
			for {
				old := maxBusy.Load()
				if n <= old || maxBusy.CompareAndSwap(old, n) {
					break
				}
			}
			e, err := DecodeEvent(m)
			if err != nil {
				return err
			}
			time.Sleep(time.Duration(rand.IntN(500)) * time.Microsecond)
			mu.Lock()
			seen[e.SessionID] = append(seen[e.SessionID], e.Seq)
			mu.Unlock()
			total.Add(1)
			return nil
		}, p)
		runConsumer(t, c)
		waitGroupStable(t, cfg, c.GroupID(), cfg.Topics.Events, cfg.Concurrency)

		var wg sync.WaitGroup
		for s := range sessions {
			wg.Add(1)
			go func() {
				defer wg.Done()
				id := fmt.Sprintf("session-%02d", s)
				for i := range perSession {
					now := time.Now().UnixMilli()
					if err := p.Send(t.Context(), cfg.Topics.Events, EncodeEvent(EventMessage{
						SessionID: id, Seq: int64(i), Type: "tick", CapturedAtMs: now, ReceivedAtMs: now,
					})); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		deadline := time.Now().Add(30 * time.Second)
		for total.Load() < sessions*perSession && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(seen) != sessions {
			t.Fatalf("saw %d sessions, want %d", len(seen), sessions)
		}
		for id, seqs := range seen {
			for i, s := range seqs {
				if s != int64(i) {
					t.Fatalf("session %s: message %d has seq %d (sequence %v)", id, i, s, seqs)
				}
			}
			if len(seqs) != perSession {
				t.Errorf("session %s: %d messages, want %d", id, len(seqs), perSession)
			}
		}
		t.Logf("handlers running at once: up to %d (Concurrency %d)", maxBusy.Load(), cfg.Concurrency)
		if maxBusy.Load() < 2 {
			t.Errorf("partitions were never handled in parallel")
		}
	})
}

// TestTransientErrorIsRetriedNotLost: a handler failing twice (database down)
// sees the same message again, later messages of the partition wait for it,
// and the offsets are committed once it succeeded.
func TestTransientErrorIsRetriedNotLost(t *testing.T) {
	forEachBroker(t, func(t *testing.T, cfg Config) {
		p := newTestProducer(t, cfg)
		const n = 5
		for i := range n {
			now := time.Now().UnixMilli()
			if err := p.Send(t.Context(), cfg.Topics.Events, EncodeEvent(EventMessage{
				SessionID: "sess-retry", Seq: int64(i), Type: "tick", CapturedAtMs: now, ReceivedAtMs: now,
			})); err != nil {
				t.Fatal(err)
			}
		}
		var mu sync.Mutex
		var calls []int64 // seq per handler call
		stored := newCollector()
		failuresLeft := 2
		c := newTestConsumer(t, cfg, cfg.Topics.Events, func(_ context.Context, m kafka.Message) error {
			e, err := DecodeEvent(m)
			if err != nil {
				return err
			}
			mu.Lock()
			calls = append(calls, e.Seq)
			fail := e.Seq == 2 && failuresLeft > 0
			if fail {
				failuresLeft--
			}
			mu.Unlock()
			if fail {
				return fmt.Errorf("store observation: %w", errTransient)
			}
			stored.add(m)
			return nil
		}, p)
		runConsumer(t, c)
		stored.waitFor(t, n, 30*time.Second)
		waitCommitted(t, cfg, c.GroupID(), cfg.Topics.Events)

		mu.Lock()
		defer mu.Unlock()
		want := []int64{0, 1, 2, 2, 2, 3, 4}
		if !reflect.DeepEqual(calls, want) {
			t.Errorf("handler calls by seq = %v, want %v", calls, want)
		}
		if got := metricValue(c.m.retries); got != 2 {
			t.Errorf("retries counter = %v, want 2", got)
		}
		if got := metricValue(c.m.handled); got != n {
			t.Errorf("handled counter = %v, want %d", got, n)
		}
	})
}

// TestBadMessageGoesToDeadLetter: a message that does not decode is written
// to the dead-letter topic with the reason and its origin, and the consumer
// carries on with the next message of the partition.
func TestBadMessageGoesToDeadLetter(t *testing.T) {
	forEachBroker(t, func(t *testing.T, cfg Config) {
		p := newTestProducer(t, cfg)
		now := time.Now().UnixMilli()
		good := func(seq int64) kafka.Message {
			return EncodeFrame(FrameMessage{SessionID: "sess-dlq", Camera: "main", Seq: seq, CapturedAtMs: now, ReceivedAtMs: now, JPEG: fakeFrame(100)})
		}
		bad := good(1)
		bad.Headers = bad.Headers[:2] // v and kind only: seq missing
		if err := p.Send(t.Context(), cfg.Topics.Frames, good(0), bad, good(2)); err != nil {
			t.Fatal(err)
		}

		handled := newCollector()
		c := newTestConsumer(t, cfg, cfg.Topics.Frames, func(_ context.Context, m kafka.Message) error {
			if _, err := DecodeFrame(m); err != nil {
				return err
			}
			handled.add(m)
			return nil
		}, p)
		runConsumer(t, c)

		dead := newCollector()
		dc := newTestConsumer(t, cfg, cfg.Topics.DeadLetter, func(_ context.Context, m kafka.Message) error {
			dead.add(m)
			return nil
		}, nil)
		runConsumer(t, dc)

		got := handled.waitFor(t, 2, 30*time.Second)
		if h := header(got[0], HeaderSeq) + "," + header(got[1], HeaderSeq); h != "0,2" {
			t.Errorf("handled seqs %s, want 0,2", h)
		}
		dl := dead.waitFor(t, 1, 30*time.Second)[0]
		src := got[0] // same key, same partition as the bad message
		if string(dl.Key) != "sess-dlq" || !strings.Contains(header(dl, HeaderDLQReason), `missing header "seq"`) ||
			header(dl, HeaderDLQTopic) != cfg.Topics.Frames ||
			header(dl, HeaderDLQPartition) != strconv.Itoa(src.Partition) ||
			header(dl, HeaderDLQOffset) != strconv.FormatInt(src.Offset+1, 10) ||
			header(dl, HeaderDLQGroup) != c.GroupID() ||
			header(dl, HeaderKind) != KindFrame || len(dl.Value) != 100 {
			t.Errorf("dead letter: key %q, value %d bytes, headers %v", dl.Key, len(dl.Value), dl.Headers)
		}
		t.Logf("dead-letter reason: %s", header(dl, HeaderDLQReason))
		waitCommitted(t, cfg, c.GroupID(), cfg.Topics.Frames)
		if v := metricValue(c.m.deadLettered.WithLabelValues(string(ReasonInvalid))); v != 1 {
			t.Errorf("dead-lettered counter = %v, want 1", v)
		}
	})
}

// TestPanicIsDeadLettered: a handler panic is a bug that would recur on every
// redelivery; the message is parked in the dead-letter topic instead.
func TestPanicIsDeadLettered(t *testing.T) {
	b, err := StartEmbeddedBroker(t.Context(), EmbeddedBrokerConfig{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	cfg := testConfig(t, b.Addr())
	cfg.Logger = discardLogger() // the panic's stack trace is expected
	p := newTestProducer(t, cfg)
	now := time.Now().UnixMilli()
	if err := p.Send(t.Context(), cfg.Topics.Events, EncodeEvent(EventMessage{SessionID: "s", Seq: 0, Type: "boom", CapturedAtMs: now, ReceivedAtMs: now})); err != nil {
		t.Fatal(err)
	}
	runConsumer(t, newTestConsumer(t, cfg, cfg.Topics.Events, func(context.Context, kafka.Message) error {
		panic("nil map")
	}, p))
	dead := newCollector()
	runConsumer(t, newTestConsumer(t, cfg, cfg.Topics.DeadLetter, func(_ context.Context, m kafka.Message) error {
		dead.add(m)
		return nil
	}, nil))
	if r := header(dead.waitFor(t, 1, 30*time.Second)[0], HeaderDLQReason); !strings.Contains(r, "handler panic: nil map") {
		t.Errorf("dlq-reason %q", r)
	}
}

// TestUncommittedMessagesAreRedelivered: a worker that stops while a message
// is still failing commits nothing for it; the next worker of the group gets
// that message and everything after it again, but not what was committed.
func TestUncommittedMessagesAreRedelivered(t *testing.T) {
	forEachBroker(t, func(t *testing.T, cfg Config) {
		p := newTestProducer(t, cfg)
		const n = 6
		for i := range n {
			now := time.Now().UnixMilli()
			if err := p.Send(t.Context(), cfg.Topics.Audio, EncodeAudio(AudioMessage{
				SessionID: "sess-redeliver", Seq: int64(i), CapturedAtMs: now, ReceivedAtMs: now, SampleRate: 16000, PCM: []byte{0, 0},
			})); err != nil {
				t.Fatal(err)
			}
		}
		first := newCollector()
		failing := make(chan struct{}, 1)
		c1 := newTestConsumer(t, cfg, cfg.Topics.Audio, func(_ context.Context, m kafka.Message) error {
			a, err := DecodeAudio(m)
			if err != nil {
				return err
			}
			if a.Seq >= 3 { // the database went down before seq 3 was stored
				select {
				case failing <- struct{}{}:
				default:
				}
				return errTransient
			}
			first.add(m)
			return nil
		}, p)
		stop1 := runConsumer(t, c1)
		select {
		case <-failing:
		case <-time.After(30 * time.Second):
			t.Fatal("first worker never reached seq 3")
		}
		stop1()
		if got := len(first.snapshot()); got != 3 {
			t.Fatalf("first worker stored %d messages, want 3", got)
		}

		second := newCollector()
		c2 := newTestConsumer(t, cfg, cfg.Topics.Audio, func(_ context.Context, m kafka.Message) error {
			second.add(m)
			return nil
		}, p)
		runConsumer(t, c2)
		got := second.waitFor(t, n-3, 30*time.Second)
		time.Sleep(300 * time.Millisecond) // nothing more should arrive
		got = second.snapshot()
		var seqs []string
		for _, m := range got {
			seqs = append(seqs, header(m, HeaderSeq))
		}
		if s := strings.Join(seqs, ","); s != "3,4,5" {
			t.Errorf("second worker got seqs %s, want 3,4,5 (uncommitted only, in order)", s)
		}
		waitCommitted(t, cfg, c2.GroupID(), cfg.Topics.Audio)
	})
}

// TestShutdownFinishesCurrentMessage: cancelling the consumer while a handler
// runs lets it finish and commits it, so it is not redelivered.
func TestShutdownFinishesCurrentMessage(t *testing.T) {
	forEachBroker(t, func(t *testing.T, cfg Config) {
		p := newTestProducer(t, cfg)
		now := time.Now().UnixMilli()
		if err := p.Send(t.Context(), cfg.Topics.Events, EncodeEvent(EventMessage{SessionID: "s", Seq: 0, Type: "slow", CapturedAtMs: now, ReceivedAtMs: now})); err != nil {
			t.Fatal(err)
		}
		started := make(chan struct{})
		var finished atomic.Bool
		c := newTestConsumer(t, cfg, cfg.Topics.Events, func(ctx context.Context, m kafka.Message) error {
			close(started)
			select {
			case <-time.After(500 * time.Millisecond):
				finished.Store(true)
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}, p)
		stop := runConsumer(t, c)
		select {
		case <-started:
		case <-time.After(30 * time.Second):
			t.Fatal("handler never called")
		}
		stop()
		if !finished.Load() {
			t.Fatal("handler was cut off by shutdown")
		}
		committed, end := committedOffsets(t, cfg, c.GroupID(), cfg.Topics.Events)
		for part, e := range end {
			if e > 0 && committed[part] != e {
				t.Errorf("partition %d: committed %d, end %d", part, committed[part], e)
			}
		}
	})
}

// killableDialer hands out connections it can all cut at once, refusing new
// ones afterwards: to the broker the worker looks crashed (no LeaveGroup, no
// heartbeats), which is what failover has to cope with.
type killableDialer struct {
	mu     sync.Mutex
	dead   bool
	conns  []net.Conn
	dialer net.Dialer
}

func (k *killableDialer) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.dead {
		return nil, errors.New("worker is dead (test)")
	}
	c, err := k.dialer.DialContext(ctx, network, addr)
	if err == nil {
		k.conns = append(k.conns, c)
	}
	return c, err
}

func (k *killableDialer) kill() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.dead = true
	for _, c := range k.conns {
		_ = c.Close()
	}
}

// TestFailoverAfterWorkerDies: of two workers in a group, one dies without
// leaving; its partitions must be handled by the survivor within about
// SessionTimeout + HeartbeatInterval + a join round.
func TestFailoverAfterWorkerDies(t *testing.T) {
	forEachBroker(t, func(t *testing.T, cfg Config) {
		d := measureHandover(t, cfg, true)
		if d > 15*time.Second {
			t.Errorf("failover after a crash took %v, want <= 15s", d)
		}
	})
}

// TestHandoverOnShutdown: a worker that stops cleanly leaves the group, so
// its partitions move at the next heartbeat, not after SessionTimeout.
func TestHandoverOnShutdown(t *testing.T) {
	forEachBroker(t, func(t *testing.T, cfg Config) {
		d := measureHandover(t, cfg, false)
		if d > cfg.SessionTimeout {
			t.Errorf("handover after a clean shutdown took %v, want < SessionTimeout %v", d, cfg.SessionTimeout)
		}
	})
}

// measureHandover runs two single-Reader workers under continuous traffic,
// takes one away (crash: cut off the network; otherwise: stop it cleanly)
// and returns how long until the survivor has handled a message of each of
// the victim's partitions.
func measureHandover(t *testing.T, cfg Config, crash bool) time.Duration {
	t.Helper()
	cfg.Concurrency = 1 // one Reader per worker: the victim is one group member
	p := newTestProducer(t, cfg)

	var mu sync.Mutex
	owner := map[int]string{}       // partition -> worker that handled it last
	lastSeen := map[int]time.Time{} // partition -> when
	handler := func(name string) Handler {
		return func(_ context.Context, m kafka.Message) error {
			mu.Lock()
			owner[m.Partition] = name
			lastSeen[m.Partition] = time.Now()
			mu.Unlock()
			return nil
		}
	}
	victim := newTestConsumer(t, cfg, cfg.Topics.Frames, handler("victim"), p)
	kd := &killableDialer{}
	victim.dial = kd.dial
	if crash {
		victim.log = discardLogger() // a dead worker's fetch errors are expected
	}
	stopVictim := runConsumer(t, victim)
	survivor := newTestConsumer(t, cfg, cfg.Topics.Frames, handler("survivor"), p)
	runConsumer(t, survivor)
	waitGroupStable(t, cfg, survivor.GroupID(), cfg.Topics.Frames, 2)

	// Produce to every partition continuously.
	ctx, stopProducing := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ctx.Err() == nil; i++ {
			var batch []kafka.Message
			for s := range 24 {
				now := time.Now().UnixMilli()
				batch = append(batch, EncodeFrame(FrameMessage{SessionID: fmt.Sprintf("s%02d", s), Camera: "main",
					Seq: int64(i), CapturedAtMs: now, ReceivedAtMs: now, JPEG: fakeFrame(64)}))
			}
			_ = p.Send(ctx, cfg.Topics.Frames, batch...)
			time.Sleep(20 * time.Millisecond)
		}
	}()
	defer func() { stopProducing(); wg.Wait() }()

	// Wait until every partition has been handled and both workers take
	// part.
	var victimParts []int
	deadline := time.Now().Add(15 * time.Second)
	for {
		if time.Now().After(deadline) {
			t.Fatalf("traffic never covered all partitions with both workers: owners %v", owner)
		}
		time.Sleep(100 * time.Millisecond)
		mu.Lock()
		victimParts = victimParts[:0]
		for part, w := range owner {
			if w == "victim" {
				victimParts = append(victimParts, part)
			}
		}
		covered := len(owner)
		mu.Unlock()
		if covered == cfg.Partitions && len(victimParts) > 0 && len(victimParts) < cfg.Partitions {
			break
		}
	}
	sort.Ints(victimParts)

	goneAt := time.Now()
	if crash {
		kd.kill()
	} else {
		go stopVictim()
	}
	var handover time.Duration
	for handover == 0 {
		if time.Since(goneAt) > 30*time.Second {
			t.Fatalf("victim's partitions %v not taken over within 30s: owners %v", victimParts, owner)
		}
		time.Sleep(20 * time.Millisecond)
		mu.Lock()
		all := true
		var latest time.Time
		for _, part := range victimParts {
			if owner[part] != "survivor" {
				all = false
				break
			}
			if lastSeen[part].After(latest) {
				latest = lastSeen[part]
			}
		}
		mu.Unlock()
		if all {
			handover = latest.Sub(goneAt)
		}
	}
	how := "clean shutdown"
	if crash {
		how = "crash"
	}
	t.Logf("handover after %s: partitions %v handled by the survivor %v later (SessionTimeout %v, HeartbeatInterval %v)",
		how, victimParts, handover.Round(10*time.Millisecond), cfg.SessionTimeout, cfg.HeartbeatInterval)
	stopProducing()
	wg.Wait()
	stopVictim()
	return handover
}

// TestConsumeThroughput measures a no-op handler with one synchronous commit
// per message (the at-least-once path), two Readers.
func TestConsumeThroughput(t *testing.T) {
	if testing.Short() {
		t.Skip("throughput measurement")
	}
	forEachBroker(t, func(t *testing.T, cfg Config) {
		n, size := 5000, 30<<10
		if raceEnabled {
			n = 500
		}
		p := newTestProducer(t, cfg)
		payload := fakeFrame(size)
		var batch []kafka.Message
		for i := range n {
			batch = append(batch, EncodeFrame(FrameMessage{SessionID: fmt.Sprintf("s%03d", i%100), Camera: "main",
				Seq: int64(i / 100), CapturedAtMs: 1, ReceivedAtMs: 1, JPEG: payload}))
			if len(batch) == 100 {
				if err := p.Send(t.Context(), cfg.Topics.Frames, batch...); err != nil {
					t.Fatal(err)
				}
				batch = batch[:0]
			}
		}
		var count atomic.Int64
		done := make(chan struct{})
		c := newTestConsumer(t, cfg, cfg.Topics.Frames, func(_ context.Context, m kafka.Message) error {
			if _, err := DecodeFrame(m); err != nil {
				return err
			}
			if count.Add(1) == int64(n) {
				close(done)
			}
			return nil
		}, p)
		start := time.Now()
		runConsumer(t, c)
		select {
		case <-done:
		case <-time.After(120 * time.Second):
			t.Fatalf("consumed %d of %d in 120s", count.Load(), n)
		}
		el := time.Since(start)
		t.Logf("consumed %d x %d KiB frames with %d readers (commit per message) in %v: %.0f msg/s, %.1f MiB/s (includes group join)",
			n, size>>10, cfg.Concurrency, el.Round(time.Millisecond), float64(n)/el.Seconds(), float64(n*size)/el.Seconds()/(1<<20))
	})
}

// TestBatchWithPoisonMessage: a batch handler that fails on one message of its batch stores
// nothing of it; the consumer then hands the batch's messages to the Handler one at a time, so
// the good ones are stored exactly once and the bad one is dead-lettered after its bounded
// retries. Messages fetched together reach the batch handler together.
func TestBatchWithPoisonMessage(t *testing.T) {
	forEachBroker(t, func(t *testing.T, cfg Config) {
		cfg.MaxBatch = 8
		cfg.BatchWait = 200 * time.Millisecond
		cfg.MaxAttempts = 2
		p := newTestProducer(t, cfg)
		now := time.Now().UnixMilli()
		frame := func(seq int64) kafka.Message {
			return EncodeFrame(FrameMessage{SessionID: "sess-batch", Camera: "main", Seq: seq, CapturedAtMs: now, ReceivedAtMs: now, JPEG: fakeFrame(100)})
		}
		msgs := make([]kafka.Message, 6)
		for i := range msgs {
			msgs[i] = frame(int64(i))
		}
		if err := p.Send(t.Context(), cfg.Topics.Frames, msgs...); err != nil {
			t.Fatal(err)
		}
		const poison = "3"
		stored := newCollector()
		var mu sync.Mutex
		var batches []int
		c := newTestConsumer(t, cfg, cfg.Topics.Frames, func(_ context.Context, m kafka.Message) error {
			if header(m, HeaderSeq) == poison {
				return errors.New("the database refuses this row")
			}
			stored.add(m)
			return nil
		}, p)
		c.HandleBatches(func(_ context.Context, ms []kafka.Message) error {
			mu.Lock()
			batches = append(batches, len(ms))
			mu.Unlock()
			for _, m := range ms {
				if header(m, HeaderSeq) == poison {
					return errors.New("the database refuses this row") // all or nothing: none stored
				}
			}
			for _, m := range ms {
				stored.add(m)
			}
			return nil
		})
		runConsumer(t, c)
		dead := newCollector()
		runConsumer(t, newTestConsumer(t, cfg, cfg.Topics.DeadLetter, func(_ context.Context, m kafka.Message) error {
			dead.add(m)
			return nil
		}, nil))

		got := stored.waitFor(t, 5, 30*time.Second)
		seqs := map[string]int{}
		for _, m := range got {
			seqs[header(m, HeaderSeq)]++
		}
		for _, s := range []string{"0", "1", "2", "4", "5"} {
			if seqs[s] != 1 {
				t.Errorf("seq %s stored %d times, want once (stored %v)", s, seqs[s], seqs)
			}
		}
		dl := dead.waitFor(t, 1, 30*time.Second)[0]
		if header(dl, HeaderSeq) != poison || header(dl, HeaderDLQClass) != string(ReasonStoreFailed) {
			t.Errorf("dead letter seq %s class %s", header(dl, HeaderSeq), header(dl, HeaderDLQClass))
		}
		waitCommitted(t, cfg, c.GroupID(), cfg.Topics.Frames)
		mu.Lock()
		defer mu.Unlock()
		if len(batches) == 0 || batches[0] < 2 {
			t.Errorf("batch sizes %v: messages fetched together were not batched", batches)
		}
	})
}
