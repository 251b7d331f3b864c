package analyzers

import (
	"bytes"
	"context"
	"image"
	"image/jpeg"
	_ "image/png" // identities/ holds one PNG portrait
	"os"
	"path/filepath"
	"testing"
)

// devData returns ../shared/data (see its README) or $PROCTOR_DEV_DATA, skipping when absent: the
// dev photos are not part of the project and a fresh clone does not have them.
func devData(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("PROCTOR_DEV_DATA")
	if dir == "" {
		wd, _ := os.Getwd()
		for d := wd; ; d = filepath.Dir(d) {
			if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
				dir = filepath.Join(d, "..", "shared", "data")
				break
			}
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	if st, err := os.Stat(filepath.Join(dir, "faces")); err != nil || !st.IsDir() {
		t.Skipf("dev data not found at %q (../shared/data or $PROCTOR_DEV_DATA): accuracy tests skipped", dir)
	}
	return dir
}

// asJPEG returns the file as JPEG bytes, re-encoding other formats (quality 95).
func asJPEG(t testing.TB, p string) []byte {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.HasPrefix(data, []byte{0xFF, 0xD8}) {
		return data
	}
	img, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("%s: %v", p, err)
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 95}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestFaceCountTightCrops reports how often a tight face crop (no background, ~150 px) gives
// exactly one face. Exam frames never look like this, but face-login crops and the identity
// galleries do; UltraFace's largest anchors are smaller than a face filling the frame.
func TestFaceCountTightCrops(t *testing.T) {
	if testing.Short() {
		t.Skip("1,100 images; skipped in -short")
	}
	root := filepath.Join(devData(t), "faces")
	s := newTestSet(t, Config{})
	for _, dir := range []string{"identities-crops", "identities-rmfd"} {
		counts := map[int]int{} // 0, 1, 2 = two or more
		total := 0
		filepath.WalkDir(filepath.Join(root, dir), func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return nil
			}
			obs, err := s.AnalyzeJPEG(context.Background(), asJPEG(t, p), CameraMain)
			if err != nil {
				t.Errorf("%s: %v", p, err)
				return nil
			}
			counts[min(len(obs.Faces), 2)]++
			total++
			return nil
		})
		t.Logf("%s: exactly one face in %d of %d (%.1f%%); none %d, two or more %d",
			dir, counts[1], total, pct(counts[1], total), counts[0], counts[2])
		if pct(counts[1], total) < 90 {
			t.Errorf("%s: exactly one face in %.1f%%, want >= 90%%", dir, pct(counts[1], total))
		}
	}
}

func pct(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return 100 * float64(a) / float64(b)
}
