package analyzers

import (
	"math/rand/v2"
	"os"
	"testing"
)

func TestSheetSweepSide(t *testing.T) {
	if os.Getenv("SWEEPSIDE") == "" {
		t.Skip()
	}
	deterministicOpenCV(t, 2)
	s := &sheetSynth{rng: rand.New(rand.NewPCG(3, 4)), bgs: realBackgrounds(t)}
	defer s.close()
	cases := makeSheetCases(s, 20, 12)
	for _, side := range []int{320, 480, 640, 8192} {
		st := evalSheet(t, SheetConfig{DecodeSide: side}, cases)
		t.Logf("decode side %d: present P %.1f R %.1f  writing P %.1f R %.1f  %.2f ms/frame", side,
			prec(st.presTP, st.presFP), pct(st.presTP, st.presTP+st.presFN), prec(st.wrTP, st.wrFP), pct(st.wrTP, st.wrTP+st.wrFN),
			float64(st.elapsed.Microseconds())/1000/float64(st.n))
	}
}
