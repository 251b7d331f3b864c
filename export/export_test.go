package export

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"proctor/internal/testdb"
	"proctor/store"
)

// TestAudioExport: reviewer audio labels and unlabelled detections become 16 kHz WAV snippets
// cut from the stored audio (8 kHz chunks here, resampled), with the phrase end where the label
// put it; windows without stored audio are counted as skipped, not exported as silence.
func TestAudioExport(t *testing.T) {
	for _, b := range testdb.Open(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			st := b.Store
			org := "org-" + store.NewID()[:6]
			if err := st.EnsureOrganisation(ctx, org, org); err != nil {
				t.Fatal(err)
			}
			sess := &store.Session{ID: store.NewID(), OrgID: org, ExamID: "exam-a", CandidateID: "alice", CreatedAt: time.Now()}
			if err := st.DB.Create(sess).Error; err != nil {
				t.Fatal(err)
			}
			// 20 s of a 440 Hz tone at 8 kHz in 2 s chunks from t0.
			t0 := int64(1_000_000)
			for i := range 10 {
				pcm := make([]byte, 2*16000)
				for j := range 16000 {
					v := int16(8000 * math.Sin(2*math.Pi*440*float64(i*16000+j)/8000))
					binary.LittleEndian.PutUint16(pcm[2*j:], uint16(v))
				}
				if err := store.InsertAudioSample(st.DB, &store.AudioSample{SessionID: sess.ID, Seq: int64(i),
					CapturedAtMs: t0 + int64(i)*2000, SampleRate: 8000, PCM: pcm}); err != nil {
					t.Fatal(err)
				}
			}
			if err := store.UpsertPhrases(st.DB, []store.PhraseDetection{
				{SessionID: sess.ID, OnsetMs: t0 + 5000, StartMs: t0 + 4500, EndMs: t0 + 6000, Score: 0.97, Final: true},
				{SessionID: sess.ID, OnsetMs: t0 + 12000, StartMs: t0 + 11500, EndMs: t0 + 13000, Score: 0.95, Final: true},
			}); err != nil {
				t.Fatal(err)
			}
			at := func(ms int64) *int64 { return &ms }
			for _, l := range []*store.Label{
				{Kind: store.LabelNotPhrase, AtMs: at(t0 + 13200)},    // the second detection is wrong
				{Kind: store.LabelPhraseMissed, AtMs: at(t0 + 17000)}, // a phrase the spotter missed
				{Kind: store.LabelAnswerEnd, AtMs: at(t0 + 60000)},    // no audio stored there
			} {
				l.OrgID, l.SessionID, l.Reviewer = org, sess.ID, "user:rev@example.com"
				if err := st.AddLabel(ctx, l, ""); err != nil {
					t.Fatal(err)
				}
			}
			b := &Builder{Store: st}
			res, err := b.Build(ctx, Request{OrgID: org, Actor: "test", Purpose: "phrase retraining", Filters: Filters{Kinds: []string{KindAudio}}})
			if err != nil {
				t.Fatal(err)
			}
			var items []Item
			for _, line := range strings.Split(strings.TrimSpace(string(res.Manifest)), "\n") {
				var it Item
				if err := json.Unmarshal([]byte(line), &it); err != nil {
					t.Fatal(err)
				}
				items = append(items, it)
			}
			got := map[string]bool{}
			for _, it := range items {
				got[it.Source] = *it.Phrase
				if it.EndMs-it.StartMs != 5000 || it.SampleRate != 16000 || strings.Contains(it.Candidate, "alice") {
					t.Errorf("item %+v", it)
				}
			}
			want := map[string]bool{"detection": true, store.LabelNotPhrase: false, store.LabelPhraseMissed: true}
			if len(items) != 3 || len(got) != 3 || got["detection"] != true || got[store.LabelNotPhrase] || !got[store.LabelPhraseMissed] {
				t.Fatalf("items by source %v, want %v", got, want)
			}
			if res.Record.Counts.Skipped["no_stored_audio"] != 1 {
				t.Errorf("skipped %v, want the answer_end label without audio counted", res.Record.Counts.Skipped)
			}
			// The WAV of the missed phrase: 5 s at 16 kHz, the tone's energy throughout.
			wav := fileIn(t, res.Zip, "audio/"+items[2].ID+".wav")
			if len(wav) != 44+5*16000*2 || !bytes.Equal(wav[:4], []byte("RIFF")) || binary.LittleEndian.Uint32(wav[24:]) != 16000 {
				t.Fatalf("wav %d bytes, header %q", len(wav), wav[:16])
			}
			var energy float64
			for i := 44; i < len(wav); i += 2 {
				v := float64(int16(binary.LittleEndian.Uint16(wav[i:])))
				energy += v * v
			}
			if rms := math.Sqrt(energy / float64((len(wav)-44)/2)); rms < 4000 || rms > 7000 {
				t.Errorf("snippet RMS %.0f, want the 8000-amplitude tone's ≈5657", rms)
			}
			// Pseudonyms are stable across exports and differ between organisations' keys.
			res2, err := b.Build(ctx, Request{OrgID: org, Actor: "test", Purpose: "again", Filters: Filters{Kinds: []string{KindAudio}}})
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(res2.Manifest, []byte(items[0].Candidate)) {
				t.Error("the candidate's pseudonym changed between exports")
			}
		})
	}
}

func fileIn(t *testing.T, archive []byte, name string) []byte {
	t.Helper()
	dir, err := Unzip(archive, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}
