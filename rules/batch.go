package rules

import (
	"fmt"
	"slices"

	"gorm.io/gorm"

	"proctor/store"
)

// Batch applies the frame rules to several frames stored in one transaction (a fetched batch of
// Kafka messages). It reads each session and camera's neighbouring frames once per batch instead
// of once per frame, and recomputes each session's risk once at the end. The frames are judged
// exactly as ApplyFrame would judge them one after another: a frame of the batch is visible to
// the rules only once it has been applied, so a run (and a flag's evidence frame) comes out the
// same whether the frames arrived together or apart.
type Batch struct {
	tx      *gorm.DB
	cameras map[cameraKey]*cameraFrames
	// risk holds the weights of each session whose flags changed (its exam's engine).
	risk map[string]map[string]float64
}

type cameraKey struct{ session, camera string }

// NewBatch starts a batch in tx. Declare every frame about to be stored with Pending before
// storing them, apply them in order with ApplyBatch, then call Finish.
func NewBatch(tx *gorm.DB) *Batch {
	return &Batch{tx: tx, cameras: map[cameraKey]*cameraFrames{}, risk: map[string]map[string]float64{}}
}

// Pending declares a frame that this batch stores but has not applied yet: the rules do not see
// it before ApplyBatch reaches it.
func (b *Batch) Pending(sessionID, camera string, seq int64) {
	b.camera(sessionID, camera).pending = append(b.camera(sessionID, camera).pending, seq)
}

func (b *Batch) camera(sessionID, camera string) *cameraFrames {
	k := cameraKey{sessionID, camera}
	c := b.cameras[k]
	if c == nil {
		c = &cameraFrames{tx: b.tx, session: sessionID, camera: camera}
		b.cameras[k] = c
	}
	return c
}

// Finish recomputes the risk of every session whose flags the batch changed.
func (b *Batch) Finish() error {
	for id, w := range b.risk {
		if err := RecomputeRisk(b.tx, id, w); err != nil {
			return err
		}
	}
	clear(b.risk)
	return nil
}

// ApplyFrame runs the frame rules for a newly stored frame inside tx. It returns the ids of flags
// created or extended.
func (e *Engine) ApplyFrame(tx *gorm.DB, in FrameInput) ([]uint, error) {
	b := NewBatch(tx)
	ids, err := e.ApplyBatch(b, in)
	if err != nil {
		return nil, err
	}
	return ids, b.Finish()
}

// ApplyBatch runs the frame rules for the next frame of a batch. It returns the ids of flags
// created or extended; the session's risk is recomputed by Finish.
func (e *Engine) ApplyBatch(b *Batch, in FrameInput) ([]uint, error) {
	fr := in.Result
	cur, err := parseFrame(store.FrameSignals{Seq: fr.Seq, CapturedAtMs: fr.CapturedAtMs, Signals: fr.Signals})
	if err != nil {
		return nil, err
	}
	cf := b.camera(fr.SessionID, fr.Camera)
	if err := cf.add(cur); err != nil {
		return nil, err
	}
	nb := neighbours{cf: cf, pos: cur, idx: -1}
	var touched []uint
	for _, r := range e.frameRules() {
		if (r.Camera != "" && r.Camera != fr.Camera) || !r.Holds(&cur) ||
			(r.When != nil && in.Session != nil && !r.When(in.Session)) ||
			(r.During != nil && in.Session != nil && !r.During(in.Session, cur.CapturedAtMs)) {
			continue
		}
		id, err := e.applyRun(b.tx, r, in, &cur, &nb)
		if err != nil {
			return nil, fmt.Errorf("rule %s: %w", r.Type, err)
		}
		if id != 0 {
			touched = append(touched, id)
		}
	}
	if len(touched) > 0 {
		b.risk[fr.SessionID] = e.weights
	}
	return touched, nil
}

// cameraFrames is a window of one session and camera's stored frames, in (CapturedAtMs, Seq)
// order: every stored frame between lo and hi (frames[0] and frames[len-1] once loaded) is in
// it, except the batch's pending ones.
type cameraFrames struct {
	tx              *gorm.DB
	session, camera string
	pending         []int64 // seqs stored by the batch, not yet applied
	frames          []Frame
	lo, hi          Frame // the window's bounds (frames may hold fewer when a side is empty)
	open            bool  // the window exists (lo, hi set)
	loDone, hiDone  bool  // nothing stored before lo / after hi (pending aside)
}

func less(a, b *Frame) bool {
	return a.CapturedAtMs < b.CapturedAtMs || (a.CapturedAtMs == b.CapturedAtMs && a.Seq < b.Seq)
}

// add makes an applied frame visible. A frame outside the window, where the window is not known
// to be complete on that side, starts a new window around it.
func (c *cameraFrames) add(f Frame) error {
	if i := slices.Index(c.pending, f.Seq); i >= 0 {
		c.pending = slices.Delete(c.pending, i, i+1)
	}
	switch {
	case !c.open || (less(&f, &c.lo) && !c.loDone) || (less(&c.hi, &f) && !c.hiDone):
		c.frames, c.open, c.loDone, c.hiDone = c.frames[:0], true, false, false
		c.lo, c.hi = f, f
	case less(&f, &c.lo):
		c.lo = f
	case less(&c.hi, &f):
		c.hi = f
	}
	i, _ := slices.BinarySearchFunc(c.frames, f, func(a, b Frame) int {
		if less(&a, &b) {
			return -1
		} else if less(&b, &a) {
			return 1
		}
		return 0
	})
	c.frames = slices.Insert(c.frames, i, f)
	return nil
}

// index of the frame at pos in the window.
func (c *cameraFrames) index(pos *Frame) int {
	for i := range c.frames {
		if c.frames[i].Seq == pos.Seq && c.frames[i].CapturedAtMs == pos.CapturedAtMs {
			return i
		}
	}
	return -1
}

// grow reads the next page of stored frames beyond the window on one side (0 before, 1 after).
func (c *cameraFrames) grow(side int) error {
	edge := c.lo
	if side == 1 {
		edge = c.hi
	}
	rows, err := store.NeighbourFramesExcept(c.tx, c.session, c.camera, edge.CapturedAtMs, edge.Seq, side == 1, neighbourPage, c.pending)
	if err != nil {
		return err
	}
	fs := make([]Frame, 0, len(rows))
	for _, r := range rows {
		f, err := parseFrame(r)
		if err != nil {
			return err
		}
		fs = append(fs, f)
	}
	if side == 0 {
		slices.Reverse(fs)
		c.frames = append(fs, c.frames...)
		if len(fs) > 0 {
			c.lo = fs[0]
		}
		c.loDone = len(rows) < neighbourPage
	} else {
		c.frames = append(c.frames, fs...)
		if len(fs) > 0 {
			c.hi = fs[len(fs)-1]
		}
		c.hiDone = len(rows) < neighbourPage
	}
	return nil
}
