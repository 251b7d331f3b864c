package eval

import (
	"context"
	"fmt"
	"math"
	"path/filepath"

	"proctor/analyzers"
)

// evalAttributes measures the "attire" analyzer (mask, occlusion). Mask: mask/dev/with_mask and
// without_mask, never used for training or for choosing the threshold
// (training/vision/train_attire.py), at image level as the MASK rule would see a frame: the main
// face decides, and a photo whose face is not found (tight crops the detector misses even on a
// padded canvas) counts as "no mask". Occlusion: the three real photos of occlusion/ are the
// positives and the mask/dev/without_mask faces the negatives (that set has some label noise:
// a few faces in it are covered). Earphones are the ears analyzer's (training/vision/train_ears.py).
func evalAttributes(ctx context.Context, env *Env) ([]Row, error) {
	if !hasAnalyzer(env.Set, "attire") {
		env.Note("attributes: the analyzer set has no \"attire\" analyzer: skipped")
		return nil, nil
	}
	// mainAttrs runs the set on a photo (on a padded canvas if no face has a crop) and returns
	// the main face's attributes, nil when no face was classified.
	mainAttrs := func(name string, data []byte) (*analyzers.Face, error) {
		for _, pad := range []float64{0, 0.5} {
			obs, err := env.AnalyzePadded(ctx, data, pad, analyzers.FrameMeta{}, nil)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			n := 0
			for n < len(obs.Faces) && obs.Faces[n].Mask != nil {
				n++
			}
			if n > 0 {
				f := obs.Faces[analyzers.MainFace(obs.Faces, n)]
				return &f, nil
			}
		}
		return nil, nil
	}
	var rows []Row
	dev := filepath.Join(env.Data, "mask", "dev")
	var e2e, found [3]int
	noFace := map[bool]int{}
	n := 0
	var occFP, cleanFaces int
	for _, sub := range []struct {
		dir  string
		mask bool
	}{{"with_mask", true}, {"without_mask", false}} {
		for _, p := range listImages(filepath.Join(dev, sub.dir)) {
			data, err := ReadJPEG(p)
			if err != nil {
				return nil, err
			}
			n++
			f, err := mainAttrs(rel(env.Data, p), data)
			if err != nil {
				return nil, err
			}
			pred := f != nil && f.Mask.Present
			tally(&e2e, pred, sub.mask)
			if f == nil {
				noFace[sub.mask]++
				continue
			}
			tally(&found, pred, sub.mask)
			if pred != sub.mask {
				env.Logf("  mask miss: %s: truth %v, score %.2f", rel(env.Data, p), sub.mask, f.Mask.Score)
			}
			if !sub.mask && f.Occluded != nil {
				cleanFaces++
				if f.Occluded.Present {
					occFP++
				}
			}
		}
	}
	if n == 0 {
		env.Note("attributes: no mask/dev/ under %s: mask rows skipped", env.Data)
	} else {
		p, r, f1 := PRF(e2e[0], e2e[1], e2e[2])
		rows = append(rows, Row{Check: "attributes: mask (per photo)", Split: "test", N: n, Precision: p, Recall: r, F1: f1,
			Note: fmt.Sprintf("mask/dev; no face found: %d with_mask, %d without_mask (counted as no mask)", noFace[true], noFace[false])})
		p, r, f1 = PRF(found[0], found[1], found[2])
		rows = append(rows, Row{Check: "attributes: mask (faces found)", Split: "test", N: n - noFace[true] - noFace[false],
			Precision: p, Recall: r, F1: f1, Note: "mask/dev photos whose main face was detected and aligned"})
	}
	// Occlusion.
	var occ [3]int
	occN := 0
	for _, p := range listImages(filepath.Join(env.Data, "occlusion")) {
		data, err := ReadJPEG(p)
		if err != nil {
			return nil, err
		}
		occN++
		f, err := mainAttrs(rel(env.Data, p), data)
		if err != nil {
			return nil, err
		}
		pred := f != nil && f.Occluded != nil && f.Occluded.Present
		tally(&occ, pred, true)
		score := float32(-1)
		if f != nil && f.Occluded != nil {
			score = f.Occluded.Score
		}
		env.Logf("  occlusion: %s: occluded=%v score %.2f", rel(env.Data, p), pred, score)
	}
	if occN > 0 || cleanFaces > 0 {
		occ[1] = occFP
		p, r, f1 := PRF(occ[0], occ[1], occ[2])
		rows = append(rows, Row{Check: "attributes: occluded", Split: "test", N: occN + cleanFaces, Precision: p, Recall: r, F1: f1,
			Note: fmt.Sprintf("%d real occluded photos (occlusion/); %d of %d unmasked mask/dev faces flagged", occ[0]+occ[2], occFP, cleanFaces)})
	}
	rows = append(rows, Row{Check: "attributes: earphones", Split: "-", N: 0, Precision: math.NaN(), Recall: math.NaN(), F1: math.NaN(),
		Note: "not the attire model's: the ears analyzer reports earphones (4 real ears in the data; training/vision/ears-report.json, docs/vision.md)"})
	return rows, nil
}

// tally adds one prediction to tp, fp, fn counts.
func tally(c *[3]int, pred, truth bool) {
	switch {
	case pred && truth:
		c[0]++
	case pred && !truth:
		c[1]++
	case !pred && truth:
		c[2]++
	}
}
