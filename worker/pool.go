package worker

import (
	"sync"
	"sync/atomic"
)

// setPool holds a fixed number of analyzer sets (slots), one per CPU a worker analyses on. ONNX
// sessions and OpenCV objects must not be shared between goroutines, and loading a set costs
// model start-up time, so a slot's set is created on first use and reused afterwards.
//
// A session keeps to one slot (session affinity): analyzers keep a little state per session
// between frames (identity's face track, the phone a detector saw still), and a session that
// hopped between sets would lose it. New sessions go to the slot with the fewest sessions, so the
// work spreads over the slots however Kafka spread the sessions over partitions and readers.
type setPool[T interface{ Close() error }] struct {
	slots  []*slot[T]
	newSet func() (T, error)

	mu      sync.Mutex
	owner   map[string]int // session → slot
	keys    []string       // sessions in order of assignment, to bound owner
	load    []int          // sessions per slot
	retired bool
}

type slot[T any] struct {
	mu  sync.Mutex // held while a handler uses the set
	set T
	ok  bool
}

// maxAffinity bounds the sessions remembered; beyond it the oldest half is forgotten (their next
// frames pick a slot again).
const maxAffinity = 16384

// newSetPool makes a pool of size slots. It creates the first set straight away, so a missing
// model fails at start-up rather than on the first message.
func newSetPool[T interface{ Close() error }](size int, newSet func() (T, error)) (*setPool[T], error) {
	size = max(size, 1)
	p := &setPool[T]{newSet: newSet, owner: map[string]int{}, load: make([]int, size)}
	for range size {
		p.slots = append(p.slots, &slot[T]{})
	}
	first, err := newSet()
	if err != nil {
		return nil, err
	}
	p.slots[0].set, p.slots[0].ok = first, true
	return p, nil
}

// acquire returns the set of session's slot, waiting while another handler uses it, and the
// function that gives it back.
func (p *setPool[T]) acquire(session string) (T, func(), error) {
	s := p.slots[p.slotOf(session)]
	s.mu.Lock()
	if !s.ok {
		set, err := p.newSet()
		if err != nil {
			s.mu.Unlock()
			var zero T
			return zero, nil, err
		}
		s.set, s.ok = set, true
	}
	return s.set, func() { p.release(s) }, nil
}

func (p *setPool[T]) release(s *slot[T]) {
	p.mu.Lock()
	retired := p.retired
	p.mu.Unlock()
	if retired && s.ok {
		s.set.Close()
		s.ok = false
	}
	s.mu.Unlock()
}

func (p *setPool[T]) slotOf(session string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
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
	p.retired = true
	p.mu.Unlock()
	for _, s := range p.slots {
		if s.mu.TryLock() {
			if s.ok {
				s.set.Close()
				s.ok = false
			}
			s.mu.Unlock()
		}
	}
}

// Close closes the sets; call it only after every handler has stopped.
func (p *setPool[T]) Close() {
	for _, s := range p.slots {
		s.mu.Lock()
		if s.ok {
			s.set.Close()
			s.ok = false
		}
		s.mu.Unlock()
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
