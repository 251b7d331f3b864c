package analyzers

import (
	"encoding/binary"
	"math"
	"math/cmplx"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"proctor/internal/wav"
)

// The FFT against a direct DFT, for the 200-point size the mel uses and a few others.
func TestFFTPlanMatchesDFT(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{2, 5, 8, 12, 25, 200} {
		p := newFFTPlan(n)
		x := make([]complex128, n)
		for i := range x {
			x[i] = complex(rng.NormFloat64(), rng.NormFloat64())
		}
		got := make([]complex128, n)
		p.transform(got, x)
		for k := range n {
			var want complex128
			for j := range n {
				want += x[j] * cmplx.Exp(complex(0, -2*math.Pi*float64(j*k)/float64(n)))
			}
			if cmplx.Abs(got[k]-want) > 1e-9*float64(n) {
				t.Fatalf("n=%d bin %d: %v, want %v", n, k, got[k], want)
			}
		}
	}
}

// TestVoiceMelMatchesPython compares the Go mel front end with training/voice/mel_reference.py
// (numpy, librosa's formulas) on real speech when ../shared/data is there, else on a chirp in
// noise. Skips when the retrain venv (scripts/setup.sh) is missing.
func TestVoiceMelMatchesPython(t *testing.T) {
	root := moduleRoot(t)
	py := filepath.Join(root, ".cache", "retrain-venv", "bin", "python")
	if _, err := os.Stat(py); err != nil {
		t.Skipf("%s missing (run scripts/setup.sh): Python reference not run", py)
	}
	var x []float32
	if data, err := os.ReadFile(filepath.Join(root, "..", "shared", "data", "speech", "mandarin-speakers", "D4_str_D4_750.wav")); err == nil {
		s, rate, err := wav.Decode(data)
		if err != nil || rate != AudioRate {
			t.Fatalf("decode: rate %d, %v", rate, err)
		}
		x = s
	} else {
		rng := rand.New(rand.NewPCG(3, 4))
		x = make([]float32, 3*AudioRate)
		for i := range x {
			ts := float64(i) / AudioRate
			x[i] = float32(0.3*math.Sin(2*math.Pi*(100+600*ts)*ts) + 0.01*rng.NormFloat64())
		}
	}
	dir := t.TempDir()
	in, out := filepath.Join(dir, "x.f32"), filepath.Join(dir, "mel.f32")
	buf := make([]byte, 4*len(x))
	for i, v := range x {
		binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(v))
	}
	if err := os.WriteFile(in, buf, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(py, filepath.Join(root, "training", "voice", "mel_reference.py"), in, out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mel_reference.py: %v\n%s", err, b)
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	frames := 1 + (len(x)-voiceFFT)/voiceHop
	if len(raw) != 4*frames*voiceMels {
		t.Fatalf("python gave %d values, want %d frames × 40", len(raw)/4, frames)
	}
	m := newVoiceMel()
	got := make([]float32, voiceMels)
	var worst, loudest float64
	for f := range frames {
		m.frame(x[f*voiceHop:], got)
		var peak float64
		for i := range voiceMels {
			peak = max(peak, float64(math.Float32frombits(binary.LittleEndian.Uint32(raw[4*(f*voiceMels+i):]))))
		}
		loudest = max(loudest, peak)
		for i := range voiceMels {
			want := float64(math.Float32frombits(binary.LittleEndian.Uint32(raw[4*(f*voiceMels+i):])))
			// Relative to the frame's strongest band: float32 output, float64 inside both.
			worst = max(worst, math.Abs(float64(got[i])-want)/max(peak, 1e-12))
		}
	}
	t.Logf("%d frames: max |go − python| / frame peak = %.2e (loudest band %.3g)", frames, worst, loudest)
	if loudest <= 0 {
		t.Fatal("the reference is all zeros")
	}
	if worst > 1e-5 {
		t.Errorf("mel differs from the Python reference by %.2e of the frame peak (want ≤ 1e-5)", worst)
	}
}

func moduleRoot(t testing.TB) string {
	wd, _ := os.Getwd()
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
		if filepath.Dir(d) == d {
			t.Fatal("go.mod not found")
		}
	}
}

// One 400-sample frame through the speaker encoder's mel front end (the FFT is most of it).
func BenchmarkVoiceMelFrame(b *testing.B) {
	m := newVoiceMel()
	x := make([]float32, voiceFFT)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range x {
		x[i] = float32(rng.NormFloat64() * 0.1)
	}
	dst := make([]float32, 40)
	for range b.N {
		m.frame(x, dst)
	}
}
