package analyzers_test

import (
	"encoding/json"
	"math"
	"os"
	"testing"

	"proctor/analyzers"
	"proctor/models"
)

// ewnFixture is what EfficientWord-Net's own Python code computes for testSignal
// (training/phrase/ewn_fixture.py writes analyzers/testdata/ewn_fixture.json).
type ewnFixture struct {
	Frames    int         `json:"frames"`
	Bins      int         `json:"bins"`
	Rows      []int       `json:"rows"`
	Features  [][]float64 `json:"features"`
	Embedding []float64   `json:"embedding"`
}

func loadEWNFixture(t *testing.T) ewnFixture {
	t.Helper()
	b, err := os.ReadFile("testdata/ewn_fixture.json")
	if err != nil {
		t.Fatal(err)
	}
	var f ewnFixture
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	return f
}

// testSignal is training/phrase/ewn_fixture.py test_signal(): a chirp, a hum, deterministic
// "noise" and 0.2 s of digital silence (logfbank's eps floor) at the end.
func testSignal() []float32 {
	out := make([]float32, analyzers.EWNWindowSamples)
	for i := range out {
		n := float64(i)
		t := n / 16000
		x := 0.3*math.Sin(2*math.Pi*(150+1500*t)*t) + 0.05*math.Sin(2*math.Pi*50*t)
		x += 0.02 * math.Sin(n*n*0.001)
		if i >= 20800 {
			x = 0
		}
		out[i] = float32(x)
	}
	return out
}

func TestLogFbankMatchesPython(t *testing.T) {
	f := loadEWNFixture(t)
	got := make([]float32, f.Frames*f.Bins)
	analyzers.Features(testSignal(), got)
	worst := 0.0
	for k, r := range f.Rows {
		for j, want := range f.Features[k] {
			d := math.Abs(float64(got[r*f.Bins+j]) - want)
			worst = max(worst, d)
			if d > 1e-3 {
				t.Fatalf("frame %d bin %d: got %.5f, Python %.5f", r, j, got[r*f.Bins+j], want)
			}
		}
	}
	// The silent tail hits logfbank's eps floor: log(2.22e-16).
	if v := got[(f.Frames-1)*f.Bins]; math.Abs(float64(v)-math.Log(2.220446049250313e-16)) > 1e-4 {
		t.Errorf("silent last frame: %v, want log(eps)", v)
	}
	t.Logf("%d frames × %d bins, largest difference from Python %.2g", len(f.Rows), f.Bins, worst)
}

func TestEWNEmbeddingMatchesPython(t *testing.T) {
	f := loadEWNFixture(t)
	e, err := analyzers.NewEWN(1)
	if models.NotInstalled(err) {
		t.Skipf("EWN model not installed (%v): run scripts/setup.sh", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	emb, err := e.Embed(testSignal())
	if err != nil {
		t.Fatal(err)
	}
	var dot, n2 float64
	for i, v := range emb {
		dot += float64(v) * f.Embedding[i]
		n2 += float64(v) * float64(v)
	}
	if math.Abs(math.Sqrt(n2)-1) > 1e-3 || dot < 0.999 {
		t.Fatalf("Go embedding: norm %.4f, cosine with Python's %.5f (want unit length, ≥ 0.999)", math.Sqrt(n2), dot)
	}
	if _, err := e.Embed(make([]float32, 100)); err == nil {
		t.Error("a short window was accepted")
	}
	t.Logf("cosine with the Python embedding %.6f", dot)
}
