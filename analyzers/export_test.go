package analyzers

import (
	"testing"

	"proctor/models"
)

// EnergyEndsForTest exposes the gate's loud-stretch detector to the external tests.
type EnergyEndsForTest struct{ e energyEnds }

// Update feeds the stretch's audio so far (from sample 0) and appends the ends found.
func (t *EnergyEndsForTest) Update(audio []int16, ends []int64) []int64 {
	return t.e.update(audio, 0, ends)
}

// CosineForTest is the tests' cosine of two vectors of any length (models.Cosine assumes unit
// vectors).
var CosineForTest = unitCosine

// VADProbabilities feeds pcm to v chunk samples at a time and returns every frame's speech
// probability, in order.
func VADProbabilities(v *VAD, pcm []float32, chunk int) ([]float32, error) {
	var probs []float32
	for i := 0; i < len(pcm); i += chunk {
		rest := pcm[i:min(len(pcm), i+chunk)]
		for {
			var n int
			if n, rest = v.fill(rest); n == 0 {
				break
			}
			if err := v.infer(n); err != nil {
				return nil, err
			}
			probs = append(probs, v.probs[:n]...)
		}
	}
	return probs, nil
}

// RequireInstalled skips the test when err says scripts/setup.sh has not installed a model or
// the runtime, and fails it on any other error.
func RequireInstalled(t testing.TB, err error) {
	t.Helper()
	if models.NotInstalled(err) {
		t.Skipf("models not installed (%v): run scripts/setup.sh", err)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// WithShadeForTest lightens a rectangle of a JPEG by d grey levels (withShade).
var WithShadeForTest = withShade
