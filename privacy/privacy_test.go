package privacy_test

import (
	"archive/zip"
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"proctor/export"
	"proctor/internal/testdb"
	"proctor/privacy"
	"proctor/store"
)

// seeded is one candidate's session with data in every kind of table and file.
type seeded struct {
	org, sess, cand, rec string
	flagID               uint
}

func testJPEG(t *testing.T, shade uint8) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 64, 48))
	for y := 0; y < 48; y++ {
		for x := 0; x < 64; x++ {
			img.Set(x, y, color.RGBA{shade, uint8(x * 4), uint8(y * 5), 255})
		}
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, nil); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// seed creates a session created at `created` with frames, evidence, flags, verdicts, labels,
// audio, a recording (upload + derived file + per-session folder), a gallery face, a shadow
// observation, a dead letter and events.
func seed(t *testing.T, st *store.Store, dir, org, sessID, cand, exam string, created time.Time) seeded {
	t.Helper()
	ctx := context.Background()
	db := st.DB
	must(t, st.EnsureOrganisation(ctx, org, org))
	start := created.Add(time.Hour)
	sess := &store.Session{ID: sessID, OrgID: org, ExamID: exam, CandidateID: cand, ScheduledStart: start,
		DurationSec: 1800, Questions: 2, RegistrationPhoto: testJPEG(t, 10), CreatedAt: created}
	must(t, st.CreateSession(ctx, sess))
	must(t, st.SetFaceEmbedding(ctx, sessID, "facenet@1", []byte{1, 2, 3, 4, 5, 6, 7, 8}))
	ms := start.UnixMilli()
	must(t, db.Create(&store.FrameResult{SessionID: sessID, Camera: "main", Seq: 1, CapturedAtMs: ms,
		Observation: `{"faces":1}`, Signals: `{}`}).Error)
	f := &store.Flag{SessionID: sessID, Type: "MASK", Camera: "main", StartMs: ms, EndMs: ms + 5000,
		Severity: store.SeverityAlert, Confidence: 0.9, Status: store.StatusConfirmed, EvidenceSeq: 1, Details: "{}"}
	must(t, db.Create(f).Error)
	must(t, db.Create(&store.Evidence{FlagID: f.ID, Camera: "main", Seq: 1, CapturedAtMs: ms, JPEG: testJPEG(t, 200)}).Error)
	must(t, db.Create(&store.Verdict{FlagID: f.ID, Verdict: store.StatusConfirmed, Reviewer: "rev@" + org, Previous: store.StatusOpen}).Error)
	yes := true
	must(t, st.AddLabel(ctx, &store.Label{OrgID: org, SessionID: sessID, Kind: store.LabelAttribute, FlagID: &f.ID, Mask: &yes, Reviewer: "rev@" + org}, ""))
	at := ms + 10_000
	must(t, st.AddLabel(ctx, &store.Label{OrgID: org, SessionID: sessID, Kind: store.LabelAnswerEnd, AtMs: &at, Reviewer: "rev@" + org}, ""))
	for i := int64(0); i < 4; i++ {
		c := ms + 6000 + i*2000
		must(t, db.Create(&store.AudioChunk{SessionID: sessID, Seq: i, CapturedAtMs: c, DurationMs: 2000, SampleRate: 16000}).Error)
		must(t, store.InsertAudioSample(db, &store.AudioSample{SessionID: sessID, Seq: i, CapturedAtMs: c, SampleRate: 16000,
			PCM: make([]byte, 64000)}))
	}
	must(t, db.Create(&store.AudioStretch{SessionID: sessID, StartSeq: 0, NextSeq: 4, StartMs: ms + 6000, EndMs: ms + 14000,
		SampleRate: 16000, Chunks: 4, State: []byte("vad-state")}).Error)
	must(t, db.Create(&store.SpeechSegment{SessionID: sessID, StartMs: 100, EndMs: 900}).Error)
	must(t, db.Create(&store.PhraseDetection{SessionID: sessID, OnsetMs: 800, StartMs: 700, EndMs: 900, Score: 0.9}).Error)
	must(t, db.Create(&store.AnswerSegment{SessionID: sessID, Question: 1, EndMs: 900, Status: store.AnswerClosed}).Error)
	must(t, db.Create(&store.Event{SessionID: sessID, Seq: 1, Type: "answering_started", CapturedAtMs: ms, Payload: "{}"}).Error)
	rec := &store.Recording{SessionID: sessID, Camera: "evidence", SHA256: fmt.Sprintf("%064d", len(sessID)),
		Size: 3, Status: store.RecordingDone}
	rec, _, err := st.CreateRecording(ctx, rec)
	must(t, err)
	must(t, os.WriteFile(store.RecordingPath(dir, rec.ID), []byte("vid"), 0o644))
	must(t, os.WriteFile(filepath.Join(dir, rec.ID+".mp4"), []byte("mp4"), 0o644)) // derived file
	must(t, os.MkdirAll(filepath.Join(dir, sessID), 0o755))
	must(t, os.WriteFile(filepath.Join(dir, sessID, "clip.mp4"), []byte("clip"), 0o644))
	must(t, store.AddGalleryFace(db, &store.GalleryFace{SessionID: sessID, Seq: 1, CapturedAtMs: ms, Model: "facenet@1",
		Vector: []byte{9, 9, 9, 9}, Source: store.GalleryFromPhoto, JPEG: testJPEG(t, 90)}))
	must(t, db.Create(&store.FrameImage{SessionID: sessID, Camera: "main", Seq: 1, CapturedAtMs: ms, JPEG: testJPEG(t, 50)}).Error)
	must(t, store.InsertVoiceWindows(db, []store.VoiceWindow{{SessionID: sessID, StartMs: ms + 6000, EndMs: ms + 7000, Embedding: []byte{1, 2, 3, 4}}}))
	must(t, db.Create(&store.ShadowObservation{Model: "attire-cnn@2", SessionID: sessID, Camera: "main", Seq: 1, Active: "attire-cnn@1", Outputs: "[]"}).Error)
	must(t, st.RecordDeadLetter(ctx, &store.DeadLetter{Topic: "t", Partition: 0, Offset: ms + int64(len(sessID)), Key: []byte(sessID),
		Class: "invalid", Reason: "test", Payload: []byte("x"), DeadAt: created}))
	return seeded{org: org, sess: sessID, cand: cand, rec: rec.ID, flagID: f.ID}
}

// remaining lists every (table, column) whose value contains one of needles, in every table of
// the database (found through the migrator, not a list: a new table cannot be forgotten),
// except the audit log, which must keep the deletion.
func remaining(t *testing.T, st *store.Store, needles ...string) []string {
	t.Helper()
	tables, err := st.DB.Migrator().GetTables()
	must(t, err)
	if len(tables) < 20 {
		t.Fatalf("only %d tables found: %v", len(tables), tables)
	}
	var out []string
	for _, tb := range tables {
		if tb == "audit_entries" {
			continue
		}
		rows, err := st.DB.Raw(`SELECT * FROM "` + tb + `"`).Rows()
		must(t, err)
		cols, _ := rows.Columns()
		vals := make([]sql.RawBytes, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		for rows.Next() {
			must(t, rows.Scan(ptrs...))
			for i, v := range vals {
				for _, n := range needles {
					if bytes.Contains(v, []byte(n)) {
						out = append(out, tb+"."+cols[i]+" holds "+n)
					}
				}
			}
		}
		rows.Close()
	}
	return out
}

func filesUnder(t *testing.T, dir string) []string {
	var out []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, rel)
		}
		return nil
	})
	return out
}

func manifest(t *testing.T, archive []byte) (string, string) {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(archive), int64(len(archive)))
	must(t, err)
	var man, rec string
	for _, f := range zr.File {
		rc, _ := f.Open()
		b, _ := io.ReadAll(rc)
		rc.Close()
		switch {
		case strings.HasSuffix(f.Name, "/manifest.jsonl"):
			man = string(b)
		case strings.HasSuffix(f.Name, "/export.json"):
			rec = string(b)
		}
	}
	return man, rec
}

// TestDeleteCandidate creates a candidate's session with data in every table and file kind and
// an export holding it, deletes the candidate, and proves nothing of it remains while another
// candidate's data is untouched, the export was rebuilt without it, and the audit log has it.
func TestDeleteCandidate(t *testing.T) {
	for _, b := range testdb.Open(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			st := b.Store
			dir := t.TempDir()
			u := store.NewID()[:8]
			org := "org-priv-" + u
			now := time.Now().UTC()
			victim := seed(t, st, dir, org, "sess-victim-"+u, "cand-victim-"+u, "exam-1", now.Add(-2*time.Hour))
			keeper := seed(t, st, dir, org, "sess-keeper-"+u, "cand-keeper-"+u, "exam-1", now.Add(-2*time.Hour))

			bld := &export.Builder{Store: st}
			defer bld.Close()
			res, err := bld.Build(ctx, export.Request{OrgID: org, Actor: "data@" + org, Purpose: "retrain"})
			must(t, err)
			must(t, st.SaveExport(ctx, res.StoreRecord(org), ""))
			pseudo, err := st.Pseudonymizer(ctx, org)
			must(t, err)
			vs, ks := pseudo.Of("s_", victim.sess), pseudo.Of("s_", keeper.sess)
			man, _ := manifest(t, res.Zip)
			if !strings.Contains(man, vs) || !strings.Contains(man, ks) {
				t.Fatalf("export before deletion should hold both candidates:\n%s", man)
			}

			d := &privacy.Deleter{Store: st, RecordingsDir: dir}
			if _, err := d.Delete(ctx, privacy.Request{OrgID: org, CandidateID: victim.cand, Actor: "admin@" + org}); err == nil {
				t.Fatal("a deletion without a reason was accepted")
			}
			rep, err := d.Delete(ctx, privacy.Request{OrgID: org, CandidateID: victim.cand, Actor: "admin@" + org,
				Reason: "candidate asked, ticket 42"})
			must(t, err)
			if len(rep.ExportsRebuilt) != 1 || rep.ExportsRebuilt[0].ID != res.Record.ID || rep.ExportsRebuilt[0].ItemsRemoved == 0 {
				t.Fatalf("exports rebuilt %+v, want %s with items removed", rep.ExportsRebuilt, res.Record.ID)
			}
			if rep.Files != 3 {
				t.Errorf("files removed %d, want 3 (upload, derived mp4, session folder)", rep.Files)
			}

			// No row anywhere holds the session, the candidate or their export pseudonyms.
			if left := remaining(t, st, victim.sess, victim.cand, vs, pseudo.Of("c_", victim.cand)); len(left) > 0 {
				t.Fatalf("after deletion:\n%s", strings.Join(left, "\n"))
			}
			// No file of it; the other candidate's files are all there.
			files := filesUnder(t, dir)
			for _, f := range files {
				if strings.Contains(f, victim.rec) || strings.Contains(f, victim.sess) {
					t.Errorf("file %s of the deleted session remains", f)
				}
			}
			if len(files) != 3 {
				t.Errorf("files left %v, want the keeper's 3", files)
			}
			// The other candidate is untouched: its rows are there, its photo still opens.
			if left := remaining(t, st, keeper.sess); len(left) < 15 {
				t.Errorf("keeper's data shrank: %d places hold its id", len(left))
			}
			if p, err := st.GetRegistrationPhoto(ctx, org, keeper.sess); err != nil || len(p) == 0 {
				t.Errorf("keeper's photo: %d bytes, %v", len(p), err)
			}
			// The export was rebuilt without the victim and still holds the keeper.
			e, err := st.GetExport(ctx, org, res.Record.ID, true)
			must(t, err)
			man, rec := manifest(t, e.Archive)
			if strings.Contains(man, vs) || !strings.Contains(man, ks) {
				t.Fatalf("rebuilt manifest still holds the victim or lost the keeper:\n%s", man)
			}
			if !strings.Contains(rec, "removed after a deletion on request") || e.ManifestSHA256 == res.Record.ManifestSHA256 {
				t.Errorf("rebuilt export.json lacks the note or the checksum did not change:\n%s", rec)
			}
			// The audit log holds the deletion: who, why, counts, ids only.
			entries, err := st.QueryAudit(ctx, store.AuditFilter{OrgID: org, Action: "privacy.delete_candidate"})
			must(t, err)
			if len(entries) != 1 || entries[0].Actor != "admin@"+org || entries[0].Target != "candidate:"+victim.cand ||
				!strings.Contains(entries[0].Detail, "candidate asked, ticket 42") || !strings.Contains(entries[0].Detail, `"frame_results":1`) ||
				!strings.Contains(entries[0].Detail, res.Record.ID) {
				t.Fatalf("audit entries %+v", entries)
			}
			// Workers will drop its messages.
			if gone, err := store.SessionDeleted(st.DB, victim.sess); err != nil || !gone {
				t.Errorf("session not marked deleted: %v %v", gone, err)
			}
			// Deleting again: not found.
			if _, err := d.Delete(ctx, privacy.Request{OrgID: org, CandidateID: victim.cand, Actor: "a", Reason: "again"}); err == nil {
				t.Error("deleting a deleted candidate succeeded")
			}
		})
	}
}
