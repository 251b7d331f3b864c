package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"proctor/models"
	"proctor/store"
)

// TestCLIDataLoop drives the command-line side of the loop on a SQLite data dir: export a
// reviewer's label, register a version directory, shadow, promote and roll it back; each step
// leaves its audit entry and the registry state the next one expects.
func TestCLIDataLoop(t *testing.T) {
	ctx := context.Background()
	dataDir := t.TempDir()
	st, err := store.Open(ctx, store.Config{DataDir: dataDir})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.EnsureOrganisation(ctx, "org-cli", "org-cli"); err != nil {
		t.Fatal(err)
	}
	sess := &store.Session{ID: "cli-session", OrgID: "org-cli", ExamID: "exam-cli", CandidateID: "alice", CreatedAt: time.Now()}
	st.DB.Create(sess)
	flag := &store.Flag{SessionID: sess.ID, Type: "MASK", Camera: "main", StartMs: 1, EndMs: 2, Status: store.StatusConfirmed,
		ModelVersion: "attire=attire-cnn@1 mask=0.61", EvidenceSeq: 7}
	st.DB.Create(flag)
	st.DB.Create(&store.Evidence{FlagID: flag.ID, Camera: "main", Seq: 7, CapturedAtMs: 1, JPEG: []byte("not a real jpeg")})
	st.Close()

	db := "--data-dir=" + dataDir
	out := t.TempDir()
	if err := runExport(ctx, []string{db, "--org=org-cli", "--out=" + out, "--kinds=vision"}); err == nil {
		t.Error("export without a purpose succeeded")
	}
	if err := runExport(ctx, []string{db, "--org=org-cli", "--purpose=cli test", "--out=" + out, "--kinds=vision", "--model=attire-cnn@1"}); err != nil {
		t.Fatal(err)
	}
	dirs, _ := filepath.Glob(filepath.Join(out, "exp_*", "manifest.jsonl"))
	if len(dirs) != 1 {
		t.Fatalf("export folders %v, want one", dirs)
	}
	manifest, _ := os.ReadFile(dirs[0])
	var item struct {
		Candidate string `json:"candidate"`
		Frame     string `json:"frame"`
		Labels    struct {
			Mask *bool `json:"mask"`
		} `json:"labels"`
		LabelSource string `json:"label_source"`
	}
	if err := json.Unmarshal([]byte(strings.TrimSpace(string(manifest))), &item); err != nil {
		t.Fatalf("manifest %q: %v", manifest, err)
	}
	if item.Candidate == "alice" || item.Labels.Mask == nil || !*item.Labels.Mask || item.LabelSource != "verdict" || item.Frame == "" {
		t.Errorf("exported item %+v", item)
	}

	// A version directory: the built-in phrase head under the next version (same weights, new threshold).
	builtin, err := models.Lookup("phrase-gaiti")
	if err != nil {
		t.Fatal(err)
	}
	weights, err := models.ModelBytes(builtin)
	if err != nil {
		t.Skipf("phrase head not available: %v", err)
	}
	n, err := strconv.Atoi(builtin.Version)
	if err != nil {
		t.Fatalf("built-in phrase-gaiti version %q is not a number", builtin.Version)
	}
	v2 := *builtin
	v2.Version, v2.File, v2.Source.Registry = strconv.Itoa(n+1), "phrase-gaiti.onnx", models.RegistryRegistered
	v2.Thresholds.Score = 0.9
	vdir := t.TempDir()
	mj, _ := json.Marshal(v2)
	os.WriteFile(filepath.Join(vdir, "manifest.json"), mj, 0o644)
	os.WriteFile(filepath.Join(vdir, "phrase-gaiti.onnx"), weights, 0o644)
	runModels := func(ctx context.Context, args []string) error {
		return dispatch(ctx, commands(), "", append([]string{"models"}, args...))
	}
	if err := runModels(ctx, []string{"register", vdir, db}); err != nil {
		if strings.Contains(err.Error(), "runtime") {
			t.Skipf("onnxruntime unavailable: %v", err)
		}
		t.Fatal(err)
	}
	if err := runModels(ctx, []string{"register", vdir, db}); err == nil {
		t.Error("registering the same version twice succeeded")
	}
	for _, step := range [][]string{{"shadow", "phrase-gaiti", v2.Version}, {"promote", "phrase-gaiti", v2.Version, "--reason=better recall"}, {"rollback", "phrase-gaiti"}} {
		if err := runModels(ctx, append(step, db)); err != nil {
			t.Fatalf("models %v: %v", step, err)
		}
	}
	if err := runModels(ctx, []string{"rollback", "phrase-gaiti", db}); err == nil {
		t.Error("rolling back past the built-in version succeeded")
	}
	// A head trained on other embeddings than the active one's cannot run beside it in shadow:
	// refused when asked, not left for the workers to refuse.
	if builtin.Audio != nil && builtin.HeadEmbedding() != models.DefaultHeadEmbedding {
		v3 := v2
		audio := *builtin.Audio
		audio.Embedding = models.DefaultHeadEmbedding
		v3.Audio, v3.Version = &audio, strconv.Itoa(n+2)
		vdir3 := t.TempDir()
		mj3, _ := json.Marshal(v3)
		os.WriteFile(filepath.Join(vdir3, "manifest.json"), mj3, 0o644)
		os.WriteFile(filepath.Join(vdir3, "phrase-gaiti.onnx"), weights, 0o644)
		if err := runModels(ctx, []string{"register", vdir3, db}); err != nil {
			t.Fatal(err)
		}
		err := runModels(ctx, []string{"shadow", "phrase-gaiti", v3.Version, db})
		if err == nil || !strings.Contains(err.Error(), "trained on "+models.DefaultHeadEmbedding+" embeddings") {
			t.Errorf("shadowing a head trained on other embeddings: %v, want a refusal naming them", err)
		}
	}
	st, err = store.Open(ctx, store.Config{DataDir: dataDir})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	entries, _ := st.QueryAudit(ctx, store.AuditFilter{OrgID: "default", Limit: 50})
	entries2, _ := st.QueryAudit(ctx, store.AuditFilter{OrgID: "org-cli", Limit: 50})
	seen := map[string]bool{}
	for _, e := range append(entries, entries2...) {
		seen[e.Action] = true
	}
	for _, a := range []string{"export.create", "model.register", "model.shadow", "model.promote", "model.rollback"} {
		if !seen[a] {
			t.Errorf("no %s in the audit log (%v)", a, seen)
		}
	}
}
