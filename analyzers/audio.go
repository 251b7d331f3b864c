package analyzers

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sort"
	"strings"
	"time"
)

// AudioRate is the sample rate every audio analyzer works at; AudioSet resamples to it.
const AudioRate = 16000

// AudioAnalyzer is one streaming check over a stretch of 16 kHz mono audio: a run of chunks
// without a gap. It keeps state between calls (recurrent model state, half-filled frames), and
// that state can be saved and restored so that any worker can continue a stretch another worker
// began (see worker/audio.go). Like Analyzer it is not safe for concurrent use.
type AudioAnalyzer interface {
	Name() string
	// Version identifies the model and thresholds, stored with what the analyzer finds.
	Version() string
	// Reset starts a new stretch with fresh state.
	Reset()
	// Process analyses the next samples of the stretch (-1..1) and appends what it found to obs.
	Process(ctx context.Context, pcm []float32, obs *AudioObservation) error
	// AppendState appends the stretch state to dst; RestoreState reads it back.
	AppendState(dst []byte) []byte
	RestoreState(b []byte) error
	Close() error
}

// SpeechSegment is a stretch of speech, in ms from the start of the stretch. Open means it was
// still going at the end of the audio analysed so far: EndMs is provisional and will grow. A
// segment is identified by StartMs: later calls report the same segment with a later end.
type SpeechSegment struct {
	StartMs int64 `json:"start_ms"`
	EndMs   int64 `json:"end_ms"`
	Open    bool  `json:"open,omitempty"`
}

// PhraseDetection is one spotted "该题回答完毕" (or a same-meaning variant), in ms from the start of
// the stretch. EndMs is the end of the classifier window with the best score (≈ the end of the
// phrase); StartMs is EndMs minus the phrase's typical length. OnsetMs (the first window over the
// threshold) identifies it; Final is false while the best score may still rise.
type PhraseDetection struct {
	OnsetMs int64   `json:"onset_ms"`
	StartMs int64   `json:"start_ms"`
	EndMs   int64   `json:"end_ms"`
	Score   float32 `json:"score"`
	Final   bool    `json:"final"`
}

// AudioObservation is what the audio analyzers found in one call.
type AudioObservation struct {
	Speech  []SpeechSegment
	Phrases []PhraseDetection
	// ShadowPhrases are a shadow head's detections (stored apart, never flags); ShadowModel and
	// ActiveModel name the two versions when a shadow runs.
	ShadowPhrases            []PhraseDetection
	ShadowModel, ActiveModel string
	// Voices are the speaker embeddings of the speech judged in this call (analyzer "voice").
	Voices []VoiceWindow
	// ProcessedMs is how much of the stretch has been analysed (16 kHz samples / 16).
	ProcessedMs int64
}

func (o *AudioObservation) reset() {
	o.Speech, o.Phrases, o.ShadowPhrases, o.ProcessedMs = o.Speech[:0], o.Phrases[:0], o.ShadowPhrases[:0], 0
	o.Voices = o.Voices[:0]
	o.ShadowModel, o.ActiveModel = "", ""
}

// AudioConfig selects and configures the audio analyzers.
type AudioConfig struct {
	// Analyzers names the audio analyzers, in order. Default ["vad", "phrase", "voice"]
	// ("voice" embeds what "vad" found, so it comes after it).
	Analyzers []string     `json:"analyzers,omitempty"`
	VAD       VADConfig    `json:"vad"`
	Phrase    PhraseConfig `json:"phrase"`
	Voice     VoiceConfig  `json:"voice"`
}

// DefaultAudioAnalyzers run when AudioConfig.Analyzers is empty.
var DefaultAudioAnalyzers = []string{"vad", "phrase", "voice"}

// audioConstructors is the registry of audio analyzers by name: adding one is a file and a line.
var audioConstructors = map[string]func(cfg *AudioConfig) (AudioAnalyzer, error){
	"vad": func(cfg *AudioConfig) (AudioAnalyzer, error) { return NewVAD(cfg.VAD) },
	"phrase": func(cfg *AudioConfig) (AudioAnalyzer, error) {
		pc := cfg.Phrase
		pad := cfg.VAD.Pad
		if pad <= 0 {
			pad = defaultVADPad
		}
		pc.vadPad = pad.Milliseconds() * AudioRate / 1000
		names := cfg.Analyzers
		if len(names) == 0 {
			names = DefaultAudioAnalyzers
		}
		if v := slices.Index(names, "vad"); v >= 0 && v < slices.Index(names, "phrase") {
			pc.vadBefore = true
		}
		if sil := cfg.VAD.MinSilence; sil > 0 {
			pc.vadLag = sil.Milliseconds()*AudioRate/1000 + 1024 // two VAD frames
		}
		return NewPhrase(pc)
	},
	"voice": func(cfg *AudioConfig) (AudioAnalyzer, error) { return NewVoice(cfg.Voice) },
}

// AudioSet is the audio analyzers one worker runs: it converts s16le PCM at any rate from 8 to
// 48 kHz to 16 kHz float samples once and feeds every analyzer. Not safe for concurrent use.
type AudioSet struct {
	analyzers []AudioAnalyzer
	rs        resampler
	samples   int64 // 16 kHz samples of this stretch analysed so far
	in, out   []float32
	// cpu is the thread CPU time spent per stage since the set was built: cpu[0] resampling,
	// cpu[i+1] analyzers[i] (see StageCPU).
	cpu []time.Duration
}

// StageCost is one stage's share of the analysis: its name, the thread CPU time it used, and
// how many times its main network ran (Runs, from ModelRuns; 0 for resampling): a count that,
// unlike CPU time on a shared machine, the neighbours' load cannot change.
type StageCost struct {
	Name string
	CPU  time.Duration
	Runs int64
}

// Flusher is implemented by audio analyzers that hold results back for a while (the speaker
// encoder's batch): Flush reports them when the recording is known to end (AnalyzeSamples). A
// live stretch is never flushed: it may continue with the next chunk.
type Flusher interface {
	Flush(obs *AudioObservation) error
}

// ModelRuns is implemented by audio analyzers that count their main network's work since they
// were built (VAD: silero calls, one per frame with the published graph, one per chunk with the
// sequence graph; phrase: openWakeWord embeddings computed, a run of them per call at speech
// ends, or EWN windows; voice: encoder calls).
type ModelRuns interface{ ModelRuns() int64 }

// StageCPU is the thread CPU time each stage used since the set was built, in run order:
// "resample", then every analyzer by name ("vad", "phrase", and whatever is added to the
// registry, e.g. a speaker stage), so `proctor eval audio` can print speed per stage.
func (s *AudioSet) StageCPU() []StageCost {
	out := make([]StageCost, 0, len(s.cpu))
	out = append(out, StageCost{Name: "resample", CPU: s.cpu[0]})
	for i, a := range s.analyzers {
		c := StageCost{Name: a.Name(), CPU: s.cpu[i+1]}
		if m, ok := a.(ModelRuns); ok {
			c.Runs = m.ModelRuns()
		}
		out = append(out, c)
	}
	return out
}

// NewAudioSet builds the analyzers cfg names (model files are checksummed on load).
func NewAudioSet(cfg AudioConfig) (*AudioSet, error) {
	names := cfg.Analyzers
	if len(names) == 0 {
		names = DefaultAudioAnalyzers
	}
	if i := slices.Index(names, "voice"); i >= 0 && !slices.Contains(names[:i], "vad") {
		return nil, fmt.Errorf("audio analyzer \"voice\" needs \"vad\" before it (it embeds the speech the VAD finds)")
	}
	s := &AudioSet{}
	for i, n := range names {
		ctor, ok := audioConstructors[n]
		if !ok || slices.Contains(names[:i], n) {
			s.Close()
			known := make([]string, 0, len(audioConstructors))
			for k := range audioConstructors {
				known = append(known, k)
			}
			sort.Strings(known)
			return nil, fmt.Errorf("audio analyzer %q unknown or listed twice (known: %s)", n, strings.Join(known, ", "))
		}
		a, err := ctor(&cfg)
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("build audio analyzer %q: %w", n, err)
		}
		if p, ok := a.(*Phrase); ok && p.NeedsVAD() && !slices.Contains(names[:i], "vad") {
			a.Close()
			s.Close()
			return nil, fmt.Errorf("audio analyzer phrase with %s looks at the VAD's speech ends: list \"vad\" before it", p.Version())
		}
		s.analyzers = append(s.analyzers, a)
	}
	s.cpu = make([]time.Duration, len(s.analyzers)+1)
	s.Reset(AudioRate)
	return s, nil
}

// Analyzers returns the analyzers in run order.
func (s *AudioSet) Analyzers() []AudioAnalyzer { return s.analyzers }

// Version names every analyzer and its model version, e.g. "phrase=...,vad=...".
func (s *AudioSet) Version() string {
	parts := make([]string, 0, len(s.analyzers))
	for _, a := range s.analyzers {
		parts = append(parts, a.Name()+"="+a.Version())
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

// ShortVersion is Version with only each model and its threshold (≤ 128 bytes: it is stored on
// every flag the audio rules raise).
func (s *AudioSet) ShortVersion() string {
	parts := make([]string, 0, len(s.analyzers))
	for _, a := range s.analyzers {
		f := strings.Fields(a.Version())
		keep := f[:min(1, len(f))]
		for _, x := range f[1:] {
			if strings.HasPrefix(x, "thr=") {
				keep = append(keep, x)
			}
		}
		parts = append(parts, a.Name()+"="+strings.Join(keep, " "))
	}
	sort.Strings(parts)
	v := strings.Join(parts, ",")
	return v[:min(len(v), 128)]
}

// Reset starts a new stretch whose audio arrives at rate Hz.
func (s *AudioSet) Reset(rate int) {
	s.rs.reset(rate, AudioRate)
	s.samples = 0
	for _, a := range s.analyzers {
		a.Reset()
	}
}

// Rate is the input rate of the current stretch.
func (s *AudioSet) Rate() int { return s.rs.inRate }

// ProcessPCM analyses the next chunk of the stretch: s16le mono samples at the stretch's rate.
func (s *AudioSet) ProcessPCM(ctx context.Context, pcm []byte, obs *AudioObservation) error {
	n := len(pcm) / 2
	s.in = slices.Grow(s.in[:0], n)[:n]
	for i := range n {
		s.in[i] = float32(int16(binary.LittleEndian.Uint16(pcm[2*i:]))) / 32768
	}
	return s.Process(ctx, s.in, obs)
}

// Process analyses the next samples (-1..1, at the stretch's rate).
func (s *AudioSet) Process(ctx context.Context, samples []float32, obs *AudioObservation) error {
	obs.reset()
	// The models run on the calling thread (one intra-op thread): locked to it, the thread's CPU
	// clock measures each stage, unaffected by other processes on the machine.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	t := ThreadCPU()
	s.out = s.rs.process(samples, s.out[:0])
	for i, a := range s.analyzers {
		if err := ctx.Err(); err != nil {
			return err
		}
		t1 := ThreadCPU()
		s.cpu[i] += t1 - t
		t = t1
		if err := a.Process(ctx, s.out, obs); err != nil {
			return fmt.Errorf("audio analyzer %s: %w", a.Name(), err)
		}
	}
	s.cpu[len(s.analyzers)] += ThreadCPU() - t
	s.samples += int64(len(s.out))
	obs.ProcessedMs = s.samples * 1000 / AudioRate
	return nil
}

// stateVersion is bumped when the saved state's layout changes: an old checkpoint then starts a
// fresh stretch instead of being misread.
const stateVersion = 1

// ErrStateMismatch means a saved stretch state was written by a different build or analyzer set.
var ErrStateMismatch = errors.New("audio state from a different analyzer set or build")

// MarshalState saves the stretch: resampler, position and every analyzer's state.
func (s *AudioSet) MarshalState() []byte {
	var w stateWriter
	w.u32(stateVersion)
	w.str(s.Version())
	w.i64(s.samples)
	s.rs.appendState(&w)
	for _, a := range s.analyzers {
		start := len(w.b)
		w.u32(0) // length, filled below
		w.b = a.AppendState(w.b)
		binary.LittleEndian.PutUint32(w.b[start:], uint32(len(w.b)-start-4))
	}
	return w.b
}

// UnmarshalState restores a stretch saved by MarshalState. On ErrStateMismatch the set is reset
// to a fresh stretch at the same rate and the caller decides what to do.
func (s *AudioSet) UnmarshalState(b []byte) error {
	r := stateReader{b: b}
	if r.u32() != stateVersion || r.str() != s.Version() {
		return ErrStateMismatch
	}
	s.samples = r.i64()
	if err := s.rs.restoreState(&r); err != nil {
		return err
	}
	for _, a := range s.analyzers {
		n := int(r.u32())
		part := r.bytes(n)
		if r.err != nil {
			return r.err
		}
		if err := a.RestoreState(part); err != nil {
			return fmt.Errorf("restore %s: %w", a.Name(), err)
		}
	}
	return r.err
}

// Close closes every analyzer.
func (s *AudioSet) Close() error {
	var errs []error
	for _, a := range s.analyzers {
		errs = append(errs, a.Close())
	}
	s.analyzers = nil
	return errors.Join(errs...)
}

// AudioResult is a whole recording analysed as one stretch (CLI, evaluation, uploads).
type AudioResult struct {
	DurationMs int64             `json:"duration_ms"`
	Speech     [][2]int64        `json:"speech"`
	Phrases    []PhraseDetection `json:"phrases"`
	// VoiceWindows are the speaker embeddings in time order (analyzer "voice").
	VoiceWindows []VoiceWindow `json:"-"`
}

// AnalyzeSamples runs the set over a whole recording (-1..1 at rate Hz) in chunks of chunkMs,
// exactly as the pipeline would see it arrive, and collects the final segments and detections.
func (s *AudioSet) AnalyzeSamples(ctx context.Context, samples []float32, rate int, chunkMs int) (AudioResult, error) {
	s.Reset(rate)
	if chunkMs <= 0 {
		chunkMs = 1000
	}
	step := max(1, rate*chunkMs/1000)
	speech := map[int64]int64{}
	phrases := map[int64]PhraseDetection{}
	var obs AudioObservation
	var res AudioResult
	for i := 0; i < len(samples); i += step {
		if err := s.Process(ctx, samples[i:min(len(samples), i+step)], &obs); err != nil {
			return AudioResult{}, err
		}
		for _, sg := range obs.Speech {
			speech[sg.StartMs] = max(speech[sg.StartMs], sg.EndMs)
		}
		for _, p := range obs.Phrases {
			phrases[p.OnsetMs] = p
		}
		res.VoiceWindows = append(res.VoiceWindows, obs.Voices...)
	}
	obs.reset()
	for _, a := range s.analyzers {
		if f, ok := a.(Flusher); ok {
			if err := f.Flush(&obs); err != nil {
				return AudioResult{}, fmt.Errorf("audio analyzer %s: %w", a.Name(), err)
			}
		}
	}
	res.VoiceWindows = append(res.VoiceWindows, obs.Voices...)
	res.DurationMs = int64(len(samples)) * 1000 / int64(max(rate, 1))
	res.Speech, res.Phrases = make([][2]int64, 0, len(speech)), make([]PhraseDetection, 0, len(phrases))
	for st, en := range speech {
		res.Speech = append(res.Speech, [2]int64{st, en})
	}
	sort.Slice(res.Speech, func(i, j int) bool { return res.Speech[i][0] < res.Speech[j][0] })
	for _, p := range phrases {
		res.Phrases = append(res.Phrases, p)
	}
	sort.Slice(res.Phrases, func(i, j int) bool { return res.Phrases[i].EndMs < res.Phrases[j].EndMs })
	return res, nil
}

// ---- state encoding: little-endian, length-prefixed, no reflection (runs per chunk) ----

type stateWriter struct{ b []byte }

func (w *stateWriter) u32(v uint32) { w.b = binary.LittleEndian.AppendUint32(w.b, v) }
func (w *stateWriter) i64(v int64)  { w.b = binary.LittleEndian.AppendUint64(w.b, uint64(v)) }
func (w *stateWriter) f32(v float32) {
	w.b = binary.LittleEndian.AppendUint32(w.b, math.Float32bits(v))
}
func (w *stateWriter) str(s string) { w.u32(uint32(len(s))); w.b = append(w.b, s...) }
func (w *stateWriter) floats(v []float32) {
	w.u32(uint32(len(v)))
	for _, x := range v {
		w.f32(x)
	}
}

// pcm16 writes a length-prefixed ring of 16-bit samples (the phrase spotters' audio rings).
func (w *stateWriter) pcm16(v []int16) {
	w.u32(uint32(len(v)))
	for _, x := range v {
		w.b = binary.LittleEndian.AppendUint16(w.b, uint16(x))
	}
}
func (w *stateWriter) boolean(v bool) {
	if v {
		w.b = append(w.b, 1)
	} else {
		w.b = append(w.b, 0)
	}
}

type stateReader struct {
	b   []byte
	err error
}

func (r *stateReader) bytes(n int) []byte {
	if r.err != nil || n < 0 || n > len(r.b) {
		if r.err == nil {
			r.err = ErrStateMismatch
		}
		return nil
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}
func (r *stateReader) u32() uint32 {
	if b := r.bytes(4); b != nil {
		return binary.LittleEndian.Uint32(b)
	}
	return 0
}
func (r *stateReader) i64() int64 {
	if b := r.bytes(8); b != nil {
		return int64(binary.LittleEndian.Uint64(b))
	}
	return 0
}
func (r *stateReader) f32() float32 { return math.Float32frombits(r.u32()) }
func (r *stateReader) str() string  { return string(r.bytes(int(r.u32()))) }
func (r *stateReader) boolean() bool {
	b := r.bytes(1)
	return b != nil && b[0] == 1
}

// pcm16Into reads what pcm16 wrote into dst's storage (grown if needed); more than most
// samples is a mismatch.
func (r *stateReader) pcm16Into(dst []int16, most int) []int16 {
	m := int(r.u32())
	b := r.bytes(2 * m)
	if r.err != nil || m > most {
		r.err = ErrStateMismatch
		return dst[:0]
	}
	dst = slices.Grow(dst[:0], m)[:m]
	for i := range dst {
		dst[i] = int16(binary.LittleEndian.Uint16(b[2*i:]))
	}
	return dst
}

// floatsInto reads a float slice into dst's storage (grown if needed), so restoring a state
// reuses the analyzer's buffers.
func (r *stateReader) floatsInto(dst []float32) []float32 {
	n := int(r.u32())
	if r.err != nil || n*4 > len(r.b) {
		if r.err == nil {
			r.err = ErrStateMismatch
		}
		return dst[:0]
	}
	dst = slices.Grow(dst[:0], n)[:n]
	for i := range dst {
		dst[i] = r.f32()
	}
	return dst
}

// EncodePCM16 converts samples (-1..1) to s16le bytes, the wire format of audio chunks.
func EncodePCM16(samples []float32) []byte {
	out := make([]byte, 2*len(samples))
	for i, v := range samples {
		// ×32768 to mirror decoding (/32768): a decoded chunk re-encodes to the same bytes.
		x := max(-32768, min(32767, math.Round(float64(v)*32768)))
		binary.LittleEndian.PutUint16(out[2*i:], uint16(int16(x)))
	}
	return out
}
