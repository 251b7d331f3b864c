package analyzers

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/jpeg"
	_ "image/png" // identities/ holds one PNG portrait
	"os"
	"path/filepath"
	"slices"
	"strings"
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

// peopleFreeCrops are regions of the dev photos that contain no face, chosen by eye: rooms,
// ceilings, torsos, legs, hands, suits, clothing prints (one with a skull), a flag. They are the
// "nobody at the desk" negatives; rectangles are x, y, w, h in original pixels.
var peopleFreeCrops = []struct {
	file string
	r    [4]int
}{
	{"multi_person/vfa_sample1.jpg", [4]int{0, 0, 384, 624}},
	{"multi_person/vfa_sample1.jpg", [4]int{0, 720, 1920, 560}},
	{"multi_person/vfa_sample1.jpg", [4]int{620, 0, 720, 290}},
	{"multi_person/vfa_sample2.jpg", [4]int{0, 650, 1920, 717}},
	{"multi_person/vfa_sample3.jpg", [4]int{0, 0, 460, 1350}},
	{"multi_person/vfa_sample3.jpg", [4]int{0, 800, 1920, 550}},
	{"multi_person/vfa_sample4.jpg", [4]int{0, 760, 1920, 688}},
	{"multi_person/vfa_sample4.jpg", [4]int{1640, 0, 280, 1448}},
	{"multi_person/vfa_sample5.jpg", [4]int{0, 0, 670, 310}},
	{"multi_person/vfa_sample5.jpg", [4]int{912, 912, 1008, 486}},
	{"multi_person/vfa_sample6.jpg", [4]int{0, 960, 1920, 577}},
	{"multi_person/bbt1.jpg", [4]int{0, 450, 1366, 318}},
	{"multi_person/group-1.jpg", [4]int{0, 0, 1920, 250}},
	{"multi_person/group-1.jpg", [4]int{0, 1000, 1920, 440}},
	{"multi_person/group-5.jpg", [4]int{0, 0, 1920, 240}},
	{"multi_person/group-5.jpg", [4]int{0, 1000, 1920, 635}},
	{"multi_person/group-4.jpg", [4]int{0, 1150, 1929, 297}},
	{"multi_person/obama_and_biden.jpg", [4]int{0, 800, 1500, 628}},
	{"multi_person/two_people.jpg", [4]int{0, 380, 1126, 281}},
	{"multi_person/kit_with_rose.jpg", [4]int{0, 330, 501, 370}},
	{"identities/stock_a/stock-emotions-a-1.jpg", [4]int{0, 850, 954, 430}},
	{"identities/obama/obama.jpg", [4]int{0, 0, 180, 1137}},
	{"identities/biden/biden.jpg", [4]int{0, 1300, 970, 900}},
	{"identities/kit_harington/john1.jpeg", [4]int{0, 0, 450, 599}},
	{"identities/rose_leslie/img1.jpg", [4]int{0, 0, 400, 799}},
	{"identities/alex_lacamoire/alex_lacamoire1.jpg", [4]int{1100, 0, 448, 1024}},
	{"identities/alex_lacamoire/alex_lacamoire1.jpg", [4]int{0, 0, 450, 1024}},
	{"identities/kit_harington/johnsnow_test1.jpg", [4]int{0, 600, 768, 554}},
	{"identities/stock_teen/stock-teen-1.jpg", [4]int{0, 0, 851, 250}},
}

func cropJPEG(t testing.TB, p string, r [4]int) []byte {
	t.Helper()
	img, _, err := image.Decode(bytes.NewReader(asJPEG(t, p)))
	if err != nil {
		t.Fatalf("%s: %v", p, err)
	}
	sub := img.(interface {
		SubImage(image.Rectangle) image.Image
	}).SubImage(image.Rect(r[0], r[1], r[0]+r[2], r[1]+r[3]))
	var b bytes.Buffer
	if err := jpeg.Encode(&b, sub, &jpeg.Options{Quality: 92}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// countClass buckets a face count the way the rules use it: nobody, the candidate, extra person.
func countClass(n int) string {
	switch {
	case n == 0:
		return "0"
	case n == 1:
		return "1"
	}
	return ">=2"
}

type evalItem struct {
	name, truth string
	data        []byte
}

// TestFaceCountAccuracy measures the default faces analyzer on the dev photos: identities/
// (single portraits, truth "1"), multi_person/ (group photos, truth ">=2") and people-free images
// (crops of the same photos plus synthetic frames, truth "0"). It logs the confusion matrix and
// per-class precision/recall, and fails if accuracy drops below what the thresholds in
// models/manifests/ultraface-rfb-320.json were tuned to.
func TestFaceCountAccuracy(t *testing.T) {
	root := filepath.Join(devData(t), "faces")
	s := newTestSet(t, Config{})

	var items []evalItem
	for _, g := range []struct{ dir, truth string }{{"identities", "1"}, {"multi_person", ">=2"}} {
		filepath.WalkDir(filepath.Join(root, g.dir), func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				rel, _ := filepath.Rel(root, p)
				items = append(items, evalItem{rel, g.truth, asJPEG(t, p)})
			}
			return nil
		})
	}
	for _, c := range peopleFreeCrops {
		items = append(items, evalItem{fmt.Sprintf("crop %s %v", c.file, c.r), "0", cropJPEG(t, filepath.Join(root, c.file), c.r)})
	}
	for name, img := range noFaceImages() {
		items = append(items, evalItem{"synthetic " + name, "0", encodeJPEG(t, img)})
	}

	classes := []string{"0", "1", ">=2"}
	confusion := map[[2]string]int{} // [truth, predicted]
	var wrong []string
	var worstNegative float32
	for _, it := range items {
		obs, err := s.AnalyzeJPEG(context.Background(), it.data, CameraMain)
		if err != nil {
			t.Fatalf("%s: %v", it.name, err)
		}
		pred := countClass(len(obs.Faces))
		confusion[[2]string{it.truth, pred}]++
		if pred != it.truth {
			wrong = append(wrong, fmt.Sprintf("%s: truth %s, got %d faces (top %.3f)", it.name, it.truth, len(obs.Faces), obs.TopFaceScore))
		}
		if it.truth == "0" {
			worstNegative = max(worstNegative, obs.TopFaceScore)
		}
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "face count classes on %d images (rows truth, columns predicted):\n", len(items))
	fmt.Fprintf(&sb, "%8s %6s %6s %6s %10s %8s\n", "truth", "0", "1", ">=2", "precision", "recall")
	for _, tr := range classes {
		var row, predTotal int
		for _, p := range classes {
			row += confusion[[2]string{tr, p}]
			predTotal += confusion[[2]string{p, tr}]
		}
		tp := confusion[[2]string{tr, tr}]
		fmt.Fprintf(&sb, "%8s %6d %6d %6d %9.1f%% %7.1f%%\n", tr,
			confusion[[2]string{tr, "0"}], confusion[[2]string{tr, "1"}], confusion[[2]string{tr, ">=2"}],
			pct(tp, predTotal), pct(tp, row))
	}
	fmt.Fprintf(&sb, "highest top score on people-free images: %.3f\n", worstNegative)
	slices.Sort(wrong)
	for _, w := range wrong {
		fmt.Fprintf(&sb, "  miss: %s\n", w)
	}
	t.Log(sb.String())

	// Tuned result (2026-11): every image right. Allow one slip per class for a retuned model
	// before failing, so the test guards regressions rather than freezing one number.
	for _, tr := range classes {
		var row int
		for _, p := range classes {
			row += confusion[[2]string{tr, p}]
		}
		if miss := row - confusion[[2]string{tr, tr}]; miss > 1 {
			t.Errorf("class %s: %d of %d wrong, want at most 1", tr, miss, row)
		}
	}
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
		counts := map[string]int{}
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
			counts[countClass(len(obs.Faces))]++
			total++
			return nil
		})
		t.Logf("%s: exactly one face in %d of %d (%.1f%%); none %d, two or more %d",
			dir, counts["1"], total, pct(counts["1"], total), counts["0"], counts[">=2"])
		if pct(counts["1"], total) < 90 {
			t.Errorf("%s: exactly one face in %.1f%%, want >= 90%%", dir, pct(counts["1"], total))
		}
	}
}

func pct(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return 100 * float64(a) / float64(b)
}
