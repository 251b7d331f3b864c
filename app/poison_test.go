package app

import (
	"context"
	"fmt"
	"image/color"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"proctor/internal/platform"
	"proctor/pipeline"
	"proctor/rules"
	"proctor/store"
	"proctor/worker"
)

// deadLetterRow is one entry of GET /v1/admin/deadletter.
type deadLetterRow struct {
	ID        uint              `json:"id"`
	Topic     string            `json:"topic"`
	SessionID string            `json:"session_id"`
	Key       string            `json:"key"`
	Class     string            `json:"class"`
	Reason    string            `json:"reason"`
	Headers   map[string]string `json:"headers"`
}

func adminDeadLetters(t *testing.T, c *platform.Client) []deadLetterRow {
	t.Helper()
	var out struct {
		DeadLetters []deadLetterRow `json:"dead_letters"`
	}
	if _, err := c.Do(context.Background(), http.MethodGet, "/v1/admin/deadletter?limit=1000", "", nil, &out); err != nil {
		t.Fatalf("GET /v1/admin/deadletter: %v", err)
	}
	return out.DeadLetters
}

func findDeadLetter(rows []deadLetterRow, topic, session string) *deadLetterRow {
	for i := range rows {
		if rows[i].Topic == topic && rows[i].SessionID == session {
			return &rows[i]
		}
	}
	return nil
}

// readTopic returns every message of topic (a fresh consumer group reading from the start) that
// keep accepts, waiting until there is at least one or the deadline passes.
func readTopic(t *testing.T, cfg pipeline.Config, topic string, keep func(kafka.Message) bool) []kafka.Message {
	t.Helper()
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: cfg.Brokers, Topic: topic, GroupID: "read-" + store.NewID()[:8],
		StartOffset: kafka.FirstOffset, MaxWait: 250 * time.Millisecond})
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out []kafka.Message
	for len(out) == 0 {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			t.Fatalf("read %s: %v", topic, err)
		}
		if keep(m) {
			out = append(out, m)
		}
	}
	return out
}

func headerOf(m kafka.Message, key string) string {
	for _, h := range m.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// TestPoisonMessage: an event whose data holds invalid UTF-8, produced straight to the events
// topic (the API would have refused it), is followed on the same session, so the same partition,
// by a valid window_switched event. The valid event's flag appears within 30 s: the poison
// message does not block the partition. The poison message is in the dead-letter topic, in the
// admin list of its organisation (not another's) and counted in /metrics. Then a frame for a
// session that did not exist yet is dead-lettered, the session is created (the fix), and a replay
// stores it; a second replay sends nothing. Runs on embedded Kafka + SQLite and, when
// scripts/test.sh started them, on Apache Kafka + PostgreSQL.
func TestPoisonMessage(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			a := startApp(t, b, func(c *Config) { c.Analyzers.Analyzers = []string{"faces"} })
			org := "org-poison-" + store.NewID()[:8]
			ingestKey, reviewKey := keys(t, a, org)
			adminKey, _, err := a.Store.CreateAPIKey(ctx, org, "admin", []string{store.ScopeAdmin})
			if err != nil {
				t.Fatal(err)
			}
			other := "org-poison-other-" + store.NewID()[:8]
			if err := a.Store.EnsureOrganisation(ctx, other, other); err != nil {
				t.Fatal(err)
			}
			otherAdmin, _, err := a.Store.CreateAPIKey(ctx, other, "admin", []string{store.ScopeAdmin})
			if err != nil {
				t.Fatal(err)
			}
			plat, rev, adm := platform.New(a.URL, ingestKey), platform.New(a.URL, reviewKey), platform.New(a.URL, adminKey)
			photo := testJPEG(t, 240, 320, 1, color.RGBA{235, 235, 240, 255})
			now := time.Now()
			// Answering since a minute ago: a window switch now raises WINDOW_SWITCH.
			sess, err := plat.CreateSession(ctx, platform.NewSession{ExamID: "exam-poison", CandidateID: "cand-1",
				ScheduledStart: now.Add(-time.Minute), DurationSec: 1800, Questions: 1, Photo: photo})
			if err != nil {
				t.Fatal(err)
			}

			producer, err := pipeline.NewProducer(a.Kafka, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer producer.Close()
			poison := pipeline.EncodeEvent(pipeline.EventMessage{SessionID: sess.ID, Seq: 1, Type: "focus_lost",
				CapturedAtMs: now.UnixMilli(), ReceivedAtMs: now.UnixMilli(), Payload: []byte("{\"note\":\"bad \xff\xfe bytes\"}")})
			if err := producer.Send(ctx, a.Kafka.Topics.Events, poison); err != nil {
				t.Fatal(err)
			}
			if code, err := plat.PostEvents(ctx, sess.ID, platform.Event{Seq: 2, Type: "window_switched",
				CapturedAt: now.UnixMilli()}); err != nil || code != 202 {
				t.Fatalf("post window_switched: %d %v", code, err)
			}
			deadline := time.Now().Add(30 * time.Second)
			for {
				d, err := rev.Session(ctx, sess.ID)
				if err != nil {
					t.Fatal(err)
				}
				if hasFlag(d.Flags, rules.WindowSwitch) {
					break
				}
				if time.Now().After(deadline) {
					var events int64
					a.Store.DB.Model(&store.Event{}).Where("session_id = ?", sess.ID).Count(&events)
					t.Fatalf("no WINDOW_SWITCH within 30 s (%d events stored): the poison message blocks the partition", events)
				}
				time.Sleep(100 * time.Millisecond)
			}

			// In the dead-letter topic, with the reason.
			dl := readTopic(t, a.Kafka, a.Kafka.Topics.DeadLetter, func(m kafka.Message) bool {
				return string(m.Key) == sess.ID && headerOf(m, pipeline.HeaderDLQTopic) == a.Kafka.Topics.Events
			})[0]
			if headerOf(dl, pipeline.HeaderDLQClass) != string(pipeline.ReasonInvalid) ||
				!strings.Contains(headerOf(dl, pipeline.HeaderDLQReason), "not valid UTF-8") ||
				headerOf(dl, pipeline.HeaderSeq) != "1" || string(dl.Value) != string(poison.Value) {
				t.Errorf("dead letter: headers %v, value %q", dl.Headers, dl.Value)
			}
			// In the admin list of the session's organisation, not in another's.
			var row *deadLetterRow
			waitFor(t, func() bool {
				row = findDeadLetter(adminDeadLetters(t, adm), a.Kafka.Topics.Events, sess.ID)
				return row != nil
			}, "the poison message in GET /v1/admin/deadletter")
			if row.Class != string(pipeline.ReasonInvalid) || !strings.Contains(row.Reason, "not valid UTF-8") ||
				row.Headers[pipeline.HeaderType] != "focus_lost" || row.Key != sess.ID {
				t.Errorf("admin list entry %+v", row)
			}
			if r := findDeadLetter(adminDeadLetters(t, platform.New(a.URL, otherAdmin)), a.Kafka.Topics.Events, sess.ID); r != nil {
				t.Errorf("another organisation's admin sees the dead letter: %+v", r)
			}
			// Counted in /metrics by topic and reason.
			metric := fmt.Sprintf(`proctor_pipeline_dead_lettered_messages_total{reason="invalid",topic=%q} 1`, a.Kafka.Topics.Events)
			if m := getMetrics(t, a.URL); !strings.Contains(m, metric) {
				t.Errorf("/metrics lacks %s", metric)
			}

			// Replay after a fix: a frame for a session the platform had not created yet.
			lateID := "late-" + store.NewID()[:8]
			frame := pipeline.EncodeFrame(pipeline.FrameMessage{SessionID: lateID, Camera: "main", Seq: 1,
				CapturedAtMs: now.UnixMilli(), ReceivedAtMs: now.UnixMilli(), JPEG: photo})
			if err := producer.Send(ctx, a.Kafka.Topics.Frames, frame); err != nil {
				t.Fatal(err)
			}
			var late []store.DeadLetter
			waitFor(t, func() bool {
				late, _ = a.Store.ListDeadLetters(ctx, store.DeadLetterFilter{SessionID: lateID})
				return len(late) == 1
			}, "the frame of the unknown session recorded as a dead letter")
			if r := findDeadLetter(adminDeadLetters(t, adm), a.Kafka.Topics.Frames, lateID); r != nil {
				t.Errorf("a dead letter of no organisation's session is listed to an organisation admin: %+v", r)
			}
			if _, err := plat.CreateSession(ctx, platform.NewSession{ID: lateID, ExamID: "exam-poison", CandidateID: "cand-2",
				ScheduledStart: now.Add(-time.Minute), DurationSec: 1800, Questions: 1, Photo: photo}); err != nil {
				t.Fatal(err)
			}
			if findDeadLetter(adminDeadLetters(t, adm), a.Kafka.Topics.Frames, lateID) == nil {
				t.Error("once the session exists, its organisation's admin does not see its dead letter")
			}
			res, err := worker.ReplayDeadLetters(ctx, a.Store, producer, store.DeadLetterFilter{IDs: []uint{late[0].ID}}, "test-operator")
			if err != nil || len(res.Replayed) != 1 {
				t.Fatalf("replay: %+v %v", res, err)
			}
			waitFor(t, func() bool {
				n, _ := a.Store.CountFrames(ctx, lateID)
				return n == 1
			}, "the replayed frame stored")
			// Idempotent: a second replay sends nothing.
			res, err = worker.ReplayDeadLetters(ctx, a.Store, producer, store.DeadLetterFilter{SessionID: lateID, Pending: true}, "test-operator")
			if err != nil || len(res.Replayed) != 0 {
				t.Errorf("second replay (pending only): %+v %v", res, err)
			}
			res, err = worker.ReplayDeadLetters(ctx, a.Store, producer, store.DeadLetterFilter{IDs: []uint{late[0].ID}}, "test-operator")
			if err != nil || len(res.Replayed) != 0 || len(res.Skipped) != 1 {
				t.Errorf("second replay by id: %+v %v", res, err)
			}
			entries, err := a.Store.QueryAudit(ctx, store.AuditFilter{OrgID: org, Action: "deadletter.replay"})
			if err != nil || len(entries) != 1 || entries[0].Actor != "test-operator" {
				t.Errorf("audit log of the replay: %+v %v", entries, err)
			}
			if n, _ := a.Store.CountFrames(ctx, lateID); n != 1 {
				t.Errorf("%d frames stored after two replays, want 1", n)
			}
		})
	}
}

func hasFlag(flags []store.Flag, typ string) bool {
	for _, f := range flags {
		if f.Type == typ {
			return true
		}
	}
	return false
}

func getMetrics(t *testing.T, base string) string {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
