package analyzers

import (
	"context"
	"fmt"

	"gocv.io/x/gocv"

	"proctor/models"
)

func init() {
	Register("ears", func(cfg *Config) (Analyzer, error) { return NewEars(cfg.Ears) })
}

// EarsConfig configures the "ears" analyzer, which must run after "faces" and "landmarks".
// Thresholds live in the model's manifest (models/manifests/ears-cnn.json, vision.scores).
type EarsConfig struct {
	// Model is the manifest name of the ear classifier. Default "ears-cnn".
	Model string `json:"model,omitempty"`
	// MaxFaces is how many faces get ears: the main face first, then in detector order.
	// Default 1: the rules read the candidate's ears only; each face costs two crops, ~0.9 ms.
	MaxFaces int `json:"max_faces,omitempty"`
	// Threads is the intra-op thread count of the model session. Default 1.
	Threads int `json:"threads,omitempty"`
}

// DefaultEarsModel is the classifier used when EarsConfig.Model is empty.
const DefaultEarsModel = "ears-cnn"

// Ear states (Ears.Left, Ears.Right).
const (
	EarVisible   = "visible"
	EarCovered   = "covered"     // hair, hand, hood, cap, headphones
	EarNotInView = "not_in_view" // turned away, or beyond the frame edge
)

// earOutside is the share of an ear region beyond the frame edge from which the ear is not in
// view whatever the classifier says: the crop is then mostly black padding.
const earOutside = 0.5

// Ears decides per face whether each ear is visible, covered or not in view, and whether
// earphones are worn: two crops around the ears, located from the 68 landmarks on the frame
// (wider than the aligned face crop, which cuts the ears off), each classified by ears-cnn
// (NanoDet's backbone fine-tuned on ear labels, models/cards/ears-cnn.md).
// It fills Face.Ears and Face.Earphones. Not safe for concurrent use.
type Ears struct {
	clf      *models.AttributeClassifier
	crop     *models.EarCropper
	version  string
	maxFaces int
	// col: output columns of covered, not_in_view, earphones (-1 when the model lacks one).
	col    [3]int
	thr    [3]float32
	scores []float32
	mats   [2]gocv.Mat
}

// NewEars loads the model.
func NewEars(cfg EarsConfig) (*Ears, error) {
	name := cfg.Model
	if name == "" {
		name = DefaultEarsModel
	}
	m, err := models.Load(name)
	if err != nil {
		return nil, fmt.Errorf("ears analyzer: %w", err)
	}
	clf, err := models.NewAttributeClassifier(m, models.SessionOptions{IntraOpThreads: cfg.Threads})
	if err != nil {
		return nil, fmt.Errorf("ears analyzer: %w", err)
	}
	e := &Ears{clf: clf, crop: models.NewEarCropper(), version: m.ID(), maxFaces: max(cfg.MaxFaces, 1),
		col: [3]int{-1, -1, -1}, scores: make([]float32, len(clf.Labels())),
		mats: [2]gocv.Mat{gocv.NewMat(), gocv.NewMat()}}
	for k, label := range [3]string{EarCovered, EarNotInView, LabelEarphones} {
		for i, l := range clf.Labels() {
			if l == label {
				e.col[k], e.thr[k] = i, m.Vision.Scores[label]
				e.version += fmt.Sprintf(" %s=%g", label, e.thr[k])
			}
		}
	}
	if e.col[0] < 0 {
		e.Close()
		return nil, fmt.Errorf("ears analyzer: model %s has no %q output", m.ID(), EarCovered)
	}
	return e, nil
}

// Name implements Analyzer.
func (e *Ears) Name() string { return "ears" }

// Version implements Analyzer.
func (e *Ears) Version() string { return e.version }

// MainCameraOnly implements MainCameraOnly.
func (e *Ears) MainCameraOnly() {}

// Requires implements Requirer.
func (e *Ears) Requires() []string { return []string{"faces", "landmarks"} }

// Analyze implements Analyzer.
func (e *Ears) Analyze(_ context.Context, f *Frame, obs *Observation) error {
	n := min(len(f.FaceLandmarks), len(obs.Faces))
	if n == 0 {
		return nil
	}
	main := MainFace(obs.Faces, n)
	k := min(e.maxFaces, n)
	// One allocation each for the frame's results: the observation outlives it.
	states := make([]EarStates, 0, k)
	phones := make([]Attribute, 0, k)
	for j := range k {
		i := j
		switch {
		case j == 0:
			i = main
		case j <= main:
			i = j - 1
		}
		regions, err := models.EarRegions(&f.FaceLandmarks[i])
		if err != nil {
			continue
		}
		var out EarStates
		phone, phoneMeasured := float32(0), false
		for side, r := range regions {
			if r.Outside(f.Image.Cols(), f.Image.Rows()) > earOutside {
				out.set(side, EarNotInView, 0)
				continue
			}
			if err := e.crop.Crop(f.Image, r, &e.mats[side]); err != nil {
				return fmt.Errorf("ears: face %d: %w", i, err)
			}
			if err := e.clf.Classify(e.mats[side], e.scores); err != nil {
				return fmt.Errorf("ears: face %d: %w", i, err)
			}
			cov := e.scores[e.col[0]]
			state := EarVisible
			switch {
			case e.col[1] >= 0 && e.scores[e.col[1]] >= e.thr[1] && e.scores[e.col[1]] >= cov:
				state = EarNotInView
			case cov >= e.thr[0]:
				state = EarCovered
			}
			out.set(side, state, cov)
			if e.col[2] >= 0 && state != EarNotInView {
				phone, phoneMeasured = max(phone, e.scores[e.col[2]]), true
			}
		}
		states = append(states, out)
		obs.Faces[i].Ears = &states[len(states)-1]
		if phoneMeasured {
			phones = append(phones, Attribute{Score: phone, Present: phone >= e.thr[2]})
			obs.Faces[i].Earphones = &phones[len(phones)-1]
		}
	}
	return nil
}

// EarStates is what the "ears" analyzer says about one face's ears, as seen in the image: Left is
// the ear on the image's left (the candidate's right on an unmirrored camera).
type EarStates struct {
	Left  string `json:"left"`  // visible, covered or not_in_view
	Right string `json:"right"` // visible, covered or not_in_view
	// Covered is each ear's covered score (left, right) for per-exam thresholds; 0 for an ear
	// beyond the frame edge.
	Covered [2]float32 `json:"covered"`
}

func (s *EarStates) set(side int, state string, covered float32) {
	if side == models.EarLeft {
		s.Left = state
	} else {
		s.Right = state
	}
	s.Covered[side] = covered
}

// Close implements Analyzer.
func (e *Ears) Close() error {
	err := e.clf.Close()
	e.crop.Close()
	e.mats[0].Close()
	e.mats[1].Close()
	return err
}
