package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"proctor/store"
)

// TestCLIDelete: proctor delete needs exactly one target and a reason, erases the candidate's
// session and its recording files, and refuses a candidate it does not know; proctor retention
// sweep and keys encryption-key (create, then rotate) work on the same data dir.
func TestCLIDelete(t *testing.T) {
	ctx := context.Background()
	dataDir := t.TempDir()
	st, err := store.Open(ctx, store.Config{DataDir: dataDir})
	if err != nil {
		t.Fatal(err)
	}
	sess := &store.Session{ID: "cli-del", OrgID: "org-cli", ExamID: "e", CandidateID: "bob", CreatedAt: time.Now(),
		RegistrationPhoto: []byte("\xFF\xD8 face")}
	if err := st.CreateSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	rec, _, err := st.CreateRecording(ctx, &store.Recording{SessionID: sess.ID, Camera: "evidence", SHA256: "ab", Status: store.RecordingDone})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	recDir := filepath.Join(dataDir, "recordings")
	os.MkdirAll(recDir, 0o755)
	os.WriteFile(store.RecordingPath(recDir, rec.ID), []byte("video"), 0o644)

	db := "--data-dir=" + dataDir
	var ue usageError
	for _, args := range [][]string{
		{db, "--org=org-cli", "--candidate=bob"},                              // no reason
		{db, "--org=org-cli", "--reason=x"},                                   // no target
		{db, "--org=org-cli", "--candidate=bob", "--session=x", "--reason=x"}, // two targets
		{db, "--org=org-cli", "--candidate=nobody", "--reason=x"},             // unknown
	} {
		if err := runDelete(ctx, args); !errors.As(err, &ue) {
			t.Errorf("delete %v: %v, want a usage error", args, err)
		}
	}
	if err := runDelete(ctx, []string{db, "--org=org-cli", "--candidate=bob", "--reason=asked by the candidate"}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(store.RecordingPath(recDir, rec.ID)); !os.IsNotExist(err) {
		t.Errorf("recording file still there: %v", err)
	}
	st, err = store.Open(ctx, store.Config{DataDir: dataDir})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.GetSession(ctx, "org-cli", "cli-del"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("session after delete: %v", err)
	}
	if got, _ := st.QueryAudit(ctx, store.AuditFilter{OrgID: "org-cli", Action: "privacy.delete_candidate"}); len(got) != 1 || got[0].Actor != "cli" {
		t.Errorf("audit: %+v", got)
	}
	if err := runRetentionSweep(ctx, []string{db}); err != nil {
		t.Errorf("retention sweep: %v", err)
	}

	kf := filepath.Join(t.TempDir(), "keys")
	for _, id := range []string{"k1", "k2"} {
		if err := runEncryptionKey(ctx, []string{"--out=" + kf, "--id=" + id}); err != nil {
			t.Fatal(err)
		}
	}
	kr, err := store.LoadKeyFile(kf)
	if err != nil || kr.Current() != "k2" {
		t.Fatalf("rotated key file: current %v, %v", kr, err)
	}
}
