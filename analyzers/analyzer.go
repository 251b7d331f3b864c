// Package analyzers turns one decoded camera frame into observations. Every check is one file
// behind the Analyzer interface; the set that runs is chosen by name (see Registry).
package analyzers

import (
	"context"

	"gocv.io/x/gocv"
)

// Camera names the two clients that record a candidate.
const (
	CameraMain     = "main"     // laptop camera facing the candidate
	CameraEvidence = "evidence" // phone 45° behind the candidate
)

// Frame is one decoded frame. Image is BGR and owned by whoever decoded it; analyzers must not
// close or keep it.
type Frame struct {
	Camera string
	Image  gocv.Mat
	// Width and Height are the size of the JPEG as posted; Image may be smaller (reduced decode),
	// so analyzers report boxes in these original pixel coordinates.
	Width, Height int
}

// Face is one detected face, box in original pixel coordinates.
type Face struct {
	Box   [4]float32 `json:"box"` // x, y, w, h
	Score float32    `json:"score"`
}

// Observation collects what all analyzers saw in one frame. Field names are part of the JSON that
// `proctor analyze image` prints and that is stored per frame: keep them stable.
type Observation struct {
	Width  int    `json:"width"`
	Height int    `json:"height"`
	Faces  []Face `json:"faces"`
	// TopFaceScore is the best detector score even below the threshold: a frame with a face
	// just under threshold is weak evidence of absence, and the rules use it as such.
	TopFaceScore float32 `json:"top_face_score"`
	// Sheet is the A4-sheet check of the evidence camera ("sheet" analyzer); nil on other
	// cameras and when that analyzer does not run.
	Sheet *SheetObservation `json:"sheet,omitempty"`
}

// Analyzer is one check run on every frame.
type Analyzer interface {
	Name() string
	// Version identifies the model and thresholds, stored with every flag the check raises.
	Version() string
	Analyze(ctx context.Context, f *Frame, obs *Observation) error
	Close() error
}
