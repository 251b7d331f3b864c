package rules

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"gorm.io/gorm"

	"proctor/internal/testdb"
	"proctor/store"
)

// TestBatchJudgesLikeOneByOne: frames applied in batches (one transaction, one multi-row insert,
// the neighbours read once per batch) raise exactly the flags, spans and evidence frames that
// the same frames raise applied one at a time, including late and out-of-order frames and
// redeliveries.
func TestBatchJudgesLikeOneByOne(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var frames []frame
	for i := range 160 {
		n := 1
		switch r := (i / 7) % 5; r { // runs of absence and of two faces, some long enough
		case 1:
			n = 0
		case 3:
			n = 2
		}
		if rng.IntN(10) == 0 {
			n = rng.IntN(3)
		}
		sec := float64(i)
		if i > 100 && i < 110 {
			sec += 15 // a network gap
		}
		frames = append(frames, frame{seq: int64(i + 1), sec: sec, faces: n})
	}
	// Some frames arrive late, out of order.
	for k := 0; k < 12; k++ {
		i, j := rng.IntN(len(frames)), rng.IntN(len(frames))
		if abs64(int64(i-j)) < 6 {
			frames[i], frames[j] = frames[j], frames[i]
		}
	}
	for _, b := range testdb.Open(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			eng := New(Config{})
			result := func(id string, f frame) *store.FrameResult {
				face := Signal{"n": float32(f.faces), "top": 0.1}
				if f.faces >= 2 {
					face["second"] = 0.9
				}
				return &store.FrameResult{SessionID: id, Camera: "main", Seq: f.seq,
					CapturedAtMs: int64(f.sec * 1000), Signals: signals(t, map[string]Signal{"faces": face})}
			}
			newSession := func() string {
				sess := &store.Session{OrgID: "org", ExamID: "e", CandidateID: "c", ScheduledStart: time.Now()}
				if err := b.Store.CreateSession(ctx, sess); err != nil {
					t.Fatal(err)
				}
				return sess.ID
			}
			single, batched := newSession(), newSession()
			for _, f := range frames {
				err := b.Store.DB.Transaction(func(tx *gorm.DB) error {
					fr := result(single, f)
					if _, err := store.InsertFrameResult(tx, fr); err != nil {
						return err
					}
					_, err := eng.ApplyFrame(tx, FrameInput{Result: fr, JPEG: []byte{0xff, 0xd8}, ModelVersion: "test"})
					return err
				})
				if err != nil {
					t.Fatal(err)
				}
			}
			for i := 0; i < len(frames); {
				n := min(1+rng.IntN(20), len(frames)-i)
				err := b.Store.DB.Transaction(func(tx *gorm.DB) error {
					bt := NewBatch(tx)
					rows := make([]*store.FrameResult, n)
					for k := range n {
						rows[k] = result(batched, frames[i+k])
						bt.Pending(batched, "main", rows[k].Seq)
					}
					if err := store.InsertFrameResults(tx, rows); err != nil {
						return err
					}
					for _, fr := range rows {
						if _, err := eng.ApplyBatch(bt, FrameInput{Result: fr, JPEG: []byte{0xff, 0xd8}, ModelVersion: "test"}); err != nil {
							return err
						}
					}
					return bt.Finish()
				})
				if err != nil {
					t.Fatal(err)
				}
				i += n
			}
			describe := func(id string) (string, float64) {
				flags, err := b.Store.SessionFlags(ctx, id)
				if err != nil {
					t.Fatal(err)
				}
				out := ""
				for _, f := range flags {
					out += fmt.Sprintf("%s %d-%d ev%d %.3f\n", f.Type, f.StartMs, f.EndMs, f.EvidenceSeq, f.Confidence)
				}
				sess, err := b.Store.GetSession(ctx, "", id)
				if err != nil {
					t.Fatal(err)
				}
				return out, sess.RiskScore
			}
			want, wantRisk := describe(single)
			got, gotRisk := describe(batched)
			if got != want || gotRisk != wantRisk {
				t.Errorf("batched flags (risk %v):\n%s\none by one (risk %v):\n%s", gotRisk, got, wantRisk, want)
			}
			if want == "" {
				t.Error("the scenario raised no flag: it tests nothing")
			}
		})
	}
}
