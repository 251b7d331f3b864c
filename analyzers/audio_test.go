package analyzers_test

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"proctor/analyzers"
	"proctor/internal/testaudio"
	"proctor/internal/wav"
	"proctor/models"
)

// newAudioSet builds the default audio analyzers or skips when the models are not installed.
func newAudioSet(t testing.TB, cfg analyzers.AudioConfig) *analyzers.AudioSet {
	t.Helper()
	s, err := analyzers.NewAudioSet(cfg)
	analyzers.RequireInstalled(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

// answerThenPhrase is 12 s: an answer sentence at 1 s, the closing phrase at 5.5 s, silence.
func answerThenPhrase(t testing.TB) ([]float32, []testaudio.Placed) {
	t.Helper()
	s, placed, err := testaudio.Build(12000, testaudio.Part{Clip: testaudio.Answer, AtMs: 1000},
		testaudio.Part{Clip: testaudio.Phrase, AtMs: 5500})
	if err != nil {
		t.Fatal(err)
	}
	return s, placed
}

func TestAudioSetFindsSpeechAndPhrase(t *testing.T) {
	for _, head := range []string{analyzers.DefaultPhraseModel, analyzers.FP32PhraseModel, analyzers.EWNPhraseModel, analyzers.FusedPhraseModel} {
		t.Run(head, func(t *testing.T) { testFindsSpeechAndPhrase(t, head) })
	}
}

func testFindsSpeechAndPhrase(t *testing.T, head string) {
	set := newAudioSet(t, analyzers.AudioConfig{Phrase: analyzers.PhraseConfig{Model: head}})
	samples, placed := answerThenPhrase(t)
	res, err := set.AnalyzeSamples(context.Background(), samples, analyzers.AudioRate, 1000)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("speech %v phrases %+v", res.Speech, res.Phrases)
	if len(res.Speech) == 0 || abs(res.Speech[0][0]-placed[0].StartMs) > 200 ||
		abs(res.Speech[len(res.Speech)-1][1]-placed[1].EndMs) > 300 {
		t.Errorf("speech %v, want from ~%d to ~%d ms", res.Speech, placed[0].StartMs, placed[1].EndMs)
	}
	if len(res.Phrases) != 1 {
		t.Fatalf("phrases %+v, want exactly one", res.Phrases)
	}
	p := res.Phrases[0]
	if p.EndMs < placed[1].EndMs-500 || p.EndMs > placed[1].EndMs+1000 || !p.Final {
		t.Errorf("phrase ends at %d ms (final %v), want near %d ms", p.EndMs, p.Final, placed[1].EndMs)
	}
}

func TestAudioSetNoPhraseInOtherSpeech(t *testing.T) {
	for _, head := range []string{analyzers.DefaultPhraseModel, analyzers.EWNPhraseModel, analyzers.FusedPhraseModel} {
		t.Run(head, func(t *testing.T) { testNoPhraseInOtherSpeech(t, head) })
	}
}

func testNoPhraseInOtherSpeech(t *testing.T, head string) {
	set := newAudioSet(t, analyzers.AudioConfig{Phrase: analyzers.PhraseConfig{Model: head}})
	samples, _, err := testaudio.Build(16000, testaudio.Part{Clip: testaudio.Answer, AtMs: 500},
		testaudio.Part{Clip: testaudio.Chatter, AtMs: 5000}, testaudio.Part{Clip: testaudio.Answer, AtMs: 10000})
	if err != nil {
		t.Fatal(err)
	}
	res, err := set.AnalyzeSamples(context.Background(), samples, analyzers.AudioRate, 700)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Phrases) != 0 {
		t.Errorf("phrases %+v in speech without the phrase", res.Phrases)
	}
	if len(res.Speech) < 2 {
		t.Errorf("speech %v: want the three utterances", res.Speech)
	}
	silence := make([]float32, 5*analyzers.AudioRate)
	res, err = set.AnalyzeSamples(context.Background(), silence, analyzers.AudioRate, 1000)
	if err != nil || len(res.Speech) != 0 || len(res.Phrases) != 0 {
		t.Errorf("digital silence: %+v %v", res, err)
	}
}

// A stretch continued by another analyzer set from saved state gives exactly what one set
// analysing the whole recording gives: what a worker takeover relies on.
func TestAudioStateRestoresExactly(t *testing.T) {
	for _, head := range []string{analyzers.DefaultPhraseModel, analyzers.EWNPhraseModel, analyzers.FusedPhraseModel} {
		t.Run(head, func(t *testing.T) { testAudioStateRestoresExactly(t, head) })
	}
}

func testAudioStateRestoresExactly(t *testing.T, head string) {
	ctx := context.Background()
	for _, rate := range []int{16000, 8000, 44100} {
		a := newAudioSet(t, analyzers.AudioConfig{Phrase: analyzers.PhraseConfig{Model: head}})
		b := newAudioSet(t, analyzers.AudioConfig{Phrase: analyzers.PhraseConfig{Model: head}})
		samples, _ := answerThenPhrase(t)
		samples = analyzers.Resample(samples, analyzers.AudioRate, rate)
		for i, v := range samples { // s16 values, as the wire carries them
			samples[i] = float32(math.Round(float64(v)*32768)) / 32768
		}
		whole, err := a.AnalyzeSamples(ctx, samples, rate, 1300)
		if err != nil {
			t.Fatal(err)
		}
		// Chunk by chunk, handing the state between two sets through bytes every time.
		sets := []*analyzers.AudioSet{a, b}
		a.Reset(rate)
		var state []byte
		var obs analyzers.AudioObservation
		speech := map[int64]int64{}
		phrases := map[int64]analyzers.PhraseDetection{}
		var voices []analyzers.VoiceWindow
		step := rate * 1300 / 1000
		for i, k := 0, 0; i < len(samples); i, k = i+step, k+1 {
			s := sets[k%2]
			if state != nil {
				if err := s.UnmarshalState(state); err != nil {
					t.Fatalf("rate %d chunk %d: %v", rate, k, err)
				}
			}
			pcm := analyzers.EncodePCM16(samples[i:min(len(samples), i+step)])
			if err := s.ProcessPCM(ctx, pcm, &obs); err != nil {
				t.Fatal(err)
			}
			state = s.MarshalState()
			for _, sg := range obs.Speech {
				speech[sg.StartMs] = max(speech[sg.StartMs], sg.EndMs)
			}
			for _, p := range obs.Phrases {
				phrases[p.OnsetMs] = p
			}
			voices = append(voices, obs.Voices...)
		}
		if len(whole.VoiceWindows) == 0 || len(voices) != len(whole.VoiceWindows) {
			t.Fatalf("rate %d: %d voice windows handed over, %d whole (want the same, > 0)", rate, len(voices), len(whole.VoiceWindows))
		}
		for i, w := range whole.VoiceWindows {
			if q := voices[i]; q.StartMs != w.StartMs || q.EndMs != w.EndMs || analyzers.CosineForTest(q.Embedding, w.Embedding) < 1-1e-5 {
				t.Errorf("rate %d: voice window %d–%d differs after hand-over: %d–%d, cosine %.6f", rate, w.StartMs, w.EndMs,
					q.StartMs, q.EndMs, analyzers.CosineForTest(q.Embedding, w.Embedding))
			}
		}
		if len(speech) != len(whole.Speech) || len(phrases) != len(whole.Phrases) {
			t.Fatalf("rate %d: handed over %v / %v, whole %v / %v", rate, speech, phrases, whole.Speech, whole.Phrases)
		}
		for _, sg := range whole.Speech {
			if speech[sg[0]] != sg[1] {
				t.Errorf("rate %d: segment %v differs after hand-over (%d)", rate, sg, speech[sg[0]])
			}
		}
		for _, p := range whole.Phrases {
			// Times are exact; scores agree to 1e-4 (onnxruntime's kernels may round differently
			// with buffers at other alignments in another session).
			// EfficientWord-Net's int8 network differs more between sessions (~1e-4 at 0.999).
			tol := 1e-4
			if head != analyzers.DefaultPhraseModel {
				tol = 5e-4
			}
			q, ok := phrases[p.OnsetMs]
			if !ok || q.EndMs != p.EndMs || q.StartMs != p.StartMs || q.Final != p.Final || math.Abs(float64(q.Score-p.Score)) > tol {
				t.Errorf("rate %d: phrase %+v differs after hand-over: %+v", rate, p, q)
			}
		}
		if rate != analyzers.AudioRate && len(whole.Phrases) != 1 {
			t.Errorf("rate %d: phrases %+v, want the one phrase after resampling", rate, whole.Phrases)
		}
	}
}

// The EWN head scores the speech ends the VAD reports: without the VAD before it there are none.
func TestEWNPhraseNeedsVAD(t *testing.T) {
	_, err := analyzers.NewAudioSet(analyzers.AudioConfig{Analyzers: []string{"phrase", "vad"},
		Phrase: analyzers.PhraseConfig{Model: analyzers.EWNPhraseModel}})
	if models.NotInstalled(err) {
		t.Skipf("audio models not installed (%v)", err)
	}
	if err == nil || !strings.Contains(err.Error(), "vad") {
		t.Fatalf("phrase (EWN) before vad: %v, want an error naming vad", err)
	}
}

func TestAudioStateFromOtherSetIsRefused(t *testing.T) {
	vadOnly := newAudioSet(t, analyzers.AudioConfig{Analyzers: []string{"vad"}})
	full := newAudioSet(t, analyzers.AudioConfig{})
	if err := full.UnmarshalState(vadOnly.MarshalState()); !errors.Is(err, analyzers.ErrStateMismatch) {
		t.Errorf("state of another analyzer set: %v, want ErrStateMismatch", err)
	}
	if err := full.UnmarshalState([]byte{1, 2, 3}); !errors.Is(err, analyzers.ErrStateMismatch) {
		t.Errorf("garbage state: %v, want ErrStateMismatch", err)
	}
}

// The labelled real recording in ../shared/data: speech 770–5980 ms, ends within 200 ms.
func TestVADOnRealMandarin(t *testing.T) {
	path := filepath.Join("..", "..", "shared", "data", "speech", "mandarin", "fun_tests_sample.wav")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Skipf("%s not available (dev data lives in ../shared/data): %v", path, err)
	}
	set := newAudioSet(t, analyzers.AudioConfig{Analyzers: []string{"vad"}})
	samples, rate, err := wav.Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	res, err := set.AnalyzeSamples(context.Background(), samples, rate, 1000)
	if err != nil || len(res.Speech) == 0 {
		t.Fatalf("speech %v, %v", res.Speech, err)
	}
	start, end := res.Speech[0][0], res.Speech[len(res.Speech)-1][1]
	t.Logf("speech %v: start error %+d ms, end error %+d ms", res.Speech, start-770, end-5980)
	if abs(start-770) > 200 || abs(end-5980) > 200 {
		t.Errorf("speech %d–%d ms, labelled 770–5980 ms (±200)", start, end)
	}
}

func TestResampleKeepsTone(t *testing.T) {
	for _, rate := range []int{8000, 11025, 22050, 32000, 44100, 48000, 44101} {
		in := make([]float32, rate) // 1 s of 440 Hz at 0.5
		for i := range in {
			in[i] = float32(0.5 * math.Sin(2*math.Pi*440*float64(i)/float64(rate)))
		}
		out := analyzers.Resample(in, rate, analyzers.AudioRate)
		if d := len(out) - analyzers.AudioRate; d < -2 || d > 2 {
			t.Errorf("%d Hz: %d samples out, want %d", rate, len(out), analyzers.AudioRate)
		}
		var maxErr float64
		for i := 200; i < len(out)-200; i++ {
			want := 0.5 * math.Sin(2*math.Pi*440*float64(i)/analyzers.AudioRate)
			maxErr = math.Max(maxErr, math.Abs(float64(out[i])-want))
		}
		if maxErr > 0.01 {
			t.Errorf("%d Hz: 440 Hz tone off by up to %.4f after resampling", rate, maxErr)
		}
	}
	// A tone above 8 kHz is removed, not folded into the speech band.
	in := make([]float32, 48000)
	for i := range in {
		in[i] = float32(0.5 * math.Sin(2*math.Pi*12000*float64(i)/48000))
	}
	var peak float64
	for _, v := range analyzers.Resample(in, 48000, analyzers.AudioRate)[200:15800] {
		peak = math.Max(peak, math.Abs(float64(v)))
	}
	if peak > 0.005 {
		t.Errorf("12 kHz tone leaks through 48→16 kHz at %.4f", peak)
	}
}

// BenchmarkAudioSet measures the whole audio path (s16 → VAD + phrase spotting [+ speaker]) on
// one core; "-ends" scores the phrase head only near speech ends (phrase_gate.go);
// "x-realtime" is how many seconds of audio one core analyses per second.
func BenchmarkAudioSet(b *testing.B) {
	for _, name := range []string{"vad+phrase+voice", "vad+phrase", "vad+phrase-every", "vad", "phrase", "vad+phrase-ewn", "vad+phrase-ewn-oww"} {
		b.Run(name, func(b *testing.B) {
			cfg := analyzers.AudioConfig{}
			switch name {
			case "vad":
				cfg.Analyzers = []string{"vad"}
			case "vad+phrase-every":
				cfg.Analyzers = []string{"vad", "phrase"}
				cfg.Phrase.EveryWindow = true
			case "vad+phrase":
				cfg.Analyzers = []string{"vad", "phrase"}
			case "phrase":
				cfg.Analyzers = []string{"phrase"}
			case "vad+phrase-ewn":
				cfg.Phrase.Model = analyzers.EWNPhraseModel
			case "vad+phrase-ewn-oww":
				cfg.Phrase.Model = analyzers.FusedPhraseModel
			}
			set := newAudioSet(b, cfg)
			samples, _ := answerThenPhrase(b)
			pcm := analyzers.EncodePCM16(samples)
			chunk := 2 * analyzers.AudioRate // 1 s chunks of s16
			var obs analyzers.AudioObservation
			ctx := context.Background()
			set.Reset(analyzers.AudioRate)
			runtime.GC()
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			for range b.N {
				for i := 0; i < len(pcm); i += chunk {
					if err := set.ProcessPCM(ctx, pcm[i:min(len(pcm), i+chunk)], &obs); err != nil {
						b.Fatal(err)
					}
				}
			}
			audio := float64(b.N) * float64(len(samples)) / analyzers.AudioRate
			b.ReportMetric(audio/time.Since(start).Seconds(), "x-realtime")
		})
	}
}

func abs(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}

// The speaker analyzer embeds what the VAD heard, so it must come after it.
func TestVoiceNeedsVADFirst(t *testing.T) {
	for _, names := range [][]string{{"voice"}, {"voice", "vad"}} {
		if s, err := analyzers.NewAudioSet(analyzers.AudioConfig{Analyzers: names}); err == nil {
			s.Close()
			t.Errorf("%v: accepted, want an error naming vad", names)
		}
	}
}

// A shadow openWakeWord head (a retrained version under evaluation) runs beside the fused head
// on the same embeddings: its detections go to ShadowPhrases, the fused head's to Phrases.
func TestFusedPhraseWithShadow(t *testing.T) {
	// The fused head reads phrase-gaiti-fp32's scores: a shadow beside it is a head on fp32 embeddings.
	shadow, err := models.Load(analyzers.FP32PhraseModel)
	if err != nil {
		t.Fatal(err)
	}
	set := newAudioSet(t, analyzers.AudioConfig{Phrase: analyzers.PhraseConfig{Model: analyzers.FusedPhraseModel, Shadow: shadow}})
	samples, placed := answerThenPhrase(t)
	var obs analyzers.AudioObservation
	var got, shadowGot []analyzers.PhraseDetection
	set.Reset(analyzers.AudioRate)
	for i := 0; i < len(samples); i += analyzers.AudioRate {
		if err := set.Process(context.Background(), samples[i:min(len(samples), i+analyzers.AudioRate)], &obs); err != nil {
			t.Fatal(err)
		}
		got = append(got, obs.Phrases...)
		for _, p := range obs.ShadowPhrases {
			if p.Final {
				shadowGot = append(shadowGot, p)
			}
		}
		if len(obs.ShadowPhrases) > 0 && (obs.ShadowModel != shadow.ID() || obs.ActiveModel != analyzers.FusedPhraseModel+"@1") {
			t.Errorf("models %q / %q, want shadow %s beside %s@1", obs.ShadowModel, obs.ActiveModel, shadow.ID(), analyzers.FusedPhraseModel)
		}
	}
	end := placed[1].EndMs
	if len(got) != 1 || got[0].EndMs < end-500 || got[0].EndMs > end+1000 {
		t.Errorf("fused detections %+v, want one near %d ms", got, end)
	}
	if len(shadowGot) != 1 || shadowGot[0].EndMs < end-500 || shadowGot[0].EndMs > end+1000 {
		t.Errorf("shadow detections %+v, want one near %d ms", shadowGot, end)
	}
}
