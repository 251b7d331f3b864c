package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/color"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"proctor/analyzers"
	"proctor/export"
	"proctor/internal/platform"
	"proctor/internal/testaudio"
	"proctor/internal/testdb"
	"proctor/models"
	"proctor/rules"
	"proctor/store"
)

// TestPhraseShadowEndToEnd: a second version of the phrase head (the same weights with a lower
// threshold, as a retraining run that only moved the threshold would produce) is registered and
// shadowed: it hears every chunk, its detections are stored apart and the flags keep the active
// version; a reviewer marks the answer's end; an audio export cuts that snippet from the stored
// audio; after promotion the audio flags carry the new version.
func TestPhraseShadowEndToEnd(t *testing.T) {
	if _, err := analyzers.NewAudioSet(analyzers.AudioConfig{}); models.NotInstalled(err) {
		t.Skipf("audio models not installed (%v): run scripts/setup.sh", err)
	}
	samples, placed, err := testaudio.Build(16000,
		testaudio.Part{Clip: testaudio.Answer, AtMs: 500}, testaudio.Part{Clip: testaudio.Phrase, AtMs: 4800},
		testaudio.Part{Clip: testaudio.Answer, AtMs: 8500})
	if err != nil {
		t.Fatal(err)
	}
	phraseEnd := placed[1].EndMs
	builtin, err := models.Lookup("phrase-gaiti")
	if err != nil {
		t.Fatal(err)
	}
	weights, err := models.ModelBytes(builtin)
	if err != nil {
		t.Fatal(err)
	}
	// The registered version is the built-in's successor (the built-in itself cannot be registered).
	n, err := strconv.Atoi(builtin.Version)
	if err != nil {
		t.Fatalf("built-in phrase-gaiti version %q is not a number", builtin.Version)
	}
	v2 := *builtin
	v2.Version, v2.File = strconv.Itoa(n+1), "phrase-gaiti.onnx"
	v2.Thresholds.Score = builtin.Thresholds.Score / 2
	v2.Source = models.Source{Registry: models.RegistryRegistered, Package: "test: threshold only", PackageSHA256: builtin.SHA256, Member: "phrase-gaiti.onnx"}
	manifest, _ := json.Marshal(v2)
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			if b.dsn != "" {
				b.dsn = testdb.FreshPostgresDSN(t)
			}
			ctx := context.Background()
			a := startApp(t, b, func(c *Config) { c.ModelPoll = 100 * time.Millisecond })
			ingestKey, reviewKey := keys(t, a, "org-phrase")
			adminKey, _, err := a.Store.CreateAPIKey(ctx, "org-phrase", "admin", []string{store.ScopeAdmin})
			if err != nil {
				t.Fatal(err)
			}
			plat, rev, admin := platform.New(a.URL, ingestKey), platform.New(a.URL, reviewKey), platform.New(a.URL, adminKey)

			var buf bytes.Buffer
			w := multipart.NewWriter(&buf)
			fw, _ := w.CreateFormFile("manifest", "manifest.json")
			fw.Write(manifest)
			fw, _ = w.CreateFormFile("model", "phrase-gaiti.onnx")
			fw.Write(weights)
			w.Close()
			if code, err := admin.Do(ctx, http.MethodPost, "/v1/models", w.FormDataContentType(), buf.Bytes(), nil); err != nil || code != http.StatusCreated {
				t.Fatalf("register: %d %v", code, err)
			}
			if code, err := admin.Do(ctx, http.MethodPost, "/v1/models/phrase-gaiti/"+v2.Version+"/shadow", "", nil, nil); err != nil || code != http.StatusOK {
				t.Fatalf("shadow: %d %v", code, err)
			}
			waitLoaded(t, a, "phrase-gaiti", v2.Version, store.ModelShadow)

			session := func(candidate string) (string, int64) {
				t0 := time.Now().Add(-10 * time.Minute).Truncate(time.Second)
				ms := func(off int64) int64 { return t0.UnixMilli() + off }
				s, err := plat.CreateSession(ctx, platform.NewSession{ExamID: "oral", CandidateID: candidate,
					ScheduledStart: t0, DurationSec: 1800, Questions: 2, Photo: testJPEG(t, 64, 64, 0, color.RGBA{120, 120, 120, 255})})
				if err != nil {
					t.Fatal(err)
				}
				if _, err := plat.PostEvents(ctx, s.ID,
					platform.Event{Seq: 1, Type: "answering_started", CapturedAt: ms(0)},
					platform.Event{Seq: 2, Type: "question_shown", CapturedAt: ms(0), Data: map[string]int{"question": 1}},
					platform.Event{Seq: 3, Type: "question_shown", CapturedAt: ms(8000), Data: map[string]int{"question": 2}},
					platform.Event{Seq: 4, Type: "exam_ended", CapturedAt: ms(16000)}); err != nil {
					t.Fatal(err)
				}
				pcm := analyzers.EncodePCM16(samples)
				chunks := int64(0)
				for seq := 0; seq*32000 < len(pcm); seq++ {
					if code, err := plat.PostAudio(ctx, s.ID, int64(seq), time.UnixMilli(ms(int64(seq)*1000)), "application/octet-stream",
						pcm[seq*32000:min(len(pcm), (seq+1)*32000)]); err != nil || code != http.StatusAccepted {
						t.Fatalf("chunk %d: %d %v", seq, code, err)
					}
					chunks++
				}
				waitFor(t, func() bool {
					var n int64
					a.Store.DB.Model(&store.AudioChunk{}).Where("session_id = ?", s.ID).Count(&n)
					var flags int64
					a.Store.DB.Model(&store.Flag{}).Where("session_id = ? AND type = ?", s.ID, rules.AnswerNotClosed).Count(&flags)
					return n == chunks && flags == 1
				}, "chunks analysed and ANSWER_NOT_CLOSED raised")
				return s.ID, t0.UnixMilli()
			}
			flagModel := func(id string) string {
				var f store.Flag
				a.Store.DB.Where("session_id = ? AND type = ?", id, rules.AnswerNotClosed).Take(&f)
				return rules.ModelOfFlag(f.Type, f.ModelVersion)
			}

			s1, t0 := session("c1")
			if got := flagModel(s1); got != builtin.ID() {
				t.Fatalf("flag during shadow from %s, want the active %s", got, builtin.ID())
			}
			var rows []store.ShadowObservation
			a.Store.DB.Where("session_id = ? AND model = ?", s1, v2.ID()).Find(&rows)
			if len(rows) != 16 {
				t.Fatalf("%d shadow observations, want one per chunk (16)", len(rows))
			}
			body := fmt.Sprintf(`{"kind":"answer_end","at_ms":%d}`, t0+phraseEnd)
			if code, err := rev.Do(ctx, http.MethodPost, "/v1/sessions/"+s1+"/labels", "application/json", []byte(body), nil); err != nil || code != http.StatusCreated {
				t.Fatalf("label: %d %v", code, err)
			}
			var cmp store.ShadowComparison
			if _, err := admin.Do(ctx, http.MethodGet, "/v1/models/phrase-gaiti/"+v2.Version+"/compare", "", nil, &cmp); err != nil {
				t.Fatal(err)
			}
			ph := cmp.Labels["phrase"]
			if cmp.Frames != 16 || ph == nil || ph.ActivePositive != 1 || ph.ShadowPositive < 1 || ph.Labelled != 1 ||
				ph.ActiveAccuracy == nil || *ph.ActiveAccuracy != 1 || ph.ShadowAccuracy == nil || *ph.ShadowAccuracy != 1 {
				t.Fatalf("comparison %+v phrase %+v, want 16 chunks, 1 active detection, ≥ 1 shadow, the labelled end found by both", cmp, ph)
			}

			// The reviewer's mark becomes a 16 kHz snippet cut from the stored audio.
			var exp struct {
				Archive string `json:"archive"`
			}
			if _, err := admin.Do(ctx, http.MethodPost, "/v1/exports", "application/json", []byte(`{"purpose":"phrase retraining","kinds":["audio"]}`), &exp); err != nil {
				t.Fatal(err)
			}
			var archive []byte
			if _, err := admin.Do(ctx, http.MethodGet, exp.Archive, "", nil, &archive); err != nil {
				t.Fatal(err)
			}
			dir, err := export.Unzip(archive, t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			items := readManifest(t, dir)
			var marked *export.Item
			for i := range items {
				if items[i].Source == store.LabelAnswerEnd {
					marked = &items[i]
				}
			}
			if marked == nil || !*marked.Phrase || !*marked.Reviewed || marked.Detection == nil || *marked.PhraseEndMs != 4000 {
				t.Fatalf("export items %+v, want the reviewer's answer end as a reviewed positive next to its detection", items)
			}
			if st, err := os.Stat(filepath.Join(dir, marked.Audio)); err != nil || st.Size() != 44+5*16000*2 {
				t.Fatalf("snippet %s: %v", marked.Audio, err)
			}

			if code, err := admin.Do(ctx, http.MethodPost, "/v1/models/phrase-gaiti/"+v2.Version+"/promote", "", nil, nil); err != nil || code != http.StatusOK {
				t.Fatalf("promote: %d %v", code, err)
			}
			waitLoaded(t, a, "phrase-gaiti", v2.Version, store.ModelActive)
			s2, _ := session("c2")
			if got := flagModel(s2); got != v2.ID() {
				t.Fatalf("flag after promotion from %s, want %s", got, v2.ID())
			}
		})
	}
}
