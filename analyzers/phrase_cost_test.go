package analyzers

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	ort "github.com/yalue/onnxruntime_go"

	"proctor/internal/wav"
)

// BenchmarkPhraseStageParts splits the gated phrase stage's cost into its three networks on real
// dev-split sessions (docs/audio.md "int8 head"): how often each runs per second of audio
// (exact counts) and what one call costs on this machine (the thread's share of the clock, so
// compare runs made side by side), for the default head (int8 embeddings) and phrase-gaiti-fp32.
// Needs .cache/phrase-data/dev (training/phrase/train.sh or ewn_data.py).
//
//	go test -run XXX -bench BenchmarkPhraseStageParts -benchtime 200x ./analyzers/
func BenchmarkPhraseStageParts(b *testing.B) {
	files, _ := filepath.Glob("../.cache/phrase-data/dev/*.wav")
	if len(files) < 4 {
		b.Skip("no dev split in ../.cache/phrase-data/dev: run training/phrase/train.sh")
	}
	for _, head := range []string{DefaultPhraseModel, FP32PhraseModel} {
		b.Run(head, func(b *testing.B) {
			set, err := NewAudioSet(AudioConfig{Analyzers: []string{"vad", "phrase"}, Phrase: PhraseConfig{Model: head}})
			if err != nil {
				b.Skipf("audio models: %v", err)
			}
			defer set.Close()
			var p *Phrase
			for _, a := range set.Analyzers() {
				if q, ok := a.(*Phrase); ok {
					p = q
				}
			}
			var seconds float64
			for _, f := range files[:4] {
				data, err := os.ReadFile(f)
				if err != nil {
					b.Fatal(err)
				}
				pcm, rate, err := wav.Decode(data)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := set.AnalyzeSamples(context.Background(), pcm, rate, 1000); err != nil {
					b.Fatal(err)
				}
				seconds += float64(len(pcm)) / float64(rate)
			}
			// One call of each network on the bound tensors (the inputs hold real data from the
			// last session), b.N times.
			per := func(s *ort.AdvancedSession) float64 {
				start := time.Now()
				for range b.N {
					if err := s.Run(); err != nil {
						b.Fatal(err)
					}
				}
				return float64(time.Since(start).Microseconds()) / 1000 / float64(b.N)
			}
			b.ResetTimer()
			melMs, embMs, headMs := per(p.mel), per(p.emb), per(p.active.head)
			b.StopTimer()
			mel, emb, hd := float64(p.melRuns)/seconds, float64(p.embRuns)/seconds, float64(p.active.runs)/seconds
			b.ReportMetric(mel, "mel/s-audio")
			b.ReportMetric(emb, "emb/s-audio")
			b.ReportMetric(hd, "head/s-audio")
			b.ReportMetric(melMs, "ms/mel")
			b.ReportMetric(embMs, "ms/emb")
			b.ReportMetric(headMs, "ms/head")
			b.ReportMetric(mel*melMs, "mel-ms/s-audio")
			b.ReportMetric(emb*embMs, "emb-ms/s-audio")
			b.ReportMetric(hd*headMs, "head-ms/s-audio")
		})
	}
}
