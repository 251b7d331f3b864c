package store_test

import (
	"context"
	"testing"
	"time"

	"proctor/internal/testdb"
	"proctor/rules"
	"proctor/store"
)

// modelVersionStores are a fresh SQLite store and, with PostgreSQL configured, a fresh database:
// model versions are service-wide, so these tests must not share them with other packages' tests.
func modelVersionStores(t *testing.T) map[string]*store.Store {
	t.Helper()
	ctx := context.Background()
	out := map[string]*store.Store{}
	lite, err := store.Open(ctx, store.Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lite.Close() })
	out["sqlite"] = lite
	if testdb.PostgresDSN() != "" {
		pg, err := store.Open(ctx, store.Config{DSN: testdb.FreshPostgresDSN(t), Keys: store.InsecureTestKeys()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { pg.Close() })
		out["postgres"] = pg
	}
	return out
}

// TestModelRollout walks a model through register → shadow → promote → promote a newer one →
// rollback → rollback, checking what runs after each step and that the audit log has them all.
func TestModelRollout(t *testing.T) {
	for name, st := range modelVersionStores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			for _, v := range []string{"2", "3"} {
				if err := st.RegisterModel(ctx, &store.ModelVersion{Name: "attire-cnn", Version: v, SHA256: "00", Manifest: "{}",
					Data: []byte("onnx" + v), RegisteredBy: "cli"}, "org", ""); err != nil {
					t.Fatal(err)
				}
			}
			if err := st.RegisterModel(ctx, &store.ModelVersion{Name: "attire-cnn", Version: "2", Data: []byte("x")}, "org", ""); err == nil {
				t.Fatal("registering a version twice succeeded")
			}
			step := func(action store.ModelAction, version, wantActive, wantShadow string) {
				t.Helper()
				active, shadow, err := st.ChangeModel(ctx, action, "attire-cnn", version, "cli", "org", "", "test")
				if err != nil {
					t.Fatalf("%s %s: %v", action, version, err)
				}
				if active != wantActive || shadow != wantShadow {
					t.Fatalf("%s %s: active %s shadow %q, want %s %q", action, version, active, shadow, wantActive, wantShadow)
				}
				fp, _ := st.RunningFingerprint(ctx)
				running, _ := st.RunningModels(ctx)
				if n := map[bool]int{true: 1}[wantActive != "built-in"] + map[bool]int{true: 1}[wantShadow != ""]; len(running) != n || fp == "" && n > 0 {
					t.Fatalf("after %s: %d running versions (fingerprint %q), want %d", action, len(running), fp, n)
				}
				time.Sleep(5 * time.Millisecond) // activation times must differ for the rollback order
			}
			step(store.ActionShadow, "2", "built-in", "attire-cnn@2")
			step(store.ActionPromote, "2", "attire-cnn@2", "")
			step(store.ActionShadow, "3", "attire-cnn@2", "attire-cnn@3")
			step(store.ActionPromote, "3", "attire-cnn@3", "")
			step(store.ActionRollback, "", "attire-cnn@2", "")
			step(store.ActionRollback, "", "built-in", "")
			if _, _, err := st.ChangeModel(ctx, store.ActionRollback, "attire-cnn", "", "cli", "org", "", ""); err == nil {
				t.Error("rolling back the built-in version succeeded")
			}
			if _, _, err := st.ChangeModel(ctx, store.ActionPromote, "attire-cnn", "9", "cli", "org", "", ""); err == nil {
				t.Error("promoting an unregistered version succeeded")
			}
			entries, err := st.QueryAudit(ctx, store.AuditFilter{OrgID: "org", Limit: 100})
			if err != nil {
				t.Fatal(err)
			}
			count := map[string]int{}
			for _, e := range entries {
				count[e.Action]++
			}
			if count["model.register"] != 2 || count["model.shadow"] != 2 || count["model.promote"] != 2 || count["model.rollback"] != 2 {
				t.Errorf("audit actions %v", count)
			}
		})
	}
}

func TestLabelValidate(t *testing.T) {
	at, flag, yes, n := int64(5), uint(1), true, 2
	for _, tc := range []struct {
		l  store.Label
		ok bool
	}{
		{store.Label{Kind: store.LabelAnswerEnd, AtMs: &at}, true},
		{store.Label{Kind: store.LabelPhraseMissed}, false},
		{store.Label{Kind: store.LabelNotPhrase, AtMs: &at, FlagID: &flag}, false},
		{store.Label{Kind: store.LabelAttribute, FlagID: &flag, Mask: &yes}, true},
		{store.Label{Kind: store.LabelAttribute, FlagID: &flag, Persons: &n}, true},
		{store.Label{Kind: store.LabelAttribute, FlagID: &flag}, false},
		{store.Label{Kind: store.LabelAttribute, Mask: &yes}, false},
		{store.Label{Kind: "maybe", AtMs: &at}, false},
	} {
		if err := tc.l.Validate(); (err == nil) != tc.ok {
			t.Errorf("%+v: err %v, want ok=%v", tc.l, err, tc.ok)
		}
	}
}

// TestDatasetFlags: an export takes reviewed or labelled flags only, and its model filter is
// exact on the deciding model version.
func TestDatasetFlags(t *testing.T) {
	for _, b := range testdb.Open(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			st := b.Store
			org := "org-" + store.NewID()[:8]
			sess := &store.Session{ID: store.NewID(), OrgID: org, ExamID: "e", CandidateID: "c", CreatedAt: time.Now()}
			if err := st.DB.Create(sess).Error; err != nil {
				t.Fatal(err)
			}
			mk := func(start int64, model, status string) *store.Flag {
				f := &store.Flag{SessionID: sess.ID, Type: "MASK", Camera: "main", StartMs: start, EndMs: start + 1,
					ModelVersion: "attire=" + model + " mask=0.6,faces=ultraface-rfb-320@1", Status: status}
				if err := st.DB.Create(f).Error; err != nil {
					t.Fatal(err)
				}
				return f
			}
			mk(1, "attire-cnn@1", store.StatusConfirmed)
			mk(2, "attire-cnn@10", store.StatusDismissed)
			open := mk(3, "attire-cnn@1", store.StatusOpen)
			mk(4, "attire-cnn@1", store.StatusOpen) // nobody looked at it
			no := false
			if err := st.AddLabel(ctx, &store.Label{OrgID: org, SessionID: sess.ID, Kind: store.LabelAttribute, FlagID: &open.ID, Mask: &no, Reviewer: "r"}, ""); err != nil {
				t.Fatal(err)
			}
			count := func(q store.DatasetQuery) int {
				q.OrgID, q.ModelOf = org, rules.ModelOfFlag
				rows, err := st.DatasetFlags(ctx, q)
				if err != nil {
					t.Fatal(err)
				}
				return len(rows)
			}
			if n := count(store.DatasetQuery{}); n != 3 {
				t.Errorf("%d flags, want 3 (two with verdicts, one labelled)", n)
			}
			if n := count(store.DatasetQuery{Model: "attire-cnn@1"}); n != 2 {
				t.Errorf("model attire-cnn@1: %d flags, want 2 (not attire-cnn@10's)", n)
			}
			if n := count(store.DatasetQuery{Verdicts: []string{store.StatusDismissed}}); n != 1 {
				t.Errorf("dismissed: %d, want 1", n)
			}
		})
	}
}
