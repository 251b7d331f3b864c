package eval

import (
	"context"
	_ "embed" // presence-labels.tsv
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"proctor/analyzers"
)

// Face presence per frame, as FACE_ABSENT (no face) and MULTIPLE_FACES (two or more) see it,
// for the face detector as it was (one pass, NMS only), with each fix added in turn, and as
// shipped (the containment and second-face-size filters, the padded confirmation and second
// pass, the BlazeFace verifier of extra faces and agreement pass on empty frames:
// analyzers.FacesConfig).
//
// Splits, by folder and by person:
//
//   - tuning: the dev half of identities-rmfd (SplitOf), the face-free items the detector's
//     threshold was set on (peopleFreeCrops, synthetic frames) and the 57 mask/train photos
//     labelled for the verifier (presence-labels.tsv). All of mask/train was looked
//     at while choosing the filters; the rest has no frame-by-frame labels and is not scored.
//   - report: never tuned on. One face: identities/, identities-crops/, the test half of
//     identities-rmfd, mask/dev (both classes) except the group photos listed in
//     maskDevSeveral; several faces: multi_person/ (in-sample for the old 0.7 threshold, see
//     faces.go) and maskDevSeveral; no face: reportNoFaceCrops.
//
// Every photo is the frame as is (no padding): a tight crop stands for a candidate close to
// the camera.

// maskDevSeveral are the mask/dev photos showing two or more people's faces, labelled by eye
// over all 399 photos (a face cut by the frame edge counts; faces on posters, prints and a mask's
// pattern do not). maskDevAmbiguous are left out: the second person's face is not visible
// enough to say.
var (
	maskDevSeveral = map[string]bool{
		"with_mask/with_mask169.jpg": true, "with_mask/with_mask228.jpg": true, "with_mask/with_mask276.jpg": true,
		"with_mask/with_mask281.jpg": true, "with_mask/with_mask289.jpg": true, "with_mask/with_mask331.jpg": true,
		"with_mask/with_mask341.jpg": true, "with_mask/with_mask373.jpg": true, "with_mask/with_mask442.jpg": true,
		"with_mask/with_mask607.jpg": true, "with_mask/with_mask630.jpg": true, "with_mask/with_mask632.jpg": true,
		"with_mask/with_mask639.jpg": true, "without_mask/26.jpg": true, "without_mask/262.jpg": true,
		"without_mask/385.jpg": true, "without_mask/458.jpg": true, "without_mask/62.jpg": true,
	}
	maskDevAmbiguous = map[string]bool{"with_mask/with_mask595.jpg": true}
)

// mask/train photos labelled by eye for the verifier (presence-labels.tsv: how they were
// chosen and judged). maskTrainSeveral show two or more people's faces, maskTrainOne one person
// (the extra boxes being half a face, a jacket, hands, an arm, fur, a dog in a mask...),
// maskTrainAmbiguous are left out. Keys are relative to mask/train. They are tuning data (the
// verifier's threshold was chosen on them) and cover only the frames the detector before the
// verifier saw as several: they measure what the verifier removes, not what the detector misses.
//
//go:embed presence-labels.tsv
var presenceLabelsTSV string

var maskTrainSeveral, maskTrainOne, maskTrainAmbiguous = parsePresenceLabels(presenceLabelsTSV)

func parsePresenceLabels(tsv string) (several, one, ambiguous map[string]bool) {
	several, one, ambiguous = map[string]bool{}, map[string]bool{}, map[string]bool{}
	for _, line := range strings.Split(tsv, "\n") {
		f := strings.Split(line, "\t")
		if len(f) < 2 || strings.HasPrefix(line, "#") || f[0] == "photo" {
			continue
		}
		key := strings.TrimPrefix(f[0], "faces/mask/train/")
		switch f[1] {
		case "several":
			several[key] = true
		case "one":
			one[key] = true
		case "ambiguous":
			ambiguous[key] = true
		}
	}
	return several, one, ambiguous
}

// reportNoFaceCrops are face-free frames for the report split: every photo of identities/ and
// multi_person/ was cut into five fixed regions (the four corner thirds and the bottom-centre
// third, x, y, w, h in original pixels) and each region was kept only if, by eye, it shows no
// part of a face (eye, nose, mouth, cheek, chin; hair, hands and bodies are fine): 178 of 265.
// The regions were chosen by position, not by what the detector says, so the detector's
// answer on them is not biased.
var reportNoFaceCrops = []struct {
	file string
	r    [4]int
}{
	{"identities/alex_lacamoire/alex-lacamoire.png", [4]int{0, 0, 141, 131}},
	{"identities/alex_lacamoire/alex-lacamoire.png", [4]int{283, 0, 141, 131}},
	{"identities/alex_lacamoire/alex_lacamoire1.jpg", [4]int{0, 0, 516, 341}},
	{"identities/alex_lacamoire/alex_lacamoire1.jpg", [4]int{1032, 0, 516, 341}},
	{"identities/alex_lacamoire/alex_lacamoire1.jpg", [4]int{0, 683, 516, 341}},
	{"identities/alex_lacamoire/alex_lacamoire1.jpg", [4]int{1032, 683, 516, 341}},
	{"identities/alex_lacamoire/alex_lacamoire1.jpg", [4]int{516, 683, 516, 341}},
	{"identities/biden/biden.jpg", [4]int{0, 1470, 323, 734}},
	{"identities/biden/biden.jpg", [4]int{647, 1470, 323, 734}},
	{"identities/biden/biden.jpg", [4]int{323, 1470, 323, 734}},
	{"identities/biden/biden2.jpg", [4]int{0, 0, 400, 400}},
	{"identities/biden/biden2.jpg", [4]int{0, 800, 400, 400}},
	{"identities/biden/biden2.jpg", [4]int{800, 800, 400, 400}},
	{"identities/biden/biden2.jpg", [4]int{400, 800, 400, 400}},
	{"identities/kit_harington/john1.jpeg", [4]int{0, 0, 400, 199}},
	{"identities/kit_harington/john1.jpeg", [4]int{800, 0, 400, 199}},
	{"identities/kit_harington/john1.jpeg", [4]int{0, 400, 400, 199}},
	{"identities/kit_harington/john1.jpeg", [4]int{800, 400, 400, 199}},
	{"identities/kit_harington/john1.jpeg", [4]int{400, 400, 400, 199}},
	{"identities/kit_harington/john2.jpeg", [4]int{0, 0, 210, 124}},
	{"identities/kit_harington/john2.jpeg", [4]int{420, 0, 210, 124}},
	{"identities/kit_harington/john2.jpeg", [4]int{0, 250, 210, 124}},
	{"identities/kit_harington/john2.jpeg", [4]int{420, 250, 210, 124}},
	{"identities/kit_harington/john2.jpeg", [4]int{210, 250, 210, 124}},
	{"identities/kit_harington/johnsnow_test1.jpg", [4]int{512, 0, 256, 384}},
	{"identities/kit_harington/johnsnow_test1.jpg", [4]int{0, 770, 256, 384}},
	{"identities/kit_harington/johnsnow_test1.jpg", [4]int{512, 770, 256, 384}},
	{"identities/kit_harington/johnsnow_test1.jpg", [4]int{256, 770, 256, 384}},
	{"identities/obama/obama.jpg", [4]int{0, 0, 303, 379}},
	{"identities/obama/obama.jpg", [4]int{607, 0, 303, 379}},
	{"identities/obama/obama.jpg", [4]int{0, 758, 303, 379}},
	{"identities/obama/obama.jpg", [4]int{607, 758, 303, 379}},
	{"identities/obama/obama.jpg", [4]int{303, 758, 303, 379}},
	{"identities/obama/obama1.jpg", [4]int{0, 0, 493, 277}},
	{"identities/obama/obama1.jpg", [4]int{987, 0, 493, 277}},
	{"identities/obama/obama1.jpg", [4]int{0, 555, 493, 277}},
	{"identities/obama/obama1.jpg", [4]int{987, 555, 493, 277}},
	{"identities/obama/obama2.jpg", [4]int{0, 0, 208, 400}},
	{"identities/obama/obama2.jpg", [4]int{0, 800, 208, 400}},
	{"identities/obama/obama2.jpg", [4]int{418, 800, 208, 400}},
	{"identities/obama/obama2.jpg", [4]int{208, 800, 208, 400}},
	{"identities/obama/obama3.jpg", [4]int{0, 0, 478, 777}},
	{"identities/obama/obama3.jpg", [4]int{956, 0, 478, 777}},
	{"identities/obama/obama3.jpg", [4]int{0, 1556, 478, 777}},
	{"identities/obama/obama3.jpg", [4]int{956, 1556, 478, 777}},
	{"identities/obama/obama3.jpg", [4]int{478, 1556, 478, 777}},
	{"identities/rose_leslie/img1.jpg", [4]int{0, 0, 426, 266}},
	{"identities/rose_leslie/img1.jpg", [4]int{0, 533, 426, 266}},
	{"identities/rose_leslie/img1.jpg", [4]int{854, 533, 426, 266}},
	{"identities/rose_leslie/img1.jpg", [4]int{426, 533, 426, 266}},
	{"identities/rose_leslie/img2.jpg", [4]int{0, 0, 192, 293}},
	{"identities/rose_leslie/img2.jpg", [4]int{385, 0, 192, 293}},
	{"identities/rose_leslie/img2.jpg", [4]int{0, 587, 192, 293}},
	{"identities/rose_leslie/img2.jpg", [4]int{385, 587, 192, 293}},
	{"identities/rose_leslie/img2.jpg", [4]int{192, 587, 192, 293}},
	{"identities/stock_a/stock-emotions-a-1.jpg", [4]int{0, 854, 318, 426}},
	{"identities/stock_a/stock-emotions-a-1.jpg", [4]int{636, 854, 318, 426}},
	{"identities/stock_a/stock-emotions-a-1.jpg", [4]int{318, 854, 318, 426}},
	{"identities/stock_a/stock-emotions-a-2.jpg", [4]int{0, 854, 341, 426}},
	{"identities/stock_a/stock-emotions-a-2.jpg", [4]int{683, 854, 341, 426}},
	{"identities/stock_a/stock-emotions-a-2.jpg", [4]int{341, 854, 341, 426}},
	{"identities/stock_a/stock-emotions-a-3.jpg", [4]int{0, 854, 341, 426}},
	{"identities/stock_a/stock-emotions-a-3.jpg", [4]int{683, 854, 341, 426}},
	{"identities/stock_a/stock-emotions-a-3.jpg", [4]int{341, 854, 341, 426}},
	{"identities/stock_a/stock-emotions-a-4.jpg", [4]int{0, 0, 341, 426}},
	{"identities/stock_a/stock-emotions-a-4.jpg", [4]int{683, 0, 341, 426}},
	{"identities/stock_a/stock-emotions-a-4.jpg", [4]int{0, 854, 341, 426}},
	{"identities/stock_a/stock-emotions-a-4.jpg", [4]int{683, 854, 341, 426}},
	{"identities/stock_a/stock-emotions-a-4.jpg", [4]int{341, 854, 341, 426}},
	{"identities/stock_a/stock-emotions-a-5.jpg", [4]int{0, 0, 341, 426}},
	{"identities/stock_a/stock-emotions-a-5.jpg", [4]int{683, 0, 341, 426}},
	{"identities/stock_a/stock-emotions-a-5.jpg", [4]int{0, 854, 341, 426}},
	{"identities/stock_a/stock-emotions-a-5.jpg", [4]int{683, 854, 341, 426}},
	{"identities/stock_a/stock-emotions-a-5.jpg", [4]int{341, 854, 341, 426}},
	{"identities/stock_a/stock-emotions-a-6.jpg", [4]int{683, 0, 341, 426}},
	{"identities/stock_a/stock-emotions-a-6.jpg", [4]int{0, 854, 341, 426}},
	{"identities/stock_a/stock-emotions-a-6.jpg", [4]int{683, 854, 341, 426}},
	{"identities/stock_a/stock-emotions-a-6.jpg", [4]int{341, 854, 341, 426}},
	{"identities/stock_a/stock-emotions-a-7.jpg", [4]int{0, 0, 341, 426}},
	{"identities/stock_a/stock-emotions-a-7.jpg", [4]int{683, 0, 341, 426}},
	{"identities/stock_a/stock-emotions-a-7.jpg", [4]int{0, 854, 341, 426}},
	{"identities/stock_a/stock-emotions-a-7.jpg", [4]int{683, 854, 341, 426}},
	{"identities/stock_a/stock-emotions-a-7.jpg", [4]int{341, 854, 341, 426}},
	{"identities/stock_a/stock-emotions-a-8.jpg", [4]int{0, 0, 341, 426}},
	{"identities/stock_a/stock-emotions-a-8.jpg", [4]int{683, 0, 341, 426}},
	{"identities/stock_a/stock-emotions-a-8.jpg", [4]int{0, 854, 341, 426}},
	{"identities/stock_a/stock-emotions-a-8.jpg", [4]int{683, 854, 341, 426}},
	{"identities/stock_a/stock-emotions-a-8.jpg", [4]int{341, 854, 341, 426}},
	{"identities/stock_b/stock-emotions-b-1.jpg", [4]int{683, 0, 341, 426}},
	{"identities/stock_b/stock-emotions-b-1.jpg", [4]int{683, 854, 341, 426}},
	{"identities/stock_b/stock-emotions-b-1.jpg", [4]int{341, 854, 341, 426}},
	{"identities/stock_b/stock-emotions-b-2.jpg", [4]int{683, 0, 341, 426}},
	{"identities/stock_b/stock-emotions-b-2.jpg", [4]int{0, 854, 341, 426}},
	{"identities/stock_b/stock-emotions-b-2.jpg", [4]int{683, 854, 341, 426}},
	{"identities/stock_b/stock-emotions-b-3.jpg", [4]int{0, 854, 341, 426}},
	{"identities/stock_b/stock-emotions-b-4.jpg", [4]int{683, 0, 341, 426}},
	{"identities/stock_b/stock-emotions-b-4.jpg", [4]int{0, 854, 341, 426}},
	{"identities/stock_b/stock-emotions-b-4.jpg", [4]int{683, 854, 341, 426}},
	{"identities/stock_b/stock-emotions-b-4.jpg", [4]int{341, 854, 341, 426}},
	{"identities/stock_b/stock-emotions-b-5.jpg", [4]int{0, 0, 341, 426}},
	{"identities/stock_b/stock-emotions-b-5.jpg", [4]int{683, 0, 341, 426}},
	{"identities/stock_b/stock-emotions-b-5.jpg", [4]int{0, 854, 341, 426}},
	{"identities/stock_b/stock-emotions-b-5.jpg", [4]int{683, 854, 341, 426}},
	{"identities/stock_b/stock-emotions-b-5.jpg", [4]int{341, 854, 341, 426}},
	{"identities/stock_b/stock-emotions-b-7.jpg", [4]int{0, 0, 341, 426}},
	{"identities/stock_b/stock-emotions-b-7.jpg", [4]int{683, 0, 341, 426}},
	{"identities/stock_b/stock-emotions-b-7.jpg", [4]int{0, 854, 341, 426}},
	{"identities/stock_b/stock-emotions-b-7.jpg", [4]int{683, 854, 341, 426}},
	{"identities/stock_b/stock-emotions-b-7.jpg", [4]int{341, 854, 341, 426}},
	{"identities/stock_b/stock-emotions-b-8.jpg", [4]int{0, 0, 341, 426}},
	{"identities/stock_b/stock-emotions-b-8.jpg", [4]int{683, 0, 341, 426}},
	{"identities/stock_b/stock-emotions-b-8.jpg", [4]int{0, 854, 341, 426}},
	{"identities/stock_b/stock-emotions-b-8.jpg", [4]int{683, 854, 341, 426}},
	{"identities/stock_b/stock-emotions-b-8.jpg", [4]int{341, 854, 341, 426}},
	{"identities/stock_teen/stock-teen-1.jpg", [4]int{0, 0, 283, 426}},
	{"identities/stock_teen/stock-teen-1.jpg", [4]int{568, 0, 283, 426}},
	{"identities/stock_teen/stock-teen-1.jpg", [4]int{0, 854, 283, 426}},
	{"identities/stock_teen/stock-teen-1.jpg", [4]int{568, 854, 283, 426}},
	{"identities/stock_teen/stock-teen-1.jpg", [4]int{283, 854, 283, 426}},
	{"identities/stock_teen/stock-teen-2.jpg", [4]int{0, 0, 283, 426}},
	{"identities/stock_teen/stock-teen-2.jpg", [4]int{568, 0, 283, 426}},
	{"identities/stock_teen/stock-teen-2.jpg", [4]int{0, 854, 283, 426}},
	{"identities/stock_teen/stock-teen-2.jpg", [4]int{568, 854, 283, 426}},
	{"identities/stock_teen/stock-teen-3.jpg", [4]int{0, 0, 283, 426}},
	{"identities/stock_teen/stock-teen-3.jpg", [4]int{0, 854, 283, 426}},
	{"identities/stock_teen/stock-teen-3.jpg", [4]int{568, 854, 283, 426}},
	{"identities/stock_teen/stock-teen-3.jpg", [4]int{283, 854, 283, 426}},
	{"identities/stock_teen/stock-teen-4.jpg", [4]int{568, 0, 283, 426}},
	{"identities/stock_teen/stock-teen-4.jpg", [4]int{0, 854, 283, 426}},
	{"identities/stock_teen/stock-teen-4.jpg", [4]int{568, 854, 283, 426}},
	{"identities/stock_teen/stock-teen-4.jpg", [4]int{283, 854, 283, 426}},
	{"multi_person/bbt1.jpg", [4]int{0, 512, 455, 256}},
	{"multi_person/bbt1.jpg", [4]int{911, 512, 455, 256}},
	{"multi_person/bbt1.jpg", [4]int{455, 512, 455, 256}},
	{"multi_person/bbt3.jpg", [4]int{396, 256, 198, 127}},
	{"multi_person/bbt3.jpg", [4]int{198, 256, 198, 127}},
	{"multi_person/bbt5.jpg", [4]int{0, 310, 313, 154}},
	{"multi_person/bbt5.jpg", [4]int{627, 310, 313, 154}},
	{"multi_person/bbt5.jpg", [4]int{313, 310, 313, 154}},
	{"multi_person/group-1.jpg", [4]int{0, 960, 640, 480}},
	{"multi_person/group-2.jpg", [4]int{0, 762, 341, 381}},
	{"multi_person/group-2.jpg", [4]int{683, 762, 341, 381}},
	{"multi_person/group-2.jpg", [4]int{341, 762, 341, 381}},
	{"multi_person/group-3.jpg", [4]int{640, 1025, 640, 512}},
	{"multi_person/group-4.jpg", [4]int{643, 965, 643, 482}},
	{"multi_person/group-5.jpg", [4]int{0, 1090, 640, 545}},
	{"multi_person/group-5.jpg", [4]int{1280, 1090, 640, 545}},
	{"multi_person/group-5.jpg", [4]int{640, 1090, 640, 545}},
	{"multi_person/group-6.jpg", [4]int{0, 0, 640, 450}},
	{"multi_person/group-6.jpg", [4]int{0, 900, 640, 450}},
	{"multi_person/group-7.jpg", [4]int{0, 966, 640, 482}},
	{"multi_person/group-7.jpg", [4]int{1280, 966, 640, 482}},
	{"multi_person/group-7.jpg", [4]int{640, 966, 640, 482}},
	{"multi_person/kit_with_rose.jpg", [4]int{0, 467, 167, 233}},
	{"multi_person/kit_with_rose.jpg", [4]int{334, 467, 167, 233}},
	{"multi_person/kit_with_rose.jpg", [4]int{167, 467, 167, 233}},
	{"multi_person/obama_and_biden.jpg", [4]int{0, 0, 666, 476}},
	{"multi_person/obama_and_biden.jpg", [4]int{1334, 0, 666, 476}},
	{"multi_person/obama_and_biden.jpg", [4]int{0, 952, 666, 476}},
	{"multi_person/obama_and_biden.jpg", [4]int{666, 952, 666, 476}},
	{"multi_person/two_people.jpg", [4]int{751, 441, 375, 220}},
	{"multi_person/two_people.jpg", [4]int{375, 441, 375, 220}},
	{"multi_person/vfa_sample1.jpg", [4]int{1280, 854, 640, 426}},
	{"multi_person/vfa_sample1.jpg", [4]int{640, 854, 640, 426}},
	{"multi_person/vfa_sample2.jpg", [4]int{0, 912, 640, 455}},
	{"multi_person/vfa_sample2.jpg", [4]int{1280, 912, 640, 455}},
	{"multi_person/vfa_sample2.jpg", [4]int{640, 912, 640, 455}},
	{"multi_person/vfa_sample3.jpg", [4]int{1280, 900, 640, 450}},
	{"multi_person/vfa_sample3.jpg", [4]int{640, 900, 640, 450}},
	{"multi_person/vfa_sample4.jpg", [4]int{0, 966, 640, 482}},
	{"multi_person/vfa_sample4.jpg", [4]int{1280, 966, 640, 482}},
	{"multi_person/vfa_sample4.jpg", [4]int{640, 966, 640, 482}},
	{"multi_person/vfa_sample5.jpg", [4]int{0, 0, 640, 466}},
	{"multi_person/vfa_sample5.jpg", [4]int{1280, 932, 640, 466}},
	{"multi_person/vfa_sample5.jpg", [4]int{640, 932, 640, 466}},
	{"multi_person/vfa_sample6.jpg", [4]int{0, 1025, 640, 512}},
	{"multi_person/vfa_sample6.jpg", [4]int{1280, 1025, 640, 512}},
	{"multi_person/vfa_sample6.jpg", [4]int{640, 1025, 640, 512}},
}

// presenceItem is one frame of the presence check.
type presenceItem struct {
	set, split, truth string
	path              string // relative to the data folder, with the crop's region if any
	load              func() ([]byte, error)
}

func presenceItems(data string) []presenceItem {
	var items []presenceItem
	file := func(p string) func() ([]byte, error) { return func() ([]byte, error) { return ReadJPEG(p) } }
	rel := func(p string) string {
		r, err := filepath.Rel(data, p)
		if err != nil {
			return p
		}
		return filepath.ToSlash(r)
	}
	for _, set := range []string{"identities", "identities-crops", "identities-rmfd"} {
		names, imgs := listPeople(filepath.Join(data, set))
		for _, n := range names {
			split := "report"
			label := set
			if set == "identities-rmfd" {
				if SplitOf(n) == "dev" {
					split = "tuning"
				}
				label = set + " (" + SplitOf(n) + ")"
			}
			for _, p := range imgs[n] {
				items = append(items, presenceItem{label, split, classOne, rel(p), file(p)})
			}
		}
	}
	for _, class := range []string{"with_mask", "without_mask"} {
		for _, p := range listImages(filepath.Join(data, "mask", "dev", class)) {
			key := class + "/" + filepath.Base(p)
			switch {
			case maskDevAmbiguous[key]:
			case maskDevSeveral[key]:
				items = append(items, presenceItem{"mask/dev groups", "report", classSeveral, rel(p), file(p)})
			default:
				items = append(items, presenceItem{"mask/dev", "report", classOne, rel(p), file(p)})
			}
		}
	}
	for _, p := range listImages(filepath.Join(data, "multi_person")) {
		items = append(items, presenceItem{"multi_person", "report", classSeveral, rel(p), file(p)})
	}
	for _, c := range reportNoFaceCrops {
		p := filepath.Join(data, c.file)
		if _, err := os.Stat(p); err == nil {
			items = append(items, presenceItem{"no-face crops (new)", "report", classNone, fmt.Sprintf("%s@%v", c.file, c.r),
				func() ([]byte, error) { return cropJPEG(p, c.r) }})
		}
	}
	if len(items) == 0 {
		return nil // another data set: nothing of ours to score
	}
	labelled := labelledMaskTrain()
	for _, key := range slices.Sorted(maps.Keys(labelled)) {
		several := labelled[key]
		p := filepath.Join(data, "mask", "train", filepath.FromSlash(key))
		if _, err := os.Stat(p); err == nil {
			set, truth := "mask/train one (labelled)", classOne
			if several {
				set, truth = "mask/train groups (labelled)", classSeveral
			}
			items = append(items, presenceItem{set, "tuning", truth, rel(p), file(p)})
		}
	}
	for _, c := range peopleFreeCrops {
		p := filepath.Join(data, c.file)
		if _, err := os.Stat(p); err == nil {
			items = append(items, presenceItem{"no-face crops (threshold's)", "tuning", classNone, fmt.Sprintf("%s@%v", c.file, c.r),
				func() ([]byte, error) { return cropJPEG(p, c.r) }})
		}
	}
	for i, img := range syntheticNoFace() {
		items = append(items, presenceItem{"synthetic no-face", "tuning", classNone, "synthetic " + i,
			func() ([]byte, error) { return encodeJPEG(img) }})
	}
	return items
}

// presenceVariants are the detector configurations compared: as it was, each fix alone, and
// as shipped.
var presenceVariants = []struct {
	name string
	cfg  analyzers.FacesConfig
}{
	{"before", analyzers.FacesConfig{NoSecondPass: true, NoConfirmSeveral: true, Contained: -1, MinSecondFace: -1, NoVerifier: true, NoAgreement: true, NoTilted: true}},
	{"+containment", analyzers.FacesConfig{NoSecondPass: true, NoConfirmSeveral: true, MinSecondFace: -1, NoVerifier: true, NoAgreement: true, NoTilted: true}},
	{"+second-face size", analyzers.FacesConfig{NoSecondPass: true, NoConfirmSeveral: true, NoVerifier: true, NoAgreement: true, NoTilted: true}},
	{"+confirm several", analyzers.FacesConfig{NoSecondPass: true, NoVerifier: true, NoAgreement: true, NoTilted: true}},
	{"+second pass", analyzers.FacesConfig{NoVerifier: true, NoAgreement: true, NoTilted: true}},
	{"+verifier", analyzers.FacesConfig{NoAgreement: true, NoTilted: true}},
	{"+agreement (shipped before)", analyzers.FacesConfig{NoTilted: true}},
	{"shipped: +tilted look", analyzers.FacesConfig{}},
}

// evalPresence scores FACE_ABSENT and MULTIPLE_FACES per frame for each variant and split.
func evalPresence(ctx context.Context, env *Env) ([]Row, error) {
	items := presenceItems(env.Data)
	if len(items) == 0 {
		env.Note("presence: no identities/, mask/dev/ or multi_person/ under %s: skipped", env.Data)
		return nil, nil
	}
	dets := make([]*analyzers.Faces, len(presenceVariants))
	for i, v := range presenceVariants {
		d, err := analyzers.NewFaces(v.cfg)
		if err != nil {
			return nil, err
		}
		defer d.Close()
		dets[i] = d
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	type key struct{ variant, split, set, truth, pred string }
	counts := map[key]int{}
	cpu := make([]time.Duration, len(dets))
	var emptyCPU [2]time.Duration // before / shipped, on frames the first found empty
	var verifyCPU, agreeCPU, tiltCPU time.Duration
	frameCPU := make([]time.Duration, len(dets))
	var verified, agreed, tilted int
	empties := 0
	for _, it := range items {
		data, err := it.load()
		if err != nil {
			return nil, err
		}
		f, err := analyzers.DecodeJPEG(data, env.Set.DecodeSide())
		if err != nil {
			return nil, fmt.Errorf("presence %s: %w", it.set, err)
		}
		var first int
		for i, d := range dets {
			obs := analyzers.Observation{Width: f.Width, Height: f.Height}
			c := analyzers.ThreadCPU()
			err := d.Analyze(ctx, &f, &obs)
			spent := analyzers.ThreadCPU() - c
			cpu[i] += spent
			if err != nil {
				f.Image.Close()
				return nil, err
			}
			pred := countClass(len(obs.Faces))
			if i == 0 {
				first = len(obs.Faces)
				if first == 0 {
					empties++
					emptyCPU[0] += spent
				}
			}
			if i == len(dets)-1 && first == 0 {
				emptyCPU[1] += spent
			}
			frameCPU[i] = spent
			counts[key{presenceVariants[i].name, it.split, it.set, it.truth, pred}]++
			if i == len(dets)-1 && pred != it.truth && it.split == "report" {
				env.Logf("  presence miss (shipped): %s %s: truth %s, got %d faces", it.set, it.path, it.truth, len(obs.Faces))
			}
		}
		f.Image.Close()
		// The cost of the verifier, the agreement pass and the tilted look on the frames where
		// they ran, each against the variant before it: the variants are in order, "+verifier",
		// "+agreement", "shipped: +tilted look" last.
		n := len(dets)
		ver, agr, tilt := dets[n-3], dets[n-2], dets[n-1]
		if ver.Verified > verified {
			verifyCPU += frameCPU[n-3] - frameCPU[n-4]
		}
		if agr.AgreementPasses > agreed {
			agreeCPU += frameCPU[n-2] - frameCPU[n-3]
		}
		if tilt.TiltedPasses > tilted {
			tiltCPU += frameCPU[n-1] - frameCPU[n-2]
		}
		verified, agreed, tilted = ver.Verified, agr.AgreementPasses, tilt.TiltedPasses
	}
	sum := func(variant, split, truth, pred string) int {
		n := 0
		for k, v := range counts {
			if k.variant == variant && k.split == split && (truth == "" || k.truth == truth) && (pred == "" || k.pred == pred) {
				n += v
			}
		}
		return n
	}
	var rows []Row
	for _, split := range []string{"report", "tuning"} {
		for _, v := range presenceVariants {
			for _, c := range []struct{ flag, class string }{{"FACE_ABSENT", classNone}, {"MULTIPLE_FACES", classSeveral}} {
				tp := sum(v.name, split, c.class, c.class)
				pos := sum(v.name, split, "", c.class)
				n := sum(v.name, split, c.class, "")
				p, r, f1 := PRF(tp, pos-tp, n-tp)
				rows = append(rows, Row{Check: "presence: " + c.flag + " (" + v.name + ")", Split: split,
					N: sum(v.name, split, "", ""), Precision: p, Recall: r, F1: f1,
					Note: fmt.Sprintf("%d of %d frames with %s; %d flagged", tp, n, c.class, pos)})
			}
		}
	}
	// Per set: frames counted empty or as several, before and as shipped.
	sets := map[string]string{}
	for _, it := range items {
		sets[it.set] = it.split + "/" + it.truth
	}
	for _, set := range slices.Sorted(maps.Keys(sets)) {
		var parts []string
		for _, v := range []string{presenceVariants[0].name, presenceVariants[len(presenceVariants)-1].name} {
			var none, one, several int
			for k, n := range counts {
				if k.variant == v && k.set == set {
					switch k.pred {
					case classNone:
						none += n
					case classOne:
						one += n
					default:
						several += n
					}
				}
			}
			parts = append(parts, fmt.Sprintf("%s 0/1/2+ faces %d/%d/%d", v, none, one, several))
		}
		env.Note("presence %s (%s): %s", set, sets[set], strings.Join(parts, "; "))
	}
	n := len(dets)
	last, ver, agr := dets[n-1], dets[n-3], dets[n-2]
	env.Note("presence: second pass ran on %d frames, found a face on %d; CPU on frames the first pass found empty: %.1f ms before, %.1f ms shipped (per frame); all frames %.2f vs %.2f ms",
		agr.SecondPasses, agr.SecondPassFound, ms(emptyCPU[0], empties), ms(emptyCPU[1], empties),
		ms(cpu[0], len(items)), ms(cpu[n-1], len(items)))
	env.Note("presence: verifier ran on %d frames (%.1f ms CPU per such frame), dropped %d faces; agreement pass ran on %d empty frames (%.1f ms CPU per such frame), found a face on %d",
		ver.Verified, ms(verifyCPU, ver.Verified), ver.Unverified, agr.AgreementPasses, ms(agreeCPU, agr.AgreementPasses), agr.Agreed)
	env.Note("presence: tilted look ran on %d empty frames (%.1f ms CPU per such frame), found a face on %d",
		last.TiltedPasses, ms(tiltCPU, last.TiltedPasses), last.TiltedFound)
	return rows, nil
}

func ms(d time.Duration, n int) float64 {
	if n == 0 {
		return 0
	}
	return d.Seconds() * 1000 / float64(n)
}

// labelledMaskTrain maps the labelled mask/train photos to true when they show several people.
func labelledMaskTrain() map[string]bool {
	m := make(map[string]bool, len(maskTrainSeveral)+len(maskTrainOne))
	for k := range maskTrainSeveral {
		m[k] = true
	}
	for k := range maskTrainOne {
		m[k] = false
	}
	return m
}
