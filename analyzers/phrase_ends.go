package analyzers

import (
	"fmt"
	"math"

	ort "github.com/yalue/onnxruntime_go"

	"proctor/models"
)

// The phrase closes an answer, so it ends where the candidate stops speaking: the "ewn" front end
// looks only at the end of each speech segment the VAD closes, with EfficientWord-Net's keyword
// embedding (trained on real human speech) and a head trained here. It costs one or two network
// calls per segment instead of an embedding every 80 ms.

// ewnOffsets are where the windows end, in samples after the VAD's speech end (its first quiet
// frame, before the padding): training/phrase/ewn.py OFFSETS (-0.1 s, +0.05 s).
var ewnOffsets = [...]int64{-1600, 800}

// ewnRing is how much audio the end spotter keeps: a 1.5 s window before the earliest offset,
// plus the ≤ 332 ms the VAD needs to close a segment.
const ewnRing = ewnWindow + 1600 + 6400

type endSpotter struct {
	ewn     *EWN
	head    *ort.AdvancedSession
	headIn  *ort.Tensor[float32]
	headOut *ort.Tensor[float32]
	thr     float32
	phrase  int64 // samples: a detection's start is its end minus this
	vadPad  int64 // samples the VAD adds after the speech end
	id      string
	win     []float32

	// Stretch state (saved).
	ring  []int16  // the last ≤ ewnRing samples, quantised to 16 bits so a restored state is exact
	total int64    // samples of the stretch pushed so far (the ring ends here)
	due   []dueEnd // speech ends not decided yet

	runs int64 // EWN windows embedded since built (a statistic)
}

// dueEnd is a speech end (samples of the stretch) waiting for its audio (EWN) or, when fused,
// for the openWakeWord scores around it.
type dueEnd struct {
	end    int64
	ewn    float32
	scored bool
}

// Fused scores take the openWakeWord head's best window ending in [end−250 ms, end+350 ms]
// (training/phrase/ewn.py oww_end).
const owwBefore, owwAfter = 4000, 5600

func newEndSpotter(hm *models.Manifest, cfg PhraseConfig, vadPad int64) (*endSpotter, error) {
	e := &endSpotter{thr: cfg.Threshold, vadPad: vadPad, id: hm.ID(), win: make([]float32, ewnWindow),
		ring: make([]int16, 0, ewnRing+AudioRate)}
	if e.thr <= 0 {
		e.thr = hm.Thresholds.Score
	}
	e.phrase = int64(hm.Audio.PhraseMs) * AudioRate / 1000
	var err error
	if e.ewn, err = NewEWN(cfg.Threads); err != nil {
		return nil, err
	}
	if e.headIn, err = ort.NewEmptyTensor[float32](ort.NewShape(1, 2048)); err == nil {
		if e.headOut, err = ort.NewEmptyTensor[float32](ort.NewShape(1, 1)); err == nil {
			e.head, err = models.NewAudioSession(hm, []ort.Value{e.headIn}, []ort.Value{e.headOut}, models.SessionOptions{IntraOpThreads: cfg.Threads})
		}
	}
	if err != nil {
		e.close()
		return nil, err
	}
	return e, nil
}

func (e *endSpotter) reset() {
	e.ring, e.total, e.due = e.ring[:0], 0, e.due[:0]
}

func (e *endSpotter) close() {
	if e == nil {
		return
	}
	if e.ewn != nil {
		e.ewn.Close()
	}
	if e.head != nil {
		e.head.Destroy()
	}
	for _, t := range []*ort.Tensor[float32]{e.headIn, e.headOut} {
		if t != nil {
			t.Destroy()
		}
	}
}

func (e *endSpotter) push(pcm []float32) {
	for _, v := range pcm {
		e.ring = append(e.ring, int16(max(-32768, min(32767, math.Round(float64(v)*32768)))))
	}
	e.total += int64(len(pcm))
	if n := len(e.ring) - ewnRing; n > 0 {
		e.ring = e.ring[:copy(e.ring, e.ring[n:])]
	}
}

// process feeds the chunk and scores every speech end the VAD closed in it (obs.Speech, filled
// by the "vad" analyzer that runs first) as soon as its windows are in the ring; fused (oww not
// nil) it decides once the openWakeWord scores after the end exist too.
func (e *endSpotter) process(pcm []float32, obs *AudioObservation, oww *Phrase) error {
	for _, sg := range obs.Speech {
		if !sg.Open {
			e.due = append(e.due, dueEnd{end: sg.EndMs*AudioRate/1000 - e.vadPad})
		}
	}
	last := ewnOffsets[len(ewnOffsets)-1]
	for i := range e.due {
		d := &e.due[i]
		if d.scored {
			continue
		}
		k := d.end + last - e.total
		if k > int64(len(pcm)) {
			break
		}
		if k > 0 {
			e.push(pcm[:k])
			pcm = pcm[k:]
		}
		var err error
		if d.ewn, err = e.score(d.end); err != nil {
			return err
		}
		d.scored = true
	}
	e.push(pcm)
	for len(e.due) > 0 && e.due[0].scored {
		d := e.due[0]
		score := d.ewn
		if oww != nil {
			o, ok := oww.owwBest(d.end-owwBefore, d.end+owwAfter)
			if !ok {
				break // the openWakeWord windows after this end arrive with the next chunk
			}
			score = oww.fuse*o + (1-oww.fuse)*d.ewn
		}
		// The phrase ends where the speech does; which window scored best is not used for the
		// time, so a detection's times never depend on onnxruntime's last-digit differences
		// between sessions (a takeover runs another session).
		if score >= e.thr {
			obs.Phrases = append(obs.Phrases, PhraseDetection{OnsetMs: toMs(d.end), StartMs: toMs(max(0, d.end-e.phrase)),
				EndMs: toMs(d.end), Score: score, Final: true})
		}
		e.due = e.due[1:]
	}
	return nil
}

// score is the best EWN head score of the windows at end's offsets.
func (e *endSpotter) score(end int64) (float32, error) {
	best := float32(-1)
	for _, off := range ewnOffsets {
		stop := end + off // window end, samples of the stretch
		ringStart := e.total - int64(len(e.ring))
		for i := range e.win {
			s := stop - ewnWindow + int64(i)
			if s < ringStart || s >= e.total {
				e.win[i] = 0 // before the stretch (or an evicted past): silence, as ewn.py pads
			} else {
				e.win[i] = float32(e.ring[s-ringStart]) / 32768
			}
		}
		emb, err := e.ewn.Embed(e.win)
		if err != nil {
			return 0, err
		}
		e.runs++
		copy(e.headIn.GetData(), emb)
		if err := e.head.Run(); err != nil {
			return 0, fmt.Errorf("ewn phrase head: %w", err)
		}
		best = max(best, e.headOut.GetData()[0])
	}
	return best, nil
}

func (e *endSpotter) appendState(w *stateWriter) {
	w.i64(e.total)
	w.u32(uint32(len(e.due)))
	for _, d := range e.due {
		w.i64(d.end)
		w.f32(d.ewn)
		w.boolean(d.scored)
	}
	w.pcm16(e.ring)
}

func (e *endSpotter) restoreState(r *stateReader) error {
	e.total = r.i64()
	n := int(r.u32())
	if r.err != nil || n > 64 {
		return ErrStateMismatch
	}
	e.due = e.due[:0]
	for range n {
		e.due = append(e.due, dueEnd{end: r.i64(), ewn: r.f32(), scored: r.boolean()})
	}
	if e.ring = r.pcm16Into(e.ring, ewnRing); r.err != nil {
		return ErrStateMismatch
	}
	return nil
}
