package rules

import (
	"encoding/json"
	"testing"

	"gorm.io/gorm"

	"proctor/analyzers"
	"proctor/store"
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

// storeAndApply stores a frame and runs the frame rules on it in one transaction, as the worker
// does (sess may be nil: rules with When or During then run regardless).
func storeAndApply(t testing.TB, db *gorm.DB, eng *Engine, fr *store.FrameResult, sess *store.Session) {
	t.Helper()
	err := db.Transaction(func(tx *gorm.DB) error {
		if _, err := store.InsertFrameResult(tx, fr); err != nil {
			return err
		}
		_, err := eng.ApplyFrame(tx, FrameInput{Result: fr, Session: sess, JPEG: []byte{0xff, 0xd8}, ModelVersion: "test"})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}
