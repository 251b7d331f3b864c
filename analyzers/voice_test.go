package analyzers_test

import (
	"context"
	"testing"

	"proctor/analyzers"
	"proctor/internal/testaudio"
)

// Batching the speaker encoder changes when a window is reported, not what it is: the windows
// of 11 s of continuous speech (6 full windows: one batch of 4, then 2 flushed when the speech
// stops, then the rest of the segment on its own) equal those embedded one at a time, bit for bit,
// and a recording analysed whole loses none of them when it ends mid-speech.
func TestVoiceBatchGivesTheSameWindows(t *testing.T) {
	samples, _, err := testaudio.Build(15000,
		testaudio.Part{Clip: testaudio.Answer, AtMs: 500},
		testaudio.Part{Clip: testaudio.Answer, AtMs: 4200},
		testaudio.Part{Clip: testaudio.Answer, AtMs: 7900})
	if err != nil {
		t.Fatal(err)
	}
	run := func(batch int, samples []float32) []analyzers.VoiceWindow {
		set := newAudioSet(t, analyzers.AudioConfig{Analyzers: []string{"vad", "voice"}, Voice: analyzers.VoiceConfig{Batch: batch}})
		res, err := set.AnalyzeSamples(context.Background(), samples, analyzers.AudioRate, 1000)
		if err != nil {
			t.Fatal(err)
		}
		return res.VoiceWindows
	}
	// A recording that ends mid-speech: the windows still waiting for their batch are flushed
	// when the whole recording has been analysed.
	cut := samples[:9500*analyzers.AudioRate/1000]
	if one, batched := run(1, cut), run(0, cut); len(one) < 5 || len(batched) != len(one) {
		t.Errorf("recording cut mid-speech: %d windows one at a time, %d batched (want the same, ≥ 5)", len(one), len(batched))
	}
	one, batched := run(1, samples), run(0, samples)
	if len(one) < 6 || len(batched) != len(one) {
		t.Fatalf("%d windows one at a time, %d batched (want the same, ≥ 6)", len(one), len(batched))
	}
	for i := range one {
		a, b := one[i], batched[i]
		if a.StartMs != b.StartMs || a.EndMs != b.EndMs {
			t.Errorf("window %d: one at a time %d–%d, batched %d–%d", i, a.StartMs, a.EndMs, b.StartMs, b.EndMs)
		}
		for k := range a.Embedding {
			if a.Embedding[k] != b.Embedding[k] {
				t.Errorf("window %d component %d: %v one at a time, %v batched", i, k, a.Embedding[k], b.Embedding[k])
				break
			}
		}
	}
}
