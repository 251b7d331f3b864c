package models

import (
	"errors"
	"testing"
)

// A phrase head's manifest states its history length (audio.window), and the service feeds it
// that many embeddings: each built-in head's graph runs on exactly [1, window, 96] and refuses
// another length, so a manifest that disagrees with its ONNX fails when the head is checked.
func TestPhraseHeadWindowMatchesGraph(t *testing.T) {
	for _, c := range []struct {
		name   string
		window int
	}{{"phrase-gaiti", 16}, {"phrase-gaiti-fp32", 16}, {"phrase-gaiti-h12", 12}} {
		m, err := Lookup(c.name)
		if err != nil {
			t.Fatal(err)
		}
		if m.Audio.Window != c.window {
			t.Errorf("%s: audio.window %d, want %d", m.ID(), m.Audio.Window, c.window)
		}
		err = CheckLoads(m)
		if errors.Is(err, ErrRuntimeMissing) || errors.Is(err, ErrNoCache) {
			t.Skipf("onnxruntime not installed (%v): run scripts/setup.sh", err)
		}
		if err != nil {
			t.Errorf("%s over its %d embeddings: %v", m.ID(), m.Audio.Window, err)
		}
		wrong := *m
		a := *m.Audio
		a.Window = 28 - c.window // 12 for a 16-head, 16 for the 12-head
		wrong.Audio = &a
		if err := CheckLoads(&wrong); err == nil {
			t.Errorf("%s fed %d embeddings: ran, want an error (its graph takes %d)", m.ID(), a.Window, c.window)
		}
	}
}
