package analyzers_test

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"testing"

	"proctor/analyzers"
	"proctor/internal/testaudio"
	"proctor/internal/wav"
)

func newVAD(t *testing.T, model string) *analyzers.VAD {
	t.Helper()
	v, err := analyzers.NewVAD(analyzers.VADConfig{Model: model})
	analyzers.RequireInstalled(t, err)
	t.Cleanup(func() { v.Close() })
	return v
}

// The sequence model (many frames per call, the default) gives the published graph's
// probability for every frame, whatever the chunks: same weights, same arithmetic
// (training/voice/silero_seq.py).
func TestVADSeqMatchesFrameByFrame(t *testing.T) {
	speech, _, err := testaudio.Build(12000, testaudio.Part{Clip: testaudio.Answer, AtMs: 1000},
		testaudio.Part{Clip: testaudio.Phrase, AtMs: 5500})
	if err != nil {
		t.Fatal(err)
	}
	inputs := map[string][]float32{"synthetic answer and phrase": speech}
	if data, err := os.ReadFile(filepath.Join("..", "..", "shared", "data", "speech", "mandarin", "fun_tests_sample.wav")); err == nil {
		samples, rate, err := wav.Decode(data)
		if err != nil {
			t.Fatal(err)
		}
		inputs["real Mandarin (fun_tests_sample.wav)"] = analyzers.Resample(samples, rate, analyzers.AudioRate)
	}
	frame := newVAD(t, "silero-vad-v5")
	for name, pcm := range inputs {
		frame.Reset()
		want, err := analyzers.VADProbabilities(frame, pcm, 16000)
		if err != nil {
			t.Fatal(err)
		}
		speechFrames := 0
		for _, p := range want {
			if p >= 0.5 {
				speechFrames++
			}
		}
		if speechFrames < len(want)/5 {
			t.Fatalf("%s: %d of %d frames are speech: not a useful comparison", name, speechFrames, len(want))
		}
		for _, chunk := range []int{16000, 4000, 777, 512, 100000} {
			seq := newVAD(t, analyzers.DefaultVADModel)
			got, err := analyzers.VADProbabilities(seq, pcm, chunk)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(want) {
				t.Fatalf("%s, chunks of %d: %d frames, want %d", name, chunk, len(got), len(want))
			}
			worst := 0.0
			for i := range want {
				worst = max(worst, math.Abs(float64(got[i]-want[i])))
			}
			if worst > 1e-5 {
				t.Errorf("%s, chunks of %d: probabilities differ by up to %.2e from the published graph", name, chunk, worst)
			}
			t.Logf("%s, chunks of %d samples: %d frames (%d speech), max difference %.1e, %d calls", name, chunk,
				len(got), speechFrames, worst, seq.ModelRuns())
		}
	}
}

// The same segments from both graphs through the audio set, chunk by chunk.
func TestVADSeqSameSegments(t *testing.T) {
	speech, _ := answerThenPhrase(t)
	var segs [2][][2]int64
	for i, model := range []string{"silero-vad-v5", analyzers.DefaultVADModel} {
		set := newAudioSet(t, analyzers.AudioConfig{Analyzers: []string{"vad"}, VAD: analyzers.VADConfig{Model: model}})
		res, err := set.AnalyzeSamples(context.Background(), speech, analyzers.AudioRate, 700)
		if err != nil {
			t.Fatal(err)
		}
		segs[i] = res.Speech
	}
	if len(segs[0]) == 0 || len(segs[0]) != len(segs[1]) {
		t.Fatalf("segments %v (frame by frame) vs %v (sequence)", segs[0], segs[1])
	}
	for i := range segs[0] {
		if segs[0][i] != segs[1][i] {
			t.Errorf("segment %d: %v frame by frame, %v sequence", i, segs[0][i], segs[1][i])
		}
	}
}
