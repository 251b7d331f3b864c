package analyzers

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"testing"

	"proctor/internal/wav"
)

// The default head reads int8 speech embeddings, so the int8 model must embed as the float one
// does with this machine's CPU kernels. onnxruntime 1.24.1 computed wrong int8 convolutions on
// CPUs with AMX (Xeon 4th gen: a mean cosine of 0.95 to the float embedding on real speech, 0.80
// at worst, and not the same from one process to the next; onnxruntime PR 27671, fixed in 1.25:
// 0.996 / 0.985). On the test clips 1.25.1 gives 0.9968 / 0.9901 there, 1.24.1 0.979–0.994 /
// 0.956–0.983. A runtime or CPU that breaks int8 fails here, not silently in the recall.
func TestOWWEmbeddingInt8MatchesFloat(t *testing.T) {
	var pcm []float32
	for _, clip := range []string{"answer", "phrase", "chatter"} {
		data, err := os.ReadFile(filepath.Join("..", "internal", "testaudio", clip+".wav"))
		if err != nil {
			t.Fatal(err)
		}
		s, rate, err := wav.Decode(data)
		if err != nil || rate != AudioRate {
			t.Fatalf("%s: %v, %d Hz", clip, err, rate)
		}
		pcm = append(pcm, s...)
	}
	open := func(emb string) *Phrase {
		p, err := NewPhrase(PhraseConfig{EveryWindow: true, Embedding: emb})
		RequireInstalled(t, err)
		t.Cleanup(func() { p.Close() })
		return p
	}
	q, f := open(""), open("oww-embedding")
	if got := q.Version(); got == f.Version() {
		t.Fatalf("both analyzers read the same embedding: %s", got)
	}
	var sum, worst float64 = 0, 1
	n := 0
	ctx := context.Background()
	for off := 0; off+blockAdvance <= len(pcm); off += blockAdvance {
		var oq, of AudioObservation
		before := q.embCount
		if err := q.Process(ctx, pcm[off:off+blockAdvance], &oq); err != nil {
			t.Fatal(err)
		}
		if err := f.Process(ctx, pcm[off:off+blockAdvance], &of); err != nil {
			t.Fatal(err)
		}
		if q.embCount != f.embCount {
			t.Fatalf("%d int8 embeddings, %d float", q.embCount, f.embCount)
		}
		if q.embCount == before {
			continue
		}
		a, b := q.headIn.GetData(), f.headIn.GetData() // the newest embedding is last
		c := unitCosine(a[len(a)-embDim:], b[len(b)-embDim:])
		sum, worst, n = sum+c, min(worst, c), n+1
	}
	if n < 100 {
		t.Fatalf("only %d embeddings compared", n)
	}
	mean := sum / float64(n)
	t.Logf("%d embeddings: cosine int8 vs float mean %.4f, worst %.4f", n, mean, worst)
	if mean < 0.995 || worst < 0.98 {
		t.Errorf("int8 and float speech embeddings differ: cosine mean %.4f, worst %.4f over %d windows (want >= 0.995 and >= 0.98): the ONNX runtime's int8 kernels are wrong on this CPU",
			mean, worst, n)
	}
}

// unitCosine is the cosine of two vectors that need not be unit length (models.Cosine assumes
// they are).
func unitCosine(a, b []float32) float64 {
	var dot, na, nb float64
	for i := range a {
		dot += float64(a[i]) * float64(b[i])
		na += float64(a[i]) * float64(a[i])
		nb += float64(b[i]) * float64(b[i])
	}
	return dot / math.Sqrt(na*nb+1e-30)
}
