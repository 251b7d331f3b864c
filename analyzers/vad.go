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
	// Model is the manifest name of the VAD. Default "silero-vad-v5-seq" (silero-vad-v5's
	// network, many frames per call); "silero-vad-v5" is the published graph, one frame per call.
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
const DefaultVADModel = "silero-vad-v5-seq"

// vadMaxBatch is how many frames one call of the sequence model takes at most: ~1 s, what one
// chunk of audio usually brings.
const vadMaxBatch = 32

// defaultVADPad is the padding added before and after speech when VADConfig.Pad is zero.
const defaultVADPad = 100 * time.Millisecond

// VAD finds speech with silero VAD: one model step per 32 ms frame, the recurrent state carried
// from frame to frame and chunk to chunk, hysteresis and minimum durations on top. The sequence
// model (FamilySileroVADSeq) takes all the whole frames a chunk brings in one call, up to
// vadMaxBatch; the published graph (FamilySileroVAD) one per call. Both give the same
// probabilities (TestVADSeqMatchesFrameByFrame).
type VAD struct {
	sess           *ort.AdvancedSession        // FamilySileroVAD: one frame per call
	seq            *ort.DynamicAdvancedSession // FamilySileroVADSeq: up to vadMaxBatch frames per call
	input, stateIn *ort.Tensor[float32]
	sr             *ort.Scalar[int64]
	prob, stateOut *ort.Tensor[float32]
	seqIn, seqProb []*ort.Tensor[float32] // the sequence model's tensors for n frames at [n-1], over buf and probs
	buf            []float32              // the frames of one call, each with its context: vadMaxBatch × (ctxLen+frame)
	probs          []float32              // their speech probabilities
	version        string
	frame, ctxLen  int
	thr, neg       float32
	minSpeech      int64 // samples
	minSilence     int64
	pad            int64

	// Stretch state (saved with AppendState).
	tail      []float32 // the last frame's last ctxLen samples: the next frame's context
	pending   []float32 // samples not yet a whole frame
	frames    int64     // frames analysed in this stretch
	triggered bool      // inside speech
	start     int64     // sample where the current segment starts (padded)
	tempEnd   int64     // first sample of the current quiet run, 0 if none

	runs int64 // model runs since built (a statistic, not state)
}

// ModelRuns implements analyzers.ModelRuns: silero calls (one per 32 ms frame, or one per chunk
// with the sequence model).
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
	if m.Decode.Family != models.FamilySileroVAD && m.Decode.Family != models.FamilySileroVADSeq {
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
	width := v.ctxLen + v.frame
	v.buf, v.probs = make([]float32, vadMaxBatch*width), make([]float32, vadMaxBatch)
	if v.stateIn, err = ort.NewEmptyTensor[float32](ort.NewShape(2, 1, 128)); err == nil {
		v.stateOut, err = ort.NewEmptyTensor[float32](ort.NewShape(2, 1, 128))
	}
	opts := models.SessionOptions{IntraOpThreads: cfg.Threads}
	switch {
	case err != nil:
	case m.Decode.Family == models.FamilySileroVADSeq:
		v.seqIn, v.seqProb = make([]*ort.Tensor[float32], vadMaxBatch), make([]*ort.Tensor[float32], vadMaxBatch)
		v.seq, err = models.NewDynamicAudioSession(m, opts)
	default:
		if v.input, err = ort.NewEmptyTensor[float32](ort.NewShape(1, int64(width))); err == nil {
			if v.sr, err = ort.NewScalar[int64](AudioRate); err == nil {
				if v.prob, err = ort.NewEmptyTensor[float32](ort.NewShape(1, 1)); err == nil {
					v.sess, err = models.NewAudioSession(m, []ort.Value{v.input, v.stateIn, v.sr},
						[]ort.Value{v.prob, v.stateOut}, opts)
				}
			}
		}
	}
	if err != nil {
		v.Close()
		return nil, fmt.Errorf("vad: %w", err)
	}
	v.version = fmt.Sprintf("%s thr=%.2f neg=%.2f min_speech=%dms min_silence=%dms", m.ID(), v.thr, v.neg,
		v.minSpeech*1000/AudioRate, v.minSilence*1000/AudioRate)
	v.pending, v.tail = make([]float32, 0, v.frame), make([]float32, v.ctxLen)
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
	clear(v.tail)
	v.pending = v.pending[:0]
	v.frames, v.triggered, v.start, v.tempEnd = 0, false, 0, 0
}

// Process implements AudioAnalyzer.
func (v *VAD) Process(_ context.Context, pcm []float32, obs *AudioObservation) error {
	for {
		var n int
		if n, pcm = v.fill(pcm); n == 0 {
			break
		}
		if err := v.infer(n); err != nil {
			return err
		}
		for _, p := range v.probs[:n] {
			v.step(p, obs)
			v.frames++
		}
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

// fill puts the next whole frames of pending + pcm into buf (at most vadMaxBatch), each after the
// previous frame's last ctxLen samples, and returns how many and the samples it did not take.
func (v *VAD) fill(pcm []float32) (int, []float32) {
	width := v.ctxLen + v.frame
	n := 0
	for n < vadMaxBatch && len(pcm) > 0 {
		take := min(v.frame-len(v.pending), len(pcm))
		v.pending = append(v.pending, pcm[:take]...)
		pcm = pcm[take:]
		if len(v.pending) < v.frame {
			break
		}
		row := v.buf[n*width : (n+1)*width]
		copy(row, v.tail)
		copy(row[v.ctxLen:], v.pending)
		copy(v.tail, v.pending[v.frame-v.ctxLen:])
		v.pending = v.pending[:0]
		n++
	}
	return n, pcm
}

// infer sets probs[:n] for the n frames in buf and carries the recurrent state past them.
func (v *VAD) infer(n int) error {
	width := v.ctxLen + v.frame
	if v.seq == nil {
		for i := range n {
			copy(v.input.GetData(), v.buf[i*width:(i+1)*width])
			if err := v.sess.Run(); err != nil {
				return fmt.Errorf("vad frame %d: %w", v.frames+int64(i), err)
			}
			v.runs++
			copy(v.stateIn.GetData(), v.stateOut.GetData())
			v.probs[i] = v.prob.GetData()[0]
		}
		return nil
	}
	if v.seqIn[n-1] == nil {
		in, err := ort.NewTensor(ort.NewShape(int64(n), int64(width)), v.buf[:n*width])
		if err != nil {
			return fmt.Errorf("vad: %w", err)
		}
		out, err := ort.NewTensor(ort.NewShape(int64(n)), v.probs[:n])
		if err != nil {
			in.Destroy()
			return fmt.Errorf("vad: %w", err)
		}
		v.seqIn[n-1], v.seqProb[n-1] = in, out
	}
	if err := v.seq.Run([]ort.Value{v.seqIn[n-1], v.stateIn}, []ort.Value{v.seqProb[n-1], v.stateOut}); err != nil {
		return fmt.Errorf("vad frames %d–%d: %w", v.frames, v.frames+int64(n)-1, err)
	}
	v.runs++
	copy(v.stateIn.GetData(), v.stateOut.GetData())
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
	w.floats(v.tail)
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
	copy(v.tail, ctx)
	return nil
}

// Close implements AudioAnalyzer.
func (v *VAD) Close() error {
	var first error
	if v.sess != nil {
		first = v.sess.Destroy()
	}
	if v.seq != nil {
		first = v.seq.Destroy()
	}
	tensors := []interface{ Destroy() error }{v.input, v.stateIn, v.sr, v.prob, v.stateOut}
	for i := range v.seqIn {
		tensors = append(tensors, v.seqIn[i], v.seqProb[i])
	}
	for _, t := range tensors {
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
