package analyzers

import (
	"context"
	"errors"
	"fmt"

	"gocv.io/x/gocv"

	"proctor/models"
)

func init() {
	Register("landmarks", func(cfg *Config) (Analyzer, error) { return NewLandmarks(cfg.Landmarks) })
}

// LandmarksConfig configures the "landmarks" analyzer, which must run after "faces".
type LandmarksConfig struct {
	// Model is the manifest name of the landmark model. Default "faceplugin-landmarks68".
	Model string `json:"model,omitempty"`
	// MaxFaces is how many faces (best detector score first) get landmarks and an aligned crop.
	// Default 4: the candidate plus a few people behind them; each costs ~0.5 ms plus the
	// downstream attribute models that read the crops.
	MaxFaces int `json:"max_faces,omitempty"`
	// DecodeSide is the longest side this analyzer wants frames decoded at. Default 640: the
	// aligned 112×112 crop of a face a quarter of a 640 px frame high is then taken at ~1:1;
	// at the detector's 320 px it would be upscaled 2× and identity loses detail.
	DecodeSide int `json:"decode_side,omitempty"`
	// Threads is the intra-op thread count of the model session. Default 1.
	Threads int `json:"threads,omitempty"`
}

// DefaultLandmarksModel is the landmark model used when LandmarksConfig.Model is empty.
const DefaultLandmarksModel = "faceplugin-landmarks68"

// Landmarks finds 68 facial points per face, reports five of them per face in the observation and
// fills Frame.FaceCrops and Frame.FaceLandmarks for the analyzers after it. Not safe for
// concurrent use.
type Landmarks struct {
	lm         *models.Landmarker
	align      *models.Aligner
	version    string
	maxFaces   int
	decodeSide int
	crops      []gocv.Mat           // MaxFaces aligned crops, reused between frames
	points     []models.Landmarks68 // MaxFaces point sets, reused between frames
}

// NewLandmarks loads the model.
func NewLandmarks(cfg LandmarksConfig) (*Landmarks, error) {
	name := cfg.Model
	if name == "" {
		name = DefaultLandmarksModel
	}
	m, err := models.Load(name)
	if err != nil {
		return nil, fmt.Errorf("landmarks analyzer: %w", err)
	}
	lm, err := models.NewLandmarker(m, models.SessionOptions{IntraOpThreads: cfg.Threads})
	if err != nil {
		return nil, fmt.Errorf("landmarks analyzer: %w", err)
	}
	a := &Landmarks{lm: lm, align: models.NewAligner(), version: m.ID(),
		maxFaces: cfg.MaxFaces, decodeSide: cfg.DecodeSide}
	if a.maxFaces <= 0 {
		a.maxFaces = 4
	}
	if a.decodeSide <= 0 {
		a.decodeSide = 640
	}
	a.crops = make([]gocv.Mat, a.maxFaces)
	for i := range a.crops {
		a.crops[i] = gocv.NewMatWithSize(models.AlignedSize, models.AlignedSize, gocv.MatTypeCV8UC3)
	}
	a.points = make([]models.Landmarks68, a.maxFaces)
	return a, nil
}

// Name implements Analyzer.
func (a *Landmarks) Name() string { return "landmarks" }

// Version implements Analyzer.
func (a *Landmarks) Version() string { return a.version }

// DecodeSide implements SideNeeder.
func (a *Landmarks) DecodeSide() int { return a.decodeSide }

// MainCameraOnly implements MainCameraOnly.
func (a *Landmarks) MainCameraOnly() {}

// Requires implements Requirer.
func (a *Landmarks) Requires() []string { return []string{"faces"} }

// Analyze implements Analyzer.
func (a *Landmarks) Analyze(_ context.Context, f *Frame, obs *Observation) error {
	f.FaceCrops, f.FaceLandmarks = a.crops[:0], a.points[:0]
	n := min(len(obs.Faces), a.maxFaces)
	if n == 0 || f.Image.Cols() == 0 {
		return nil
	}
	// Boxes are in original pixels; the image may be a reduced decode.
	s := float32(f.Image.Cols()) / float32(max(f.Width, 1))
	inv := 1 / s
	five := make([][2]float32, 5*n) // one allocation per frame: the observation outlives it
	done := 0
	for i := range n {
		b := obs.Faces[i].Box
		pts := &a.points[i]
		if err := a.lm.Landmarks(f.Image, [4]float32{b[0] * s, b[1] * s, b[2] * s, b[3] * s}, pts); err != nil {
			if errors.Is(err, models.ErrFaceTooSmall) {
				break // the crops stay a prefix of Faces
			}
			return fmt.Errorf("landmarks: %w", err)
		}
		p5 := pts.Five()
		if err := a.align.Align(f.Image, p5, &a.crops[i]); err != nil {
			if errors.Is(err, models.ErrDegeneratePoints) {
				break
			}
			return fmt.Errorf("landmarks: %w", err)
		}
		out := five[5*i : 5*i+5 : 5*i+5]
		for k, p := range p5 {
			out[k] = [2]float32{p[0] * inv, p[1] * inv}
		}
		obs.Faces[i].Landmarks = out
		done++
	}
	f.FaceCrops, f.FaceLandmarks = a.crops[:done], a.points[:done]
	return nil
}

// Close implements Analyzer.
func (a *Landmarks) Close() error {
	errs := []error{a.lm.Close(), a.align.Close()}
	for i := range a.crops {
		errs = append(errs, a.crops[i].Close())
	}
	return errors.Join(errs...)
}

// MainFace is the index of the candidate's face among faces: the largest box (the person nearest
// the camera), -1 when there is none. Among the first limit faces only (limit <= 0: all).
func MainFace(faces []Face, limit int) int {
	if limit <= 0 || limit > len(faces) {
		limit = len(faces)
	}
	best, area := -1, float32(-1)
	for i := range limit {
		if a := faces[i].Box[2] * faces[i].Box[3]; a > area {
			best, area = i, a
		}
	}
	return best
}
