package worker

import (
	"sync"
	"sync/atomic"
)

// setPool holds a fixed number of analyzer sets (slots), one per CPU a worker analyses on. ONNX
// sessions and OpenCV objects must not be shared between goroutines, and loading a set costs
// model start-up time, so a slot's set is created on first use and reused afterwards.
//
// A session prefers one slot (session affinity): analyzers keep a little state per session
// between frames (identity's face track, the phone a detector saw still), which a session that
// hops between sets loses (its next frame then measures afresh: an embedding more, a phone not
// yet known to be still). New sessions go to the slot with the fewest sessions. When a session's
// slot is busy and another is free, it takes the free one, and when all are busy it waits for
// the first to come back, whichever it is: a core left idle costs more than that state
// (measured: 61 → 71 frames/s end to end, `proctor bench -n 1200 --sessions 12`, for the free
// slot; waiting on its own slot left a slot idle while sessions of another waited).
type setPool[T interface{ Close() error }] struct {
	slots  []*slot[T]
	newSet func() (T, error)

	mu      sync.Mutex
	back    *sync.Cond     // a slot was given back (on mu)
	waiters int            // acquires parked on back
	owner   map[string]int // session → slot
	keys    []string       // sessions in order of assignment, to bound owner
	load    []int          // sessions per slot
	retired bool
}

// slot is one analyzer set. busy is guarded by the pool's mu; set and ok belong to whoever holds
// the slot busy (and to the pool while it is idle).
type slot[T any] struct {
	busy bool
	set  T
	ok   bool
}

// maxAffinity bounds the sessions remembered; beyond it the oldest half is forgotten (their next
// frames pick a slot again).
const maxAffinity = 16384

// newSetPool makes a pool of size slots and their sets, straight away: a missing model fails at
// start-up rather than on the first message, and no session's first frames wait for models to
// load.
func newSetPool[T interface{ Close() error }](size int, newSet func() (T, error)) (*setPool[T], error) {
	size = max(size, 1)
	p := &setPool[T]{newSet: newSet, owner: map[string]int{}, load: make([]int, size)}
	p.back = sync.NewCond(&p.mu)
	for range size {
		set, err := newSet()
		if err != nil {
			p.Close()
			return nil, err
		}
		p.slots = append(p.slots, &slot[T]{set: set, ok: true})
	}
	return p, nil
}

// acquire returns the set of session's slot, or another slot's when that one is busy and
// another is free, or a slot given back when all are busy (each one given back wakes the
// longest waiter; one arriving just then may take it first); and the function that gives it
// back.
func (p *setPool[T]) acquire(session string) (T, func(), error) {
	p.mu.Lock()
	own := p.slotOf(session)
	s := p.free(own)
	for s == nil {
		p.waiters++
		p.back.Wait()
		p.waiters--
		s = p.free(own)
	}
	s.busy = true
	p.mu.Unlock()
	if !s.ok {
		set, err := p.newSet()
		if err != nil {
			p.release(s)
			var zero T
			return zero, nil, err
		}
		s.set, s.ok = set, true
	}
	return s.set, func() { p.release(s) }, nil
}

// free returns slot own if it is idle, else any idle slot, else nil. Call with mu held.
func (p *setPool[T]) free(own int) *slot[T] {
	if !p.slots[own].busy {
		return p.slots[own]
	}
	for _, c := range p.slots {
		if !c.busy {
			return c
		}
	}
	return nil
}

func (p *setPool[T]) release(s *slot[T]) {
	p.mu.Lock()
	if p.retired && s.ok {
		s.set.Close()
		s.ok = false
	}
	s.busy = false
	p.mu.Unlock()
	p.back.Signal()
}

// slotOf returns session's slot, choosing the least loaded for a new session. Call with mu held.
func (p *setPool[T]) slotOf(session string) int {
	if i, ok := p.owner[session]; ok {
		return i
	}
	if len(p.keys) >= maxAffinity {
		for _, k := range p.keys[:maxAffinity/2] {
			if i, ok := p.owner[k]; ok {
				p.load[i]--
				delete(p.owner, k)
			}
		}
		p.keys = append(p.keys[:0], p.keys[maxAffinity/2:]...)
	}
	best := 0
	for i, n := range p.load {
		if n < p.load[best] {
			best = i
		}
	}
	p.owner[session] = best
	p.keys = append(p.keys, session)
	p.load[best]++
	return best
}

// forget drops a session's affinity (its exam ended).
func (p *setPool[T]) forget(session string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if i, ok := p.owner[session]; ok {
		p.load[i]--
		delete(p.owner, session)
	}
}

// retire closes the idle sets and makes release close the ones in use when they come back.
func (p *setPool[T]) retire() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.retired = true
	for _, s := range p.slots {
		if !s.busy && s.ok {
			s.set.Close()
			s.ok = false
		}
	}
}

// Close closes the sets; call it only after every handler has stopped.
func (p *setPool[T]) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range p.slots {
		if s.ok {
			s.set.Close()
			s.ok = false
		}
	}
}

// livePool is a setPool that can be replaced while handlers run, when another model version is
// activated: handlers in flight finish on the old sets, new messages get new ones.
type livePool[T interface{ Close() error }] struct {
	cur atomic.Pointer[setPool[T]]
}

// load returns the current pool; acquire and release a set in the same pool.
func (l *livePool[T]) load() *setPool[T] { return l.cur.Load() }

// swap installs p and retires the previous pool.
func (l *livePool[T]) swap(p *setPool[T]) {
	if old := l.cur.Swap(p); old != nil {
		old.retire()
	}
}

// Close closes the current pool's sets; call it only after every handler has stopped.
func (l *livePool[T]) Close() {
	if p := l.cur.Load(); p != nil {
		p.Close()
	}
}
