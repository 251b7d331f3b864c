package analyzers

import (
	"context"
	"fmt"
	"time"

	ort "github.com/yalue/onnxruntime_go"

	"proctor/models"
)

// VADConfig configures the "vad" audio analyzer. Zero values take the defaults noted.
type VADConfig struct {
	// Model is the manifest name of the VAD. Default "silero-vad-v5".
	Model string `json:"model,omitempty"`
	// Threshold: a frame with speech probability at or above it starts (or continues) speech.
	// Default: the manifest's thresholds.score (0.5, silero's default).
	Threshold float32 `json:"threshold,omitempty"`
	// NegThreshold: speech ends only after frames below it for MinSilence. Default Threshold −
	// 0.15 (silero's neg_threshold): the gap between the two is the hysteresis that keeps a
	// soft syllable from splitting a segment.
	NegThreshold float32 `json:"neg_threshold,omitempty"`
	// MinSpeech: shorter bursts (a cough, a click) are not speech. Default 250 ms (silero's).
	MinSpeech time.Duration `json:"min_speech,omitempty"`
	// MinSilence: a pause must last this long to end a segment. Default 300 ms: pauses between
	// words of fluent Mandarin are shorter, pauses between sentences mostly longer.
	MinSilence time.Duration `json:"min_silence,omitempty"`
	// Pad is added before and after each segment (silero's speech_pad). Default 100 ms, not
	// silero's 30: the model reacts a frame or two after a soft or unvoiced onset (measured on
	// ../shared/data fun_tests_sample.wav: energy rises at 1048 ms, the first frame over 0.5
	// starts at 1056 ms), and a reviewer jumping to an answer should hear its first syllable.
	Pad time.Duration `json:"pad,omitempty"`
	// Threads is the model session's intra-op thread count. Default 1.
	Threads int `json:"threads,omitempty"`
}

// DefaultVADModel is the VAD used when VADConfig.Model is empty.
const DefaultVADModel = "silero-vad-v5"

// defaultVADPad is the padding added before and after speech when VADConfig.Pad is zero.
const defaultVADPad = 100 * time.Millisecond

// VAD finds speech with silero VAD: one model step per 32 ms frame, the recurrent state carried
// from frame to frame and chunk to chunk, hysteresis and minimum durations on top.
type VAD struct {
	sess           *ort.AdvancedSession
	input, stateIn *ort.Tensor[float32]
	sr             *ort.Scalar[int64]
	prob, stateOut *ort.Tensor[float32]
	version        string
	frame, ctxLen  int
	thr, neg       float32
	minSpeech      int64 // samples
	minSilence     int64
	pad            int64

	// Stretch state (saved with AppendState).
	pending   []float32 // samples not yet a whole frame
	frames    int64     // frames analysed in this stretch
	triggered bool      // inside speech
	start     int64     // sample where the current segment starts (padded)
	tempEnd   int64     // first sample of the current quiet run, 0 if none

	runs int64 // model runs since built (a statistic, not state)
}

// ModelRuns implements analyzers.ModelRuns: silero runs (one per 32 ms frame).
func (v *VAD) ModelRuns() int64 { return v.runs }

// NewVAD loads (and checksums) the model and binds its tensors once.
func NewVAD(cfg VADConfig) (*VAD, error) {
	name := cfg.Model
	if name == "" {
		name = DefaultVADModel
	}
	m, err := models.Load(name)
	if err != nil {
		return nil, fmt.Errorf("vad: %w", err)
	}
	if m.Decode.Family != models.FamilySileroVAD {
		return nil, fmt.Errorf("vad: model %s is a %s, not a silero VAD", m.ID(), m.Decode.Family)
	}
	a := m.Audio
	v := &VAD{frame: a.FrameSamples, ctxLen: a.ContextSamples, thr: cfg.Threshold, neg: cfg.NegThreshold}
	if v.thr <= 0 {
		v.thr = m.Thresholds.Score
	}
	if v.neg <= 0 {
		v.neg = max(0.01, v.thr-0.15)
	}
	ms := func(d, def time.Duration) int64 {
		if d <= 0 {
			d = def
		}
		return d.Milliseconds() * AudioRate / 1000
	}
	v.minSpeech, v.minSilence, v.pad = ms(cfg.MinSpeech, 250*time.Millisecond), ms(cfg.MinSilence, 300*time.Millisecond),
		ms(cfg.Pad, defaultVADPad)
	if err := models.InitRuntime(); err != nil {
		return nil, fmt.Errorf("vad: %w", err)
	}
	if v.input, err = ort.NewEmptyTensor[float32](ort.NewShape(1, int64(v.ctxLen+v.frame))); err == nil {
		if v.stateIn, err = ort.NewEmptyTensor[float32](ort.NewShape(2, 1, 128)); err == nil {
			if v.sr, err = ort.NewScalar[int64](AudioRate); err == nil {
				if v.prob, err = ort.NewEmptyTensor[float32](ort.NewShape(1, 1)); err == nil {
					v.stateOut, err = ort.NewEmptyTensor[float32](ort.NewShape(2, 1, 128))
				}
			}
		}
	}
	if err == nil {
		v.sess, err = models.NewAudioSession(m, []ort.Value{v.input, v.stateIn, v.sr},
			[]ort.Value{v.prob, v.stateOut}, models.SessionOptions{IntraOpThreads: cfg.Threads})
	}
	if err != nil {
		v.Close()
		return nil, fmt.Errorf("vad: %w", err)
	}
	v.version = fmt.Sprintf("%s thr=%.2f neg=%.2f min_speech=%dms min_silence=%dms", m.ID(), v.thr, v.neg,
		v.minSpeech*1000/AudioRate, v.minSilence*1000/AudioRate)
	v.pending = make([]float32, 0, v.frame)
	v.Reset()
	return v, nil
}

// Name implements AudioAnalyzer.
func (v *VAD) Name() string { return "vad" }

// Version implements AudioAnalyzer.
func (v *VAD) Version() string { return v.version }

// Reset implements AudioAnalyzer: zero recurrent state and context.
func (v *VAD) Reset() {
	clear(v.stateIn.GetData())
	clear(v.input.GetData())
	v.pending = v.pending[:0]
	v.frames, v.triggered, v.start, v.tempEnd = 0, false, 0, 0
}

// Process implements AudioAnalyzer.
func (v *VAD) Process(_ context.Context, pcm []float32, obs *AudioObservation) error {
	in := v.input.GetData()
	for len(pcm) > 0 {
		n := min(v.frame-len(v.pending), len(pcm))
		v.pending = append(v.pending, pcm[:n]...)
		pcm = pcm[n:]
		if len(v.pending) < v.frame {
			break
		}
		// input = previous frame's last ctxLen samples, then this frame.
		copy(in[:v.ctxLen], in[len(in)-v.ctxLen:])
		copy(in[v.ctxLen:], v.pending)
		v.pending = v.pending[:0]
		if err := v.sess.Run(); err != nil {
			return fmt.Errorf("vad frame %d: %w", v.frames, err)
		}
		v.runs++
		copy(v.stateIn.GetData(), v.stateOut.GetData())
		v.step(v.prob.GetData()[0], obs)
		v.frames++
	}
	// A segment still going is reported with its end so far, so that what is stored after
	// each chunk is complete even if the stretch never continues.
	if v.triggered {
		end := v.frames * int64(v.frame)
		if v.tempEnd != 0 {
			end = min(end, v.tempEnd+v.pad)
		}
		if end-v.start >= v.minSpeech {
			obs.Speech = append(obs.Speech, SpeechSegment{StartMs: toMs(v.start), EndMs: toMs(end), Open: true})
		}
	}
	return nil
}

// step is silero's get_speech_timestamps state machine, one frame at a time.
func (v *VAD) step(p float32, obs *AudioObservation) {
	s := v.frames * int64(v.frame) // first sample of this frame
	switch {
	case p >= v.thr:
		v.tempEnd = 0
		if !v.triggered {
			v.triggered = true
			v.start = max(0, s-v.pad)
		}
	case v.triggered && p < v.neg:
		if v.tempEnd == 0 {
			v.tempEnd = s
		}
		if s+int64(v.frame)-v.tempEnd >= v.minSilence {
			end := v.tempEnd + v.pad
			if end-v.start >= v.minSpeech {
				obs.Speech = append(obs.Speech, SpeechSegment{StartMs: toMs(v.start), EndMs: toMs(end)})
			}
			v.triggered, v.tempEnd = false, 0
		}
	}
}

func toMs(samples int64) int64 { return samples * 1000 / AudioRate }

// AppendState implements AudioAnalyzer.
func (v *VAD) AppendState(dst []byte) []byte {
	w := stateWriter{b: dst}
	w.floats(v.stateIn.GetData())
	w.floats(v.input.GetData()[len(v.input.GetData())-v.ctxLen:])
	w.floats(v.pending)
	w.i64(v.frames)
	w.boolean(v.triggered)
	w.i64(v.start)
	w.i64(v.tempEnd)
	return w.b
}

// RestoreState implements AudioAnalyzer.
func (v *VAD) RestoreState(b []byte) error {
	r := stateReader{b: b}
	st := r.floatsInto(make([]float32, 0, 256))
	ctx := r.floatsInto(make([]float32, 0, v.ctxLen))
	v.pending = r.floatsInto(v.pending)
	v.frames, v.triggered, v.start, v.tempEnd = r.i64(), r.boolean(), r.i64(), r.i64()
	if r.err != nil || len(st) != len(v.stateIn.GetData()) || len(ctx) != v.ctxLen || len(v.pending) >= v.frame {
		v.Reset()
		return ErrStateMismatch
	}
	copy(v.stateIn.GetData(), st)
	in := v.input.GetData()
	copy(in[len(in)-v.ctxLen:], ctx)
	return nil
}

// Close implements AudioAnalyzer.
func (v *VAD) Close() error {
	var first error
	if v.sess != nil {
		first = v.sess.Destroy()
	}
	for _, t := range []interface{ Destroy() error }{v.input, v.stateIn, v.sr, v.prob, v.stateOut} {
		if t != nil && !isNilTensor(t) {
			t.Destroy()
		}
	}
	return first
}

// isNilTensor guards Close after a partial construction (typed nil pointers in the interface).
func isNilTensor(t interface{ Destroy() error }) bool {
	switch x := t.(type) {
	case *ort.Tensor[float32]:
		return x == nil
	case *ort.Scalar[int64]:
		return x == nil
	}
	return false
}
