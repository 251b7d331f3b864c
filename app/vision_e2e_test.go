package app

import (
	"bytes"
	"context"
	"encoding/json"
	"image/jpeg"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"proctor/analyzers"
	"proctor/internal/platform"
	"proctor/internal/scenario"
	"proctor/models"
	"proctor/rules"
	"proctor/store"
)

// visionAnalyzers is the set the identity test runs: faces, then what the identity and
// head-pose rules read.
var visionAnalyzers = []string{"faces", "landmarks", "identity", "headpose"}

var (
	impostorOnce sync.Once
	impostors    [][]byte
	impostorErr  error
)

// impostorFrames cuts frames of other people from the demo group photos, once per test binary.
func impostorFrames(t *testing.T, f *scenario.Frames) [][]byte {
	t.Helper()
	impostorOnce.Do(func() {
		dir, err := scenario.DemoDir()
		if err != nil {
			impostorErr = err
			return
		}
		set, err := analyzers.NewSet(analyzers.Config{Analyzers: visionAnalyzers})
		if err != nil {
			impostorErr = err
			return
		}
		defer set.Close()
		impostors, impostorErr = scenario.Impostors(context.Background(), set, dir, f, 4)
	})
	if impostorErr != nil {
		t.Skipf("impostor frames unavailable (%v): run scripts/setup.sh", impostorErr)
	}
	return impostors
}

// frameRuleFlags keeps the flags of the per-frame rules (the exam-flow rules have their own tests).
func frameRuleFlags(flags []store.Flag) []store.Flag {
	var out []store.Flag
	for _, f := range flags {
		switch f.Type {
		case rules.FaceAbsent, rules.MultipleFaces, rules.IdentityMismatch, rules.LookingAway:
			out = append(out, f)
		}
	}
	return out
}

// TestEnrolledAtCreation: the registration photo is enrolled when the session is created, before
// any frame arrives (the API's enrol request on the frames topic): the candidate's embedding, the
// one the analyzers compute from the photo; and a photo without a face is recorded as such, so
// that the first frame does not try again.
func TestEnrolledAtCreation(t *testing.T) {
	f := sampleFrames(t)
	set, err := analyzers.NewSet(analyzers.Config{Analyzers: visionAnalyzers})
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	want, err := set.Enroll(context.Background(), f.Photo)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			a := startApp(t, b, func(c *Config) { c.Analyzers.Analyzers = visionAnalyzers })
			ingestKey, _ := keys(t, a, "org-enrol")
			plat := platform.New(a.URL, ingestKey)
			start := time.Now().Add(time.Hour)
			enrolled := func(photo []byte) *store.Session {
				t.Helper()
				sess, err := plat.CreateSession(ctx, platform.NewSession{ExamID: "exam-e", CandidateID: "cand-e",
					ScheduledStart: start, DurationSec: 1800, Questions: 3, Photo: photo})
				if err != nil {
					t.Fatal(err)
				}
				var row *store.Session
				waitFor(t, func() bool {
					row, err = a.Store.GetSession(ctx, "", sess.ID) // opens the sealed embedding
					return err == nil && row.FaceEmbeddingModel != ""
				}, "the registration photo enrolled without a frame")
				if row.Frames != 0 {
					t.Errorf("%d frames analysed: none was posted", row.Frames)
				}
				return row
			}
			row := enrolled(f.Photo)
			got := analyzers.DecodeVector(row.FaceEmbedding)
			if row.FaceEmbeddingModel != want.Model || len(got) != len(want.Vector) || models.Cosine(got, want.Vector) < 0.999 {
				t.Errorf("stored embedding %s (%d values) is not the photo's %s (%d values)", row.FaceEmbeddingModel, len(got), want.Model, len(want.Vector))
			}
			if row := enrolled(f.Nobody[0]); len(row.FaceEmbedding) != 0 || row.FaceEmbeddingModel != want.Model {
				t.Errorf("face-free photo: model %q, %d bytes of embedding; want %q and none", row.FaceEmbeddingModel, len(row.FaceEmbedding), want.Model)
			}
		})
	}
}

// TestIdentitySwitchEndToEnd: the candidate sits the exam, one odd frame shows someone else
// (must raise nothing), then another person takes over for 10 s (must raise exactly one
// IDENTITY_MISMATCH with the similarity in its details), then the candidate returns.
func TestIdentitySwitchEndToEnd(t *testing.T) {
	f := sampleFrames(t)
	others := impostorFrames(t, f)
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			a := startApp(t, b, func(c *Config) { c.Analyzers.Analyzers = visionAnalyzers })
			ingestKey, reviewKey := keys(t, a, "org-vision")
			plat, rev := platform.New(a.URL, ingestKey), platform.New(a.URL, reviewKey)
			start := time.Now().Add(-10 * time.Minute).Truncate(time.Second)
			sess, err := plat.CreateSession(ctx, platform.NewSession{ExamID: "exam-v", CandidateID: "cand-v",
				ScheduledStart: start, DurationSec: 1800, Questions: 3, Photo: f.Photo})
			if err != nil {
				t.Fatal(err)
			}
			var timeline [][]byte
			for i := range 6 { // 0–5 s: the candidate, with one stray frame of someone else at 2 s
				if i == 2 {
					timeline = append(timeline, others[0])
				} else {
					timeline = append(timeline, f.Candidate[i%len(f.Candidate)])
				}
			}
			for i := range 10 { // 6–15 s: another person
				timeline = append(timeline, others[i%len(others)])
			}
			for i := range 4 { // 16–19 s: the candidate again
				timeline = append(timeline, f.Candidate[i%len(f.Candidate)])
			}
			for i, jpg := range timeline {
				code, err := plat.PostFrame(ctx, sess.ID, analyzers.CameraMain, int64(i), start.Add(time.Duration(i)*time.Second), jpg)
				if err != nil || code != http.StatusAccepted {
					t.Fatalf("frame %d: %d %v", i, code, err)
				}
			}
			detail, err := rev.WaitFramesProgress(ctx, sess.ID, int64(len(timeline)), stallLimit)
			if err != nil {
				t.Fatal(err)
			}
			flags := frameRuleFlags(detail.Flags)
			if len(flags) != 1 || flags[0].Type != rules.IdentityMismatch {
				var types []string
				for _, fl := range flags {
					types = append(types, fl.Type)
				}
				t.Fatalf("flags %v, want exactly one %s", types, rules.IdentityMismatch)
			}
			fl := flags[0]
			if s := (fl.StartMs - start.UnixMilli()) / 1000; s != 6 {
				t.Errorf("%s starts at %d s, want 6 s (the takeover)", fl.Type, s)
			}
			if e := (fl.EndMs - start.UnixMilli()) / 1000; e != 15 {
				t.Errorf("%s ends at %d s, want 15 s", fl.Type, e)
			}
			if fl.Severity != store.SeverityAlert || fl.Status != store.StatusOpen || fl.Confidence <= 0.5 {
				t.Errorf("flag severity %q status %q confidence %.2f", fl.Severity, fl.Status, fl.Confidence)
			}
			if !strings.Contains(fl.ModelVersion, "identity=") {
				t.Errorf("model version %q does not name the identity model", fl.ModelVersion)
			}
			var details map[string]float64
			if err := json.Unmarshal([]byte(fl.Details), &details); err != nil {
				t.Fatalf("details %q: %v", fl.Details, err)
			}
			if sim, thr := details["similarity"], details["similarity_threshold"]; thr == 0 || sim >= thr || details["similarity_max"] >= thr {
				t.Errorf("details %s: want similarity (mean, max) below similarity_threshold", fl.Details)
			}
			ev, err := rev.Evidence(ctx, fl.ID)
			if err != nil {
				t.Fatalf("evidence: %v", err)
			}
			if _, err := jpeg.DecodeConfig(bytes.NewReader(ev)); err != nil {
				t.Errorf("evidence is not a JPEG: %v", err)
			}
			var sessRow store.Session
			if err := a.Store.DB.Select("face_embedding_model, face_embedding").Take(&sessRow, "id = ?", sess.ID).Error; err != nil {
				t.Fatal(err)
			}
			if sessRow.FaceEmbeddingModel == "" || len(sessRow.FaceEmbedding) == 0 {
				t.Errorf("registration embedding not stored on the session (model %q, %d bytes)",
					sessRow.FaceEmbeddingModel, len(sessRow.FaceEmbedding))
			}
		})
	}
}
