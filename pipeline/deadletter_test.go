package pipeline

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

// errRowRefused is what storing a row the database refuses looks like (PostgreSQL: invalid byte
// sequence for encoding "UTF8"): the row's own fault, not the database's.
var errRowRefused = errors.New(`store event: ERROR: invalid byte sequence for encoding "UTF8": 0xff (SQLSTATE 22021)`)

func eventMsg(session string, seq int64) kafka.Message {
	now := time.Now().UnixMilli()
	return EncodeEvent(EventMessage{SessionID: session, Seq: seq, Type: "tick", CapturedAtMs: now, ReceivedAtMs: now})
}

// TestStoreFailureIsDeadLetteredAfterMaxAttempts: a message whose row the database refuses is
// tried MaxAttempts times, then dead-lettered with its class and attempts, and the messages
// behind it on the partition are stored: one poison message does not block the partition.
func TestStoreFailureIsDeadLetteredAfterMaxAttempts(t *testing.T) {
	forEachBroker(t, func(t *testing.T, cfg Config) {
		cfg.MaxAttempts = 3
		p := newTestProducer(t, cfg)
		if err := p.Send(t.Context(), cfg.Topics.Events, eventMsg("sess-poison", 0), eventMsg("sess-poison", 1), eventMsg("sess-poison", 2)); err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		tries := map[int64]int{}
		stored := newCollector()
		c := newTestConsumer(t, cfg, cfg.Topics.Events, func(_ context.Context, m kafka.Message) error {
			e, err := DecodeEvent(m)
			if err != nil {
				return err
			}
			mu.Lock()
			tries[e.Seq]++
			mu.Unlock()
			if e.Seq == 1 {
				return errRowRefused
			}
			stored.add(m)
			return nil
		}, p)
		runConsumer(t, c)
		dead := newCollector()
		runConsumer(t, newTestConsumer(t, cfg, cfg.Topics.DeadLetter, func(_ context.Context, m kafka.Message) error {
			dead.add(m)
			return nil
		}, nil))

		got := stored.waitFor(t, 2, 30*time.Second)
		if s := header(got[0], HeaderSeq) + "," + header(got[1], HeaderSeq); s != "0,2" {
			t.Errorf("stored seqs %s, want 0,2", s)
		}
		dl := dead.waitFor(t, 1, 30*time.Second)[0]
		if header(dl, HeaderSeq) != "1" || header(dl, HeaderDLQClass) != string(ReasonStoreFailed) ||
			header(dl, HeaderDLQAttempts) != strconv.Itoa(cfg.MaxAttempts) || header(dl, HeaderDLQTopic) != cfg.Topics.Events {
			t.Errorf("dead letter headers %v", dl.Headers)
		}
		if r := header(dl, HeaderDLQReason); r != errRowRefused.Error() {
			t.Errorf("dlq-reason %q", r)
		}
		waitCommitted(t, cfg, c.GroupID(), cfg.Topics.Events)
		mu.Lock()
		defer mu.Unlock()
		if tries[1] != cfg.MaxAttempts {
			t.Errorf("poison message tried %d times, want %d", tries[1], cfg.MaxAttempts)
		}
		if v := metricValue(c.m.deadLettered.WithLabelValues(string(ReasonStoreFailed))); v != 1 {
			t.Errorf("dead-lettered{reason=store_failed} = %v, want 1", v)
		}
	})
}

// TestDatabaseOutageIsRetriedWithoutLimit: while the database is unavailable, failures do not
// count towards MaxAttempts: the message waits (the partition pauses) and is stored once the
// database is back, never dead-lettered.
func TestDatabaseOutageIsRetriedWithoutLimit(t *testing.T) {
	forEachBroker(t, func(t *testing.T, cfg Config) {
		cfg.MaxAttempts = 2
		p := newTestProducer(t, cfg)
		if err := p.Send(t.Context(), cfg.Topics.Events, eventMsg("sess-outage", 0), eventMsg("sess-outage", 1)); err != nil {
			t.Fatal(err)
		}
		const outage = 6 // calls that fail: three times MaxAttempts
		var mu sync.Mutex
		calls := 0
		stored := newCollector()
		c := newTestConsumer(t, cfg, cfg.Topics.Events, func(_ context.Context, m kafka.Message) error {
			mu.Lock()
			calls++
			down := calls <= outage
			mu.Unlock()
			if down {
				return errTransient
			}
			stored.add(m)
			return nil
		}, p)
		runConsumer(t, c)
		dead := newCollector()
		runConsumer(t, newTestConsumer(t, cfg, cfg.Topics.DeadLetter, func(_ context.Context, m kafka.Message) error {
			dead.add(m)
			return nil
		}, nil))
		got := stored.waitFor(t, 2, 30*time.Second)
		if s := header(got[0], HeaderSeq) + "," + header(got[1], HeaderSeq); s != "0,1" {
			t.Errorf("stored seqs %s, want 0,1", s)
		}
		waitCommitted(t, cfg, c.GroupID(), cfg.Topics.Events)
		if n := len(dead.snapshot()); n != 0 {
			t.Errorf("%d messages dead-lettered during a database outage, want 0", n)
		}
		if v := metricValue(c.m.dbWaits); v != outage {
			t.Errorf("database-unavailable retries = %v, want %d", v, outage)
		}
	})
}
