// Package analyzers turns one decoded camera frame into observations. Every check is one file
// behind the Analyzer interface; the set that runs is chosen by name (see Catalog).
package analyzers

import (
	"context"
	"time"

	"gocv.io/x/gocv"

	"proctor/models"
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

	// Session is the exam session the frame belongs to ("" outside the pipeline). Analyzers that
	// keep per-candidate state between frames (identity's face track) key it by this.
	Session string
	// CapturedAt is the client's capture time (zero outside the pipeline): analyzers comparing a
	// frame with the previous one (camera motion) need real time between them.
	CapturedAt time.Time
	// Enrolled is the candidate's registration-photo embedding for the identity analyzer; nil
	// when the session has none (then no face gets a Match).
	Enrolled *Enrollment
	// Plan, when set, decides which analyzers run on this frame (the pipeline's Schedule); nil
	// runs every analyzer.
	Plan Planner

	// Per-face results shared between analyzers within this frame, filled by the "landmarks"
	// analyzer for Observation.Faces[i], i < len(FaceCrops) (at most LandmarksConfig.MaxFaces,
	// best detector score first). Both are owned by that analyzer and valid only until the next
	// frame: analyzers read them and must not close or keep them.
	//
	// FaceCrops[i] is the face aligned on five landmarks to the ArcFace template, 112×112 BGR
	// (models.AlignedSize): eyes at y≈51, mouth corners at y≈92, little forehead and no ears.
	// Identity embeds it; attribute classifiers (mask, occlusion) should classify it rather
	// than re-crop Image.
	FaceCrops []gocv.Mat
	// FaceLandmarks[i] are the 68 points (iBUG-300W order) in Image pixels — not original
	// pixels: multiply by Width/Image.Cols() for those. Jaw points 0 and 16 sit next to the
	// ears, for checks that need more of the head than FaceCrops shows.
	FaceLandmarks []models.Landmarks68
}

// Enrollment is the session's reference faces: the registration photo's embedding, stored on
// the session, and the gallery of the candidate's own verified frames.
type Enrollment struct {
	Model  string    `json:"model"`  // embedding model ID (name@version); vectors of other models do not compare
	Vector []float32 `json:"vector"` // the registration photo's, unit length
	// Gallery holds embeddings (same model, unit length) of the candidate's own frames from face
	// login and preparation that matched the photo and passed the quality gate: a webcam frame
	// resembles another webcam frame of the same person far more than an ID photo, so later
	// frames are compared with the best of all.
	Gallery [][]float32 `json:"gallery,omitempty"`
	// Learned is how many of Gallery, at its end, were learned while answering (faces that
	// matched the photo or a login frame by a wide margin): they count for Similarity but never
	// vouch for another learned face (Anchor).
	Learned int `json:"learned,omitempty"`
	// Gathering: the pipeline may keep this frame's face in the gallery (face login and
	// preparation), so the identity analyzer measures it with its full model even when a first
	// look (IdentityConfig.FirstLook) would settle the match.
	Gathering bool `json:"-"`
}

// Anchor is v's best similarity with the photo and the login frames of the gallery: what a
// face must match to be learned.
func (e *Enrollment) Anchor(v []float32) float32 {
	anchors := Enrollment{Vector: e.Vector, Gallery: e.Gallery[:len(e.Gallery)-e.Learned]}
	best, _ := anchors.Similarity(v)
	return best
}

// Similarity is v's best cosine similarity with the photo and the gallery, and its similarity
// with the photo alone.
func (e *Enrollment) Similarity(v []float32) (best, photo float32) {
	photo = models.Cosine(v, e.Vector)
	best = photo
	for _, g := range e.Gallery {
		if len(g) == len(v) {
			best = max(best, models.Cosine(v, g))
		}
	}
	return best, photo
}

// GalleryRedundant: a face this similar to a reference already kept is the same pose and light
// (the candidate sat still); keeping it adds nothing.
const GalleryRedundant = 0.9

// Redundant says whether v is nearly the same face as one of refs.
func Redundant(refs [][]float32, v []float32) bool {
	for _, r := range refs {
		if len(r) == len(v) && models.Cosine(r, v) > GalleryRedundant {
			return true
		}
	}
	return false
}

// Face is one detected face, box in original pixel coordinates.
type Face struct {
	Box   [4]float32 `json:"box"` // x, y, w, h
	Score float32    `json:"score"`
	// Landmarks are five points in original pixels: left eye, right eye, nose tip, left and
	// right mouth corner ("landmarks" analyzer; absent beyond its MaxFaces).
	Landmarks [][2]float32 `json:"landmarks,omitempty"`
	// Match compares this face with the session's registration photo ("identity" analyzer: the
	// main face only — every face in `proctor analyze image` — and only when there is an
	// enrolled photo).
	Match *Match `json:"match,omitempty"`
	// Yaw and Pitch are the head pose in degrees, 0 facing the camera ("headpose" analyzer).
	// Yaw > 0: the head turns towards the image's left (the candidate's right); pitch > 0: it
	// tilts up. Checked on the dev photos (a mirrored photo flips the sign of yaw).
	Yaw   *float32 `json:"yaw,omitempty"`
	Pitch *float32 `json:"pitch,omitempty"`
	// Mask and Occluded are the "attire" analyzer's verdicts on this face's aligned crop
	// (absent beyond the landmarks analyzer's MaxFaces).
	Mask     *Attribute `json:"mask,omitempty"`
	Occluded *Attribute `json:"occluded,omitempty"`
	// Ears and Earphones are the "ears" analyzer's verdicts on the crops around the ears (the
	// main face only unless EarsConfig.MaxFaces says more; Earphones absent when no ear is in
	// view).
	Ears      *EarStates `json:"ears,omitempty"`
	Earphones *Attribute `json:"earphones,omitempty"`
}

// Attribute is one yes/no property of a face: the model's score and whether it reaches the
// model's threshold (models/manifests/<model>.json vision.scores).
type Attribute struct {
	Score   float32 `json:"score"`
	Present bool    `json:"present"`
}

// Match is a face compared with the registration photo.
type Match struct {
	// Similarity is the cosine similarity of the two embeddings (-1..1).
	Similarity float32 `json:"similarity"`
	// SamePerson is Similarity >= the model's calibrated threshold.
	SamePerson bool `json:"same_person"`
	// Measured is false when the value was carried over from an earlier frame of the same face
	// track instead of computed on this one (IdentityConfig.Every).
	Measured bool `json:"measured"`
	// Threshold is the same-person similarity in force when it was compared (not printed:
	// the identity check keeps it with the frame, so a later threshold change does not rewrite
	// history).
	Threshold float32 `json:"-"`
	// Photo is the similarity with the registration photo alone (Similarity may come from the
	// gallery): a login frame joins the gallery only if it matches the photo.
	Photo float32 `json:"-"`
	// Sharpness is the variance of the Laplacian of the aligned crop's grey levels, on frames
	// that were Measured: the identity check's quality gate reads it (blurred frames abstain).
	Sharpness float32 `json:"-"`
	// Embedding is this face's embedding on Measured frames (a copy, unit length), for the
	// pipeline to add to the session's gallery.
	Embedding []float32 `json:"-"`
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
	// Persons and Phones count the people and mobile phones the "persons" analyzer found (COCO
	// detector, persons.go); nil when it did not run. Objects are their boxes, best first.
	Persons *int     `json:"persons,omitempty"`
	Phones  *int     `json:"phones,omitempty"`
	Objects []Object `json:"objects,omitempty"`
	// CameraYaw is how far the evidence camera turned since the session's previous evidence
	// frame, in degrees ("cameramotion" analyzer, for the room scan); nil when not measured.
	CameraYaw *float32 `json:"camera_yaw,omitempty"`
	// CameraYawLost: the camera moved since that frame but the turn could not be measured (too
	// little overlap, or the frames too far apart in time); CameraYaw is then 0. The room-scan
	// flag reports how many turns were lost, so a reviewer knows how far to trust it.
	CameraYawLost bool `json:"camera_yaw_lost,omitempty"`
	// Carried names the analyzers that did not run on this frame under the analysis schedule
	// (schedule.go), with the capture time (Unix ms) of the frame whose output was carried over
	// instead; absent when every analyzer ran.
	Carried map[string]int64 `json:"carried,omitempty"`
	// Shadow holds what shadow model versions said about this frame. It is stored apart from the
	// observation (pipeline) and never reaches the rules, so a shadow raises no flags.
	Shadow []ShadowResult `json:"-"`
}

// ShadowResult is one shadow version's outputs on a frame next to the active version's.
type ShadowResult struct {
	Analyzer string         `json:"analyzer"`
	Model    string         `json:"model"`  // the shadow version, name@version
	Active   string         `json:"active"` // the active version it ran next to
	Outputs  []ShadowOutput `json:"outputs"`
}

// ShadowOutput compares one label of one face.
type ShadowOutput struct {
	Face   int       `json:"face"`
	Label  string    `json:"label"`
	Active Attribute `json:"active"`
	Shadow Attribute `json:"shadow"`
}

// Object is one detected person or phone, box in original pixel coordinates.
type Object struct {
	Class string     `json:"class"` // "person" or "cell phone" (COCO names)
	Box   [4]float32 `json:"box"`   // x, y, w, h
	Score float32    `json:"score"`
	// OnScreen: a person inside a bright framed rectangle (a screen showing the candidate's own
	// video, a poster), not a person in the room (screen.go). Set on frames with ≥ 2 people.
	OnScreen bool `json:"on_screen,omitempty"`
	// Still: a phone at about the place where the detector last saw a phone in this session's
	// camera (the evidence phone on its stand stays put; one in use moves). Pipeline frames only.
	Still bool `json:"still,omitempty"`
}

// Analyzer is one check run on every frame.
type Analyzer interface {
	Name() string
	// Version identifies the model and thresholds, stored with every flag the check raises.
	Version() string
	Analyze(ctx context.Context, f *Frame, obs *Observation) error
	Close() error
}
