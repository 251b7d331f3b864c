package analyze

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"proctor/analyzers"
	"proctor/internal/testaudio"
)

// A PNG is re-encoded as JPEG (OpenCV only ever sees validated JPEG); other bytes are refused
// with a message saying what is accepted.
func TestReadImageJPEG(t *testing.T) {
	dir := t.TempDir()
	img := image.NewRGBA(image.Rect(0, 0, 64, 48))
	img.Set(3, 3, color.RGBA{200, 10, 10, 255})
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		data    []byte
		wantErr string
	}{
		{"photo.png", buf.Bytes(), ""},
		{"notes.txt", []byte("not an image"), "not a JPEG or PNG image"},
	} {
		p := filepath.Join(dir, tc.name)
		if err := os.WriteFile(p, tc.data, 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := ReadImageJPEG(p)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%s: %v, want %q", tc.name, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if w, h, err := analyzers.ValidateJPEG(got); err != nil || w != 64 || h != 48 {
			t.Errorf("%s: %dx%d, %v; want a 64x48 JPEG", tc.name, w, h, err)
		}
	}
	cfg := ImageConfig(" faces, ,landmarks ")
	if strings.Join(cfg.Analyzers, ",") != "faces,landmarks" || !cfg.Identity.AllFaces {
		t.Errorf("ImageConfig: %+v", cfg.Analyzers)
	}
}

// Audio finds the answer's speech and, with questions shown, one answer segment per question.
func TestAudio(t *testing.T) {
	samples, _, err := testaudio.Build(8000, testaudio.Part{Clip: testaudio.Answer, AtMs: 500})
	if err != nil {
		t.Fatal(err)
	}
	res, err := Audio(context.Background(), analyzers.AudioConfig{}, "a.wav", samples, analyzers.AudioRate, 1000, []int64{0, 6000})
	if err != nil {
		t.Skipf("audio models unavailable (%v): run scripts/setup.sh", err)
	}
	if res.File != "a.wav" || res.DurationMs != 8000 || len(res.Speech) == 0 || res.Phrases == nil {
		t.Errorf("result %+v", res)
	}
	if len(res.Answers) != 2 || res.Answers[0].Question != 1 || res.Answers[1].StartMs != 6000 {
		t.Errorf("answers %+v, want questions 1 and 2, the second from 6000 ms", res.Answers)
	}
}
