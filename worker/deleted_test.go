package worker

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"proctor/analyzers"
	"proctor/internal/testdb"
	"proctor/pipeline"
	"proctor/privacy"
	"proctor/rules"
	"proctor/store"
)

// TestDeletedSessionMessagesDropped: frames and events still in Kafka for a session deleted on
// request are dropped without an error (no retry, no dead letter), counted in the metric
// /metrics serves, and write nothing; a frame of a live session in the same batch is stored.
func TestDeletedSessionMessagesDropped(t *testing.T) {
	for _, b := range testdb.Open(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			reg := prometheus.NewRegistry()
			fakes := newFakeCatalog()
			h, err := NewFrameHandlers(analyzers.Config{Analyzers: fakeNames, Catalog: fakes.catalog()}, 1, b.Store,
				rules.New(rules.Config{}), reg, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			defer h.Close()
			events := EventHandler(b.Store, reg)
			org := "org-del-" + store.NewID()[:8]
			gone := &store.Session{OrgID: org, ExamID: "e", CandidateID: "c1", ScheduledStart: time.Now()}
			live := &store.Session{OrgID: org, ExamID: "e", CandidateID: "c2", ScheduledStart: time.Now()}
			for _, s := range []*store.Session{gone, live} {
				if err := b.Store.CreateSession(ctx, s); err != nil {
					t.Fatal(err)
				}
			}
			d := &privacy.Deleter{Store: b.Store}
			if _, err := d.Delete(ctx, privacy.Request{OrgID: org, SessionID: gone.ID, Actor: "admin", Reason: "test"}); err != nil {
				t.Fatal(err)
			}
			at := time.Now().Add(-time.Minute).UnixMilli()
			frame := func(id string, seq int64) kafka.Message {
				return pipeline.EncodeFrame(pipeline.FrameMessage{SessionID: id, Camera: "main", Seq: seq,
					CapturedAtMs: at + seq*1000, ReceivedAtMs: at + seq*1000, JPEG: drawFrame(t, normal(), int(seq))})
			}
			if err := h.HandleBatch(ctx, []kafka.Message{frame(gone.ID, 1), frame(live.ID, 1), frame(gone.ID, 2)}); err != nil {
				t.Fatalf("batch with frames of a deleted session: %v", err)
			}
			if err := events(ctx, pipeline.EncodeEvent(pipeline.EventMessage{SessionID: gone.ID, Seq: 1, Type: "focus_lost",
				CapturedAtMs: at, ReceivedAtMs: at})); err != nil {
				t.Fatalf("event of a deleted session: %v", err)
			}
			// What /metrics serves: the registry's gathered families.
			dropped := map[string]float64{}
			mfs, err := reg.Gather()
			if err != nil {
				t.Fatal(err)
			}
			for _, mf := range mfs {
				if mf.GetName() != "proctor_deleted_session_messages_total" {
					continue
				}
				for _, m := range mf.GetMetric() {
					dropped[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
				}
			}
			if dropped["frames"] != 2 || dropped["events"] != 1 {
				t.Errorf("proctor_deleted_session_messages_total %v, want frames 2 and events 1", dropped)
			}
			var n int64
			b.Store.DB.Model(&store.FrameResult{}).Where("session_id = ?", gone.ID).Count(&n)
			var ev int64
			b.Store.DB.Model(&store.Event{}).Where("session_id = ?", gone.ID).Count(&ev)
			var ok int64
			b.Store.DB.Model(&store.FrameResult{}).Where("session_id = ?", live.ID).Count(&ok)
			if n != 0 || ev != 0 || ok != 1 {
				t.Errorf("rows: deleted session %d frames %d events, live session %d frames; want 0, 0, 1", n, ev, ok)
			}
		})
	}
}
