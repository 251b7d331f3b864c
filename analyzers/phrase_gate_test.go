package analyzers_test

import (
	"context"
	"math"
	"testing"

	"proctor/analyzers"
	"proctor/internal/testaudio"
)

// phraseOf is the set's phrase analyzer.
func phraseOf(t *testing.T, s *analyzers.AudioSet) *analyzers.Phrase {
	t.Helper()
	for _, a := range s.Analyzers() {
		if p, ok := a.(*analyzers.Phrase); ok {
			return p
		}
	}
	t.Fatal("no phrase analyzer in the set")
	return nil
}

// The gated spotter scores only the windows around speech ends, with the scores the
// every-window spotter gives them: on a session whose phrases end in pauses it finds the same
// detections (same onset, end and score, to the last bit) while running the embedding model on
// far fewer windows. It holds for a head over a shorter history (phrase-gaiti-h12: 12 embeddings,
// its manifest's audio.window), whose spans need fewer history embeddings than the default's 16.
func TestGatedPhraseMatchesEveryWindow(t *testing.T) {
	samples, placed, err := testaudio.Build(40000,
		testaudio.Part{Clip: testaudio.Answer, AtMs: 1000},
		testaudio.Part{Clip: testaudio.Phrase, AtMs: 5500},
		testaudio.Part{Clip: testaudio.Answer, AtMs: 12000},
		testaudio.Part{Clip: testaudio.Answer, AtMs: 16300},
		testaudio.Part{Clip: testaudio.Phrase, AtMs: 21000},
		testaudio.Part{Clip: testaudio.Answer, AtMs: 30000},
	)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range samples { // s16 values, as the wire carries them (the gate keeps 16 bits)
		samples[i] = float32(math.Round(float64(v)*32768)) / 32768
	}
	run := func(head string, every bool) ([]analyzers.PhraseDetection, int64) {
		cfg := analyzers.AudioConfig{Analyzers: []string{"vad", "phrase"}, Phrase: analyzers.PhraseConfig{Model: head, EveryWindow: every}}
		set := newAudioSet(t, cfg)
		res, err := set.AnalyzeSamples(context.Background(), samples, analyzers.AudioRate, 1000)
		if err != nil {
			t.Fatal(err)
		}
		return res.Phrases, phraseOf(t, set).EmbeddingRuns()
	}
	gatedRuns := map[string]int64{}
	for _, head := range []string{analyzers.DefaultPhraseModel, shortHistoryHead} {
		every, everyRuns := run(head, true)
		gated, runs := run(head, false)
		gatedRuns[head] = runs
		t.Logf("%s: every window: %+v (%d embeddings); gated: %+v (%d embeddings)", head, every, everyRuns, gated, runs)
		if len(every) != 2 {
			t.Fatalf("%s: every-window detections %+v, want the two phrases (at %d and %d ms)", head, every, placed[1].EndMs, placed[4].EndMs)
		}
		if len(gated) != len(every) {
			t.Fatalf("%s: gated detections %+v, every-window %+v", head, gated, every)
		}
		for i := range every {
			if gated[i] != every[i] {
				t.Errorf("%s: detection %d: gated %+v, every window %+v", head, i, gated[i], every[i])
			}
		}
		if runs*2 > everyRuns {
			t.Errorf("%s: gated spotter ran the embedding %d times, every-window %d: want less than half", head, runs, everyRuns)
		}
	}
	if short, long := gatedRuns[shortHistoryHead], gatedRuns[analyzers.DefaultPhraseModel]; short >= long {
		t.Errorf("gated embeddings: %d with the 12-embedding head, %d with the 16-embedding one: want fewer", short, long)
	}
}

// shortHistoryHead is the built-in head over 12 embeddings instead of 16 (not the default:
// docs/audio.md "A shorter history").
const shortHistoryHead = "phrase-gaiti-h12"

// The gated spotter (the default) looks at the VAD's speech ends: with "vad" after it or
// absent, the spotter scores every window and does not need the VAD.
func TestGatedPhraseNeedsVAD(t *testing.T) {
	for _, names := range [][]string{{"phrase"}, {"phrase", "vad"}} {
		s := newAudioSet(t, analyzers.AudioConfig{Analyzers: names})
		if phraseOf(t, s).NeedsVAD() {
			t.Errorf("%v: the spotter says it needs the VAD, want every window", names)
		}
	}
	if !phraseOf(t, newAudioSet(t, analyzers.AudioConfig{Analyzers: []string{"vad", "phrase"}})).NeedsVAD() {
		t.Error("vad, phrase: the spotter does not look at the speech ends, want the gate")
	}
	if phraseOf(t, newAudioSet(t, analyzers.AudioConfig{Analyzers: []string{"vad", "phrase"}, Phrase: analyzers.PhraseConfig{EveryWindow: true}})).NeedsVAD() {
		t.Error("EveryWindow: the spotter looks at the speech ends, want every window")
	}
}

// The gated spotter's state (its audio, the spans still to score, the peak picking) hands over
// between workers after every chunk and gives what one pass gives.
func TestGatedPhraseStateRestoresExactly(t *testing.T) {
	ctx := context.Background()
	cfg := analyzers.AudioConfig{Analyzers: []string{"vad", "phrase"}}
	a, b := newAudioSet(t, cfg), newAudioSet(t, cfg)
	samples, _ := answerThenPhrase(t)
	for i, v := range samples {
		samples[i] = float32(math.Round(float64(v)*32768)) / 32768
	}
	whole, err := a.AnalyzeSamples(ctx, samples, analyzers.AudioRate, 700)
	if err != nil {
		t.Fatal(err)
	}
	if len(whole.Phrases) != 1 {
		t.Fatalf("one pass: phrases %+v, want one", whole.Phrases)
	}
	a.Reset(analyzers.AudioRate)
	var state []byte
	var obs analyzers.AudioObservation
	got := map[int64]analyzers.PhraseDetection{}
	step := analyzers.AudioRate * 700 / 1000
	for i, k := 0, 0; i < len(samples); i, k = i+step, k+1 {
		s := []*analyzers.AudioSet{a, b}[k%2]
		if state != nil {
			if err := s.UnmarshalState(state); err != nil {
				t.Fatalf("chunk %d: %v", k, err)
			}
		}
		if err := s.ProcessPCM(ctx, analyzers.EncodePCM16(samples[i:min(len(samples), i+step)]), &obs); err != nil {
			t.Fatal(err)
		}
		state = s.MarshalState()
		for _, p := range obs.Phrases {
			got[p.OnsetMs] = p
		}
	}
	if p := whole.Phrases[0]; len(got) != 1 || got[p.OnsetMs] != p {
		t.Errorf("handed over every chunk: %+v, one pass: %+v", got, p)
	}
}

// A loud stretch well above the noise floor ends where the quiet begins, whatever the chunking;
// a click (one loud block) and a soft stretch end nothing.
func TestEnergyEnds(t *testing.T) {
	const block = 1280
	var audio []int16
	add := func(blocks int, amp float64) {
		for i := range blocks * block {
			audio = append(audio, int16(amp*math.Sin(float64(i)*0.3)))
		}
	}
	add(10, 100)  // room noise
	add(1, 20000) // a click
	add(10, 100)  //
	add(8, 250)   // soft: 8 dB above the noise, neither loud nor quiet
	add(10, 100)  //
	add(12, 8000) // speech, 38 dB above the noise
	add(10, 100)  // quiet: the end is the first quiet sample
	wantEnd := int64((10 + 1 + 10 + 8 + 10 + 12) * block)
	for _, chunk := range []int{len(audio), 16000, 1000, 333} {
		var e analyzers.EnergyEndsForTest
		var ends []int64
		for from := 0; from < len(audio); from += chunk {
			to := min(from+chunk, len(audio))
			ends = e.Update(audio[:to], ends)
		}
		if len(ends) != 1 || ends[0] != wantEnd {
			t.Errorf("chunks of %d samples: ends %v, want only the speech's end %d", chunk, ends, wantEnd)
		}
	}
}
