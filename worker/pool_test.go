package worker

import (
	"testing"
	"time"
)

type countedSet struct{ id int }

func (countedSet) Close() error { return nil }

// TestPoolWaiterTakesTheFirstSlotBack: with every slot busy, a session whose own slot stays busy
// gets the first slot given back, not a wait on its own while a core sits idle.
func TestPoolWaiterTakesTheFirstSlotBack(t *testing.T) {
	n := 0
	p, err := newSetPool(2, func() (countedSet, error) { n++; return countedSet{n}, nil })
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	a, releaseA, err := p.acquire("a") // slot 0
	if err != nil {
		t.Fatal(err)
	}
	b, releaseB, err := p.acquire("b") // slot 1, the least loaded
	if err != nil {
		t.Fatal(err)
	}
	if a.id == b.id {
		t.Fatalf("a and b share set %d", a.id)
	}
	got := make(chan countedSet, 2)
	waiter := func(session string) {
		set, release, err := p.acquire(session)
		if err != nil {
			t.Error(err)
			return
		}
		got <- set
		release()
	}
	go waiter("c") // its slot is a's (the tie goes to slot 0), which stays busy
	waitFor(t, func() bool { return waiting(p) == 1 })
	releaseB()
	select {
	case s := <-got:
		if s.id != b.id {
			t.Errorf("c got set %d, want b's %d (the one given back)", s.id, b.id)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("c still waits for its own busy slot while b's is free")
	}
	releaseA()
}

// waiting counts the goroutines blocked in acquire: every slot busy and the caller parked.
func waiting(p *setPool[countedSet]) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.waiters
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 30 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
