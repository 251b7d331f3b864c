package rules

import (
	"context"
	"testing"
	"time"

	"gorm.io/gorm"

	"proctor/internal/testdb"
	"proctor/store"
)

// frame is one main-camera frame posted at second sec with n faces.
type frame struct {
	seq   int64
	sec   float64
	faces int
}

func TestFaceRules(t *testing.T) {
	cases := []struct {
		name   string
		frames []frame
		want   map[string][][2]int64 // type -> [start_ms, end_ms] of each flag
	}{
		{"short absence raises nothing",
			seqFrames(1, []int{1, 0, 0, 0, 1}), nil},
		{"absence of 5s raises one FACE_ABSENT",
			seqFrames(1, []int{1, 0, 0, 0, 0, 0, 0, 1}),
			map[string][][2]int64{FaceAbsent: {{1000, 6000}}}},
		{"two faces for 2s raise one MULTIPLE_FACES",
			seqFrames(1, []int{1, 2, 2, 2, 1}),
			map[string][][2]int64{MultipleFaces: {{1000, 3000}}}},
		{"one frame of two faces raises nothing",
			seqFrames(1, []int{1, 2, 1, 2, 1}), nil},
		{"out of order frames join the same run",
			[]frame{{1, 0, 1}, {5, 4, 0}, {3, 2, 0}, {7, 6, 0}, {2, 1, 0}, {4, 3, 0}, {6, 5, 0}, {8, 7, 1}},
			map[string][][2]int64{FaceAbsent: {{1000, 6000}}}},
		{"a network gap splits runs",
			[]frame{{1, 0, 0}, {2, 1, 0}, {3, 2, 0}, {4, 30, 0}, {5, 31, 0}, {6, 32, 0}}, nil},
		{"two separate absences raise two flags",
			seqFrames(1, []int{0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0}),
			map[string][][2]int64{FaceAbsent: {{0, 5000}, {8000, 13000}}}},
	}
	for _, b := range testdb.Open(t) {
		for _, tc := range cases {
			t.Run(b.Name+"/"+tc.name, func(t *testing.T) {
				ctx := context.Background()
				eng := New(Config{})
				sess := &store.Session{OrgID: "org", ExamID: "e", CandidateID: "c", ScheduledStart: time.Now()}
				if err := b.Store.CreateSession(ctx, sess); err != nil {
					t.Fatal(err)
				}
				post := func(f frame) {
					err := b.Store.DB.Transaction(func(tx *gorm.DB) error {
						face := Signal{"n": float32(f.faces), "top": 0.1}
						if f.faces >= 2 {
							face["second"] = 0.9
						}
						fr := &store.FrameResult{SessionID: sess.ID, Camera: "main", Seq: f.seq,
							CapturedAtMs: int64(f.sec * 1000), Signals: signals(t, map[string]Signal{"faces": face})}
						isNew, err := store.InsertFrameResult(tx, fr)
						if err != nil || !isNew {
							return err
						}
						_, err = eng.ApplyFrame(tx, FrameInput{Result: fr, JPEG: []byte{0xff, 0xd8}, ModelVersion: "test"})
						return err
					})
					if err != nil {
						t.Fatal(err)
					}
				}
				for _, f := range tc.frames {
					post(f)
				}
				// Redelivering every frame must change nothing.
				for _, f := range tc.frames {
					post(f)
				}
				flags, err := b.Store.SessionFlags(ctx, sess.ID)
				if err != nil {
					t.Fatal(err)
				}
				got := map[string][][2]int64{}
				for _, f := range flags {
					got[f.Type] = append(got[f.Type], [2]int64{f.StartMs, f.EndMs})
					if ev, err := b.Store.GetEvidence(ctx, f.ID); err != nil || len(ev.JPEG) == 0 {
						t.Errorf("flag %d has no evidence: %v", f.ID, err)
					}
					if f.Confidence <= 0 || f.Confidence > 1 {
						t.Errorf("flag %s confidence %v outside (0,1]", f.Type, f.Confidence)
					}
				}
				if len(got) != len(tc.want) {
					t.Fatalf("flags = %v, want %v", got, tc.want)
				}
				for typ, spans := range tc.want {
					if len(got[typ]) != len(spans) {
						t.Fatalf("%s flags = %v, want %v", typ, got[typ], spans)
					}
					for i := range spans {
						if got[typ][i] != spans[i] {
							t.Errorf("%s flag %d = %v, want %v", typ, i, got[typ][i], spans[i])
						}
					}
				}
				s2, err := b.Store.GetSession(ctx, "", sess.ID)
				if err != nil {
					t.Fatal(err)
				}
				if (len(tc.want) > 0) != (s2.RiskScore > 0) || s2.TotalFlags != len(flags) {
					t.Errorf("risk %.1f total %d with %d flags", s2.RiskScore, s2.TotalFlags, len(flags))
				}
			})
		}
	}
}

// seqFrames returns one frame per second with the given face counts.
func seqFrames(firstSeq int64, faces []int) []frame {
	out := make([]frame, len(faces))
	for i, n := range faces {
		out[i] = frame{firstSeq + int64(i), float64(i), n}
	}
	return out
}

func TestRiskScore(t *testing.T) {
	b := testdb.Open(t)[0]
	ctx := context.Background()
	sess := &store.Session{OrgID: "org", ScheduledStart: time.Now()}
	if err := b.Store.CreateSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	mk := func(typ, status string, conf float64, start int64) {
		f := store.Flag{SessionID: sess.ID, Type: typ, Camera: "main", StartMs: start, Status: status, Confidence: conf}
		if err := b.Store.DB.Create(&f).Error; err != nil {
			t.Fatal(err)
		}
	}
	risk := func() float64 {
		if err := RecomputeRisk(b.Store.DB, sess.ID, DefaultWeights()); err != nil {
			t.Fatal(err)
		}
		s, _ := b.Store.GetSession(ctx, "", sess.ID)
		return s.RiskScore
	}
	mk(MultipleFaces, store.StatusOpen, 1, 0)
	if r := risk(); r != 60 {
		t.Errorf("one open MULTIPLE_FACES at confidence 1: risk %v, want 60", r)
	}
	mk(FaceAbsent, store.StatusOpen, 0.5, 1)
	if r := risk(); r != 66 { // 1 - 0.4*0.85
		t.Errorf("plus FACE_ABSENT at 0.5: risk %v, want 66", r)
	}
	mk(FaceAbsent, store.StatusDismissed, 1, 2)
	if r := risk(); r != 66 {
		t.Errorf("a dismissed flag changed risk to %v", r)
	}
	mk(FaceAbsent, store.StatusConfirmed, 0.1, 3)
	if r := risk(); r != 100 {
		t.Errorf("a confirmed flag: risk %v, want 100", r)
	}
}
