package pipeline

import "context"

// setPool hands out analyzer sets, one per concurrent handler. ONNX sessions and OpenCV objects
// must not be shared between goroutines, and loading a set costs model start-up time, so sets
// are created on first use up to a limit and reused afterwards.
type setPool[T interface{ Close() error }] struct {
	idle    chan T
	created chan struct{} // one token per set that may still be created
	newSet  func() (T, error)
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

// put returns a set taken with get.
func (p *setPool[T]) put(s T) { p.idle <- s }

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
