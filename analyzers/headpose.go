package analyzers

import (
	"context"
	"errors"
	"fmt"

	"proctor/models"
)

func init() {
	Register("headpose", func(cfg *Config) (Analyzer, error) { return NewHeadPose(cfg.HeadPose) })
}

// HeadPoseConfig configures the "headpose" analyzer, which must run after "faces".
type HeadPoseConfig struct {
	// Model is the manifest name of the head-pose model. Default "faceplugin-headpose".
	Model string `json:"model,omitempty"`
	// MaxFaces is how many faces get a pose: the main face (largest) first, then by detector
	// score. Default 1: only the candidate's gaze matters to the rules, and each face costs ~6 ms.
	MaxFaces int `json:"max_faces,omitempty"`
	// Threads is the intra-op thread count of the model session. Default 1.
	Threads int `json:"threads,omitempty"`
	// Method is "network" (the pose model) or "landmarks" (a perspective-n-point fit of a generic
	// 3D face to the landmarks analyzer's 68 points: headpose_pnp.go; no model, microseconds).
	// Default "network".
	Method string `json:"method,omitempty"`
}

// PoseFromLandmarks is HeadPoseConfig.Method for the landmark fit.
const PoseFromLandmarks = "landmarks"

// DefaultHeadPoseModel is the head-pose model used when HeadPoseConfig.Model is empty.
const DefaultHeadPoseModel = "faceplugin-headpose"

// HeadPose estimates where the candidate's head points: Face.Yaw and Face.Pitch. Not safe for
// concurrent use.
type HeadPose struct {
	hp       *models.HeadPose
	version  string
	maxFaces int
}

// NewHeadPose loads the model.
func NewHeadPose(cfg HeadPoseConfig) (*HeadPose, error) {
	maxFaces := cfg.MaxFaces
	if maxFaces <= 0 {
		maxFaces = 1
	}
	switch cfg.Method {
	case PoseFromLandmarks:
		return &HeadPose{version: "pnp-landmarks68@1", maxFaces: maxFaces}, nil
	case "", "network":
	default:
		return nil, fmt.Errorf("headpose analyzer: method %q is not network or %s", cfg.Method, PoseFromLandmarks)
	}
	name := cfg.Model
	if name == "" {
		name = DefaultHeadPoseModel
	}
	m, err := models.Load(name)
	if err != nil {
		return nil, fmt.Errorf("headpose analyzer: %w", err)
	}
	hp, err := models.NewHeadPose(m, models.SessionOptions{IntraOpThreads: cfg.Threads})
	if err != nil {
		return nil, fmt.Errorf("headpose analyzer: %w", err)
	}
	a := &HeadPose{hp: hp, version: m.ID(), maxFaces: cfg.MaxFaces}
	if a.maxFaces <= 0 {
		a.maxFaces = 1
	}
	return a, nil
}

// Name implements Analyzer.
func (a *HeadPose) Name() string { return "headpose" }

// Version implements Analyzer.
func (a *HeadPose) Version() string { return a.version }

// MainCameraOnly implements MainCameraOnly.
func (a *HeadPose) MainCameraOnly() {}

// Requires implements Requirer.
func (a *HeadPose) Requires() []string {
	if a.hp == nil {
		return []string{"faces", "landmarks"}
	}
	return []string{"faces"}
}

// Analyze implements Analyzer.
func (a *HeadPose) Analyze(_ context.Context, f *Frame, obs *Observation) error {
	if len(obs.Faces) == 0 || f.Image.Cols() == 0 {
		return nil
	}
	s := float32(f.Image.Cols()) / float32(max(f.Width, 1))
	main := MainFace(obs.Faces, 0)
	// One allocation for all angles of this frame: the observation outlives it.
	n := min(a.maxFaces, len(obs.Faces))
	angles := make([]float32, 2*n)
	for k := range n {
		i := k
		switch {
		case k == 0:
			i = main
		case k <= main:
			i = k - 1 // main went first; the others keep their order
		}
		if a.hp == nil {
			if i >= len(f.FaceLandmarks) {
				continue
			}
			yaw, pitch, ok := poseFromLandmarks(&f.FaceLandmarks[i], f.Image.Cols(), f.Image.Rows())
			if !ok {
				continue
			}
			angles[2*k], angles[2*k+1] = yaw, pitch
			obs.Faces[i].Yaw, obs.Faces[i].Pitch = &angles[2*k], &angles[2*k+1]
			continue
		}
		b := obs.Faces[i].Box
		p, err := a.hp.Estimate(f.Image, [4]float32{b[0] * s, b[1] * s, b[2] * s, b[3] * s})
		if errors.Is(err, models.ErrFaceTooSmall) {
			continue
		}
		if err != nil {
			return fmt.Errorf("headpose: %w", err)
		}
		angles[2*k], angles[2*k+1] = p.Yaw, p.Pitch
		obs.Faces[i].Yaw, obs.Faces[i].Pitch = &angles[2*k], &angles[2*k+1]
	}
	return nil
}

// Close implements Analyzer.
func (a *HeadPose) Close() error {
	if a.hp == nil {
		return nil
	}
	return a.hp.Close()
}
