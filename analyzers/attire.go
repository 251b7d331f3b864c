package analyzers

import (
	"context"
	"fmt"

	"proctor/models"
)

func init() {
	Register("attire", func(cfg *Config) (Analyzer, error) { return NewAttire(cfg.Attire) })
}

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
	// Active replaces the built-in version with a registered one (the active model
	// version); Shadow runs a second version on the same crops, reported in
	// Observation.Shadow and never in the faces' attributes, so it raises no flags.
	Active *models.Manifest `json:"-"`
	Shadow *models.Manifest `json:"-"`
}

// DefaultAttireModel is the classifier used when AttireConfig.Model is empty.
const DefaultAttireModel = "attire-cnn"

// Attire labels the classifier may have; a label the model lacks is never reported.
const (
	LabelMask      = "mask"
	LabelOccluded  = "occluded"
	LabelEarphones = "earphones"
)

var attireLabels = [3]string{LabelMask, LabelOccluded, LabelEarphones}

// Attire classifies each aligned face crop of the "landmarks" analyzer (Frame.FaceCrops): mask
// worn, face partly covered (hand, object, frame edge). It fills Face.Mask and Face.Occluded for
// the faces that have a crop.
//
// Earphones are the "ears" analyzer's (ears.go), which sees the ears; an attire manifest whose
// labels include "earphones" would fill Face.Earphones too.
type Attire struct {
	active, shadow *attireHead
}

// attireHead is one classifier version with its thresholds.
type attireHead struct {
	clf     *models.AttributeClassifier
	id      string // name@version
	version string // id and thresholds
	// col[i] is the output column of label i of attireLabels, -1 if absent.
	col    [3]int
	thr    [3]float32
	scores []float32
}

// NewAttire loads the model (and the shadow version, if any).
func NewAttire(cfg AttireConfig) (*Attire, error) {
	m := cfg.Active
	if m == nil {
		name := cfg.Model
		if name == "" {
			name = DefaultAttireModel
		}
		var err error
		if m, err = models.Load(name); err != nil {
			return nil, fmt.Errorf("attire analyzer: %w", err)
		}
	}
	over := [3]float32{cfg.MaskScore, cfg.OccludedScore, 0}
	a := &Attire{}
	var err error
	if a.active, err = newAttireHead(m, over, cfg.Threads); err != nil {
		return nil, err
	}
	if cfg.Shadow != nil {
		// The shadow keeps its own thresholds: they were chosen with its weights.
		if a.shadow, err = newAttireHead(cfg.Shadow, [3]float32{}, cfg.Threads); err != nil {
			a.active.clf.Close()
			return nil, fmt.Errorf("shadow: %w", err)
		}
	}
	return a, nil
}

func newAttireHead(m *models.Manifest, over [3]float32, threads int) (*attireHead, error) {
	clf, err := models.NewAttributeClassifier(m, models.SessionOptions{IntraOpThreads: threads})
	if err != nil {
		return nil, fmt.Errorf("attire analyzer: %w", err)
	}
	h := &attireHead{clf: clf, id: m.ID(), version: m.ID(), col: [3]int{-1, -1, -1}, scores: make([]float32, len(clf.Labels()))}
	for k, label := range attireLabels {
		for i, l := range clf.Labels() {
			if l == label {
				h.col[k] = i
			}
		}
		if h.col[k] < 0 {
			continue
		}
		h.thr[k] = m.Vision.Scores[label]
		if over[k] != 0 {
			h.thr[k] = over[k]
		}
		if h.thr[k] <= 0 || h.thr[k] >= 1 {
			clf.Close()
			return nil, fmt.Errorf("attire analyzer: %s threshold %.3f out of (0,1)", label, h.thr[k])
		}
		h.version += fmt.Sprintf(" %s=%g", label, h.thr[k])
	}
	return h, nil
}

// Name implements Analyzer.
func (a *Attire) Name() string { return "attire" }

// Version implements Analyzer: the active model and thresholds (never the shadow's).
func (a *Attire) Version() string { return a.active.version }

// MainCameraOnly implements MainCameraOnly.
func (a *Attire) MainCameraOnly() {}

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
	var shadow *ShadowResult
	if a.shadow != nil {
		shadow = &ShadowResult{Analyzer: a.Name(), Model: a.shadow.id, Active: a.active.id}
	}
	for i := range n {
		if err := a.active.clf.Classify(f.FaceCrops[i], a.active.scores); err != nil {
			return fmt.Errorf("attire: face %d: %w", i, err)
		}
		face := &obs.Faces[i]
		face.Mask = a.active.attribute(attrs[3*i:3*i+3], 0)
		face.Occluded = a.active.attribute(attrs[3*i:3*i+3], 1)
		if e := a.active.attribute(attrs[3*i:3*i+3], 2); e != nil {
			face.Earphones = e // an attire model with an earphones label; the ears analyzer fills it otherwise
		}
		if shadow == nil {
			continue
		}
		if err := a.shadow.clf.Classify(f.FaceCrops[i], a.shadow.scores); err != nil {
			return fmt.Errorf("attire shadow %s: face %d: %w", a.shadow.id, i, err)
		}
		var slot [3]Attribute
		for k, act := range [3]*Attribute{face.Mask, face.Occluded, face.Earphones} {
			label, sh := attireLabels[k], a.shadow.attribute(slot[:], k)
			if act != nil && sh != nil {
				shadow.Outputs = append(shadow.Outputs, ShadowOutput{Face: i, Label: label, Active: *act, Shadow: *sh})
			}
		}
	}
	if shadow != nil {
		obs.Shadow = append(obs.Shadow, *shadow)
	}
	return nil
}

// attribute fills slot[k] from the last scores for label k (mask, occluded, earphones); nil when
// the model has no such label.
func (h *attireHead) attribute(slot []Attribute, k int) *Attribute {
	if h.col[k] < 0 {
		return nil
	}
	s := h.scores[h.col[k]]
	slot[k] = Attribute{Score: s, Present: s >= h.thr[k]}
	return &slot[k]
}

// Close implements Analyzer.
func (a *Attire) Close() error {
	err := a.active.clf.Close()
	if a.shadow != nil {
		if e := a.shadow.clf.Close(); err == nil {
			err = e
		}
	}
	return err
}
