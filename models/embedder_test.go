package models

import (
	"encoding/binary"
	"errors"
	"math"
	"testing"
)

// The whitened model's embedding is the plain model's unit vector, minus the file's mean, times
// its matrix, normalised: computed here from the file's bytes on the demo faces.
func TestWhitenedEmbeddingIsTheProjection(t *testing.T) {
	plain, white := loadInstalled(t, "facenet-keras-mirror"), loadInstalled(t, "facenet-keras-mirror-wccn")
	p := white.Decode.Projection
	if p == nil {
		t.Fatal("facenet-keras-mirror-wccn has no projection")
	}
	data, err := trainedFS.ReadFile(p.File)
	if err != nil {
		t.Fatal(err)
	}
	d := white.Decode.Dim
	at := func(row, col int) float64 {
		return float64(math.Float32frombits(binary.LittleEndian.Uint32(data[4*(row*d+col):])))
	}
	ep, ew := openEmbedder(t, plain), openEmbedder(t, white)
	crops := demoFaceCrops(t, white.Input.Width)
	if len(crops) < 10 {
		t.Fatalf("only %d demo faces", len(crops))
	}
	moved := 0
	for _, crop := range crops {
		x, y := make([]float32, d), make([]float32, d)
		if err := ep.Embed(crop.Mat, x); err != nil {
			t.Fatal(err)
		}
		if err := ew.Embed(crop.Mat, y); err != nil {
			t.Fatal(err)
		}
		want := make([]float64, d)
		var norm float64
		for j := range d {
			for i := range d {
				want[j] += (float64(x[i]) - at(0, i)) * at(1+i, j)
			}
			norm += want[j] * want[j]
		}
		for j := range d {
			if diff := math.Abs(want[j]/math.Sqrt(norm) - float64(y[j])); diff > 1e-5 {
				t.Fatalf("%s: value %d is %g, want %g", crop.name, j, y[j], want[j]/math.Sqrt(norm))
			}
		}
		if Cosine(x, y) < 0.9 {
			moved++
		}
	}
	if moved == 0 {
		t.Error("the projection left every embedding where it was")
	}
}

func TestProjectionChecked(t *testing.T) {
	good := Projection{File: "trained/facenet-wccn-rmfd.f32"}
	m, err := Lookup("facenet-keras-mirror-wccn")
	if err != nil {
		t.Fatal(err)
	}
	good.SHA256 = m.Decode.Projection.SHA256
	if _, _, err := loadProjection(&good, 128); err != nil {
		t.Fatalf("the shipped projection: %v", err)
	}
	if _, _, err := loadProjection(&good, 64); err == nil {
		t.Error("a 128-d projection loaded for 64 dimensions")
	}
	bad := good
	bad.SHA256 = "00"
	if _, _, err := loadProjection(&bad, 128); !errors.Is(err, ErrChecksum) {
		t.Errorf("wrong sha256: %v, want ErrChecksum", err)
	}
	missing := good
	missing.File = "trained/none.f32"
	if _, _, err := loadProjection(&missing, 128); !errors.Is(err, ErrModelMissing) {
		t.Errorf("missing file: %v, want ErrModelMissing", err)
	}
}
