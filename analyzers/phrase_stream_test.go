package analyzers

import (
	"math/rand/v2"
	"testing"

	ort "github.com/yalue/onnxruntime_go"

	"proctor/models"
)

// The gate embeds a run of consecutive windows in one call of the "-stream" rewrite
// (training/phrase/stream_oww.py): output j must be, to the last bit, what the per-window model
// gives for mel frames [8j, 8j+76), for the float and the int8 embedding.
func TestStreamEmbeddingMatchesPerWindow(t *testing.T) {
	const k = 23
	frames := melWindow + melBlock*(k-1)
	rng := rand.New(rand.NewPCG(2026, 12))
	mel := make([]float32, frames*melBins)
	for i := range mel {
		mel[i] = float32(rng.NormFloat64()*1.5 + 1)
	}
	for _, name := range []string{"oww-embedding", "oww-embedding-int8"} {
		t.Run(name, func(t *testing.T) {
			open := func(name string) *ort.DynamicAdvancedSession {
				m, err := models.Load(name)
				RequireInstalled(t, err)
				s, err := models.NewDynamicAudioSession(m, models.SessionOptions{IntraOpThreads: 1})
				RequireInstalled(t, err)
				t.Cleanup(func() { s.Destroy() })
				return s
			}
			per, run := open(name), open(name+"-stream")
			got := make([]float32, k*embDim)
			in, _ := ort.NewTensor(ort.NewShape(1, int64(frames), melBins, 1), mel)
			out, _ := ort.NewTensor(ort.NewShape(k, 1, 1, embDim), got)
			defer in.Destroy()
			defer out.Destroy()
			if err := run.Run([]ort.Value{in}, []ort.Value{out}); err != nil {
				t.Fatal(err)
			}
			want := make([]float32, embDim)
			for j := range k {
				win, _ := ort.NewTensor(ort.NewShape(1, melWindow, melBins, 1), mel[j*melBlock*melBins:(j*melBlock+melWindow)*melBins])
				one, _ := ort.NewTensor(ort.NewShape(1, 1, 1, embDim), want)
				err := per.Run([]ort.Value{win}, []ort.Value{one})
				win.Destroy()
				one.Destroy()
				if err != nil {
					t.Fatal(err)
				}
				for i, v := range want {
					if g := got[j*embDim+i]; g != v {
						t.Fatalf("window %d, dimension %d: %v in the run, %v alone", j, i, g, v)
					}
				}
			}
		})
	}
}
