package analyzers_test

import (
	"errors"
	"strings"
	"testing"

	"proctor/analyzers"
	"proctor/models"
)

// The phrase analyzer feeds each head the openWakeWord embedding it was trained on: the default
// head (phrase-gaiti@2) the int8 one, phrase-gaiti-fp32 and a registered version trained on fp32
// embeddings the fp32 one; PhraseConfig.Embedding overrides it (measurements only); a shadow
// trained on other embeddings than the active head is fed is refused, not silently misfed.
func TestPhraseHeadFeedsItsEmbedding(t *testing.T) {
	fp32, err := models.Load(analyzers.FP32PhraseModel)
	if errors.Is(err, models.ErrNoCache) || errors.Is(err, models.ErrModelMissing) {
		t.Skipf("phrase models not installed (%v): run scripts/setup.sh", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	// A registered version of phrase-gaiti whose manifest names no embedding (trained before
	// version 2): it keeps its fp32 embeddings.
	old := *fp32
	old.Name, old.Version = analyzers.DefaultPhraseModel, "fp32-registered"
	for _, c := range []struct {
		what      string
		cfg       analyzers.PhraseConfig
		head, emb string
	}{
		{"default", analyzers.PhraseConfig{}, "phrase-gaiti@2", "oww-embedding-int8@1"},
		{"fp32 head", analyzers.PhraseConfig{Model: analyzers.FP32PhraseModel}, "phrase-gaiti-fp32@1", "oww-embedding@1"},
		{"override", analyzers.PhraseConfig{Embedding: "oww-embedding"}, "phrase-gaiti@2", "oww-embedding@1"},
		{"registered fp32 version", analyzers.PhraseConfig{Active: &old}, "phrase-gaiti@fp32-registered", "oww-embedding@1"},
	} {
		t.Run(c.what, func(t *testing.T) {
			set := newAudioSet(t, analyzers.AudioConfig{Analyzers: []string{"vad", "phrase"}, Phrase: c.cfg})
			v := phraseOf(t, set).Version()
			if want := c.head + "+oww-melspectrogram@1+" + c.emb + " "; !strings.HasPrefix(v, want) {
				t.Errorf("version %q, want it to start with %q", v, want)
			}
			// The gate scores windows ending 0.4 s before to 0.3 s after each end (DefaultEndBefore/After).
			if !strings.HasSuffix(v, " ends=-400+300ms+energy") {
				t.Errorf("version %q: want the gate's default spans ends=-400+300ms", v)
			}
		})
	}
	_, err = analyzers.NewAudioSet(analyzers.AudioConfig{Analyzers: []string{"vad", "phrase"}, Phrase: analyzers.PhraseConfig{Shadow: fp32}})
	if err == nil || !strings.Contains(err.Error(), "shadow") || !strings.Contains(err.Error(), "oww-embedding-int8") {
		t.Errorf("fp32 shadow beside the int8 head: err = %v, want a refusal naming both embeddings", err)
	}
}
