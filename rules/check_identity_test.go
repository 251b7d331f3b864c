package rules

import (
	"context"
	"testing"
	"time"

	"proctor/analyzers"
	"proctor/internal/testdb"
	"proctor/store"
)

// A login face in the mismatch band abstains from the login check, as it abstains while
// answering; below the band it counts as someone else, at the threshold as a match.
func TestLoginFace(t *testing.T) {
	p := New(Config{}).Params() // threshold below: 0.5, band 0.15 (the default)
	for _, c := range []struct {
		photo           float32
		counts, matched bool
	}{
		{0.80, true, true},
		{0.50, true, true},
		{0.49, false, false},
		{0.36, false, false},
		{0.34, true, false},
		{-0.1, true, false},
	} {
		counts, matched := LoginFace(c.photo, 0.5, p)
		if counts != c.counts || matched != c.matched {
			t.Errorf("similarity %.2f: counts %v matched %v, want %v %v", c.photo, counts, matched, c.counts, c.matched)
		}
	}
	narrow := New(Config{Settings: Params{SettingIdentityMismatchBand: 0.001}}).Params()
	if counts, _ := LoginFace(0.49, 0.5, narrow); !counts {
		t.Error("with practically no band a face just below the threshold should count as someone else")
	}
}

// Before the answering phase a stranger's frames raise no IDENTITY_MISMATCH (the login check
// judges them); from the start on the same frames do.
func TestIdentityMismatchFromTheAnsweringStart(t *testing.T) {
	for _, b := range testdb.Open(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			eng := New(Config{})
			sess := &store.Session{OrgID: "org", ExamID: "e", CandidateID: "c", ScheduledStart: time.UnixMilli(10_000)}
			if err := b.Store.CreateSession(ctx, sess); err != nil {
				t.Fatal(err)
			}
			for _, sec := range []int64{0, 1, 2, 3, 4, 5, 6, 10, 11, 12, 13, 14} {
				face := analyzers.Face{Score: 0.99, Box: [4]float32{100, 100, 200, 200}, Match: &analyzers.Match{Similarity: 0.1, Threshold: 0.5}}
				obs := &analyzers.Observation{Faces: []analyzers.Face{face}, TopFaceScore: 0.99}
				storeAndApply(t, b.Store.DB, eng, &store.FrameResult{SessionID: sess.ID, Camera: "main", Seq: sec, CapturedAtMs: sec * 1000,
					Signals: observe(t, obs, "main")}, sess)
			}
			flags, err := b.Store.SessionFlags(ctx, sess.ID)
			if err != nil {
				t.Fatal(err)
			}
			if len(flags) != 1 || flags[0].Type != IdentityMismatch || flags[0].StartMs != 10_000 || flags[0].EndMs != 14_000 {
				t.Fatalf("flags %+v, want one IDENTITY_MISMATCH 10–14 s", flags)
			}
		})
	}
}
