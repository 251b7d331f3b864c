package analyzers

import (
	"context"
	"fmt"
	"math"
	"slices"

	ort "github.com/yalue/onnxruntime_go"

	"proctor/models"
)

// VoiceConfig configures the "voice" audio analyzer, which embeds the speaker of each stretch of
// speech (Resemblyzer's GE2E encoder) so the rules can tell the candidate's voice from another.
// It must run after "vad": it embeds only what the VAD called speech. Zero values take the
// defaults noted.
type VoiceConfig struct {
	// Model is the manifest name of the speaker encoder. Default "resemblyzer-ge2e".
	Model string `json:"model,omitempty"`
	// WindowFrames: speech frames (10 ms) per embedding; a longer segment gives one embedding per
	// window. Default 160 (1.6 s, the partial length the encoder was trained on).
	WindowFrames int `json:"window_frames,omitempty"`
	// MinFrames: the speech left at the end of a segment is embedded if at least this long,
	// otherwise dropped (too short to know a voice by). Default 80 (0.8 s).
	MinFrames int `json:"min_frames,omitempty"`
	// SkipFrames: speech frames skipped after each window before the next one starts. Default 0
	// (every second of speech is heard); 160 halves the cost and hears half of long speech.
	SkipFrames int `json:"skip_frames,omitempty"`
	// Batch: full windows of one stretch of speech wait until this many are ready (or the
	// speech stops) and go through the encoder in one call. The LSTM reads all its weights at
	// every step whatever the batch, so 4 windows cost about twice one (4.7 vs 8.5 ms each here)
	// with bit-identical embeddings; the price is that a window is reported up to Batch−1
	// windows of speech later, and a stretch cut off mid-speech loses the windows still waiting.
	// Default 4; 1 runs every window on its own.
	Batch int `json:"batch,omitempty"`
	// Threads is the encoder session's intra-op thread count. Default 1.
	Threads int `json:"threads,omitempty"`
}

// DefaultVoiceModel is the speaker encoder used when VoiceConfig.Model is empty.
const DefaultVoiceModel = "resemblyzer-ge2e"

// VoiceWindow is one speaker embedding of a stretch of speech, in ms from the start of the stretch
// (first frame's start to last frame's end). Embedding is L2-normalised (256-d, components
// 0..1 after the encoder's ReLU), rounded to multiples of 1/255 as it is stored.
type VoiceWindow struct {
	StartMs   int64     `json:"start_ms"`
	EndMs     int64     `json:"end_ms"`
	Embedding []float32 `json:"embedding"`
}

// voiceMargin: frames this close to the end of the audio analysed are not judged yet unless an
// open segment covers them — the VAD may still start a segment there (its 100 ms pad reaches
// back, and a segment is only reported once 250 ms long).
const voiceMargin = 400 * AudioRate / 1000

// Voice embeds the speech the VAD found: 40-band mel frames of speech only, one encoder run per
// WindowFrames of speech and one for what is left when a segment ends (≥ MinFrames), each
// window's level normalised to −30 dBFS as Resemblyzer does for whole utterances.
type Voice struct {
	sess    *ort.DynamicAdvancedSession
	out     *ort.Tensor[float32]
	mel     *voiceMel
	version string
	window  int
	minLen  int
	skip    int
	batch   int

	base []float32 // storage of buf

	// Stretch state (saved with AppendState).
	next     int64          // first frame not yet judged speech or not
	buf      []float32      // samples from next·160 on
	segs     []voiceSegment // VAD segments that may still cover frames ≥ next (ms)
	acc      []float32      // mel frames of the window being filled
	accPow   []float32      // mean square of each accumulated frame's 160 new samples
	accStart int64          // its first frame
	accLast  int64          // its last frame
	skipLeft int            // speech frames still to skip
	// Full windows waiting for the batch: their mel frames (level-normalised), window after
	// window, and their spans in ms.
	held      []float32
	heldSpans [][2]int64

	runs int64 // encoder calls since built (a statistic, not state)
}

// ModelRuns implements analyzers.ModelRuns: speaker encoder calls (a batch is one call).
func (v *Voice) ModelRuns() int64 { return v.runs }

type voiceSegment struct {
	start, end int64
	open       bool
}

// NewVoice loads (and checksums) the speaker encoder.
func NewVoice(cfg VoiceConfig) (*Voice, error) {
	name := cfg.Model
	if name == "" {
		name = DefaultVoiceModel
	}
	m, err := models.Load(name)
	if err != nil {
		return nil, fmt.Errorf("voice: %w", err)
	}
	if m.Decode.Family != models.FamilySpeakerEncoder {
		return nil, fmt.Errorf("voice: model %s is a %s, not a speaker encoder", m.ID(), m.Decode.Family)
	}
	v := &Voice{mel: newVoiceMel(), window: cfg.WindowFrames, minLen: cfg.MinFrames, skip: cfg.SkipFrames, batch: cfg.Batch}
	if v.batch <= 0 {
		v.batch = 4
	}
	if v.window <= 0 {
		v.window = m.Audio.Window
	}
	if v.minLen <= 0 {
		v.minLen = min(80, v.window)
	}
	if v.sess, v.out, err = models.NewSpeakerSession(m, cfg.Threads); err != nil {
		return nil, fmt.Errorf("voice: %w", err)
	}
	v.version = fmt.Sprintf("%s window=%d min=%d skip=%d batch=%d", m.ID(), v.window, v.minLen, v.skip, v.batch)
	v.Reset()
	return v, nil
}

// Name implements AudioAnalyzer.
func (v *Voice) Name() string { return "voice" }

// Version implements AudioAnalyzer.
func (v *Voice) Version() string { return v.version }

// Reset implements AudioAnalyzer.
func (v *Voice) Reset() {
	v.next, v.buf, v.segs = 0, v.buf[:0], v.segs[:0]
	v.acc, v.accPow, v.accStart, v.accLast, v.skipLeft = v.acc[:0], v.accPow[:0], 0, 0, 0
	v.held, v.heldSpans = v.held[:0], v.heldSpans[:0]
}

// Process implements AudioAnalyzer. obs.Speech holds what the VAD found in the same chunk.
func (v *Voice) Process(_ context.Context, pcm []float32, obs *AudioObservation) error {
	v.buf = append(v.buf, pcm...)
	for _, s := range obs.Speech {
		v.noteSegment(voiceSegment{s.StartMs, s.EndMs, s.Open})
	}
	end := v.next*voiceHop + int64(len(v.buf)) // samples of the stretch seen so far
	horizon := end - voiceMargin               // frames centred before it are decided
	for _, s := range v.segs {
		if s.open { // speech up to its end so far; after it, the VAD has not decided yet
			horizon = s.end * AudioRate / 1000
		}
	}
	for {
		start := v.next * voiceHop
		if start+voiceFFT > end || start+voiceFFT/2 >= horizon {
			break
		}
		if err := v.judge(start, obs); err != nil {
			return err
		}
		v.next++
		v.buf = v.buf[voiceHop:]
	}
	// Move what is left to the front of the buffer's storage (reused from chunk to chunk).
	v.buf = append(v.base[:0], v.buf...)
	v.base = v.buf[:0]
	v.dropSegments()
	return nil
}

// noteSegment records a VAD segment (the same StartMs again is the same segment, later end).
func (v *Voice) noteSegment(s voiceSegment) {
	for i := range v.segs {
		if v.segs[i].start == s.start {
			v.segs[i] = s
			return
		}
	}
	v.segs = append(v.segs, s)
}

// dropSegments forgets closed segments that end before the next frame to judge.
func (v *Voice) dropSegments() {
	centre := (v.next*voiceHop + voiceFFT/2) * 1000 / AudioRate
	out := v.segs[:0]
	for _, s := range v.segs {
		if s.open || s.end > centre {
			out = append(out, s)
		}
	}
	v.segs = out
}

// judge handles the frame starting at sample start (v.buf[0]): speech joins the window, a
// non-speech frame ends the window.
func (v *Voice) judge(start int64, obs *AudioObservation) error {
	centreMs := (start + voiceFFT/2) * 1000 / AudioRate
	speech := false
	for _, s := range v.segs {
		if centreMs >= s.start && centreMs < s.end {
			speech = true
			break
		}
	}
	if !speech {
		v.skipLeft = 0
		if err := v.flush(obs); err != nil {
			return err
		}
		if len(v.accPow) >= v.minLen {
			return v.embed(obs)
		}
		v.acc, v.accPow = v.acc[:0], v.accPow[:0]
		return nil
	}
	if v.skipLeft > 0 {
		v.skipLeft--
		return nil
	}
	if len(v.accPow) == 0 {
		v.accStart = v.next
	}
	v.accLast = v.next
	n := len(v.acc)
	v.acc = slices.Grow(v.acc, voiceMels)[:n+voiceMels] // storage for a whole window after the first
	v.mel.frame(v.buf, v.acc[n:])
	var ms float64
	for _, x := range v.buf[voiceFFT-voiceHop : voiceFFT] {
		ms += float64(x) * float64(x)
	}
	v.accPow = append(v.accPow, float32(ms/voiceHop))
	if len(v.accPow) >= v.window {
		v.skipLeft = v.skip
		return v.hold(obs)
	}
	return nil
}

// hold puts the full window aside for the batch, and runs the batch once it is complete.
func (v *Voice) hold(obs *AudioObservation) error {
	v.normalise()
	v.held = append(v.held, v.acc...)
	v.heldSpans = append(v.heldSpans, v.span())
	v.acc, v.accPow = v.acc[:0], v.accPow[:0]
	if len(v.heldSpans) >= v.batch {
		return v.flush(obs)
	}
	return nil
}

// Flush implements analyzers.Flusher: the recording ends, so the held windows are embedded now
// (the window still filling is left, as at any stretch's end).
func (v *Voice) Flush(obs *AudioObservation) error { return v.flush(obs) }

// flush embeds the windows held for the batch in one encoder call.
func (v *Voice) flush(obs *AudioObservation) error {
	n := len(v.heldSpans)
	if n == 0 {
		return nil
	}
	out := v.out
	if n > 1 {
		var err error
		if out, err = ort.NewEmptyTensor[float32](ort.NewShape(int64(n), 256)); err != nil {
			return fmt.Errorf("voice output: %w", err)
		}
		defer out.Destroy()
	}
	if err := v.run(v.held, n, v.window, out); err != nil {
		return err
	}
	emb := out.GetData()
	for i, sp := range v.heldSpans {
		obs.Voices = append(obs.Voices, VoiceWindow{StartMs: sp[0], EndMs: sp[1], Embedding: quantiseVoice(emb[i*256 : (i+1)*256])})
	}
	v.held, v.heldSpans = v.held[:0], v.heldSpans[:0]
	return nil
}

// span is the accumulated window's first frame's start to its last frame's end, in ms.
func (v *Voice) span() [2]int64 {
	return [2]int64{v.accStart * voiceHop * 1000 / AudioRate, (v.accLast*voiceHop + voiceFFT) * 1000 / AudioRate}
}

// normalise applies Resemblyzer's normalize_volume(increase_only=True) to the accumulated
// window, on the power spectrum: gain² = 10^(Δ/10).
func (v *Voice) normalise() {
	var ms float64
	for _, p := range v.accPow {
		ms += float64(p)
	}
	ms /= float64(len(v.accPow))
	if db := 10 * math.Log10(max(ms, 1e-20)); db < voiceRefDBS {
		g := float32(math.Pow(10, (voiceRefDBS-db)/10))
		for i := range v.acc {
			v.acc[i] *= g
		}
	}
}

// run encodes n windows of frames mel frames each into out ([n, 256]).
func (v *Voice) run(mel []float32, n, frames int, out *ort.Tensor[float32]) error {
	in, err := ort.NewTensor(ort.NewShape(int64(n), int64(frames), voiceMels), mel)
	if err != nil {
		return fmt.Errorf("voice input: %w", err)
	}
	defer in.Destroy()
	if err := v.sess.Run([]ort.Value{in}, []ort.Value{out}); err != nil {
		return fmt.Errorf("voice encoder: %w", err)
	}
	v.runs++
	return nil
}

// quantiseVoice rounds an embedding to one byte per component, as stored (store.VoiceWindow):
// the service, the CLI and the evaluation then score the same numbers.
func quantiseVoice(x []float32) []float32 {
	e := make([]float32, len(x))
	for i, c := range x {
		e[i] = float32(math.Round(float64(max(0, min(1, c)))*255)) / 255
	}
	return e
}

// embed runs the encoder on the accumulated (shorter) window on its own and reports it.
func (v *Voice) embed(obs *AudioObservation) error {
	v.normalise()
	if err := v.run(v.acc, 1, len(v.accPow), v.out); err != nil {
		return err
	}
	sp := v.span()
	obs.Voices = append(obs.Voices, VoiceWindow{StartMs: sp[0], EndMs: sp[1], Embedding: quantiseVoice(v.out.GetData())})
	v.acc, v.accPow = v.acc[:0], v.accPow[:0]
	return nil
}

// AppendState implements AudioAnalyzer.
func (v *Voice) AppendState(dst []byte) []byte {
	w := stateWriter{b: dst}
	w.i64(v.next)
	w.floats(v.buf)
	w.u32(uint32(len(v.segs)))
	for _, s := range v.segs {
		w.i64(s.start)
		w.i64(s.end)
		w.boolean(s.open)
	}
	w.floats(v.acc)
	w.floats(v.accPow)
	w.i64(v.accStart)
	w.i64(v.accLast)
	w.u32(uint32(v.skipLeft))
	w.floats(v.held)
	w.u32(uint32(len(v.heldSpans)))
	for _, sp := range v.heldSpans {
		w.i64(sp[0])
		w.i64(sp[1])
	}
	return w.b
}

// RestoreState implements AudioAnalyzer.
func (v *Voice) RestoreState(b []byte) error {
	r := stateReader{b: b}
	v.next = r.i64()
	v.buf = r.floatsInto(v.buf)
	n := int(r.u32())
	if n > len(b) {
		v.Reset()
		return ErrStateMismatch
	}
	v.segs = v.segs[:0]
	for range n {
		v.segs = append(v.segs, voiceSegment{r.i64(), r.i64(), r.boolean()})
	}
	v.acc = r.floatsInto(v.acc)
	v.accPow = r.floatsInto(v.accPow)
	v.accStart, v.accLast, v.skipLeft = r.i64(), r.i64(), int(r.u32())
	v.held = r.floatsInto(v.held)
	h := int(r.u32())
	if h > v.batch {
		v.Reset()
		return ErrStateMismatch
	}
	v.heldSpans = v.heldSpans[:0]
	for range h {
		v.heldSpans = append(v.heldSpans, [2]int64{r.i64(), r.i64()})
	}
	if r.err != nil || len(v.acc) != voiceMels*len(v.accPow) || len(v.accPow) > v.window || len(v.held) != h*v.window*voiceMels {
		v.Reset()
		return ErrStateMismatch
	}
	return nil
}

// Close implements AudioAnalyzer.
func (v *Voice) Close() error {
	var first error
	if v.sess != nil {
		first = v.sess.Destroy()
	}
	if v.out != nil {
		v.out.Destroy()
	}
	return first
}
