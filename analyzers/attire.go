package analyzers

import (
	"context"
	"fmt"

	"proctor/models"
)

// AttireConfig configures the "attire" analyzer, which must run after "faces" and "landmarks".
// Zero values take the defaults noted; thresholds live in the model's manifest
// (models/manifests/attire-cnn.json, vision.scores).
type AttireConfig struct {
	// Model is the manifest name of the face-attribute classifier. Default "attire-cnn".
	Model string `json:"model,omitempty"`
	// MaskScore and OccludedScore override the manifest's thresholds of those labels.
	MaskScore     float32 `json:"mask_score,omitempty"`
	OccludedScore float32 `json:"occluded_score,omitempty"`
	// Threads is the intra-op thread count of the model session. Default 1.
	Threads int `json:"threads,omitempty"`
}

// DefaultAttireModel is the classifier used when AttireConfig.Model is empty.
const DefaultAttireModel = "attire-cnn"

// Attire labels the classifier may have; a label the model lacks is never reported.
const (
	LabelMask      = "mask"
	LabelOccluded  = "occluded"
	LabelEarphones = "earphones"
)

// Attire classifies each aligned face crop of the "landmarks" analyzer (Frame.FaceCrops): mask
// worn, face partly covered (hand, object, frame edge). It fills Face.Mask and Face.Occluded for
// the faces that have a crop.
//
// Earphones: no photos of earphones or headphones exist in the project's data or in any package
// registry (docs/vision.md), so no model says anything about them and Face.Earphones stays absent.
// A manifest whose labels include "earphones" fills it without code changes.
type Attire struct {
	clf     *models.AttributeClassifier
	version string
	// col[i] is the output column of label i of (mask, occluded, earphones), -1 if absent.
	col    [3]int
	thr    [3]float32
	scores []float32
}

// NewAttire loads the model.
func NewAttire(cfg AttireConfig) (*Attire, error) {
	name := cfg.Model
	if name == "" {
		name = DefaultAttireModel
	}
	m, err := models.Load(name)
	if err != nil {
		return nil, fmt.Errorf("attire analyzer: %w", err)
	}
	clf, err := models.NewAttributeClassifier(m, models.SessionOptions{IntraOpThreads: cfg.Threads})
	if err != nil {
		return nil, fmt.Errorf("attire analyzer: %w", err)
	}
	a := &Attire{clf: clf, col: [3]int{-1, -1, -1}, scores: make([]float32, len(clf.Labels()))}
	over := [3]float32{cfg.MaskScore, cfg.OccludedScore, 0}
	a.version = m.ID()
	for k, label := range []string{LabelMask, LabelOccluded, LabelEarphones} {
		for i, l := range clf.Labels() {
			if l == label {
				a.col[k] = i
			}
		}
		if a.col[k] < 0 {
			continue
		}
		a.thr[k] = m.Vision.Scores[label]
		if over[k] != 0 {
			a.thr[k] = over[k]
		}
		if a.thr[k] <= 0 || a.thr[k] >= 1 {
			clf.Close()
			return nil, fmt.Errorf("attire analyzer: %s threshold %.3f out of (0,1)", label, a.thr[k])
		}
		a.version += fmt.Sprintf(" %s=%g", label, a.thr[k])
	}
	return a, nil
}

// Name implements Analyzer.
func (a *Attire) Name() string { return "attire" }

// Version implements Analyzer: model and thresholds.
func (a *Attire) Version() string { return a.version }

// Requires implements Requirer.
func (a *Attire) Requires() []string { return []string{"faces", "landmarks"} }

// Analyze implements Analyzer.
func (a *Attire) Analyze(_ context.Context, f *Frame, obs *Observation) error {
	n := min(len(f.FaceCrops), len(obs.Faces))
	if n == 0 {
		return nil
	}
	// One allocation for all attributes of this frame: the observation outlives it.
	attrs := make([]Attribute, 3*n)
	for i := range n {
		if err := a.clf.Classify(f.FaceCrops[i], a.scores); err != nil {
			return fmt.Errorf("attire: face %d: %w", i, err)
		}
		face := &obs.Faces[i]
		face.Mask = a.attribute(attrs[3*i:3*i+3], 0)
		face.Occluded = a.attribute(attrs[3*i:3*i+3], 1)
		face.Earphones = a.attribute(attrs[3*i:3*i+3], 2)
	}
	return nil
}

// attribute fills slot[k] from the last scores for label k (mask, occluded, earphones); nil when
// the model has no such label.
func (a *Attire) attribute(slot []Attribute, k int) *Attribute {
	if a.col[k] < 0 {
		return nil
	}
	s := a.scores[a.col[k]]
	slot[k] = Attribute{Score: s, Present: s >= a.thr[k]}
	return &slot[k]
}

// Close implements Analyzer.
func (a *Attire) Close() error { return a.clf.Close() }
