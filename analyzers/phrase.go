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
	// Model is the manifest name of the classifier head. Default "phrase-gaiti" (openWakeWord,
	// int8 embeddings); "phrase-gaiti-fp32" is its version 1 (fp32 embeddings); "phrase-ewn" and
	// "phrase-ewn-oww" look at the VAD's speech ends.
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
	// Active replaces the built-in head with a registered version (the active model
	// version). Shadow runs a second head on the same embeddings with its own threshold and
	// detection state; its detections go to AudioObservation.ShadowPhrases, never to Phrases,
	// so it raises no flags.
	Active *models.Manifest `json:"-"`
	Shadow *models.Manifest `json:"-"`
	// Embedding overrides the openWakeWord speech embedding the head is fed. Default: the one
	// the active head was trained on (its manifest's audio.embedding: "oww-embedding", fp32, or
	// "oww-embedding-int8", its int8 build; docs/audio.md "Speed"). Feeding a head another
	// embedding than its own is for measurements only: its threshold was chosen on its own.
	Embedding string `json:"embedding,omitempty"`
	// EveryWindow scores the openWakeWord head on every 80 ms window. By default, when "vad"
	// runs before "phrase", the head scores only the windows ending from EndBefore before to
	// EndAfter after each speech end the VAD closes and each end of a loud stretch (energy well
	// above the stretch's noise floor, for speech the VAD does not hear; phrase_gate.go), and
	// embeds only the audio they need: the phrase closes an answer, so it ends where the
	// candidate stops speaking. With phrase-gaiti@1 on the dev split that found 142 of 157
	// phrases with 2 false alarms, every window 144 with 3, at 2× the phrase CPU (docs/audio.md
	// "Speed"). Without a VAD before it the head scores every window.
	EveryWindow bool `json:"every_window,omitempty"`
	// EndBefore, EndAfter bound the scored windows' ends around a speech end. Defaults
	// DefaultEndBefore and DefaultEndAfter.
	EndBefore time.Duration `json:"end_before,omitempty"`
	EndAfter  time.Duration `json:"end_after,omitempty"`
	// vadBefore: "vad" runs before "phrase" in the set, so its speech ends can gate the head.
	vadBefore bool
	// vadPad is the VAD's padding after a speech end (AudioConfig.VAD.Pad): an EWN head
	// (phrase_ends.go) turns the VAD's segment ends back into speech ends with it.
	vadPad int64
	// vadLag is the longest the VAD can take to close a segment after its speech end
	// (AudioConfig.VAD.MinSilence plus two frames): how much audio a gated spotter must keep.
	vadLag int64
}

// DefaultPhraseModel is the openWakeWord phrase head: the one reviewer exports retrain
// (training/phrase/retrain.sh) and whose registered versions (PhraseConfig.Active) replace the
// built-in front end. Its built-in version 2 feeds on int8 embeddings (oww-embedding-int8).
const DefaultPhraseModel = "phrase-gaiti"

// FP32PhraseModel is phrase-gaiti@1 under its own name: the head trained on fp32 embeddings,
// the default until version 2 (int8) did better on the dev voices at ~1.7× the phrase speed
// (docs/audio.md "int8 head"). The fused head reads its scores: its weight and threshold were
// chosen with them.
const FP32PhraseModel = "phrase-gaiti-fp32"

// DefaultPhraseHead is the head used when PhraseConfig.Model is empty. The fused head
// (FusedPhraseModel) won on the held-back test voices (docs/audio.md "Front ends") but stays
// opt-in: model versions, shadows, flags' model ids and retrain.sh are built around phrase-gaiti.
const DefaultPhraseHead = DefaultPhraseModel

// DefaultEndBefore and DefaultEndAfter bound the windows the gated spotter scores around each
// speech or loud-stretch end (phrase_gate.go). 0.4 s / 0.3 s (1 s / 0.6 s before 2026-12-06 late
// evening): with phrase-gaiti@2 the dev split keeps its 144 of 157 phrases and loses its one false
// alarm, at 4.4 embeddings per second of audio instead of 6.2 (docs/audio.md "int8 head").
const (
	DefaultEndBefore = 400 * time.Millisecond
	DefaultEndAfter  = 300 * time.Millisecond
)

// DefaultPhraseEmbedding is the openWakeWord embedding of a head whose manifest names none.
const DefaultPhraseEmbedding = models.DefaultHeadEmbedding

// EWNPhraseModel is the head over EfficientWord-Net embeddings at speech ends (phrase_ends.go).
const EWNPhraseModel = "phrase-ewn"

// FusedPhraseModel fuses the EWN head with the openWakeWord head at speech ends.
const FusedPhraseModel = "phrase-ewn-oww"

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
	mel, emb      *ort.AdvancedSession
	melIn, melOut *ort.Tensor[float32]
	embIn, embOut *ort.Tensor[float32]
	// embRun and melRun are the gate's: the same models rewritten to embed a run of consecutive
	// windows, and to compute a batch of mel blocks, per call (FamilyOWWEmbeddingStream,
	// FamilyOWWMelBatch); emb and mel with their tensors are the every-window path's.
	embRun, melRun *ort.DynamicAdvancedSession
	// headIn holds the last `window` embeddings, oldest first: the input of every head.
	headIn         *ort.Tensor[float32]
	window         int
	active, shadow *spotter
	version        string
	// ends replaces all of the above with the EWN front end at speech ends (phrase_ends.go), or,
	// with fuse > 0, combines the openWakeWord head's recent scores (oww) with it.
	ends *endSpotter
	fuse float32
	// gate scores only the windows around speech ends (phrase_gate.go; nil with EveryWindow or without a VAD before it).
	gate *phraseGate
	oww  []owwScore

	// Stretch state (saved with AppendState).
	pending  []float32 // samples not yet consumed by a mel block (< blockInput)
	frames   []float32 // mel frames not yet consumed by an embedding, x/10+2, melBins each
	embCount int64     // embeddings computed in this stretch

	embRuns int64 // embeddings computed since the analyzer was built (not state: a statistic)
	melRuns int64 // melspectrogram runs (8 frames each), likewise
}

// EmbeddingRuns is how many openWakeWord embeddings the analyzer computed since it was built: the
// cost the gate (phrase_gate.go) saves (it computes a run of them per model call).
func (p *Phrase) EmbeddingRuns() int64 { return p.embRuns }

// ModelRuns implements analyzers.ModelRuns: openWakeWord embeddings plus EWN windows.
func (p *Phrase) ModelRuns() int64 {
	if p.ends != nil {
		return p.embRuns + p.ends.runs
	}
	return p.embRuns
}

// spotter is one head version with its threshold and its peak-picking state.
type spotter struct {
	id                      string
	head                    *ort.AdvancedSession
	headOut                 *ort.Tensor[float32]
	runs                    int64 // head runs since it was built (a statistic, not state)
	hold, minRun            int
	thr                     float32
	refractory, phraseSamps int64

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
		name = DefaultPhraseHead
	}
	hm := cfg.Active
	if hm == nil {
		var err error
		if hm, err = models.Load(name); err != nil {
			return nil, fmt.Errorf("phrase: %w", err)
		}
	}
	if hm.Decode.Family == models.FamilyPhraseEWNHead {
		if cfg.Shadow != nil && hm.Audio.FuseOWW <= 0 {
			return nil, fmt.Errorf("phrase: a shadow head runs only beside an openWakeWord head, not %s", hm.ID())
		}
		e, err := newEndSpotter(hm, cfg, cfg.vadPad)
		if err != nil {
			return nil, fmt.Errorf("phrase: %w", err)
		}
		if hm.Audio.FuseOWW <= 0 {
			return &Phrase{ends: e, version: fmt.Sprintf("%s+%s thr=%.4g", hm.ID(), e.ewn.ID(), e.thr)}, nil
		}
		// Fused: the built-in openWakeWord path runs as before but only records its scores; the
		// end spotter combines them with EWN's at every speech end.
		// A shadow (a retrained openWakeWord head) runs on the same embeddings with its own
		// detection state, as beside the openWakeWord head alone.
		ocfg := PhraseConfig{Model: FP32PhraseModel, Threads: cfg.Threads, Shadow: cfg.Shadow, Hold: cfg.Hold, Refractory: cfg.Refractory,
			Embedding: cfg.Embedding}
		p, err := NewPhrase(ocfg)
		if err != nil {
			e.close()
			return nil, err
		}
		p.ends, p.fuse = e, float32(hm.Audio.FuseOWW)
		p.oww = make([]owwScore, 0, owwKeep)
		p.version = fmt.Sprintf("%s+%s+%s fuse=%.2f thr=%.4g", hm.ID(), e.ewn.ID(), p.active.id, p.fuse, e.thr)
		return p, nil
	}
	if hm.Decode.Family != models.FamilyPhraseHead {
		return nil, fmt.Errorf("phrase: model %s is a %s, not a phrase head", hm.ID(), hm.Decode.Family)
	}
	melM, err := models.Load("oww-melspectrogram")
	if err != nil {
		return nil, fmt.Errorf("phrase: %w", err)
	}
	embName := cfg.Embedding
	if embName == "" {
		embName = hm.HeadEmbedding()
	}
	// A shadow scores the active head's embeddings: it must have been trained on the same ones.
	if cfg.Shadow != nil && cfg.Shadow.Decode.Family == models.FamilyPhraseHead && cfg.Shadow.HeadEmbedding() != embName {
		return nil, fmt.Errorf("phrase: shadow %s was trained on %s embeddings, the active head %s is fed %s: a shadow runs only beside a head on the same embedding",
			cfg.Shadow.ID(), cfg.Shadow.HeadEmbedding(), hm.ID(), embName)
	}
	embM, err := models.Load(embName)
	if err != nil {
		return nil, fmt.Errorf("phrase: %w", err)
	}
	if embM.Decode.Family != models.FamilyOWWEmbedding {
		return nil, fmt.Errorf("phrase: model %s is a %s, not an openWakeWord embedding", embM.ID(), embM.Decode.Family)
	}
	gated := !cfg.EveryWindow && cfg.vadBefore
	var runM, melBatchM *models.Manifest
	if gated {
		if runM, err = models.Load(embName + "-stream"); err != nil {
			return nil, fmt.Errorf("phrase: %w", err)
		}
		if runM.Decode.Family != models.FamilyOWWEmbeddingStream {
			return nil, fmt.Errorf("phrase: model %s is a %s, not an openWakeWord embedding over a run of windows", runM.ID(), runM.Decode.Family)
		}
		if melBatchM, err = models.Load(melM.Name + "-batch"); err != nil {
			return nil, fmt.Errorf("phrase: %w", err)
		}
		if melBatchM.Decode.Family != models.FamilyOWWMelBatch {
			return nil, fmt.Errorf("phrase: model %s is a %s, not a melspectrogram over a batch of blocks", melBatchM.ID(), melBatchM.Decode.Family)
		}
	}
	if err := models.InitRuntime(); err != nil {
		return nil, fmt.Errorf("phrase: %w", err)
	}
	p := &Phrase{window: hm.Audio.Window}
	opts := models.SessionOptions{IntraOpThreads: cfg.Threads}
	build := func() error {
		var err error
		if p.headIn, err = ort.NewEmptyTensor[float32](ort.NewShape(1, int64(p.window), embDim)); err != nil {
			return err
		}
		if gated {
			if p.embRun, err = models.NewDynamicAudioSession(runM, opts); err != nil {
				return err
			}
			if p.melRun, err = models.NewDynamicAudioSession(melBatchM, opts); err != nil {
				return err
			}
		} else {
			if p.melIn, err = ort.NewEmptyTensor[float32](ort.NewShape(1, blockInput)); err != nil {
				return err
			}
			if p.melOut, err = ort.NewEmptyTensor[float32](ort.NewShape(1, 1, melBlock, melBins)); err != nil {
				return err
			}
			if p.mel, err = models.NewAudioSession(melM, []ort.Value{p.melIn}, []ort.Value{p.melOut}, opts); err != nil {
				return err
			}
			if p.embIn, err = ort.NewEmptyTensor[float32](ort.NewShape(1, melWindow, melBins, 1)); err != nil {
				return err
			}
			if p.embOut, err = ort.NewEmptyTensor[float32](ort.NewShape(1, 1, 1, embDim)); err != nil {
				return err
			}
			if p.emb, err = models.NewAudioSession(embM, []ort.Value{p.embIn}, []ort.Value{p.embOut}, opts); err != nil {
				return err
			}
		}
		if p.active, err = newSpotter(hm, cfg, p.headIn, opts); err != nil {
			return err
		}
		if cfg.Shadow != nil {
			if cfg.Shadow.Audio == nil || cfg.Shadow.Audio.Window != p.window {
				return fmt.Errorf("shadow %s: not a phrase head over %d embeddings", cfg.Shadow.ID(), p.window)
			}
			// The shadow keeps its own threshold and run length: they were chosen with its weights.
			if p.shadow, err = newSpotter(cfg.Shadow, PhraseConfig{Hold: cfg.Hold, Refractory: cfg.Refractory}, p.headIn, opts); err != nil {
				return fmt.Errorf("shadow: %w", err)
			}
		}
		return nil
	}
	if err := build(); err != nil {
		p.Close()
		return nil, fmt.Errorf("phrase: %w", err)
	}
	a := p.active
	p.version = fmt.Sprintf("%s+%s+%s thr=%.4g run=%d hold=%d", hm.ID(), melM.ID(), embM.ID(), a.thr, a.minRun, a.hold)
	if gated {
		p.gate = newPhraseGate(cfg, p.window)
		p.version += fmt.Sprintf(" ends=-%d+%dms+energy", p.gate.before*1000/AudioRate, p.gate.after*1000/AudioRate)
	}
	p.pending = make([]float32, 0, blockInput+AudioRate)
	p.frames = make([]float32, 0, (melWindow+melBlock)*melBins)
	p.Reset()
	return p, nil
}

// newSpotter opens head m over the shared embedding history with cfg's overrides.
func newSpotter(m *models.Manifest, cfg PhraseConfig, headIn *ort.Tensor[float32], opts models.SessionOptions) (*spotter, error) {
	if m.Decode.Family != models.FamilyPhraseHead {
		return nil, fmt.Errorf("model %s is a %s, not a phrase head", m.ID(), m.Decode.Family)
	}
	sp := &spotter{id: m.ID(), hold: cfg.Hold, thr: cfg.Threshold}
	if sp.thr <= 0 {
		sp.thr = m.Thresholds.Score
	}
	if sp.hold <= 0 {
		sp.hold = 6
	}
	if sp.minRun = cfg.MinRun; sp.minRun <= 0 {
		sp.minRun = max(1, m.Audio.MinRun)
	}
	ref := cfg.Refractory
	if ref <= 0 {
		ref = 1500 * time.Millisecond
	}
	sp.refractory = ref.Milliseconds() * AudioRate / 1000
	sp.phraseSamps = int64(m.Audio.PhraseMs) * AudioRate / 1000
	var err error
	if sp.headOut, err = ort.NewEmptyTensor[float32](ort.NewShape(1, 1)); err != nil {
		return nil, err
	}
	if sp.head, err = models.NewAudioSession(m, []ort.Value{headIn}, []ort.Value{sp.headOut}, opts); err != nil {
		sp.close()
		return nil, err
	}
	sp.reset()
	return sp, nil
}

func (sp *spotter) reset() {
	sp.run, sp.cand, sp.candStep, sp.onsetEnd, sp.bestScore, sp.bestEnd, sp.blocked = 0, false, 0, 0, 0, 0, -1
}

func (sp *spotter) close() {
	if sp == nil {
		return
	}
	if sp.head != nil {
		sp.head.Destroy()
	}
	if sp.headOut != nil {
		sp.headOut.Destroy()
	}
}

// Name implements AudioAnalyzer.
func (p *Phrase) Name() string { return "phrase" }

// Version implements AudioAnalyzer.
func (p *Phrase) Version() string { return p.version }

// owwScore is one openWakeWord head score and the end of its window (samples of the stretch).
type owwScore struct {
	end   int64
	score float32
}

// owwKeep is how many recent openWakeWord scores a fused head keeps (20 s): enough for the
// speech ends of a chunk to find theirs.
const owwKeep = 250

// owwBest is the best openWakeWord score among windows ending in [lo, hi] (samples), and
// whether scores up to hi exist yet.
func (p *Phrase) owwBest(lo, hi int64) (float32, bool) {
	if len(p.oww) == 0 || p.oww[len(p.oww)-1].end < hi {
		return 0, false
	}
	var best float32
	for _, o := range p.oww {
		if o.end >= lo && o.end <= hi {
			best = max(best, o.score)
		}
	}
	return best, true
}

// Threshold is the score threshold in force.
func (p *Phrase) Threshold() float32 {
	if p.ends != nil {
		return p.ends.thr
	}
	return p.active.thr
}

// NeedsVAD is true when the phrase analyzer looks only at the speech ends the VAD reports, so
// the "vad" analyzer must run before it.
func (p *Phrase) NeedsVAD() bool { return p.ends != nil || p.gate != nil }

// Reset implements AudioAnalyzer.
func (p *Phrase) Reset() {
	if p.ends != nil {
		p.ends.reset()
		if p.fuse == 0 {
			return
		}
		p.oww = p.oww[:0]
	}
	if p.gate != nil {
		p.gate.reset()
	}
	p.pending, p.frames = p.pending[:0], p.frames[:0]
	clear(p.headIn.GetData())
	p.embCount = 0
	p.active.reset()
	if p.shadow != nil {
		p.shadow.reset()
	}
}

// Process implements AudioAnalyzer.
func (p *Phrase) Process(_ context.Context, pcm []float32, obs *AudioObservation) error {
	if p.ends != nil && p.fuse == 0 {
		return p.ends.process(pcm, obs, nil)
	}
	if p.gate != nil {
		return p.gate.process(p, pcm, obs)
	}
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
		p.melRuns++
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
	if p.ends != nil { // fused: the openWakeWord scores of this chunk are in p.oww
		if p.shadow != nil {
			obs.ShadowModel, obs.ActiveModel = p.shadow.id, p.ends.id
			if p.shadow.cand {
				obs.ShadowPhrases = append(obs.ShadowPhrases, p.shadow.detection(false))
			}
		}
		return p.ends.process(pcm, obs, p)
	}
	p.reportOpen(obs)
	return nil
}

// reportOpen reports the open candidates of the active (and shadow) head now, so a phrase at the
// very end of a recording is not lost.
func (p *Phrase) reportOpen(obs *AudioObservation) {
	if p.active.cand {
		obs.Phrases = append(obs.Phrases, p.active.detection(false))
	}
	if p.shadow != nil {
		obs.ShadowModel, obs.ActiveModel = p.shadow.id, p.active.id
		if p.shadow.cand {
			obs.ShadowPhrases = append(obs.ShadowPhrases, p.shadow.detection(false))
		}
	}
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
	p.embRuns++
	hist := p.headIn.GetData()
	copy(hist, hist[embDim:])
	copy(hist[len(hist)-embDim:], p.embOut.GetData())
	step := p.embCount
	p.embCount++
	if p.embCount < int64(p.window) {
		return nil
	}
	if p.ends != nil {
		if err := p.active.head.Run(); err != nil {
			return fmt.Errorf("phrase head: %w", err)
		}
		p.active.runs++
		if len(p.oww) == owwKeep {
			p.oww = p.oww[:copy(p.oww, p.oww[1:])]
		}
		p.oww = append(p.oww, owwScore{end: embeddingEnd(step), score: p.active.headOut.GetData()[0]})
		if p.shadow != nil {
			if err := p.shadow.score(step, &obs.ShadowPhrases); err != nil {
				return fmt.Errorf("shadow phrase head %s: %w", p.shadow.id, err)
			}
		}
		return nil
	}
	if err := p.active.score(step, &obs.Phrases); err != nil {
		return fmt.Errorf("phrase head: %w", err)
	}
	if p.shadow != nil {
		if err := p.shadow.score(step, &obs.ShadowPhrases); err != nil {
			return fmt.Errorf("shadow phrase head %s: %w", p.shadow.id, err)
		}
	}
	return nil
}

// score runs the head on the current window (embedding step) and advances the peak picking:
// the same state machine as training/phrase/features.py detect().
func (sp *spotter) score(step int64, out *[]PhraseDetection) error {
	if err := sp.head.Run(); err != nil {
		return err
	}
	sp.runs++
	score := sp.headOut.GetData()[0]
	end := embeddingEnd(step)
	if sp.cand {
		if score > sp.bestScore {
			sp.bestScore, sp.bestEnd = score, end
		}
		if step-sp.candStep >= int64(sp.hold) {
			*out = append(*out, sp.detection(true))
			sp.cand, sp.blocked, sp.run = false, sp.bestEnd+sp.refractory, 0
		}
		return nil
	}
	if score >= sp.thr {
		sp.run++
	} else {
		sp.run = 0
	}
	if sp.run >= sp.minRun && end > sp.blocked {
		sp.cand, sp.candStep, sp.onsetEnd, sp.bestScore, sp.bestEnd = true, step, end, score, end
	}
	return nil
}

// embeddingEnd is the sample where the audio of embedding i ends: its last mel frame 8i+75
// ends at (8i+75)·160+512 (training/phrase/features.py emb_end_seconds).
func embeddingEnd(i int64) int64 {
	return (i*melBlock+melWindow-1)*melHop + melWin
}

func (sp *spotter) detection(final bool) PhraseDetection {
	return PhraseDetection{OnsetMs: toMs(sp.onsetEnd), StartMs: toMs(max(0, sp.bestEnd-sp.phraseSamps)),
		EndMs: toMs(sp.bestEnd), Score: sp.bestScore, Final: final}
}

func (sp *spotter) appendState(w *stateWriter) {
	w.u32(uint32(sp.run))
	w.boolean(sp.cand)
	w.i64(sp.candStep)
	w.i64(sp.onsetEnd)
	w.f32(sp.bestScore)
	w.i64(sp.bestEnd)
	w.i64(sp.blocked)
}

func (sp *spotter) restoreState(r *stateReader) {
	sp.run = int(r.u32())
	sp.cand, sp.candStep, sp.onsetEnd = r.boolean(), r.i64(), r.i64()
	sp.bestScore, sp.bestEnd, sp.blocked = r.f32(), r.i64(), r.i64()
}

// AppendState implements AudioAnalyzer. A shadow head's state follows the active one's, so a
// state saved without a shadow restores into a set with one (the shadow starts fresh) and back.
func (p *Phrase) AppendState(dst []byte) []byte {
	w := stateWriter{b: dst}
	if p.ends != nil {
		p.ends.appendState(&w)
		if p.fuse == 0 {
			return w.b
		}
		w.u32(uint32(len(p.oww)))
		for _, o := range p.oww {
			w.i64(o.end)
			w.f32(o.score)
		}
	}
	if p.gate != nil {
		p.gate.appendState(&w)
	} else {
		w.floats(p.pending)
		w.floats(p.frames)
		w.floats(p.headIn.GetData())
		w.i64(p.embCount)
	}
	p.active.appendState(&w)
	if p.shadow != nil {
		w.str(p.shadow.id)
		p.shadow.appendState(&w)
	}
	return w.b
}

// RestoreState implements AudioAnalyzer.
func (p *Phrase) RestoreState(b []byte) error {
	r := stateReader{b: b}
	if p.ends != nil {
		if err := p.ends.restoreState(&r); err != nil {
			p.Reset()
			return err
		}
		if p.fuse == 0 {
			return nil
		}
		n := int(r.u32())
		if r.err != nil || n > owwKeep {
			p.Reset()
			return ErrStateMismatch
		}
		p.oww = p.oww[:0]
		for range n {
			p.oww = append(p.oww, owwScore{end: r.i64(), score: r.f32()})
		}
	}
	if p.gate != nil {
		if err := p.gate.restoreState(&r); err != nil {
			p.Reset()
			return err
		}
		p.active.restoreState(&r)
		if r.err != nil {
			p.Reset()
			return ErrStateMismatch
		}
	} else {
		p.pending = r.floatsInto(p.pending)
		p.frames = r.floatsInto(p.frames)
		hist := r.floatsInto(make([]float32, 0, p.window*embDim))
		p.embCount = r.i64()
		p.active.restoreState(&r)
		if r.err != nil || len(hist) != p.window*embDim || len(p.frames)%melBins != 0 {
			p.Reset()
			return ErrStateMismatch
		}
		copy(p.headIn.GetData(), hist)
	}
	if p.shadow != nil {
		p.shadow.reset()
		if len(r.b) > 0 && r.str() == p.shadow.id {
			p.shadow.restoreState(&r)
			if r.err != nil {
				p.shadow.reset()
			}
		}
	}
	return nil
}

// Close implements AudioAnalyzer.
func (p *Phrase) Close() error {
	p.ends.close()
	for _, s := range []*ort.AdvancedSession{p.mel, p.emb} {
		if s != nil {
			s.Destroy()
		}
	}
	for _, s := range []*ort.DynamicAdvancedSession{p.embRun, p.melRun} {
		if s != nil {
			s.Destroy()
		}
	}
	for _, t := range []*ort.Tensor[float32]{p.melIn, p.melOut, p.embIn, p.embOut, p.headIn} {
		if t != nil {
			t.Destroy()
		}
	}
	p.active.close()
	p.shadow.close()
	return nil
}
