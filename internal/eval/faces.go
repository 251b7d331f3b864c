package eval

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	_ "image/png" // identities/ holds a PNG portrait
	"math/rand/v2"
	"os"
	"path/filepath"

	"proctor/analyzers"
)

// peopleFreeCrops are regions of the dev photos that contain no face, chosen by eye: rooms,
// ceilings, torsos, legs, hands, suits, clothing prints, a flag. x, y, w, h in original pixels.
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

// portraitsAndGroups reads the single portraits of identities/ (one person) and the group photos
// of multi_person/ (several), the labelled images the face-count and person checks share.
func portraitsAndGroups(env *Env) ([]faceItem, error) {
	var items []faceItem
	names, imgs := listPeople(filepath.Join(env.Data, "identities"))
	for _, n := range names {
		for _, p := range imgs[n] {
			data, err := ReadJPEG(p)
			if err != nil {
				return nil, err
			}
			items = append(items, faceItem{rel(env.Data, p), classOne, data})
		}
	}
	for _, p := range listImages(filepath.Join(env.Data, "multi_person")) {
		data, err := ReadJPEG(p)
		if err != nil {
			return nil, err
		}
		items = append(items, faceItem{rel(env.Data, p), classSeveral, data})
	}
	return items, nil
}

// faceItem is one image of the face-count check and its true class.
type faceItem struct {
	name, truth string
	jpeg        []byte
}

// Face-count classes, as the rules use them.
const (
	classNone     = "no face"
	classOne      = "one face"
	classSeveral  = "several faces"
	splitInSample = "in-sample"
)

func countClass(n int) string {
	switch n {
	case 0:
		return classNone
	case 1:
		return classOne
	}
	return classSeveral
}

// evalFaces counts faces on single portraits (identities/), group photos (multi_person/) and
// face-free images (no_face/, the people-free crops, synthetic frames) and reports per class.
// The "no face" row is the precision of FACE_ABSENT's evidence: how often "nobody there" is right.
func evalFaces(ctx context.Context, env *Env) ([]Row, error) {
	items, err := portraitsAndGroups(env)
	if err != nil {
		return nil, err
	}
	for _, p := range listImages(filepath.Join(env.Data, "no_face")) {
		data, err := ReadJPEG(p)
		if err != nil {
			return nil, err
		}
		items = append(items, faceItem{rel(env.Data, p), classNone, data})
	}
	crops := 0
	for _, c := range peopleFreeCrops {
		p := filepath.Join(env.Data, c.file)
		if _, err := os.Stat(p); err != nil {
			continue // another data set: its own no_face/ folder has to do
		}
		data, err := cropJPEG(p, c.r)
		if err != nil {
			return nil, err
		}
		items = append(items, faceItem{fmt.Sprintf("crop %s %v", c.file, c.r), classNone, data})
		crops++
	}
	synth := syntheticNoFace()
	for name, img := range synth {
		data, err := encodeJPEG(img)
		if err != nil {
			return nil, err
		}
		items = append(items, faceItem{"synthetic " + name, classNone, data})
	}
	if len(items) == 0 {
		env.Note("faces: no identities/, multi_person/ or no_face/ under %s: skipped", env.Data)
		return nil, nil
	}
	confusion := map[[2]string]int{}
	var worst float32
	for _, it := range items {
		obs, err := env.Analyze(ctx, it.jpeg, analyzers.FrameMeta{}, nil)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", it.name, err)
		}
		pred := countClass(len(obs.Faces))
		confusion[[2]string{it.truth, pred}]++
		if pred != it.truth {
			env.Logf("  faces miss: %s: truth %s, got %d faces", it.name, it.truth, len(obs.Faces))
		}
		if it.truth == classNone {
			worst = max(worst, obs.TopFaceScore)
		}
	}
	classes := []string{classNone, classOne, classSeveral}
	var rows []Row
	for _, c := range classes {
		var tp, fp, fn, n int
		for _, p := range classes {
			n += confusion[[2]string{c, p}]
			if p != c {
				fn += confusion[[2]string{c, p}]
				fp += confusion[[2]string{p, c}]
			}
		}
		tp = confusion[[2]string{c, c}]
		p, r, f1 := PRF(tp, fp, fn)
		row := Row{Check: "faces: " + c, Split: splitInSample, N: n, Precision: p, Recall: r, F1: f1}
		if c == classNone {
			row.Note = fmt.Sprintf("%d people-free crops + %d synthetic; top face score on them %.2f", crops, len(synth), worst)
		}
		rows = append(rows, row)
	}
	env.Note("faces rows are in-sample: the detector's thresholds (models/manifests/ultraface-rfb-320.json) were tuned on these photos")
	return rows, nil
}

func rel(root, p string) string {
	if r, err := filepath.Rel(root, p); err == nil {
		return r
	}
	return p
}

// ReadJPEG returns an image file as JPEG bytes, re-encoding PNG (quality 95).
func ReadJPEG(p string) ([]byte, error) {
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	if bytes.HasPrefix(data, []byte{0xFF, 0xD8}) {
		return data, nil
	}
	img, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	return encodeJPEG(img)
}

func encodeJPEG(img image.Image) ([]byte, error) {
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 92}); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func cropJPEG(p string, r [4]int) ([]byte, error) {
	data, err := ReadJPEG(p)
	if err != nil {
		return nil, err
	}
	img, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	sub, ok := img.(interface {
		SubImage(image.Rectangle) image.Image
	})
	if !ok {
		return nil, fmt.Errorf("%s: cannot crop %T", p, img)
	}
	return encodeJPEG(sub.SubImage(image.Rect(r[0], r[1], r[0]+r[2], r[1]+r[3])))
}

// syntheticNoFace are plain frames a camera may send with nobody there (a covered lens, a wall).
func syntheticNoFace() map[string]image.Image {
	const w, h = 640, 480
	mk := func(f func(x, y int) color.RGBA) image.Image {
		img := image.NewRGBA(image.Rect(0, 0, w, h))
		for y := range h {
			for x := range w {
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
