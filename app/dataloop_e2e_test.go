package app

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"mime/multipart"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"proctor/analyzers"
	"proctor/export"
	"proctor/internal/platform"
	"proctor/internal/testdb"
	"proctor/rules"
	"proctor/store"
)

// retrainScript is the fast attire retraining the data team runs on an export. Without its
// environment (scripts/setup.sh creates it) the loop test is skipped, except under
// scripts/test.sh, which sets PROCTOR_REQUIRE_RETRAIN=1 so CI cannot skip it silently.
func retrainScript(t *testing.T) string {
	t.Helper()
	script, _ := filepath.Abs(filepath.Join("..", "training", "vision", "finetune_attire.sh"))
	venv, _ := filepath.Abs(filepath.Join("..", ".cache", "retrain-venv", "bin", "python"))
	_, errScript := os.Stat(script)
	_, errVenv := os.Stat(venv)
	if errScript != nil || errVenv != nil {
		msg := fmt.Sprintf("retraining environment missing (%s, %s): run scripts/setup.sh", script, venv)
		if os.Getenv("PROCTOR_REQUIRE_RETRAIN") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return script
}

// TestDataLoopEndToEnd runs the data team's loop on a small scale: sessions flagged → verdicts
// and labels → export → retrain the mask classifier on it → register → shadow on a new session
// (observations apart, no flags) → promote → new flags carry the new version → rollback; the
// precision table follows the verdicts and every step is in the audit log.
func TestDataLoopEndToEnd(t *testing.T) {
	dir := maskDir(t)
	f := sampleFrames(t)
	set := visionSet(t)
	script := retrainScript(t)
	cand := pick(t, set, "candidate alone", f.Candidate, 2, alone)
	masked := maskedFrames(t, set, dir, 3)
	// 14 s: candidate, 6 s with a mask, candidate again: one MASK flag per session.
	var timeline [][]byte
	for i := range 14 {
		if i >= 4 && i < 10 {
			timeline = append(timeline, masked[i%len(masked)])
		} else {
			timeline = append(timeline, cand[i%len(cand)])
		}
	}
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			if b.dsn != "" {
				b.dsn = testdb.FreshPostgresDSN(t) // model versions are service-wide
			}
			runDataLoop(t, b, timeline, script)
		})
	}
}

func runDataLoop(t *testing.T, b backend, timeline [][]byte, script string) {
	ctx := context.Background()
	a := startApp(t, b, func(c *Config) {
		c.Analyzers = analyzers.Config{Analyzers: visionObjectsAnalyzers}
		c.ModelPoll = 100 * time.Millisecond
	})
	ingestKey, reviewKey := keys(t, a, "org-loop")
	dataKey, _, err := a.Store.CreateAPIKey(ctx, "org-loop", "data team", []string{store.ScopeData})
	if err != nil {
		t.Fatal(err)
	}
	adminKey, _, err := a.Store.CreateAPIKey(ctx, "org-loop", "admin", []string{store.ScopeAdmin})
	if err != nil {
		t.Fatal(err)
	}
	plat, rev := platform.New(a.URL, ingestKey), platform.New(a.URL, reviewKey)
	data, admin := platform.New(a.URL, dataKey), platform.New(a.URL, adminKey)

	// 1. Two sessions flagged with the built-in model.
	mask1 := maskFlag(t, plat, rev, "cand-1", timeline)
	mask2 := maskFlag(t, plat, rev, "cand-2", timeline)
	for _, fl := range []store.Flag{mask1, mask2} {
		if got := rules.ModelOfFlag(fl.Type, fl.ModelVersion); got != "attire-cnn@1" {
			t.Fatalf("flag %d raised by %q, want attire-cnn@1 (model_version %q)", fl.ID, got, fl.ModelVersion)
		}
	}

	// 2. Verdicts and labels: both confirmed, and the reviewer states what the frames show.
	for _, fl := range []store.Flag{mask1, mask2} {
		if err := rev.Verdict(ctx, fl.ID, store.StatusConfirmed, "mask on"); err != nil {
			t.Fatal(err)
		}
		body := fmt.Sprintf(`{"kind":"attribute","flag_id":%d,"mask":true,"occluded":false,"persons":1}`, fl.ID)
		if code, err := rev.Do(ctx, http.MethodPost, "/v1/sessions/"+fl.SessionID+"/labels", "application/json", []byte(body), nil); err != nil || code != http.StatusCreated {
			t.Fatalf("label: %d %v", code, err)
		}
	}
	// Bad labels are refused with a reason, nothing stored.
	for _, bad := range []string{`{"kind":"attribute","flag_id":999999,"mask":true}`, `{"kind":"attribute","flag_id":1}`,
		`{"kind":"answer_end"}`, `{"kind":"guess","at_ms":1}`, `{"kind":"phrase_missed","at_ms":1,"extra":1}`} {
		if code, err := rev.Do(ctx, http.MethodPost, "/v1/sessions/"+mask1.SessionID+"/labels", "application/json", []byte(bad), nil); code != http.StatusBadRequest {
			t.Errorf("label %s: %d %v, want 400", bad, code, err)
		}
	}
	if code, _ := rev.Do(ctx, http.MethodPost, "/v1/exports", "application/json", []byte(`{"purpose":"x"}`), nil); code != http.StatusForbidden {
		t.Errorf("export with a review-only key: %d, want 403", code)
	}

	// 3. Export (data role): MASK flags, vision only.
	var exp struct {
		ID             string `json:"id"`
		ManifestSHA256 string `json:"manifest_sha256"`
		Archive        string `json:"archive"`
	}
	req := `{"purpose":"retrain the mask classifier with reviewed exam frames","kinds":["vision"],"flag_types":["MASK"]}`
	if code, err := data.Do(ctx, http.MethodPost, "/v1/exports", "application/json", []byte(req), &exp); err != nil || code != http.StatusCreated {
		t.Fatalf("export: %d %v", code, err)
	}
	var archive []byte
	if _, err := data.Do(ctx, http.MethodGet, exp.Archive, "", nil, &archive); err != nil {
		t.Fatal(err)
	}
	exportDir, err := export.Unzip(archive, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	items := readManifest(t, exportDir)
	if len(items) != 2 {
		t.Fatalf("export has %d items, want 2 (the two labelled MASK flags)", len(items))
	}
	for _, it := range items {
		if it.Kind != export.KindVision || it.Labels == nil || it.Labels.Mask == nil || !*it.Labels.Mask || it.LabelSource != "reviewer" {
			t.Errorf("item %s: kind %s labels %+v source %s", it.ID, it.Kind, it.Labels, it.LabelSource)
		}
		if it.Candidate == "cand-1" || it.Candidate == "cand-2" || !strings.HasPrefix(it.Candidate, "c_") || !strings.HasPrefix(it.Session, "s_") {
			t.Errorf("item %s: identifiers not pseudonymised: candidate %q session %q", it.ID, it.Candidate, it.Session)
		}
		for _, p := range []string{it.Frame, it.Crop} {
			if st, err := os.Stat(filepath.Join(exportDir, p)); p == "" || err != nil || st.Size() == 0 {
				t.Errorf("item %s: file %q missing (%v)", it.ID, p, err)
			}
		}
	}
	if items[0].Candidate == items[1].Candidate {
		t.Errorf("two candidates share the pseudonym %s", items[0].Candidate)
	}

	// 4. Retrain the classifier on the export (the data team's fast path) → version directory.
	versionDir := filepath.Join(t.TempDir(), "attire-cnn-2")
	cmd := exec.Command(script, "--export", exportDir, "--out", versionDir, "--version", "2")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("retrain: %v\n%s", err, out)
	}

	// 5. Register it (data role) through the API: sha256 and contract checked.
	form := func() (string, []byte) {
		var buf bytes.Buffer
		w := multipart.NewWriter(&buf)
		for _, part := range []struct{ field, file string }{{"manifest", "manifest.json"}, {"model", "attire-cnn.onnx"}, {"card", "card.md"}, {"eval", "eval.json"}} {
			content, err := os.ReadFile(filepath.Join(versionDir, part.file))
			if err != nil {
				t.Fatal(err)
			}
			fw, _ := w.CreateFormFile(part.field, part.file)
			fw.Write(content)
		}
		w.Close()
		return w.FormDataContentType(), buf.Bytes()
	}
	ct, body := form()
	if code, err := data.Do(ctx, http.MethodPost, "/v1/models", ct, body, nil); err != nil || code != http.StatusCreated {
		t.Fatalf("register: %d %v", code, err)
	}
	if code, _ := data.Do(ctx, http.MethodPost, "/v1/models", ct, body, nil); code != http.StatusConflict {
		t.Errorf("registering 2 twice: %d, want 409", code)
	}
	tampered := bytes.Replace(body, []byte(`"version": "2"`), []byte(`"version": "3"`), 1)
	tampered = bytes.Replace(tampered, []byte(`"version":"2"`), []byte(`"version":"3"`), 1)
	if code, _ := data.Do(ctx, http.MethodPost, "/v1/models", ct, corruptModel(t, tampered), nil); code != http.StatusUnprocessableEntity {
		t.Errorf("registering a file whose sha256 does not match: %d, want 422", code)
	}

	// 6. Shadow: a new session runs both versions; the shadow's observations are stored apart
	// and every flag still comes from the active version.
	if code, err := data.Do(ctx, http.MethodPost, "/v1/models/attire-cnn/2/promote", "", nil, nil); code != http.StatusForbidden {
		t.Errorf("promote with a data key: %d %v, want 403 (admin only)", code, err)
	}
	if code, err := data.Do(ctx, http.MethodPost, "/v1/models/attire-cnn/2/shadow", "", nil, nil); err != nil || code != http.StatusOK {
		t.Fatalf("shadow: %d %v", code, err)
	}
	waitModels(t, data, "attire-cnn@1 (built-in)", "attire-cnn@2")
	waitLoaded(t, a, "attire-cnn", "2", store.ModelShadow)
	mask3 := maskFlag(t, plat, rev, "cand-3", timeline)
	if got := rules.ModelOfFlag(mask3.Type, mask3.ModelVersion); got != "attire-cnn@1" {
		t.Fatalf("flag during shadow raised by %q, want the active attire-cnn@1", got)
	}
	var cmp store.ShadowComparison
	if _, err := data.Do(ctx, http.MethodGet, "/v1/models/attire-cnn/2/compare?since="+time.Now().Add(-time.Hour).UTC().Format(time.RFC3339), "", nil, &cmp); err != nil {
		t.Fatal(err)
	}
	if cmp.Frames != len(timeline) || cmp.Agreement == nil || cmp.Labels["mask"] == nil || cmp.Labels["mask"].Frames != len(timeline) {
		t.Fatalf("shadow comparison: %+v, want %d frames with mask outputs", cmp, len(timeline))
	}
	t.Logf("shadow attire-cnn@2 vs active on %d frames: agreement %.2f, mask decisions differ on %d, shadow finds the mask on %d, active on %d",
		cmp.Frames, *cmp.Agreement, cmp.Labels["mask"].Disagree, cmp.Labels["mask"].ShadowPositive, cmp.Labels["mask"].ActivePositive)
	var frames int64
	a.Store.DB.Model(&store.FrameResult{}).Where("session_id = ? AND observation LIKE ?", mask3.SessionID, "%attire-cnn@2%").Count(&frames)
	if frames != 0 {
		t.Errorf("%d frame results mention the shadow version: shadow output must be stored apart", frames)
	}

	// 7. Promote (admin): new flags carry the new version.
	if code, err := admin.Do(ctx, http.MethodPost, "/v1/models/attire-cnn/2/promote", "application/json", []byte(`{"reason":"agrees with reviewers"}`), nil); err != nil || code != http.StatusOK {
		t.Fatalf("promote: %d %v", code, err)
	}
	waitModels(t, data, "attire-cnn@2", "")
	waitLoaded(t, a, "attire-cnn", "2", store.ModelActive)
	mask4 := maskFlag(t, plat, rev, "cand-4", timeline)
	if got := rules.ModelOfFlag(mask4.Type, mask4.ModelVersion); got != "attire-cnn@2" {
		t.Fatalf("flag after promotion raised by %q, want attire-cnn@2 (model_version %q)", got, mask4.ModelVersion)
	}
	if err := rev.Verdict(ctx, mask4.ID, store.StatusDismissed, "test: dismissed"); err != nil {
		t.Fatal(err)
	}

	// 8. The precision table follows the verdicts, per model version.
	var prec struct {
		Rows []store.PrecisionRow `json:"rows"`
	}
	if _, err := data.Do(ctx, http.MethodGet, "/v1/precision?bucket=all&flag_type=MASK", "", nil, &prec); err != nil {
		t.Fatal(err)
	}
	want := map[string][4]int{"attire-cnn@1": {3, 2, 0, 1}, "attire-cnn@2": {1, 0, 1, 0}} // raised, confirmed, dismissed, open
	if len(prec.Rows) != len(want) {
		t.Fatalf("precision rows %+v, want one per model version %v", prec.Rows, want)
	}
	for _, r := range prec.Rows {
		if w, ok := want[r.Model]; !ok || [4]int{r.Raised, r.Confirmed, r.Dismissed, r.Open} != w {
			t.Errorf("precision row %+v, want %v", r, want[r.Model])
		}
	}
	if p := prec.Rows[0].Precision; p == nil || *p != 1 {
		t.Errorf("attire-cnn@1 precision %v, want 1 (2 confirmed, 0 dismissed)", p)
	}

	// 9. Roll back (admin): the built-in version is back.
	if code, err := admin.Do(ctx, http.MethodPost, "/v1/models/attire-cnn/rollback", "", nil, nil); err != nil || code != http.StatusOK {
		t.Fatalf("rollback: %d %v", code, err)
	}
	waitModels(t, data, "attire-cnn@1 (built-in)", "")

	// Every step is in the audit log.
	var audit struct {
		Entries []store.AuditEntry `json:"entries"`
	}
	if _, err := admin.Do(ctx, http.MethodGet, "/v1/audit?limit=500", "", nil, &audit); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, e := range audit.Entries {
		seen[e.Action] = true
	}
	for _, action := range []string{"label.create", "export.create", "export.download", "model.register", "model.shadow", "model.promote", "model.rollback"} {
		if !seen[action] {
			t.Errorf("audit log has no %s entry (has %v)", action, seen)
		}
	}
}

// maskFlag posts the timeline as a new session and returns its one MASK flag.
func maskFlag(t *testing.T, plat, rev *platform.Client, candidate string, timeline [][]byte) store.Flag {
	t.Helper()
	ctx := context.Background()
	start := time.Now().Add(-10 * time.Minute).Truncate(time.Second)
	sess, err := plat.CreateSession(ctx, platform.NewSession{ExamID: "exam-loop", CandidateID: candidate,
		ScheduledStart: start, DurationSec: 1800, Questions: 3, Photo: timeline[0]})
	if err != nil {
		t.Fatal(err)
	}
	for i, jpeg := range timeline {
		if code, err := plat.PostFrame(ctx, sess.ID, analyzers.CameraMain, int64(i), start.Add(time.Duration(i)*time.Second), jpeg); err != nil || code != http.StatusAccepted {
			t.Fatalf("frame %d: %d %v", i, code, err)
		}
	}
	detail, err := rev.WaitFramesProgress(ctx, sess.ID, int64(len(timeline)), stallLimit)
	if err != nil {
		t.Fatal(err)
	}
	var masks []store.Flag
	for _, fl := range detail.Flags {
		if fl.Type == rules.Mask {
			masks = append(masks, fl)
		}
	}
	if len(masks) != 1 {
		t.Fatalf("session %s: %d MASK flags, want 1 (flags %+v)", candidate, len(masks), detail.Flags)
	}
	return masks[0]
}

// waitModels waits until GET /v1/models says attire-cnn runs active (and shadow).
func waitModels(t *testing.T, c *platform.Client, active, shadow string) {
	t.Helper()
	var last string
	for range 50 {
		var out struct {
			Models []struct {
				Name, Active, Shadow string
			} `json:"models"`
		}
		if _, err := c.Do(context.Background(), http.MethodGet, "/v1/models", "", nil, &out); err != nil {
			t.Fatal(err)
		}
		for _, m := range out.Models {
			if m.Name == "attire-cnn" {
				last = m.Active + " / " + m.Shadow
				if strings.HasPrefix(m.Active, strings.TrimSuffix(active, " (built-in)")) && m.Shadow == shadow {
					return
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("attire-cnn runs %s, want %s / %s", last, active, shadow)
}

// waitLoaded waits until the app's worker runs version of model in role (its
// proctor_model_loaded gauge): the database says what should run, the gauge what the worker
// loaded on its last poll.
func waitLoaded(t *testing.T, a *App, model, version, role string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		fams, err := a.Metrics.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range fams {
			if f.GetName() != "proctor_model_loaded" {
				continue
			}
			for _, m := range f.GetMetric() {
				l := map[string]string{}
				for _, p := range m.GetLabel() {
					l[p.GetName()] = p.GetValue()
				}
				if l["model"] == model && l["version"] == version && l["role"] == role && m.GetGauge().GetValue() == 1 {
					return
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the worker did not load %s@%s as %s within a minute", model, version, role)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func readManifest(t *testing.T, dir string) []export.Item {
	t.Helper()
	fh, err := os.Open(filepath.Join(dir, "manifest.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	var items []export.Item
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		var it export.Item
		if err := json.Unmarshal(sc.Bytes(), &it); err != nil {
			t.Fatalf("manifest line %q: %v", sc.Text(), err)
		}
		items = append(items, it)
	}
	var rec export.Record
	raw, err := os.ReadFile(filepath.Join(dir, "export.json"))
	if err != nil || json.Unmarshal(raw, &rec) != nil || rec.FormatVersion != export.FormatVersion || rec.Counts.Items != len(items) || rec.Purpose == "" {
		t.Fatalf("export.json %s (%v) does not describe the %d items", raw, err, len(items))
	}
	return items
}

// corruptModel flips a byte inside the multipart body's ONNX part, so its sha256 no longer
// matches the manifest.
func corruptModel(t *testing.T, body []byte) []byte {
	t.Helper()
	i := bytes.Index(body, []byte(`filename="attire-cnn.onnx"`))
	if i < 0 {
		t.Fatal("no model part")
	}
	out := bytes.Clone(body)
	j := i + 200
	out[j] ^= 0xff
	return out
}
