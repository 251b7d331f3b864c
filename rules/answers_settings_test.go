package rules

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"gorm.io/gorm"

	"proctor/internal/testdb"
	"proctor/store"
)

// TestAnswerFlagsFollowExamSettings: an exam whose settings switch ANSWER_NOT_CLOSED off gets no
// such flag from the answer engine, while another exam's identical session does.
func TestAnswerFlagsFollowExamSettings(t *testing.T) {
	for _, b := range testdb.Open(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			org := "org-" + store.NewID()[:8]
			off, _ := json.Marshal(ExamSettings{Disabled: []string{AnswerNotClosed}})
			if err := b.Store.DB.Create(&store.ExamSetting{OrgID: org, ExamID: "quiet", Settings: string(off)}).Error; err != nil {
				t.Fatal(err)
			}
			eng := NewAnswerEngine(AnswerConfig{}, nil, "test")
			eng.UseExamSettings(New(Config{}).WithSettings(StoreSettings, time.Minute))
			count := func(exam string) int {
				start := time.Now().Add(-time.Hour).UnixMilli()
				sess := &store.Session{OrgID: org, ExamID: exam, CandidateID: "c", Questions: 2, ScheduledStart: time.UnixMilli(start)}
				if err := b.Store.CreateSession(ctx, sess); err != nil {
					t.Fatal(err)
				}
				// Two questions, audio for the whole first answer, no closing phrase.
				for i, ev := range []store.Event{{Type: "question_shown", CapturedAtMs: start, Payload: `{"question":1}`},
					{Type: "question_shown", CapturedAtMs: start + 30_000, Payload: `{"question":2}`}} {
					ev.SessionID, ev.Seq = sess.ID, int64(i)
					if _, err := store.InsertEvent(b.Store.DB, &ev); err != nil {
						t.Fatal(err)
					}
				}
				if err := b.Store.DB.Create(&store.AudioStretch{SessionID: sess.ID, StartMs: start, EndMs: start + 40_000,
					SampleRate: 16000, Chunks: 40}).Error; err != nil {
					t.Fatal(err)
				}
				if err := b.Store.DB.Create(&store.SpeechSegment{SessionID: sess.ID, StartMs: start + 1000, EndMs: start + 25_000}).Error; err != nil {
					t.Fatal(err)
				}
				if err := b.Store.DB.Transaction(func(tx *gorm.DB) error {
					return eng.Recompute(tx, b.Store.Postgres, sess.ID)
				}); err != nil {
					t.Fatal(err)
				}
				var n int64
				b.Store.DB.Model(&store.Flag{}).Where("session_id = ? AND type = ?", sess.ID, AnswerNotClosed).Count(&n)
				return int(n)
			}
			if n := count("normal"); n != 1 {
				t.Errorf("exam with default settings: %d ANSWER_NOT_CLOSED, want 1", n)
			}
			if n := count("quiet"); n != 0 {
				t.Errorf("exam with ANSWER_NOT_CLOSED switched off: %d flags, want 0", n)
			}
		})
	}
}
