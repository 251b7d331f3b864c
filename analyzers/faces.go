package analyzers

import (
	"context"
	"fmt"

	"proctor/models"
)

func init() {
	Register("faces", func(cfg *Config) (Analyzer, error) { return NewFaces(cfg.Faces) })
}

// FacesConfig configures the "faces" analyzer. Zero values take the defaults noted; the threshold
// defaults live in the model's manifest (models/manifests/<model>.json) so that a retuned or newer
// model is a data change.
type FacesConfig struct {
	// Model is the manifest name of the face detector. Default "ultraface-rfb-320".
	Model string `json:"model,omitempty"`
	// ScoreThreshold is the minimum face score. Default: the manifest's thresholds.score.
	// Raising it loses small, blurred and profile faces; lowering it lets hair, hands and
	// patterned cloth through (see the manifest for the measured trade-off).
	ScoreThreshold float32 `json:"score_threshold,omitempty"`
	// NMSIoU is the overlap above which two boxes count as one face. Default: the manifest's
	// thresholds.nms_iou.
	NMSIoU float32 `json:"nms_iou,omitempty"`
	// MinFace is the minimum face height as a fraction of the frame height; negative disables it.
	// Default: the manifest's thresholds.min_face.
	MinFace float32 `json:"min_face,omitempty"`
	// DecodeSide is the longest side this analyzer wants the JPEG decoded at. Default: the
	// model's longest input side (320). A 1920 px frame is then decoded at 1/4 scale (480 px):
	// measured on ../shared/data/faces, face counts are identical to 1/2-scale and full decodes,
	// and it saves ~10 ms per 1920 px frame.
	DecodeSide int `json:"decode_side,omitempty"`
	// Threads is the intra-op thread count of the model session. Default 1 (one detector per
	// worker; parallelism comes from workers).
	Threads int `json:"threads,omitempty"`
}

// DefaultFacesModel is the face detector used when FacesConfig.Model is empty.
const DefaultFacesModel = "ultraface-rfb-320"

// Faces finds faces in a frame: it fills Observation.Faces (boxes in original pixels, best
// first) and Observation.TopFaceScore. Like every Analyzer it is not safe for concurrent use.
type Faces struct {
	det        *models.FaceDetector
	version    string
	decodeSide int
	buf        []models.FaceBox // reused between frames
}

// NewFaces loads (and checksums) the model and builds its detector.
func NewFaces(cfg FacesConfig) (*Faces, error) {
	name := cfg.Model
	if name == "" {
		name = DefaultFacesModel
	}
	m, err := models.Load(name)
	if err != nil {
		return nil, fmt.Errorf("faces analyzer: %w", err)
	}
	det, err := models.NewFaceDetector(m, models.DetectorOptions{
		SessionOptions: models.SessionOptions{IntraOpThreads: cfg.Threads},
		ScoreThreshold: cfg.ScoreThreshold,
		NMSIoU:         cfg.NMSIoU,
		MinFace:        cfg.MinFace,
	})
	if err != nil {
		return nil, fmt.Errorf("faces analyzer: %w", err)
	}
	side := cfg.DecodeSide
	if side <= 0 {
		side = max(m.Input.Width, m.Input.Height)
	}
	t := det.Thresholds()
	return &Faces{
		det:        det,
		decodeSide: side,
		// The thresholds are part of the version: a flag raised at score 0.7 is not the same
		// evidence as one raised at 0.5.
		version: fmt.Sprintf("%s score=%g nms=%g min=%g", m.ID(), t.Score, t.NMSIoU, t.MinFace),
		buf:     make([]models.FaceBox, 0, 16),
	}, nil
}

// Name implements Analyzer.
func (a *Faces) Name() string { return "faces" }

// Version implements Analyzer: model name@version and the thresholds in effect.
func (a *Faces) Version() string { return a.version }

// DecodeSide implements SideNeeder.
func (a *Faces) DecodeSide() int { return a.decodeSide }

// Analyze implements Analyzer.
func (a *Faces) Analyze(_ context.Context, f *Frame, obs *Observation) error {
	var top float32
	var err error
	a.buf, top, err = a.det.Detect(a.buf[:0], f.Image, f.Width, f.Height)
	if err != nil {
		return fmt.Errorf("faces: %w", err)
	}
	obs.TopFaceScore = top
	if len(a.buf) == 0 {
		obs.Faces = []Face{} // "faces": [] in JSON, not null; no allocation
		return nil
	}
	// The observation outlives the frame (it is stored), so it gets its own slice.
	faces := make([]Face, len(a.buf))
	for i, b := range a.buf {
		faces[i] = Face{Box: [4]float32{b.X, b.Y, b.W, b.H}, Score: b.Score}
	}
	obs.Faces = faces
	return nil
}

// Close implements Analyzer.
func (a *Faces) Close() error { return a.det.Close() }
