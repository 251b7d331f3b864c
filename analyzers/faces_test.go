package analyzers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"gocv.io/x/gocv"

	"proctor/models"
)

// requireModels skips when scripts/setup.sh has not fetched the runtime and models, so a fresh
// clone still runs the pure-Go tests.
func requireModels(t testing.TB) string {
	t.Helper()
	dir, err := models.CacheDir()
	if err != nil {
		t.Skipf("model cache missing (%v): run scripts/setup.sh to run this test", err)
	}
	if _, err := models.ORTLibraryPath(); err != nil {
		t.Skipf("onnxruntime missing (%v): run scripts/setup.sh to run this test", err)
	}
	for _, name := range []string{DefaultFacesModel, DefaultVerifierModel, DefaultAgreeModel} {
		if _, err := models.Load(name); err != nil {
			t.Skipf("face model missing (%v): run scripts/setup.sh to run this test", err)
		}
	}
	return dir
}

func newTestSet(t testing.TB, cfg Config) *Set {
	t.Helper()
	requireModels(t)
	s, err := NewSet(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func demoJPEG(t testing.TB, n int) []byte {
	t.Helper()
	dir := requireModels(t)
	data, err := os.ReadFile(filepath.Join(dir, "demo", fmt.Sprintf("sample%d.jpg", n)))
	if err != nil {
		t.Skipf("demo image missing (%v): run scripts/setup.sh to run this test", err)
	}
	return data
}

// resizedJPEG re-encodes a demo photo at w×h, the size a webcam frame would have.
func resizedJPEG(t testing.TB, n, w, h int) []byte {
	t.Helper()
	img, err := gocv.IMDecode(demoJPEG(t, n), gocv.IMReadColor)
	if err != nil || img.Empty() {
		t.Fatalf("decode demo %d: %v", n, err)
	}
	defer img.Close()
	small := gocv.NewMat()
	defer small.Close()
	gocv.Resize(img, &small, image.Pt(w, h), 0, 0, gocv.InterpolationArea)
	buf, err := gocv.IMEncodeWithParams(gocv.JPEGFileExt, small, []int{gocv.IMWriteJpegQuality, 90})
	if err != nil {
		t.Fatal(err)
	}
	defer buf.Close()
	return bytes.Clone(buf.GetBytes())
}

func encodeJPEG(t testing.TB, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// The demo photos counted by eye (see models/facedetector_test.go).
var demoFaces = map[int]int{1: 3, 2: 3, 3: 3, 4: 4, 5: 5, 6: 4}

func TestSetAnalyzeJPEGDemo(t *testing.T) {
	s := newTestSet(t, Config{})
	for n := 1; n <= 6; n++ {
		t.Run(fmt.Sprintf("sample%d", n), func(t *testing.T) {
			data := demoJPEG(t, n)
			w, h, err := ValidateJPEG(data)
			if err != nil {
				t.Fatal(err)
			}
			obs, err := s.AnalyzeJPEG(context.Background(), data, CameraMain)
			if err != nil {
				t.Fatal(err)
			}
			if obs.Width != w || obs.Height != h {
				t.Errorf("observation %dx%d, want original %dx%d", obs.Width, obs.Height, w, h)
			}
			if len(obs.Faces) != demoFaces[n] {
				t.Errorf("faces = %d, want %d", len(obs.Faces), demoFaces[n])
			}
			if obs.TopFaceScore < 0.99 || obs.Faces[0].Score != obs.TopFaceScore {
				t.Errorf("top score %.3f, first face %.3f", obs.TopFaceScore, obs.Faces[0].Score)
			}
			for _, f := range obs.Faces {
				x, y, bw, bh := f.Box[0], f.Box[1], f.Box[2], f.Box[3]
				// Boxes in original pixels: the faces in these 1920 px photos are 150-310 px high.
				if x < 0 || y < 0 || x+bw > float32(w) || y+bh > float32(h) || bh < 150 || bh > 320 {
					t.Errorf("box %v out of range for a %dx%d photo", f.Box, w, h)
				}
			}
		})
	}
}

// The same scene at webcam resolutions: 640x480 (4:3 main camera) and 1280x720 (16:9).
func TestSetWebcamSizes(t *testing.T) {
	s := newTestSet(t, Config{})
	for _, tc := range []struct{ n, w, h int }{{1, 640, 480}, {4, 640, 480}, {5, 1280, 720}, {6, 1280, 720}} {
		obs, err := s.AnalyzeJPEG(context.Background(), resizedJPEG(t, tc.n, tc.w, tc.h), CameraMain)
		if err != nil {
			t.Fatal(err)
		}
		if len(obs.Faces) != demoFaces[tc.n] || obs.Width != tc.w || obs.Height != tc.h {
			t.Errorf("sample%d at %dx%d: %d faces in %dx%d, want %d", tc.n, tc.w, tc.h, len(obs.Faces), obs.Width, obs.Height, demoFaces[tc.n])
		}
	}
}

// Synthetic frames with nobody in them: a covered camera, an empty wall, sensor noise.
func noFaceImages() map[string]image.Image {
	const w, h = 640, 480
	mk := func(f func(x, y int) color.RGBA) image.Image {
		img := image.NewRGBA(image.Rect(0, 0, w, h))
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				img.SetRGBA(x, y, f(x, y))
			}
		}
		return img
	}
	rng := rand.New(rand.NewPCG(3, 4))
	return map[string]image.Image{
		"black":    mk(func(x, y int) color.RGBA { return color.RGBA{0, 0, 0, 255} }),
		"white":    mk(func(x, y int) color.RGBA { return color.RGBA{255, 255, 255, 255} }),
		"skin":     mk(func(x, y int) color.RGBA { return color.RGBA{225, 180, 150, 255} }),
		"gradient": mk(func(x, y int) color.RGBA { return color.RGBA{uint8(x * 255 / w), uint8(y * 255 / h), 90, 255} }),
		"noise": mk(func(x, y int) color.RGBA {
			return color.RGBA{uint8(rng.IntN(256)), uint8(rng.IntN(256)), uint8(rng.IntN(256)), 255}
		}),
		"stripes": mk(func(x, y int) color.RGBA {
			if (x/24)%2 == 0 {
				return color.RGBA{240, 240, 240, 255}
			}
			return color.RGBA{30, 30, 30, 255}
		}),
	}
}

func TestSetNoFaceFrames(t *testing.T) {
	s := newTestSet(t, Config{})
	for name, img := range noFaceImages() {
		t.Run(name, func(t *testing.T) {
			obs, err := s.AnalyzeJPEG(context.Background(), encodeJPEG(t, img), CameraEvidence)
			if err != nil {
				t.Fatal(err)
			}
			if len(obs.Faces) != 0 || obs.TopFaceScore >= 0.7 {
				t.Errorf("faces %v top %.3f, want none", obs.Faces, obs.TopFaceScore)
			}
			js, _ := json.Marshal(obs)
			if !strings.Contains(string(js), `"faces":[]`) {
				t.Errorf("JSON %s: want \"faces\":[] (not null)", js)
			}
		})
	}
}

func TestSetRejectsBadFrames(t *testing.T) {
	s := newTestSet(t, Config{})
	good := demoJPEG(t, 1)
	tests := []struct {
		name string
		data []byte
		want error
	}{
		{"not a jpeg", []byte("hello"), ErrNotJPEG},
		{"cut in half", good[:len(good)/2], ErrTruncated},
		{"tiny", encodeJPEG(t, image.NewRGBA(image.Rect(0, 0, 8, 8))), ErrTooSmall},
	}
	for _, tt := range tests {
		if _, err := s.AnalyzeJPEG(context.Background(), tt.data, CameraMain); !errors.Is(err, tt.want) {
			t.Errorf("%s: err = %v, want %v", tt.name, err, tt.want)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.AnalyzeJPEG(ctx, good, CameraMain); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: err = %v", err)
	}
}

func TestFacesConfigOverrides(t *testing.T) {
	strict := newTestSet(t, Config{Faces: FacesConfig{ScoreThreshold: 0.995, MinFace: -1}})
	obs, err := strict.AnalyzeJPEG(context.Background(), demoJPEG(t, 2), CameraMain)
	if err != nil {
		t.Fatal(err)
	}
	// sample2's middle face (eyes down, 0.92) and right face drop out at 0.995.
	if len(obs.Faces) >= demoFaces[2] {
		t.Errorf("score 0.995 kept %d faces of sample2, want fewer than %d", len(obs.Faces), demoFaces[2])
	}
	if got, want := strict.Versions()["faces"], "ultraface-rfb-320@1 score=0.995 nms=0.4 min=0 contained=0.5 second=0.25 pass2=pad0.5,score0.995 verify=blazeface-back-256@1,score0.35 agree=blazeface-front-128@1,score0.5,face0.4 tilted=20"; got != want {
		t.Errorf("version %q, want %q", got, want)
	}
	def := newTestSet(t, Config{Analyzers: []string{"faces"}}) // the default set also has "sheet" (decodes at 480)
	if got, want := def.Versions()["faces"], "ultraface-rfb-320@1 score=0.7 nms=0.4 min=0.03 contained=0.5 second=0.25 pass2=pad0.5,score0.7 verify=blazeface-back-256@1,score0.35 agree=blazeface-front-128@1,score0.5,face0.4 tilted=20"; got != want {
		t.Errorf("default version %q, want %q", got, want)
	}
	if def.DecodeSide() != 320 {
		t.Errorf("default decode side %d, want 320 (the model's input width)", def.DecodeSide())
	}
	if _, err := NewSet(Config{Faces: FacesConfig{Model: "no-such-model"}}); !errors.Is(err, models.ErrUnknownModel) {
		t.Errorf("unknown model: err = %v", err)
	}
}

// meanLevel is a real (tiny) analyzer used to exercise the registry: it needs full-size frames
// because it does not implement SideNeeder.
type meanLevel struct{ last float64 }

func (m *meanLevel) Name() string    { return "mean" }
func (m *meanLevel) Version() string { return "1" }
func (m *meanLevel) Close() error    { return nil }
func (m *meanLevel) Analyze(_ context.Context, f *Frame, _ *Observation) error {
	m.last = f.Image.Mean().Val1
	if f.Image.Cols() != f.Width {
		return fmt.Errorf("got a reduced frame %d wide, want %d", f.Image.Cols(), f.Width)
	}
	return nil
}

func TestCatalog(t *testing.T) {
	requireModels(t)
	r := NewCatalog()
	// Every analyzer file registers itself; these must be among the built-ins (sorted).
	names := r.Names()
	for _, want := range []string{"faces", "landmarks", "attire", "persons"} {
		if !slices.Contains(names, want) {
			t.Errorf("built-ins %q lack %s", strings.Join(names, ","), want)
		}
	}
	if !slices.IsSorted(names) {
		t.Errorf("Names() not sorted: %v", names)
	}
	if err := r.Add("faces", func(*Config) (Analyzer, error) { return nil, nil }); err == nil {
		t.Error("duplicate registration accepted")
	}
	mean := &meanLevel{}
	if err := r.Add("mean", func(*Config) (Analyzer, error) { return mean, nil }); err != nil {
		t.Fatal(err)
	}
	if err := r.Add("liar", func(*Config) (Analyzer, error) { return &meanLevel{}, nil }); err != nil {
		t.Fatal(err)
	}
	for _, bad := range [][]string{{"nope"}, {"faces", "faces"}, {"liar"}, {"faces", "nope"}} {
		if _, err := r.Build(Config{Analyzers: bad}); err == nil {
			t.Errorf("Build(%v) succeeded", bad)
		}
	}
	s, err := r.Build(Config{Analyzers: []string{"mean", "faces"}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.DecodeSide() != 0 {
		t.Errorf("decode side %d, want 0 (mean needs full frames)", s.DecodeSide())
	}
	if names := []string{s.Analyzers()[0].Name(), s.Analyzers()[1].Name()}; names[0] != "mean" || names[1] != "faces" {
		t.Errorf("order %v", names)
	}
	obs, err := s.AnalyzeJPEG(context.Background(), demoJPEG(t, 3), CameraMain)
	if err != nil {
		t.Fatal(err)
	}
	if len(obs.Faces) != 3 || mean.last < 20 || mean.last > 235 {
		t.Errorf("faces %d mean %.1f", len(obs.Faces), mean.last)
	}
}

// One Set per worker: sets in parallel must not interfere (run with -race).
func TestSetsInParallel(t *testing.T) {
	frames := [][]byte{demoJPEG(t, 1), demoJPEG(t, 5)}
	want := []int{3, 5}
	const workers = 4
	errs := make(chan error, workers)
	for w := range workers {
		s := newTestSet(t, Config{})
		go func() {
			for i := range 6 {
				k := (w + i) % 2
				obs, err := s.AnalyzeJPEG(context.Background(), frames[k], CameraMain)
				if err != nil || len(obs.Faces) != want[k] {
					errs <- fmt.Errorf("worker %d frame %d: %d faces, err %v", w, k, len(obs.Faces), err)
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

func BenchmarkSetAnalyzeJPEG(b *testing.B) {
	for _, tc := range []struct {
		name string
		n    int
		w, h int
	}{
		{"640x480", 1, 640, 480},
		{"1280x720", 1, 1280, 720},
		{"1920x1280", 1, 0, 0},
	} {
		b.Run(tc.name, func(b *testing.B) {
			s := newTestSet(b, Config{})
			data := demoJPEG(b, tc.n)
			if tc.w > 0 {
				data = resizedJPEG(b, tc.n, tc.w, tc.h)
			}
			ctx := context.Background()
			for b.Loop() {
				if _, err := s.AnalyzeJPEG(ctx, data, CameraMain); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/1000, "ms/frame")
		})
	}
}

// The evidence camera's frames get faces (the schedule counts them) but not the analyzers that
// only the main camera's checks read: a face on the laptop screen behind the candidate costs no
// landmark fit, head pose, identity, mask or ear model.
func TestSetEvidenceCameraSkipsMainOnly(t *testing.T) {
	s := newTestSet(t, Config{Analyzers: []string{"faces", "landmarks", "headpose", "attire", "ears"}})
	var ran []string
	s.ObserveAnalyzers(func(name string, did bool, _ time.Duration) {
		if did {
			ran = append(ran, name)
		}
	})
	data := demoJPEG(t, 1)
	main, err := s.AnalyzeJPEG(context.Background(), data, CameraMain)
	if err != nil || len(main.Faces) == 0 {
		t.Fatalf("main camera: %v, %d faces", err, len(main.Faces))
	}
	if m := main.Faces[MainFace(main.Faces, 0)]; m.Yaw == nil || m.Mask == nil || m.Landmarks == nil || m.Ears == nil {
		t.Fatalf("main camera's main face without its results: %+v", m)
	}
	if want := []string{"faces", "landmarks", "headpose", "attire", "ears"}; !slices.Equal(ran, want) {
		t.Errorf("main camera ran %v, want %v", ran, want)
	}
	ran = nil
	ev, err := s.AnalyzeJPEG(context.Background(), data, CameraEvidence)
	if err != nil || len(ev.Faces) != len(main.Faces) {
		t.Fatalf("evidence camera: %v, %d faces, want %d", err, len(ev.Faces), len(main.Faces))
	}
	for _, f := range ev.Faces {
		if f.Yaw != nil || f.Mask != nil || f.Landmarks != nil || f.Ears != nil {
			t.Errorf("evidence camera face with main-camera results: %+v", f)
		}
	}
	if !slices.Equal(ran, []string{"faces"}) {
		t.Errorf("evidence camera ran %v, want only faces", ran)
	}
}

// BenchmarkSetByCamera: the vision analyzers a session's frames pass through, every one on every
// frame (no schedule, as `proctor analyze`), on a 640×480 frame showing faces and on one showing
// none, posted as the main camera and as the evidence camera (which skips the main-camera-only
// analyzers, and the face detector's further looks on an empty frame).
//
//	go test -run XXX -bench BenchmarkSetByCamera -benchtime 100x ./analyzers/
func BenchmarkSetByCamera(b *testing.B) {
	s := newTestSet(b, Config{Analyzers: []string{"faces", "landmarks", "headpose", "attire", "ears", "persons", "sheet", "cameramotion"}})
	faces, empty := resizedJPEG(b, 1, 640, 480), testJPEG(b, 640, 480)
	for _, camera := range []string{CameraMain, CameraEvidence} {
		for name, data := range map[string][]byte{"faces": faces, "no-face": empty} {
			b.Run(camera+"/"+name, func(b *testing.B) {
				for range b.N {
					if _, err := s.AnalyzeJPEG(context.Background(), data, camera); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
