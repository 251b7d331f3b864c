package eval

import (
	"context"
	"math"
	"strings"
	"testing"

	"proctor/analyzers"
	"proctor/rules"
	"proctor/store"
)

func TestThresholdAtFAR(t *testing.T) {
	imp := make([]float64, 1000)
	for i := range imp {
		imp[i] = float64(i) / 1000 // 0.000 … 0.999
	}
	th := thresholdAtFAR(imp, 0.01)
	if n := countAtLeast(imp, th); n != 10 {
		t.Errorf("threshold %.4f accepts %d of 1000 impostors, want 10 (FAR 1%%)", th, n)
	}
	if n := countAtLeast(imp, thresholdAtFAR(imp, 0.001)); n != 1 {
		t.Errorf("FAR 0.1%%: %d accepted, want 1", n)
	}
	gen := []float64{0.5, 0.985, 0.995, 1}
	if got := tarAt(gen, th); got != 0.5 {
		t.Errorf("TAR %.3f, want 0.5", got)
	}
}

func TestPRF(t *testing.T) {
	p, r, f1 := PRF(8, 2, 8)
	if p != 0.8 || r != 0.5 || math.Abs(f1-0.6153846) > 1e-6 {
		t.Errorf("PRF = %v %v %v", p, r, f1)
	}
	if p, _, _ := PRF(0, 0, 3); !math.IsNaN(p) {
		t.Errorf("precision with nothing predicted = %v, want NaN", p)
	}
}

func TestSplitOfIsStableAndMixed(t *testing.T) {
	n := map[string]int{}
	for _, name := range []string{"aidai", "anhu", "baibaihe", "benxi", "caiyilin", "caizhuoyan", "cengyongti", "changshilei", "chenglong", "chenhaomin"} {
		if SplitOf(name) != SplitOf(name) {
			t.Fatal("split not stable")
		}
		n[SplitOf(name)]++
	}
	if n["dev"] == 0 || n["test"] == 0 {
		t.Errorf("splits %v: want both", n)
	}
}

func TestPairs(t *testing.T) {
	list := []embedded{{"a", []float32{1, 0}}, {"a", []float32{1, 0}}, {"b", []float32{0, 1}}}
	gen, imp := pairs(list)
	if len(gen) != 1 || gen[0] != 1 || len(imp) != 2 || imp[0] != 0 {
		t.Errorf("genuine %v impostor %v", gen, imp)
	}
}

// The tuning cost: one per false alarm (mismatch or login not verified), two per switch to
// undegraded photos not flagged within the goal; the switches as they come do not count.
func TestIdentityTimeCost(t *testing.T) {
	r := &identityTimeResult{sameFlags: 5, notVerified: 1}
	for _, d := range []int{2, 9, 4} { // seconds to the flag; goal 5 s
		r.sw[1].add(d, true, 5, [4]int{})
	}
	r.sw[1].add(-1, false, 5, [4]int{}) // never flagged
	r.sw[0].add(40, true, 5, [4]int{})
	if got := r.cost(); got != 5+1+2*2 {
		t.Errorf("cost %d, want 10 (6 false alarms, 2 of 4 undegraded switches late)", got)
	}
}

func TestCombinations(t *testing.T) {
	got := combinations(map[string][]float64{"b": {1, 2}, "a": {10, 20, 30}, "c": {7}})
	if len(got) != 6 {
		t.Fatalf("%d combinations, want 6", len(got))
	}
	if got[0]["a"] != 10 || got[0]["b"] != 1 || got[1]["a"] != 10 || got[1]["b"] != 2 || got[5]["a"] != 30 || got[5]["b"] != 2 {
		t.Errorf("order: %v", got)
	}
	for _, p := range got {
		if len(p) != 3 || p["c"] != 7 {
			t.Errorf("combination %v: want a, b and c=7", p)
		}
	}
}

func TestFittedOnDev(t *testing.T) {
	for model, want := range map[string]bool{"facenet-keras-mirror-wccn@1": true, "facenet-keras-int8-wccn@1": true,
		"facenet-keras-mirror@1": false, "faceplugin-embedding@1": false, "no-such-model@1": false} {
		if got := fittedOnDev(model); got != want {
			t.Errorf("fittedOnDev(%q) = %v, want %v", model, got, want)
		}
	}
}

// replayStore is a temporary store for identity replays, closed when the test ends.
func replayStore(t *testing.T) *store.Store {
	t.Helper()
	st, closeStore, err := store.OpenTemp(context.Background(), "proctor-replay-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeStore() })
	return st
}

// unit is the i-th unit vector of an 8-dimensional test embedding.
func unit(i int) []float32 {
	v := make([]float32, 8)
	v[i] = 1
	return v
}

// frame is a sharp, large, frontal face of photo with embedding vec: it passes the quality gate.
func frame(photo string, vec []float32) *identityTimeFrame {
	return &identityTimeFrame{photo: photo, vec: vec, n: 1, width: 640, high: 480,
		face: analyzers.Face{Box: [4]float32{200, 100, 200, 200}, Score: 0.99, Match: &analyzers.Match{Sharpness: 500, Measured: true}}}
}

func TestDumpFlagsListsTheFramesOfAFalseFlag(t *testing.T) {
	ctx := context.Background()
	st := replayStore(t)
	a := &identityTimePerson{name: "identities-rmfd/someone", photo: unit(0)}
	a.all = []*identityTimeFrame{frame("reg.jpg", unit(0))}
	// The same "person" for 12 s, every frame a photo that scores 0 against the registration
	// photo: one IDENTITY_MISMATCH, whose run is that photo.
	var seq []*identityTimeFrame
	for range 12 {
		seq = append(seq, frame("other.jpg", unit(1)))
	}
	var out strings.Builder
	r := &identityReplay{st: st, eng: rules.New(rules.Config{}), thr: 0.5, model: "m", gallery: true, dump: &out}
	res, err := r.run(ctx, a, seq, -1)
	if err != nil {
		t.Fatal(err)
	}
	if res.flags != 1 {
		t.Fatalf("%d flags, want 1", res.flags)
	}
	got := out.String()
	for _, want := range []string{"false flag\tidentities-rmfd/someone\t", "\tother.jpg\toriginal\t", "(reg.jpg) 0.000"} {
		if !strings.Contains(got, want) {
			t.Errorf("dump lacks %q:\n%s", want, got)
		}
	}
	if n := strings.Count(got, "\n"); n != 1 {
		t.Errorf("%d lines, want one per distinct frame of the run:\n%s", n, got)
	}
	// Without a writer nothing is printed and the result is the same.
	r2 := &identityReplay{st: st, eng: rules.New(rules.Config{}), thr: 0.5, model: "m", gallery: true}
	if res2, err := r2.run(ctx, a, seq, -1); err != nil || res2.flags != 1 {
		t.Errorf("without a dump: %d flags, %v", res2.flags, err)
	}
}

// The login is replayed as a minute of footage: one login photo that passes the quality gate and
// does not match the registration photo is a login that never matched (IDENTITY_NOT_VERIFIED,
// which silences IDENTITY_MISMATCH), as the worker would count it frame by frame; one that
// matches is a verified login whose face joins the gallery.
func TestLoginReplayedAsAMinute(t *testing.T) {
	ctx := context.Background()
	st := replayStore(t)
	var seq []*identityTimeFrame
	for range 12 {
		seq = append(seq, frame("p.jpg", unit(1)))
	}
	r := &identityReplay{st: st, eng: rules.New(rules.Config{}), thr: 0.5, model: "m", gallery: true}
	stranger := &identityTimePerson{name: "identities-rmfd/a", photo: unit(0), login: []*identityTimeFrame{frame("p.jpg", unit(1))}}
	res, err := r.run(ctx, stranger, seq, -1)
	if err != nil {
		t.Fatal(err)
	}
	if !res.notVerified || res.flags != 0 {
		t.Errorf("login of someone else: not verified %v, %d mismatch flags; want true, 0", res.notVerified, res.flags)
	}
	same := &identityTimePerson{name: "identities-rmfd/b", photo: unit(0), login: []*identityTimeFrame{frame("p.jpg", unit(1))}}
	same.photo = []float32{0.6, 0.8, 0, 0, 0, 0, 0, 0} // 0.8 with the login face
	res, err = r.run(ctx, same, seq, -1)
	if err != nil {
		t.Fatal(err)
	}
	if res.notVerified || res.flags != 0 {
		t.Errorf("verified login: not verified %v, %d mismatch flags; want false, 0 (the login face is in the gallery)", res.notVerified, res.flags)
	}
	// A login face just below the threshold (0.45, inside the 0.15 band) abstains: no verdict
	// on the login, and the answering frames are judged against the photo alone.
	band := &identityTimePerson{name: "identities-rmfd/c", photo: []float32{0.45, 0.893, 0, 0, 0, 0, 0, 0}, login: []*identityTimeFrame{frame("p.jpg", unit(0))}}
	res, err = r.run(ctx, band, seq, -1)
	if err != nil {
		t.Fatal(err)
	}
	if res.notVerified {
		t.Error("a login face in the mismatch band raised IDENTITY_NOT_VERIFIED")
	}
}
