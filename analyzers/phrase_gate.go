package analyzers

import (
	"fmt"
	"math"
	"slices"

	ort "github.com/yalue/onnxruntime_go"
)

// The phrase closes an answer, so its best window ends where the candidate stops speaking. The
// gated openWakeWord spotter therefore scores only the windows that end near a speech end the
// VAD closed, or near the end of a loud stretch (energyEnds: speech the VAD does not hear)
// (EndBefore before to EndAfter after it), and embeds only the audio those windows and their
// history need (the head's audio.window embeddings: 16 for phrase-gaiti@2). Mel frames and
// embeddings are pure functions of the samples on a fixed 80 ms grid, so every scored window
// gets exactly the score the every-window spotter gives it, and the peak picking runs unchanged
// over the scored windows: where the spans of consecutive ends touch, it is the every-window
// state machine; between spans it starts over. What is lost is a detection whose windows end
// nowhere near a pause of VADConfig.MinSilence (the phrase said without stopping), and a false
// alarm mid-speech.

// gateSpan is a run of embedding steps to score, both ends included.
type gateSpan struct{ lo, hi int64 }

type phraseGate struct {
	before, after int64 // samples around a speech end
	window        int64 // embeddings per head input
	keep          int64 // samples of audio kept behind the newest
	vadPad        int64

	// Stretch state (saved).
	ring      []int16 // audio from ringStart on, quantised to 16 bits so a restored state is exact
	ringStart int64
	spans     []gateSpan // steps still to score, in order
	next      int64      // first step not scored yet
	energy    energyEnds

	// Caches, rebuilt from the ring after a restore (not saved).
	mel      []float32 // mel frames from melStart on (x/10+2), melBins each
	melStart int64
	embLast  int64     // step of the newest embedding in the head's history, -1 if none
	melIn    []float32 // the samples of a batch of mel blocks (scratch, reused)
	embs     []float32 // the last run of embeddings computed, steps embFrom.., embDim each
	embFrom  int64
	ends     []int64 // this chunk's speech and loud-stretch ends (scratch, reused)
}

func newPhraseGate(cfg PhraseConfig, window int) *phraseGate {
	d := func(v, def int64) int64 {
		if v <= 0 {
			return def
		}
		return v
	}
	g := &phraseGate{
		before: d(cfg.EndBefore.Milliseconds(), DefaultEndBefore.Milliseconds()) * AudioRate / 1000,
		after:  d(cfg.EndAfter.Milliseconds(), DefaultEndAfter.Milliseconds()) * AudioRate / 1000,
		vadPad: cfg.vadPad,
		window: int64(window),
	}
	// The earliest sample a future span can need: its first window's history (window embeddings)
	// starts window−1 steps and one embedding's audio before the earliest window end, and that
	// window end lies `before` ahead of a speech end the VAD may still close vadLag behind.
	lag := d(cfg.vadLag, (300+64)*AudioRate/1000)
	g.keep = g.before + int64(window-1)*blockAdvance + embeddingEnd(0) + lag + blockAdvance
	g.ring = make([]int16, 0, g.keep+AudioRate)
	g.mel = make([]float32, 0, (melWindow+melBlock)*melBins)
	g.reset()
	return g
}

func (g *phraseGate) reset() {
	g.ring, g.ringStart, g.spans, g.next = g.ring[:0], 0, g.spans[:0], 0
	g.mel, g.melStart, g.embLast = g.mel[:0], 0, -1
	g.embs, g.embFrom = g.embs[:0], 0
	g.energy = energyEnds{}
}

// energyEnds finds the ends of loud stretches on the 80 ms block grid: a stretch of at least
// energyMinLoud blocks energyLoud dB above the noise floor, followed by energyMinQuiet blocks
// less than energyQuiet dB above it. The floor follows the quietest block at once and rises
// slowly (energyRise dB per block), so it recovers after a noise. State: saved with the gate.
type energyEnds struct {
	at          int64   // first sample of the next block to measure
	floor       float32 // dB; 0 before the first block
	loud, quiet int32   // loud blocks in the current stretch; quiet blocks since its last loud one
}

const (
	energyLoud     = 12 // dB above the floor
	energyQuiet    = 6
	energyMinLoud  = 3 // blocks (240 ms)
	energyMinQuiet = 4 // blocks (320 ms)
	energyRise     = 0.02
)

// update measures every whole block of the ring from e.at on and returns the stretch ends (the
// first sample of the quiet run that closed them).
func (e *energyEnds) update(ring []int16, ringStart int64, ends []int64) []int64 {
	if e.at < ringStart {
		e.at = ringStart // not expected: the ring keeps seconds of audio
	}
	for e.at+blockAdvance <= ringStart+int64(len(ring)) {
		var sum float64
		for _, v := range ring[e.at-ringStart : e.at-ringStart+blockAdvance] {
			sum += float64(v) * float64(v)
		}
		db := float32(10 * math.Log10(sum/blockAdvance/(32768*32768)+1e-10))
		if e.floor == 0 || db < e.floor {
			e.floor = db
		} else {
			e.floor += energyRise
		}
		switch {
		case db >= e.floor+energyLoud:
			e.loud++
			e.quiet = 0
		case db < e.floor+energyQuiet:
			e.quiet++
			if e.quiet == energyMinQuiet {
				if e.loud >= energyMinLoud {
					ends = append(ends, e.at-(energyMinQuiet-1)*blockAdvance)
				}
				e.loud = 0
			}
		}
		e.at += blockAdvance
	}
	return ends
}

// stepFor is the first embedding step whose window ends at or after sample x.
func stepFor(x int64) int64 {
	n := x - embeddingEnd(0)
	if n <= 0 {
		return 0
	}
	return (n + blockAdvance - 1) / blockAdvance
}

// process adds the chunk's audio, the speech ends the VAD closed in it, and scores every due
// window whose audio has arrived.
func (g *phraseGate) process(p *Phrase, pcm []float32, obs *AudioObservation) error {
	for _, v := range pcm {
		g.ring = append(g.ring, int16(max(-32768, min(32767, math.Round(float64(v)*32768)))))
	}
	total := g.ringStart + int64(len(g.ring))
	ends := g.ends[:0]
	for _, sg := range obs.Speech {
		if !sg.Open {
			ends = append(ends, sg.EndMs*AudioRate/1000-g.vadPad)
		}
	}
	ends = g.energy.update(g.ring, g.ringStart, ends)
	slices.Sort(ends)
	g.ends = ends
	for _, end := range ends {
		lo := max(stepFor(end-g.before), int64(p.window-1), g.next)
		hi := stepFor(end+g.after+1) - 1 // last window ending at or before end+after
		if n := len(g.spans); n > 0 && lo <= g.spans[n-1].hi+1 {
			g.spans[n-1].hi = max(g.spans[n-1].hi, hi)
		} else if hi >= lo {
			g.spans = append(g.spans, gateSpan{lo, hi})
		}
	}
	for len(g.spans) > 0 {
		sp := &g.spans[0]
		if sp.lo > g.next {
			// A gap: the peak picking starts over (no run of windows continues across it).
			p.active.run = 0
			if p.shadow != nil {
				p.shadow.run = 0
			}
			g.next = sp.lo
		}
		// The windows whose audio has arrived: their embeddings are computed in one run.
		last := g.next - 1
		for last < sp.hi && embeddingInputEnd(last+1) <= total {
			last++
		}
		for ; g.next <= last; g.next++ {
			if err := g.score(p, g.next, last, obs); err != nil {
				return err
			}
		}
		// A detection still open at the span's end is followed to its end (Hold windows).
		for _, s := range []*spotter{p.active, p.shadow} {
			if s != nil && s.cand {
				sp.hi = max(sp.hi, s.candStep+int64(s.hold))
			}
		}
		if g.next <= sp.hi {
			break // the rest of the span's audio comes with the next chunk
		}
		g.spans = g.spans[1:]
	}
	// Keep the audio a span not yet closed by the VAD may need, and what pending spans need.
	from := total - g.keep
	if len(g.spans) > 0 {
		from = min(from, g.embStart(max(g.next, g.spans[0].lo)))
	}
	if n := from - g.ringStart; n > 0 {
		n = min(n, int64(len(g.ring)))
		g.ring = g.ring[:copy(g.ring, g.ring[n:])]
		g.ringStart += n
	}
	p.reportOpen(obs)
	return nil
}

// embeddingInputEnd is the sample where the audio embedding s is computed from ends: its last
// mel block (s+9) reaches 640 samples past the window end (the block's frames 76–79 are unused).
func embeddingInputEnd(s int64) int64 {
	return (s+(melWindow+melBlock-1)/melBlock-1)*blockAdvance + blockInput
}

// embStart is the first sample the history of the window at step s needs.
func (g *phraseGate) embStart(s int64) int64 {
	return max(0, s-g.window+1) * blockAdvance
}

// score brings the head's history to embeddings s−window+1..s and runs the heads on it. Steps
// up to last will be scored next: an embedding not computed yet is computed with all those after
// it up to last.
func (g *phraseGate) score(p *Phrase, s, last int64, obs *AudioObservation) error {
	oldest := s - g.window + 1
	first := oldest
	hist := p.headIn.GetData()
	if g.embLast >= oldest && g.embLast < s {
		// Keep the embeddings still in the history: shift them to the front.
		copy(hist, hist[int(s-g.embLast)*embDim:])
		first = g.embLast + 1
	}
	for e := first; e <= s; e++ {
		emb, err := g.embedding(p, e, last)
		if err != nil {
			return err
		}
		slot := int(e - oldest)
		copy(hist[slot*embDim:(slot+1)*embDim], emb)
	}
	g.embLast = s
	if err := p.active.score(s, &obs.Phrases); err != nil {
		return fmt.Errorf("phrase head: %w", err)
	}
	if p.shadow != nil {
		if err := p.shadow.score(s, &obs.ShadowPhrases); err != nil {
			return fmt.Errorf("shadow phrase head %s: %w", p.shadow.id, err)
		}
	}
	return nil
}

// embedding returns embedding e, computing e..last in one run of the model when e is not in the
// last run.
func (g *phraseGate) embedding(p *Phrase, e, last int64) ([]float32, error) {
	if k := e - g.embFrom; k >= 0 && k < int64(len(g.embs)/embDim) {
		return g.embs[k*embDim : (k+1)*embDim], nil
	}
	if err := g.embedRun(p, e, max(e, last)); err != nil {
		return nil, err
	}
	return g.embs[:embDim], nil
}

// embedRun runs the embedding model on mel frames [8e, 8last+76), computing the mel blocks
// missing: embeddings e..last, output j being that of frames [8(e+j), 8(e+j)+76).
func (g *phraseGate) embedRun(p *Phrase, e, last int64) error {
	f0 := e * melBlock
	frames := (last-e)*melBlock + melWindow
	have := int64(len(g.mel) / melBins)
	if f0 < g.melStart || f0 > g.melStart+have {
		g.mel, g.melStart, have = g.mel[:0], f0, 0
	} else if k := f0 - g.melStart; k > 0 {
		g.mel = g.mel[:copy(g.mel, g.mel[k*melBins:])]
		g.melStart, have = f0, have-k
	}
	if have < frames {
		if err := g.melBlocks(p, int((frames-have+melBlock-1)/melBlock)); err != nil {
			return err
		}
	}
	k := last - e + 1
	g.embs, g.embFrom = slices.Grow(g.embs[:0], int(k)*embDim)[:k*embDim], e
	in, err := ort.NewTensor(ort.NewShape(1, frames, melBins, 1), g.mel[:frames*melBins])
	if err != nil {
		return fmt.Errorf("embedding input: %w", err)
	}
	defer in.Destroy()
	out, err := ort.NewTensor(ort.NewShape(k, 1, 1, embDim), g.embs)
	if err != nil {
		return fmt.Errorf("embedding output: %w", err)
	}
	defer out.Destroy()
	if err := p.embRun.Run([]ort.Value{in}, []ort.Value{out}); err != nil {
		return fmt.Errorf("embedding: %w", err)
	}
	p.embRuns += k
	return nil
}

// melBlocks appends the next n mel blocks after those in g.mel (block b: samples [1280b,
// 1280b+1632)), computed in one call of the batch melspectrogram.
func (g *phraseGate) melBlocks(p *Phrase, n int) error {
	b0 := (g.melStart + int64(len(g.mel)/melBins)) / melBlock
	g.melIn = slices.Grow(g.melIn[:0], n*blockInput)[:n*blockInput]
	for i := range n {
		at := (b0+int64(i))*blockAdvance - g.ringStart
		if at < 0 || at+blockInput > int64(len(g.ring)) {
			return fmt.Errorf("phrase gate: mel block %d outside the audio kept (%d..%d)", b0+int64(i), g.ringStart, g.ringStart+int64(len(g.ring)))
		}
		dst := g.melIn[i*blockInput : (i+1)*blockInput]
		for j, v := range g.ring[at : at+blockInput] {
			dst[j] = max(-1, min(1, float32(v)/32768)) * 32767
		}
	}
	have := len(g.mel)
	g.mel = slices.Grow(g.mel, n*melBlock*melBins)[:have+n*melBlock*melBins]
	out := g.mel[have:]
	in, err := ort.NewTensor(ort.NewShape(int64(n), blockInput), g.melIn)
	if err != nil {
		return fmt.Errorf("melspectrogram input: %w", err)
	}
	defer in.Destroy()
	res, err := ort.NewTensor(ort.NewShape(int64(n), 1, melBlock, melBins), out)
	if err != nil {
		return fmt.Errorf("melspectrogram output: %w", err)
	}
	defer res.Destroy()
	if err := p.melRun.Run([]ort.Value{in}, []ort.Value{res}); err != nil {
		return fmt.Errorf("melspectrogram: %w", err)
	}
	for i, v := range out {
		out[i] = v/10 + 2
	}
	p.melRuns += int64(n)
	return nil
}

func (g *phraseGate) appendState(w *stateWriter) {
	w.i64(g.energy.at)
	w.f32(g.energy.floor)
	w.u32(uint32(g.energy.loud))
	w.u32(uint32(g.energy.quiet))
	w.i64(g.ringStart)
	w.i64(g.next)
	w.u32(uint32(len(g.spans)))
	for _, s := range g.spans {
		w.i64(s.lo)
		w.i64(s.hi)
	}
	w.pcm16(g.ring)
}

func (g *phraseGate) restoreState(r *stateReader) error {
	g.reset()
	g.energy.at, g.energy.floor = r.i64(), r.f32()
	g.energy.loud, g.energy.quiet = int32(r.u32()), int32(r.u32())
	g.ringStart, g.next = r.i64(), r.i64()
	n := int(r.u32())
	if r.err != nil || n > 1024 {
		return ErrStateMismatch
	}
	for range n {
		g.spans = append(g.spans, gateSpan{r.i64(), r.i64()})
	}
	if g.ring = r.pcm16Into(g.ring, math.MaxInt32); r.err != nil {
		return ErrStateMismatch
	}
	return nil
}
