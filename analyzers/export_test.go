package analyzers

// EnergyEndsForTest exposes the gate's loud-stretch detector to the external tests.
type EnergyEndsForTest struct{ e energyEnds }

// Update feeds the stretch's audio so far (from sample 0) and appends the ends found.
func (t *EnergyEndsForTest) Update(audio []int16, ends []int64) []int64 {
	return t.e.update(audio, 0, ends)
}

// CosineForTest is the tests' cosine of two vectors of any length (models.Cosine assumes unit
// vectors).
var CosineForTest = unitCosine
