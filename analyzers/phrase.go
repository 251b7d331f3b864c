package analyzers

import (
	"context"
	"fmt"
	"time"

	ort "github.com/yalue/onnxruntime_go"

	"proctor/models"
)

// PhraseConfig configures the "phrase" audio analyzer, which spots the closing phrase
// "该题回答完毕". Zero values take the defaults noted.
type PhraseConfig struct {
	// Model is the manifest name of the classifier head. Default "phrase-gaiti".
	Model string `json:"model,omitempty"`
	// Threshold on the head's score. Default: the manifest's thresholds.score, chosen on
	// held-out voices for ≤ 0.3 false alarms per hour of speech (training/phrase/report.json).
	Threshold float32 `json:"threshold,omitempty"`
	// Hold: after the first window over the threshold, the best score of this many further
	// windows (80 ms each) is the detection. Default 6 (480 ms), as in training's evaluation.
	Hold int `json:"hold,omitempty"`
	// MinRun: consecutive windows over the threshold needed to open a detection. Default: the
	// manifest's audio.min_run (chosen with the threshold on the dev voices): a one-window spike
	// is more often a false alarm than the phrase, which stays high for several windows.
	MinRun int `json:"min_run,omitempty"`
	// Refractory: no new detection starts within this long after one ends. Default 1.5 s: the
	// score stays high for several windows while the phrase passes through the window.
	Refractory time.Duration `json:"refractory,omitempty"`
	// Threads is the intra-op thread count of each session. Default 1.
	Threads int `json:"threads,omitempty"`
	// Active replaces the built-in head with a registered version (the model registry's active
	// version).
	Active *models.Manifest `json:"-"`
}

// DefaultPhraseModel is the phrase head used when PhraseConfig.Model is empty.
const DefaultPhraseModel = "phrase-gaiti"

// openWakeWord feature geometry (models/manifests/oww-*.json).
const (
	melHop       = 160 // samples per mel frame
	melWin       = 512 // samples one mel frame looks at
	melBins      = 32  //
	melBlock     = 8   // mel frames per model call = one embedding step (80 ms)
	melWindow    = 76  // mel frames per embedding
	embDim       = 96  //
	blockInput   = (melBlock-1)*melHop + melWin
	blockAdvance = melBlock * melHop
)

// Phrase spots the phrase: openWakeWord melspectrogram → speech embedding (one per 80 ms) →
// the project's classifier over the last Window embeddings → peak picking. Every model call uses
// tensors bound once; the per-window work allocates nothing.
type Phrase struct {
	mel, emb, head          *ort.AdvancedSession
	melIn, melOut           *ort.Tensor[float32]
	embIn, embOut           *ort.Tensor[float32]
	headIn, headOut         *ort.Tensor[float32]
	window, hold, minRun    int
	thr                     float32
	refractory, phraseSamps int64
	version                 string

	// Stretch state (saved with AppendState).
	pending  []float32 // samples not yet consumed by a mel block (< blockInput)
	frames   []float32 // mel frames not yet consumed by an embedding, x/10+2, melBins each
	embCount int64     // embeddings computed in this stretch
	// history holds the last `window` embeddings, oldest first; it is the head's input tensor.
	run       int   // consecutive windows over the threshold
	cand      bool  // a candidate detection is open
	candStep  int64 // embedding index where it opened
	onsetEnd  int64 // its window end (samples): the detection's identity
	bestScore float32
	bestEnd   int64
	blocked   int64 // no new candidate while window end <= blocked (samples)
}

// NewPhrase loads (and checksums) the three models and binds their tensors.
func NewPhrase(cfg PhraseConfig) (*Phrase, error) {
	name := cfg.Model
	if name == "" {
		name = DefaultPhraseModel
	}
	hm := cfg.Active
	if hm == nil {
		var err error
		if hm, err = models.Load(name); err != nil {
			return nil, fmt.Errorf("phrase: %w", err)
		}
	}
	if hm.Decode.Family != models.FamilyPhraseHead {
		return nil, fmt.Errorf("phrase: model %s is a %s, not a phrase head", hm.ID(), hm.Decode.Family)
	}
	melM, err := models.Load("oww-melspectrogram")
	if err != nil {
		return nil, fmt.Errorf("phrase: %w", err)
	}
	embM, err := models.Load("oww-embedding")
	if err != nil {
		return nil, fmt.Errorf("phrase: %w", err)
	}
	if err := models.InitRuntime(); err != nil {
		return nil, fmt.Errorf("phrase: %w", err)
	}
	p := &Phrase{window: hm.Audio.Window, hold: cfg.Hold, thr: cfg.Threshold}
	if p.thr <= 0 {
		p.thr = hm.Thresholds.Score
	}
	if p.hold <= 0 {
		p.hold = 6
	}
	if p.minRun = cfg.MinRun; p.minRun <= 0 {
		p.minRun = max(1, hm.Audio.MinRun)
	}
	ref := cfg.Refractory
	if ref <= 0 {
		ref = 1500 * time.Millisecond
	}
	p.refractory = ref.Milliseconds() * AudioRate / 1000
	p.phraseSamps = int64(hm.Audio.PhraseMs) * AudioRate / 1000
	opts := models.SessionOptions{IntraOpThreads: cfg.Threads}
	build := func() error {
		var err error
		if p.melIn, err = ort.NewEmptyTensor[float32](ort.NewShape(1, blockInput)); err != nil {
			return err
		}
		if p.melOut, err = ort.NewEmptyTensor[float32](ort.NewShape(1, 1, melBlock, melBins)); err != nil {
			return err
		}
		if p.embIn, err = ort.NewEmptyTensor[float32](ort.NewShape(1, melWindow, melBins, 1)); err != nil {
			return err
		}
		if p.embOut, err = ort.NewEmptyTensor[float32](ort.NewShape(1, 1, 1, embDim)); err != nil {
			return err
		}
		if p.headIn, err = ort.NewEmptyTensor[float32](ort.NewShape(1, int64(p.window), embDim)); err != nil {
			return err
		}
		if p.headOut, err = ort.NewEmptyTensor[float32](ort.NewShape(1, 1)); err != nil {
			return err
		}
		if p.mel, err = models.NewAudioSession(melM, []ort.Value{p.melIn}, []ort.Value{p.melOut}, opts); err != nil {
			return err
		}
		if p.emb, err = models.NewAudioSession(embM, []ort.Value{p.embIn}, []ort.Value{p.embOut}, opts); err != nil {
			return err
		}
		p.head, err = models.NewAudioSession(hm, []ort.Value{p.headIn}, []ort.Value{p.headOut}, opts)
		return err
	}
	if err := build(); err != nil {
		p.Close()
		return nil, fmt.Errorf("phrase: %w", err)
	}
	p.version = fmt.Sprintf("%s+%s+%s thr=%.4g run=%d hold=%d", hm.ID(), melM.ID(), embM.ID(), p.thr, p.minRun, p.hold)
	p.pending = make([]float32, 0, blockInput+AudioRate)
	p.frames = make([]float32, 0, (melWindow+melBlock)*melBins)
	p.Reset()
	return p, nil
}

// Name implements AudioAnalyzer.
func (p *Phrase) Name() string { return "phrase" }

// Version implements AudioAnalyzer.
func (p *Phrase) Version() string { return p.version }

// Threshold is the score threshold in force.
func (p *Phrase) Threshold() float32 { return p.thr }

// Reset implements AudioAnalyzer.
func (p *Phrase) Reset() {
	p.pending, p.frames = p.pending[:0], p.frames[:0]
	clear(p.headIn.GetData())
	p.embCount, p.run, p.cand, p.candStep, p.onsetEnd, p.bestScore, p.bestEnd, p.blocked = 0, 0, false, 0, 0, 0, 0, -1
}

// Process implements AudioAnalyzer.
func (p *Phrase) Process(_ context.Context, pcm []float32, obs *AudioObservation) error {
	p.pending = append(p.pending, pcm...)
	melIn := p.melIn.GetData()
	consumed := 0
	for len(p.pending)-consumed >= blockInput {
		// The mel model takes int16-scaled samples (openWakeWord's convention).
		for i, v := range p.pending[consumed : consumed+blockInput] {
			melIn[i] = max(-1, min(1, v)) * 32767
		}
		consumed += blockAdvance
		if err := p.mel.Run(); err != nil {
			return fmt.Errorf("melspectrogram: %w", err)
		}
		for _, v := range p.melOut.GetData() {
			p.frames = append(p.frames, v/10+2)
		}
		for len(p.frames) >= melWindow*melBins {
			if err := p.embed(obs); err != nil {
				return err
			}
		}
	}
	if consumed > 0 {
		n := copy(p.pending, p.pending[consumed:])
		p.pending = p.pending[:n]
	}
	if p.cand { // reported now so a phrase at the very end of a recording is not lost
		obs.Phrases = append(obs.Phrases, p.detection(false))
	}
	return nil
}

// embed computes the embedding of the oldest 76 mel frames, scores the window that ends with it
// and advances by one step.
func (p *Phrase) embed(obs *AudioObservation) error {
	copy(p.embIn.GetData(), p.frames[:melWindow*melBins])
	n := copy(p.frames, p.frames[melBlock*melBins:])
	p.frames = p.frames[:n]
	if err := p.emb.Run(); err != nil {
		return fmt.Errorf("embedding: %w", err)
	}
	hist := p.headIn.GetData()
	copy(hist, hist[embDim:])
	copy(hist[len(hist)-embDim:], p.embOut.GetData())
	step := p.embCount
	p.embCount++
	if p.embCount < int64(p.window) {
		return nil
	}
	if err := p.head.Run(); err != nil {
		return fmt.Errorf("phrase head: %w", err)
	}
	score := p.headOut.GetData()[0]
	end := embeddingEnd(step)
	// Same state machine as training/phrase/features.py detect().
	if p.cand {
		if score > p.bestScore {
			p.bestScore, p.bestEnd = score, end
		}
		if step-p.candStep >= int64(p.hold) {
			obs.Phrases = append(obs.Phrases, p.detection(true))
			p.cand, p.blocked, p.run = false, p.bestEnd+p.refractory, 0
		}
		return nil
	}
	if score >= p.thr {
		p.run++
	} else {
		p.run = 0
	}
	if p.run >= p.minRun && end > p.blocked {
		p.cand, p.candStep, p.onsetEnd, p.bestScore, p.bestEnd = true, step, end, score, end
	}
	return nil
}

// embeddingEnd is the sample where the audio of embedding i ends: its last mel frame 8i+75
// ends at (8i+75)·160+512 (training/phrase/features.py emb_end_seconds).
func embeddingEnd(i int64) int64 {
	return (i*melBlock+melWindow-1)*melHop + melWin
}

func (p *Phrase) detection(final bool) PhraseDetection {
	return PhraseDetection{OnsetMs: toMs(p.onsetEnd), StartMs: toMs(max(0, p.bestEnd-p.phraseSamps)),
		EndMs: toMs(p.bestEnd), Score: p.bestScore, Final: final}
}

// AppendState implements AudioAnalyzer.
func (p *Phrase) AppendState(dst []byte) []byte {
	w := stateWriter{b: dst}
	w.floats(p.pending)
	w.floats(p.frames)
	w.floats(p.headIn.GetData())
	w.i64(p.embCount)
	w.u32(uint32(p.run))
	w.boolean(p.cand)
	w.i64(p.candStep)
	w.i64(p.onsetEnd)
	w.f32(p.bestScore)
	w.i64(p.bestEnd)
	w.i64(p.blocked)
	return w.b
}

// RestoreState implements AudioAnalyzer.
func (p *Phrase) RestoreState(b []byte) error {
	r := stateReader{b: b}
	p.pending = r.floatsInto(p.pending)
	p.frames = r.floatsInto(p.frames)
	hist := r.floatsInto(make([]float32, 0, p.window*embDim))
	p.embCount, p.run = r.i64(), int(r.u32())
	p.cand, p.candStep, p.onsetEnd = r.boolean(), r.i64(), r.i64()
	p.bestScore, p.bestEnd, p.blocked = r.f32(), r.i64(), r.i64()
	if r.err != nil || len(hist) != p.window*embDim || len(p.frames)%melBins != 0 {
		p.Reset()
		return ErrStateMismatch
	}
	copy(p.headIn.GetData(), hist)
	return nil
}

// Close implements AudioAnalyzer.
func (p *Phrase) Close() error {
	for _, s := range []*ort.AdvancedSession{p.mel, p.emb, p.head} {
		if s != nil {
			s.Destroy()
		}
	}
	for _, t := range []*ort.Tensor[float32]{p.melIn, p.melOut, p.embIn, p.embOut, p.headIn, p.headOut} {
		if t != nil {
			t.Destroy()
		}
	}
	return nil
}
