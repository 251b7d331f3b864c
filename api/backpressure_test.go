package api

import (
	"testing"
	"time"

	"proctor/pipeline"
)

// The expected wait: the backlog over the rate measured while messages were waiting (idle
// readings do not dilute it), never less than the oldest message's age; the age alone before any
// rate was measured; the last rate kept across an idle spell.
func TestBacklogEstimate(t *testing.T) {
	t0 := time.Now()
	reading := func(sec float64, pos int64, busy bool) positions {
		return positions{at: t0.Add(time.Duration(sec * float64(time.Second))), pos: map[string]int64{"f": pos}, busy: map[string]bool{"f": busy}}
	}
	var b backlogState
	tb := pipeline.TopicBacklog{Messages: 500, OldestAge: 2 * time.Second}
	if got := b.estimate("f", tb); got != 2*time.Second {
		t.Errorf("no rate yet: %v, want the oldest age 2s", got)
	}
	// Idle for 8 s (nothing waiting, position flat), then 2 s busy draining 100 messages/s.
	b.history = []positions{reading(0, 0, false), reading(4, 0, false), reading(8, 0, true), reading(9, 100, true), reading(10, 200, true)}
	b.measureRate("f")
	if got := b.estimate("f", tb); got != 5*time.Second {
		t.Errorf("500 waiting at 100/s: %v, want 5s", got)
	}
	if got := b.estimate("f", pipeline.TopicBacklog{Messages: 10, OldestAge: 3 * time.Second}); got != 3*time.Second {
		t.Errorf("10 waiting, the oldest for 3 s: %v, want 3s", got)
	}
	if got := b.estimate("f", pipeline.TopicBacklog{}); got != 0 {
		t.Errorf("nothing waiting: %v", got)
	}
	// A later idle window measures nothing: the last rate stays.
	b.history = []positions{reading(20, 200, false), reading(30, 200, false)}
	b.measureRate("f")
	if got := b.estimate("f", tb); got != 5*time.Second {
		t.Errorf("after an idle window: %v, want the last rate's 5s", got)
	}
}
