package models

import (
	"errors"
	"fmt"
	"image"
	"image/color"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"

	"gocv.io/x/gocv"
)

// requireCache skips the test when the artefacts fetched by scripts/setup.sh are absent, so the
// package's plain tests still run on a fresh clone.
func requireCache(t testing.TB) string {
	t.Helper()
	dir, err := CacheDir()
	if err != nil {
		t.Skipf("model cache missing (%v): run scripts/setup.sh to run this test", err)
	}
	if _, err := ORTLibraryPath(); err != nil {
		t.Skipf("onnxruntime missing (%v): run scripts/setup.sh to run this test", err)
	}
	return dir
}

func newTestDetector(t testing.TB, o DetectorOptions) *FaceDetector {
	t.Helper()
	requireCache(t)
	m, err := Load("ultraface-rfb-320")
	if err != nil {
		t.Skipf("face model not installed (%v): run scripts/setup.sh to run this test", err)
	}
	d, err := NewFaceDetector(m, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func readDemo(t testing.TB, n int, flags gocv.IMReadFlag) gocv.Mat {
	t.Helper()
	dir := requireCache(t)
	p := filepath.Join(dir, "demo", fmt.Sprintf("sample%d.jpg", n))
	img := gocv.IMRead(p, flags)
	if img.Empty() {
		t.Skipf("%s missing: run scripts/setup.sh to run this test", p)
	}
	t.Cleanup(func() { img.Close() })
	return img
}

func TestModelIOMatchesManifest(t *testing.T) {
	d := newTestDetector(t, DetectorOptions{})
	// NewAdvancedSession binds by name, so a built session proves the names; the shapes are
	// checked by running once on a grey frame.
	img := gocv.NewMatWithSizeFromScalar(gocv.NewScalar(127, 127, 127, 0), 480, 640, gocv.MatTypeCV8UC3)
	defer img.Close()
	if _, _, err := d.Detect(nil, img, 640, 480); err != nil {
		t.Fatal(err)
	}
}

// The demo photos of scripts/artifacts.tsv, counted by eye: sample1-3 three women each, sample4
// four, sample5 five on a staircase, sample6 four.
var demoFaces = map[int]int{1: 3, 2: 3, 3: 3, 4: 4, 5: 5, 6: 4}

func TestDetectDemoSamples(t *testing.T) {
	d := newTestDetector(t, DetectorOptions{})
	var buf []FaceBox
	for n := 1; n <= 6; n++ {
		t.Run(fmt.Sprintf("sample%d", n), func(t *testing.T) {
			full := readDemo(t, n, gocv.IMReadColor)
			W, H := full.Cols(), full.Rows()
			var top float32
			var err error
			buf, top, err = d.Detect(buf[:0], full, W, H)
			if err != nil {
				t.Fatal(err)
			}
			if len(buf) != demoFaces[n] {
				t.Errorf("faces = %d, want %d (%v)", len(buf), demoFaces[n], buf)
			}
			if top < 0.99 || (len(buf) > 0 && buf[0].Score != top) {
				t.Errorf("top score %.3f, best box %v: want >= 0.99 and equal", top, buf)
			}
			for i, b := range buf {
				if b.X < 0 || b.Y < 0 || b.X+b.W > float32(W) || b.Y+b.H > float32(H) {
					t.Errorf("box %d %v outside %dx%d", i, b, W, H)
				}
				// Adults photographed from a few metres: a face is 5-25% of the frame height
				// and roughly as wide as high (boxes include forehead to chin).
				if hf := b.H / float32(H); hf < 0.05 || hf > 0.25 {
					t.Errorf("box %d height %.3f of frame, want 0.05-0.25", i, hf)
				}
				if ar := b.W / b.H; ar < 0.5 || ar > 1.2 {
					t.Errorf("box %d aspect w/h %.2f, want 0.5-1.2", i, ar)
				}
				if i > 0 && b.Score > buf[i-1].Score {
					t.Errorf("boxes not sorted by score: %v", buf)
				}
			}
		})
	}
}

// Boxes come back in original pixels whatever size the detector was fed: a half-size decode must
// give the same boxes as the full image, within a few pixels of resampling noise.
func TestDetectScalesToOriginal(t *testing.T) {
	d := newTestDetector(t, DetectorOptions{})
	full := readDemo(t, 4, gocv.IMReadColor)
	half := readDemo(t, 4, gocv.IMReadReducedColor2)
	W, H := full.Cols(), full.Rows()
	a, _, err := d.Detect(nil, full, W, H)
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := d.Detect(nil, half, W, H)
	if err != nil {
		t.Fatal(err)
	}
	if len(a) != len(b) || len(a) == 0 {
		t.Fatalf("full %d faces, half %d", len(a), len(b))
	}
	byX := func(p, q FaceBox) int { return int(p.X - q.X) }
	slices.SortFunc(a, byX)
	slices.SortFunc(b, byX)
	tol := 0.02 * float32(W)
	for i := range a {
		if absf(a[i].X-b[i].X) > tol || absf(a[i].Y-b[i].Y) > tol || absf(a[i].W-b[i].W) > tol {
			t.Errorf("face %d: full %v, half %v (tolerance %.0f px)", i, a[i], b[i], tol)
		}
	}
}

func absf(v float32) float32 { return max(v, -v) }

// Frames with nobody in them must give no face; these are what an empty desk or a covered camera
// look like to the detector.
func TestDetectNoFace(t *testing.T) {
	d := newTestDetector(t, DetectorOptions{})
	for _, tc := range syntheticScenes() {
		t.Run(tc.name, func(t *testing.T) {
			img := tc.make(640, 480)
			defer img.Close()
			faces, top, err := d.Detect(nil, img, 0, 0)
			if err != nil {
				t.Fatal(err)
			}
			if len(faces) != 0 || top >= d.Thresholds().Score {
				t.Errorf("faces %v, top %.3f: want none below threshold %.2f", faces, top, d.Thresholds().Score)
			}
		})
	}
}

type scene struct {
	name string
	make func(w, h int) gocv.Mat
}

func syntheticScenes() []scene {
	solid := func(b, g, r float64) func(w, h int) gocv.Mat {
		return func(w, h int) gocv.Mat {
			return gocv.NewMatWithSizeFromScalar(gocv.NewScalar(b, g, r, 0), h, w, gocv.MatTypeCV8UC3)
		}
	}
	fill := func(f func(x, y int) (b, g, r uint8)) func(w, h int) gocv.Mat {
		return func(w, h int) gocv.Mat {
			img := gocv.NewMatWithSize(h, w, gocv.MatTypeCV8UC3)
			p, _ := img.DataPtrUint8()
			for y := 0; y < h; y++ {
				for x := 0; x < w; x++ {
					i := 3 * (y*w + x)
					p[i], p[i+1], p[i+2] = f(x, y)
				}
			}
			return img
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	return []scene{
		{"black", solid(0, 0, 0)},
		{"grey", solid(127, 127, 127)},
		{"white", solid(255, 255, 255)},
		{"skin tone", solid(120, 160, 220)},
		{"horizontal gradient", fill(func(x, y int) (uint8, uint8, uint8) { v := uint8(x * 255 / 639); return v, v, v })},
		{"diagonal colour gradient", fill(func(x, y int) (uint8, uint8, uint8) {
			return uint8(x * 255 / 639), uint8(y * 255 / 479), uint8((x + y) * 255 / 1118)
		})},
		{"noise", fill(func(x, y int) (uint8, uint8, uint8) {
			return uint8(rng.IntN(256)), uint8(rng.IntN(256)), uint8(rng.IntN(256))
		})},
		{"checkerboard", fill(func(x, y int) (uint8, uint8, uint8) {
			if (x/40+y/40)%2 == 0 {
				return 230, 230, 230
			}
			return 20, 20, 20
		})},
		{"skin ellipse on wall", func(w, h int) gocv.Mat {
			img := gocv.NewMatWithSizeFromScalar(gocv.NewScalar(200, 210, 215, 0), h, w, gocv.MatTypeCV8UC3)
			gocv.Ellipse(&img, image.Pt(w/2, h/2), image.Pt(w/8, h/5), 0, 0, 360, color.RGBA{R: 220, G: 170, B: 140}, -1)
			return img
		}},
	}
}

func TestDetectRejectsBadInput(t *testing.T) {
	d := newTestDetector(t, DetectorOptions{})
	grey := gocv.NewMatWithSize(480, 640, gocv.MatTypeCV8UC1)
	defer grey.Close()
	float := gocv.NewMatWithSize(480, 640, gocv.MatTypeCV32FC3)
	defer float.Close()
	tiny := gocv.NewMatWithSize(1, 1, gocv.MatTypeCV8UC3)
	defer tiny.Close()
	for name, img := range map[string]gocv.Mat{"empty": gocv.NewMat(), "grey": grey, "float": float, "1x1": tiny} {
		if _, _, err := d.Detect(nil, img, 640, 480); !errors.Is(err, ErrBadImage) {
			t.Errorf("%s: err = %v, want ErrBadImage", name, err)
		}
	}
	d.Close()
	if _, _, err := d.Detect(nil, grey, 640, 480); err == nil {
		t.Error("Detect after Close: no error")
	}
}

func TestDetectorOptions(t *testing.T) {
	d := newTestDetector(t, DetectorOptions{ScoreThreshold: 0.9, NMSIoU: 0.5, MinFace: -1})
	if got, want := d.Thresholds(), (Thresholds{Score: 0.9, NMSIoU: 0.5, MinFace: 0}); got != want {
		t.Errorf("Thresholds() = %+v, want %+v", got, want)
	}
	def := newTestDetector(t, DetectorOptions{})
	if got, want := def.Thresholds(), def.Manifest().Thresholds; got != want {
		t.Errorf("default Thresholds() = %+v, want manifest %+v", got, want)
	}
	// A minimum face size above every face in sample5 (faces are ~10% of the height) keeps none,
	// but the top score still reports... nothing, since it only counts boxes of allowed size.
	big := newTestDetector(t, DetectorOptions{MinFace: 0.5})
	img := readDemo(t, 5, gocv.IMReadReducedColor4)
	faces, top, err := big.Detect(nil, img, 1920, 1398)
	if err != nil {
		t.Fatal(err)
	}
	if len(faces) != 0 || top > 0.5 {
		t.Errorf("MinFace 0.5: faces %v top %.3f, want none", faces, top)
	}
	m, _ := Load("ultraface-rfb-320")
	if _, err := NewFaceDetector(m, DetectorOptions{ScoreThreshold: 1.5}); err == nil {
		t.Error("score threshold 1.5 accepted")
	}
	unloaded, _ := Lookup("ultraface-rfb-320")
	if _, err := NewFaceDetector(unloaded, DetectorOptions{}); err == nil {
		t.Error("manifest without verified path accepted")
	}
}

// Each worker owns a detector; detectors in parallel must not interfere (run with -race).
func TestDetectorsInParallel(t *testing.T) {
	img := readDemo(t, 1, gocv.IMReadReducedColor4)
	const workers = 4
	errs := make(chan error, workers)
	for range workers {
		d := newTestDetector(t, DetectorOptions{})
		go func() {
			var buf []FaceBox
			var err error
			for range 10 {
				if buf, _, err = d.Detect(buf[:0], img, 1920, 1280); err != nil || len(buf) != 3 {
					errs <- fmt.Errorf("faces %d err %v", len(buf), err)
					return
				}
			}
			errs <- nil
		}()
	}
	for range workers {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

func TestDetectSteadyStateAllocations(t *testing.T) {
	d := newTestDetector(t, DetectorOptions{})
	img := readDemo(t, 1, gocv.IMReadReducedColor4)
	buf := make([]FaceBox, 0, 16)
	allocs := testing.AllocsPerRun(20, func() {
		buf, _, _ = d.Detect(buf[:0], img, 1920, 1280)
	})
	// cgo calls and ORT's Run bookkeeping allocate a little; per-frame buffers must not.
	if allocs > 10 {
		t.Errorf("Detect allocates %.0f times per frame, want <= 10", allocs)
	}
}

func BenchmarkDetect(b *testing.B) {
	for _, tc := range []struct {
		name  string
		flags gocv.IMReadFlag
	}{
		{"from1920/4=480x320", gocv.IMReadReducedColor4},
		{"from1920/2=960x640", gocv.IMReadReducedColor2},
		{"from1920/1", gocv.IMReadColor},
	} {
		b.Run(tc.name, func(b *testing.B) {
			d := newTestDetector(b, DetectorOptions{})
			img := readDemo(b, 1, tc.flags)
			buf := make([]FaceBox, 0, 16)
			b.ResetTimer()
			for b.Loop() {
				buf, _, _ = d.Detect(buf[:0], img, 1920, 1280)
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/1000, "ms/frame")
		})
	}
	b.Run("640x480", func(b *testing.B) {
		d := newTestDetector(b, DetectorOptions{})
		src := readDemo(b, 1, gocv.IMReadColor)
		img := gocv.NewMat()
		defer img.Close()
		gocv.Resize(src, &img, image.Pt(640, 480), 0, 0, gocv.InterpolationArea)
		buf := make([]FaceBox, 0, 16)
		b.ResetTimer()
		for b.Loop() {
			buf, _, _ = d.Detect(buf[:0], img, 640, 480)
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/1000, "ms/frame")
	})
}
