package analyzers

import (
	"context"
	"fmt"
	"gocv.io/x/gocv"
	"image"
	"image/color"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"
)

func TestSheetSweep(t *testing.T) {
	if os.Getenv("SWEEP") == "" {
		t.Skip()
	}
	s := &sheetSynth{rng: rand.New(rand.NewPCG(1, 2))}
	s.bgs = proceduralBackgrounds(s.rng, 12)
	defer s.close()
	cases := makeSheetCases(s, 8, 5)
	for _, side := range []int{640, 960, 0} {
		for _, ic := range []float32{0.12, 0.16, 0.22} {
			for _, wi := range []float32{0.001, 0.002} {
				cfg := SheetConfig{DecodeSide: side, InkContrast: ic, WritingInk: wi}
				if side == 0 {
					cfg.DecodeSide = 100000
				}
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
	if dir == "" {
		t.Skip()
	}
	a, _ := NewSheet(SheetConfig{})
	defer a.Close()
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		data, _ := os.ReadFile(dir + "/" + e.Name())
		f, err := DecodeJPEG(data, 640)
		if err != nil {
			t.Fatal(err)
		}
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

func TestSheetDiag(t *testing.T) {
	if os.Getenv("DIAG") == "" {
		t.Skip()
	}
	s := &sheetSynth{rng: rand.New(rand.NewPCG(1, 2))}
	s.bgs = proceduralBackgrounds(s.rng, 12)
	if os.Getenv("DIAG") == "real" {
		s = &sheetSynth{rng: rand.New(rand.NewPCG(3, 4)), bgs: realBackgrounds(t)}
	}
	defer s.close()
	cases := makeSheetCases(s, 8, 5)
	if os.Getenv("DIAG") == "real" {
		cases = makeSheetCases(s, 20, 12)
	}
	a, _ := NewSheet(SheetConfig{})
	defer a.Close()
	var ratios []float64
	for i, c := range cases {
		f, _ := DecodeJPEG(c.jpeg, 640)
		best, _ := a.detect(f.Image)
		sw, sh := a.gray.get().Cols(), a.gray.get().Rows()
		if best != nil {
			cr := a.measure(best.quad, best.area, sw, sh)
			if c.truth != truthNone && best.score >= 0.5 {
				ratios = append(ratios, float64(cr.ratio))
			}
			if c.truth == truthNone && best.score >= 0.5 || c.truth != truthNone && best.score < 0.5 {
				t.Logf("%d %s score %.2f %+v", i, c.name, best.score, cr)
				if os.Getenv("DRAWDIAG") != "" {
					os.MkdirAll("/tmp/diag", 0o755)
					for _, cd := range a.cands {
						pts := make([]image.Point, 4)
						for k, p := range cd.quad {
							pts[k] = image.Pt(int(p[0]/(float32(sw)/float32(f.Image.Cols()))), int(p[1]/(float32(sw)/float32(f.Image.Cols()))))
						}
						pv := gocv.NewPointsVectorFromPoints([][]image.Point{pts})
						col := color.RGBA{255, 0, 0, 0}
						if cd.quad == best.quad {
							col = color.RGBA{0, 255, 0, 0}
						}
						gocv.Polylines(&f.Image, pv, true, col, 2)
						pv.Close()
					}
					gocv.IMWrite(fmt.Sprintf("/tmp/diag/%03d-%s.jpg", i, c.name), f.Image)
				}
			}
		}
		f.Image.Close()
	}
	slices.Sort(ratios)
	t.Logf("ratios of detected sheets: %v", ratios)
}

func TestSheetDraw(t *testing.T) {
	if os.Getenv("DRAW") == "" {
		t.Skip()
	}
	s := &sheetSynth{rng: rand.New(rand.NewPCG(1, 2))}
	s.bgs = proceduralBackgrounds(s.rng, 12)
	defer s.close()
	cases := makeSheetCases(s, 8, 5)
	a, _ := NewSheet(SheetConfig{})
	defer a.Close()
	os.MkdirAll("/tmp/draw", 0o755)
	for i, c := range cases {
		if !strings.Contains(","+os.Getenv("DRAW")+",", fmt.Sprintf(",%d,", i)) {
			continue
		}
		f, _ := DecodeJPEG(c.jpeg, 640)
		_, scale := a.detect(f.Image)
		for _, cd := range a.cands {
			pts := make([]image.Point, 4)
			for k, p := range cd.quad {
				pts[k] = image.Pt(int(p[0]/scale), int(p[1]/scale))
			}
			pv := gocv.NewPointsVectorFromPoints([][]image.Point{pts})
			gocv.Polylines(&f.Image, pv, true, color.RGBA{255, 0, 0, 0}, 2)
			pv.Close()
		}
		gocv.IMWrite(fmt.Sprintf("/tmp/draw/%03d.jpg", i), f.Image)
		white := a.white.get()
		gocv.IMWrite(fmt.Sprintf("/tmp/draw/%03d-white.png", i), *white)
		gocv.IMWrite(fmt.Sprintf("/tmp/draw/%03d-edges.png", i), *a.edges.get())
		f.Image.Close()
	}
}

func TestSheetInk(t *testing.T) {
	if os.Getenv("INK") == "" {
		t.Skip()
	}
	s := &sheetSynth{rng: rand.New(rand.NewPCG(3, 4)), bgs: realBackgrounds(t)}
	defer s.close()
	cases := makeSheetCases(s, 20, 0)
	a, _ := NewSheet(SheetConfig{})
	defer a.Close()
	os.MkdirAll("/tmp/ink", 0o755)
	var blank, wr []float64
	for i, c := range cases {
		f, _ := DecodeJPEG(c.jpeg, 640)
		f.Camera = CameraEvidence
		var obs Observation
		a.Analyze(context.Background(), &f, &obs)
		f.Image.Close()
		if !obs.Sheet.Present {
			continue
		}
		ink := float64(obs.Sheet.WritingScore / (1 - obs.Sheet.WritingScore) * a.cfg.WritingInk)
		if c.truth == truthWriting {
			wr = append(wr, ink)
		} else {
			blank = append(blank, ink)
		}
		if c.truth != truthWriting && ink > 0.0001 || c.truth == truthWriting && !obs.Sheet.Writing {
			gocv.IMWrite(fmt.Sprintf("/tmp/ink/%03d-%s-red.png", i, c.name), *a.red.get())
			bh := a.black.get()
			th := gocv.NewMat()
			gocv.Threshold(*bh, &th, 14, 255, gocv.ThresholdBinary)
			gocv.IMWrite(fmt.Sprintf("/tmp/ink/%03d-%s-bh.png", i, c.name), th)
			th.Close()
		}
	}
	slices.Sort(blank)
	slices.Sort(wr)
	t.Logf("blank ink: %.5f", blank)
	t.Logf("writing ink: %.5f", wr)
}
