package rules

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"proctor/analyzers"
	"proctor/internal/testdb"
	"proctor/store"
)

// visionFrame is one main-camera frame at second sec with one face: similarity to the
// registration photo (NaN-free; -9 = not measured) and head yaw.
type visionFrame struct {
	sec      int
	sim, yaw float32
}

const notMeasured = -9

func TestVisionRules(t *testing.T) {
	same, other := float32(0.8), float32(0.1)
	seq := func(sims []float32, yaw float32) []visionFrame {
		out := make([]visionFrame, len(sims))
		for i, s := range sims {
			out[i] = visionFrame{i, s, yaw}
		}
		return out
	}
	cases := []struct {
		name   string
		frames []visionFrame
		want   map[string][][2]int64
	}{
		{"one bad frame raises nothing",
			seq([]float32{same, other, same, same, other, same}, 0), nil},
		{"another person for 3s raises IDENTITY_MISMATCH",
			seq([]float32{same, same, other, other, other, other, same}, 0),
			map[string][][2]int64{IdentityMismatch: {{2000, 5000}}}},
		{"a face just below the threshold (inside the margin) is not someone else",
			seq([]float32{0.45, 0.45, 0.45, 0.45, 0.45, 0.45}, 0), nil},
		{"a face inside the margin abstains: it neither continues nor breaks a run",
			seq([]float32{same, other, other, 0.45, other, other, same}, 0),
			map[string][][2]int64{IdentityMismatch: {{1000, 5000}}}},
		{"frames without a measurement do not continue a run",
			seq([]float32{other, other, notMeasured, other, other}, 0), nil},
		{"looking away for 5s raises LOOKING_AWAY",
			append(seq([]float32{same}, 0), []visionFrame{{1, same, 50}, {2, same, -60}, {3, same, 45}, {4, same, 48},
				{5, same, 70}, {6, same, 55}, {7, same, 5}}...),
			map[string][][2]int64{LookingAway: {{1000, 6000}}}},
		{"a glance aside raises nothing",
			append(seq([]float32{same, same}, 0), visionFrame{2, same, 60}, visionFrame{3, same, 0}), nil},
	}
	for _, b := range testdb.Open(t) {
		for _, tc := range cases {
			t.Run(b.Name+"/"+tc.name, func(t *testing.T) {
				ctx := context.Background()
				eng := New(Config{})
				sess := &store.Session{OrgID: "org", ExamID: "e", CandidateID: "c", ScheduledStart: time.Now()}
				if err := b.Store.CreateSession(ctx, sess); err != nil {
					t.Fatal(err)
				}
				for _, f := range tc.frames {
					yaw, pitch := f.yaw, float32(0)
					face := analyzers.Face{Score: 0.99, Box: [4]float32{100, 100, 200, 200}, Yaw: &yaw, Pitch: &pitch}
					if f.sim != notMeasured {
						face.Match = &analyzers.Match{Similarity: f.sim, Threshold: 0.5}
					}
					obs := &analyzers.Observation{Faces: []analyzers.Face{face}, TopFaceScore: 0.99}
					storeAndApply(t, b.Store.DB, eng, &store.FrameResult{SessionID: sess.ID, Camera: "main", Seq: int64(f.sec),
						CapturedAtMs: int64(f.sec) * 1000, Signals: observe(t, obs, "main")}, nil)
				}
				flags, err := b.Store.SessionFlags(ctx, sess.ID)
				if err != nil {
					t.Fatal(err)
				}
				got := map[string][][2]int64{}
				for _, fl := range flags {
					got[fl.Type] = append(got[fl.Type], [2]int64{fl.StartMs, fl.EndMs})
					if fl.Type != IdentityMismatch {
						continue
					}
					var d map[string]float64
					if err := json.Unmarshal([]byte(fl.Details), &d); err != nil {
						t.Fatal(err)
					}
					if d["similarity"] != 0.1 || d["similarity_threshold"] != 0.5 || d["similarity_max"] != 0.1 {
						t.Errorf("details %s: want similarity 0.1 and threshold 0.5", fl.Details)
					}
					if fl.Severity != store.SeverityAlert || fl.Confidence < 0.99 {
						t.Errorf("severity %s confidence %.3f", fl.Severity, fl.Confidence)
					}
				}
				if len(got) != len(tc.want) {
					t.Fatalf("flags %v, want %v", got, tc.want)
				}
				for typ, spans := range tc.want {
					if len(got[typ]) != len(spans) {
						t.Fatalf("%s: %v, want %v", typ, got[typ], spans)
					}
					for i := range spans {
						if got[typ][i] != spans[i] {
							t.Errorf("%s %d: %v, want %v", typ, i, got[typ][i], spans[i])
						}
					}
				}
			})
		}
	}
}

func TestVisionConfigOverride(t *testing.T) {
	eng := New(Config{Settings: Params{SettingIdentityThreshold: 0.9, SettingYawLimit: 10}})
	f := &Frame{signals: map[string]Signal{"identity": {"sim": 0.7, "thr": 0.5}, "headpose": {"yaw": 20, "pitch": 0}}}
	holds := map[string]bool{}
	for _, r := range eng.frameRules() {
		if r.Type == IdentityMismatch || r.Type == LookingAway {
			holds[r.Type] = r.Holds(f)
		}
	}
	if !holds[IdentityMismatch] || !holds[LookingAway] {
		t.Errorf("holds %v: the configured threshold 0.9 and yaw limit 10 must override", holds)
	}
	if d := eng.Params(); d.Duration(SettingIdentityMismatchAfter) != 3*time.Second || d.Duration(SettingLookingAwayAfter) != 5*time.Second || d.Value(SettingPitchLimit) != 25 {
		t.Errorf("defaults %+v", d)
	}
}
