package analyzers

import (
	"math/rand/v2"
	"testing"
	"os"
)

func TestSheetSweep(t *testing.T) {
	if os.Getenv("SWEEP") == "" { t.Skip() }
	s := &sheetSynth{rng: rand.New(rand.NewPCG(1, 2))}
	s.bgs = proceduralBackgrounds(s.rng, 12)
	defer s.close()
	cases := makeSheetCases(s, 8, 5)
	for _, side := range []int{640, 960, 0} {
		for _, ic := range []float32{0.12, 0.16, 0.22} {
			for _, wi := range []float32{0.001, 0.002} {
				cfg := SheetConfig{DecodeSide: side, InkContrast: ic, WritingInk: wi}
				if side == 0 { cfg.DecodeSide = 100000 }
				st := evalSheet(t, cfg, cases)
				t.Logf("side %d ic %.2f wi %.4f: pres P %.1f R %.1f  writing P %.1f R %.1f  %.1f ms", side, ic, wi,
					prec(st.presTP, st.presFP), pct(st.presTP, st.presTP+st.presFN), prec(st.wrTP, st.wrFP), pct(st.wrTP, st.wrTP+st.wrFN),
					float64(st.elapsed.Microseconds())/1000/float64(st.n))
			}
		}
	}
}

func TestSheetDebug(t *testing.T) {
	dir := os.Getenv("SHEETDBG")
	if dir == "" { t.Skip() }
	a, _ := NewSheet(SheetConfig{})
	defer a.Close()
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		data, _ := os.ReadFile(dir + "/" + e.Name())
		f, err := DecodeJPEG(data, 640)
		if err != nil { t.Fatal(err) }
		_, scale := a.detect(f.Image)
		t.Logf("%s: %d candidates (scale %.3f)", e.Name(), len(a.cands), scale)
		sw, sh := a.gray.get().Cols(), a.gray.get().Rows()
		for _, c := range a.cands {
			cr := a.measure(c.quad, c.area, sw, sh)
			t.Logf("   score %.2f area %.0f %+v quad %v", c.score, c.area, cr, c.quad)
		}
		f.Image.Close()
	}
}
