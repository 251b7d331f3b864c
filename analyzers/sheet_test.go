package analyzers

import (
	"context"
	"encoding/json"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"gocv.io/x/gocv"
)

// The side ratio recovered from a projected rectangle is exact when the assumed field of view is
// the camera's, and degrades gracefully when it is not (phones are 65–80°).
func TestA4RatioRecovery(t *testing.T) {
	s := &sheetSynth{rng: rand.New(rand.NewPCG(7, 8))}
	for _, tc := range []struct {
		trueFOV float64
		maxErr  float64 // |ln(recovered/true)|
	}{{70, 0.005}, {60, 0.12}, {80, 0.12}} {
		var worst, sum float64
		n := 0
		for range 200 {
			q, ok := s.pose(1280, 720, 0.210, 0.297, s.uniform(0.04, 0.4), tc.trueFOV, 40)
			if !ok {
				continue
			}
			r := a4Ratio(orderQuad(q), 1280, 720, 70)
			e := math.Abs(math.Log(float64(r) / math.Sqrt2))
			worst = max(worst, e)
			sum += e
			n++
		}
		t.Logf("true FOV %.0f°, assumed 70°: mean |ln error| %.4f, worst %.4f over %d poses (tilt up to 40°)", tc.trueFOV, sum/float64(n), worst, n)
		if worst > tc.maxErr {
			t.Errorf("true FOV %.0f: worst ratio error %.4f, want <= %.3f", tc.trueFOV, worst, tc.maxErr)
		}
	}
	// A fronto-parallel 16:9 screen and a square are not A4.
	for _, tc := range []struct {
		q    [4][2]float32
		want float32
	}{
		{[4][2]float32{{100, 100}, {260, 100}, {260, 190}, {100, 190}}, 16.0 / 9},
		{[4][2]float32{{500, 300}, {600, 300}, {600, 400}, {500, 400}}, 1},
	} {
		if got := a4Ratio(tc.q, 1280, 720, 70); math.Abs(float64(got-tc.want)) > 0.01 {
			t.Errorf("ratio of %v = %.3f, want %.3f", tc.q, got, tc.want)
		}
	}
}

func TestOrderQuad(t *testing.T) {
	want := [4][2]float32{{10, 10}, {50, 12}, {52, 60}, {8, 58}}
	for _, in := range [][4][2]float32{
		{want[2], want[3], want[0], want[1]},
		{want[0], want[3], want[2], want[1]}, // counter-clockwise
		{want[1], want[0], want[3], want[2]},
	} {
		if got := orderQuad(in); got != want {
			t.Errorf("orderQuad(%v) = %v, want %v", in, got, want)
		}
	}
}

func TestHomography(t *testing.T) {
	src := [4][2]float32{{12, 30}, {210, 18}, {240, 300}, {5, 280}}
	dst := [4][2]float32{{0, 0}, {299, 0}, {299, 423}, {0, 423}}
	h, ok := quadHomography(src, dst)
	if !ok {
		t.Fatal("no homography")
	}
	for i, p := range src {
		x, y := float64(p[0]), float64(p[1])
		w := h[6]*x + h[7]*y + h[8]
		u, v := (h[0]*x+h[1]*y+h[2])/w, (h[3]*x+h[4]*y+h[5])/w
		if math.Abs(u-float64(dst[i][0])) > 1e-3 || math.Abs(v-float64(dst[i][1])) > 1e-3 {
			t.Errorf("corner %d maps to (%.3f, %.3f), want %v", i, u, v, dst[i])
		}
	}
	if _, ok := quadHomography([4][2]float32{{0, 0}, {1, 1}, {2, 2}, {3, 3}}, dst); ok {
		t.Error("collinear corners gave a homography")
	}
}

func TestLongestSidesQuad(t *testing.T) {
	// longestSidesQuad recovers a corner cut off a square (a hand over it).
	pentagon := [][2]float32{{0, 0}, {100, 0}, {100, 80}, {80, 100}, {0, 100}}
	q, ok := longestSidesQuad(pentagon)
	if !ok {
		t.Fatal("no quad")
	}
	found := false
	for _, p := range q {
		if math.Abs(float64(p[0]-100)) < 0.01 && math.Abs(float64(p[1]-100)) < 0.01 {
			found = true
		}
	}
	if !found {
		t.Errorf("hidden corner (100,100) not recovered: %v", q)
	}
}

// sheetFrame composes one evidence frame for the unit tests below.
func sheetFrame(t *testing.T, kind string, seed uint64) Frame {
	t.Helper()
	deterministicOpenCV(t, int(seed))
	s := &sheetSynth{rng: rand.New(rand.NewPCG(seed, 1))}
	s.bgs = proceduralBackgrounds(s.rng, 1)
	defer s.close()
	var c sheetCase
	if strings.HasPrefix(kind, "neg-") {
		c = s.negative(strings.TrimPrefix(kind, "neg-"))
	} else {
		c = s.positive(kind)
	}
	f, err := DecodeJPEG(c.jpeg, 640)
	if err != nil {
		t.Fatal(err)
	}
	f.Camera = CameraEvidence
	t.Cleanup(func() { f.Image.Close() })
	return f
}

func newTestSheet(t testing.TB) *Sheet {
	a, err := NewSheet(SheetConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

func TestSheetAnalyze(t *testing.T) {
	a := newTestSheet(t)
	ctx := context.Background()

	blank := sheetFrame(t, "blank", 11)
	var obs Observation
	if err := a.Analyze(ctx, &blank, &obs); err != nil {
		t.Fatal(err)
	}
	if obs.Sheet == nil || !obs.Sheet.Present || obs.Sheet.Writing {
		t.Fatalf("blank sheet: %+v", obs.Sheet)
	}
	for _, p := range obs.Sheet.Quad {
		if p[0] <= 0 || p[1] <= 0 || p[0] >= float32(blank.Width) || p[1] >= float32(blank.Height) {
			t.Errorf("corner %v outside the %dx%d original frame", p, blank.Width, blank.Height)
		}
	}
	// The JSON the store keeps.
	js, _ := json.Marshal(obs.Sheet)
	for _, key := range []string{`"present":true`, `"score":`, `"writing":false`, `"writing_score":`, `"quad":[[`} {
		if !strings.Contains(string(js), key) {
			t.Errorf("JSON %s lacks %s", js, key)
		}
	}

	written := sheetFrame(t, "text", 12)
	obs = Observation{}
	if err := a.Analyze(ctx, &written, &obs); err != nil {
		t.Fatal(err)
	}
	if obs.Sheet == nil || !obs.Sheet.Present || !obs.Sheet.Writing || obs.Sheet.WritingScore < 0.5 {
		t.Errorf("sheet with text: %+v", obs.Sheet)
	}

	none := sheetFrame(t, "neg-none", 13)
	obs = Observation{}
	if err := a.Analyze(ctx, &none, &obs); err != nil {
		t.Fatal(err)
	}
	if obs.Sheet == nil || obs.Sheet.Present || obs.Sheet.Quad != [4][2]float32{} {
		t.Errorf("no sheet: %+v", obs.Sheet)
	}

	// The main camera never shows the sheet: nothing is computed or reported.
	blank.Camera = CameraMain
	obs = Observation{}
	if err := a.Analyze(ctx, &blank, &obs); err != nil || obs.Sheet != nil {
		t.Errorf("main camera: sheet %+v, err %v", obs.Sheet, err)
	}
	if js, _ := json.Marshal(obs); strings.Contains(string(js), "sheet") {
		t.Errorf("main-camera JSON mentions the sheet: %s", js)
	}
}

// The default Set runs "sheet" next to "faces": evidence frames get a sheet observation, main
// frames do not, and a faces-only Set still works without it.
func TestSetWithSheet(t *testing.T) {
	def := newTestSet(t, Config{})
	if _, ok := def.Versions()["sheet"]; !ok {
		t.Fatalf("default set %v has no sheet analyzer", def.Versions())
	}
	deterministicOpenCV(t, 31)
	s := &sheetSynth{rng: rand.New(rand.NewPCG(31, 1))}
	s.bgs = proceduralBackgrounds(s.rng, 1)
	defer s.close()
	c := s.positive("text")
	ctx := context.Background()
	ev, err := def.AnalyzeJPEG(ctx, c.jpeg, CameraEvidence)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Sheet == nil || !ev.Sheet.Present || !ev.Sheet.Writing {
		t.Errorf("evidence frame: sheet %+v", ev.Sheet)
	}
	main, err := def.AnalyzeJPEG(ctx, c.jpeg, CameraMain)
	if err != nil || main.Sheet != nil {
		t.Errorf("main frame: sheet %+v, err %v", main.Sheet, err)
	}
	facesOnly := newTestSet(t, Config{Analyzers: []string{"faces"}})
	if obs, err := facesOnly.AnalyzeJPEG(ctx, c.jpeg, CameraEvidence); err != nil || obs.Sheet != nil {
		t.Errorf("faces-only set: sheet %+v, err %v", obs.Sheet, err)
	}
}

// Frames OpenCV would abort on are refused before any OpenCV call.
func TestSheetRejectsBadFrames(t *testing.T) {
	a := newTestSheet(t)
	gray := gocv.NewMatWithSize(100, 100, gocv.MatTypeCV8U)
	defer gray.Close()
	tiny := gocv.NewMatWithSize(8, 8, gocv.MatTypeCV8UC3)
	defer tiny.Close()
	empty := gocv.NewMat()
	defer empty.Close()
	for name, f := range map[string]Frame{
		"zero Mat": {Camera: CameraEvidence, Width: 100, Height: 100},
		"empty":    {Camera: CameraEvidence, Image: empty, Width: 100, Height: 100},
		"grey":     {Camera: CameraEvidence, Image: gray, Width: 100, Height: 100},
	} {
		var obs Observation
		if err := a.Analyze(context.Background(), &f, &obs); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// A sliver is a frame without a sheet, not a failed frame.
	f := Frame{Camera: CameraEvidence, Image: tiny, Width: 4000, Height: 40}
	var obs Observation
	if err := a.Analyze(context.Background(), &f, &obs); err != nil || obs.Sheet == nil || obs.Sheet.Present {
		t.Errorf("8×8 frame: sheet %+v, err %v", obs.Sheet, err)
	}
}

func TestSheetConfig(t *testing.T) {
	a := newTestSheet(t)
	if a.Name() != "sheet" || a.DecodeSide() != 480 || !strings.Contains(a.Version(), "sheet-cv1") {
		t.Errorf("name %q side %d version %q", a.Name(), a.DecodeSide(), a.Version())
	}
	if _, err := NewSheet(SheetConfig{MinArea: 2}); err == nil {
		t.Error("min_area 2 accepted")
	}
}

// BenchmarkSheet is the per-frame cost on a 1280×720 evidence frame decoded at 640×360 (what
// the default decode side gives), excluding the decode.
func BenchmarkSheet(b *testing.B) {
	for _, kind := range []string{"text", "neg-none"} {
		b.Run(kind, func(b *testing.B) {
			s := &sheetSynth{rng: rand.New(rand.NewPCG(21, 1))}
			s.bgs = proceduralBackgrounds(s.rng, 1)
			defer s.close()
			var c sheetCase
			for c.jpeg == nil {
				if kind == "neg-none" {
					c = s.negative("none")
				} else {
					c = s.positive(kind)
				}
				if w, _, _ := ValidateJPEG(c.jpeg); w != 1280 {
					c.jpeg = nil // want the common phone size
				}
			}
			f, err := DecodeJPEG(c.jpeg, 640)
			if err != nil {
				b.Fatal(err)
			}
			defer f.Image.Close()
			f.Camera = CameraEvidence
			a, err := NewSheet(SheetConfig{})
			if err != nil {
				b.Fatal(err)
			}
			defer a.Close()
			ctx := context.Background()
			var obs Observation
			b.ReportAllocs()
			for b.Loop() {
				if err := a.Analyze(ctx, &f, &obs); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/1000, "ms/frame")
		})
	}
}
