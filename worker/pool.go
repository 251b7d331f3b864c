package worker

import (
	"context"
	"sync"
	"sync/atomic"
)

// setPool hands out analyzer sets, one per concurrent handler. ONNX sessions and OpenCV objects
// must not be shared between goroutines, and loading a set costs model start-up time, so sets
// are created on first use up to a limit and reused afterwards.
type setPool[T interface{ Close() error }] struct {
	idle    chan T
	created chan struct{} // one token per set that may still be created
	newSet  func() (T, error)
	// retired pools (replaced by livePool.swap) close sets as they come back.
	mu      sync.Mutex
	retired bool
}

// newSetPool creates up to size sets with newSet. It makes the first straight away, so a missing
// model fails at start-up rather than on the first message.
func newSetPool[T interface{ Close() error }](size int, newSet func() (T, error)) (*setPool[T], error) {
	size = max(size, 1)
	p := &setPool[T]{idle: make(chan T, size), created: make(chan struct{}, size-1), newSet: newSet}
	for range size - 1 {
		p.created <- struct{}{}
	}
	first, err := newSet()
	if err != nil {
		return nil, err
	}
	p.idle <- first
	return p, nil
}

// get returns an idle set, or a new one while fewer than size exist, or waits for one.
func (p *setPool[T]) get(ctx context.Context) (T, error) {
	var zero T
	select {
	case s := <-p.idle:
		return s, nil
	default:
	}
	select {
	case s := <-p.idle:
		return s, nil
	case <-p.created:
		s, err := p.newSet()
		if err != nil {
			p.created <- struct{}{}
			return zero, err
		}
		return s, nil
	case <-ctx.Done():
		return zero, ctx.Err()
	}
}

// put returns a set taken with get (to the pool it came from).
func (p *setPool[T]) put(s T) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.retired {
		s.Close()
		return
	}
	p.idle <- s
}

// retire closes the idle sets and makes put close the ones still in use when they return.
func (p *setPool[T]) retire() {
	p.mu.Lock()
	p.retired = true
	p.mu.Unlock()
	p.Close()
}

// Close closes the idle sets; call it only after every handler has stopped.
func (p *setPool[T]) Close() {
	for {
		select {
		case s := <-p.idle:
			s.Close()
		default:
			return
		}
	}
}

// livePool is a setPool that can be replaced while handlers run, when another model version is
// activated: handlers in flight finish on the old sets, new messages get new ones.
type livePool[T interface{ Close() error }] struct {
	cur atomic.Pointer[setPool[T]]
}

// load returns the current pool; take and return a set to the same pool.
func (l *livePool[T]) load() *setPool[T] { return l.cur.Load() }

// swap installs p and retires the previous pool.
func (l *livePool[T]) swap(p *setPool[T]) {
	if old := l.cur.Swap(p); old != nil {
		old.retire()
	}
}

// Close closes the current pool's idle sets; call it only after every handler has stopped.
func (l *livePool[T]) Close() {
	if p := l.cur.Load(); p != nil {
		p.Close()
	}
}
