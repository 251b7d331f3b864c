package rules

import (
	"encoding/json"
	"testing"

	"proctor/analyzers"
)

// signals is a frame's stored signals (store.FrameResult.Signals) written by hand, as the
// checks' Observe would write them.
func signals(t testing.TB, m map[string]Signal) string {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// observe is what the worker stores for an observation: every check's signal.
func observe(t testing.TB, obs *analyzers.Observation, camera string) string {
	t.Helper()
	s, err := New(Config{}).Observe(obs, camera)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
