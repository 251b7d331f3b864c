// Package rules turns per-frame observations into flags over time. State lives in the database,
// not in memory, so a worker that crashes and is replaced (or a redelivered message) sees exactly
// what the previous one saw, and frames that arrive late or out of order still join their run.
package rules

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"time"

	"gorm.io/gorm"

	"proctor/store"
)

// Flag types raised by the face rules.
const (
	FaceAbsent    = "FACE_ABSENT"
	MultipleFaces = "MULTIPLE_FACES"
)

// Config holds the thresholds of the face rules. Zero values take the defaults.
type Config struct {
	// FaceAbsentAfter: no face in the main camera for this long raises FACE_ABSENT. Default 5s:
	// shorter catches a candidate bending to pick up a pen.
	FaceAbsentAfter time.Duration
	// MultipleFacesAfter: two or more faces in the main camera for this long raise MULTIPLE_FACES.
	// Default 2s, so one frame with a face-like poster or a detector glitch raises nothing.
	MultipleFacesAfter time.Duration
	// MaxFrameGap: frames further apart than this do not continue a run, because a network
	// outage is not evidence of absence. Default 10s.
	MaxFrameGap time.Duration
	// Timing holds the exam-flow windows (login, entry, A4 sheet, room scan, uploads).
	Timing TimingConfig
	// Vision holds the identity and head-pose thresholds (vision.go).
	Vision VisionConfig
	// Objects holds the extra-person, phone, mask and occlusion thresholds (vision_objects.go).
	Objects ObjectsConfig
	// Weights of each flag type in the risk score (0..1, the probability a flag of this type,
	// unreviewed, means a breach). Defaults in DefaultWeights.
	Weights map[string]float64
}

// DefaultWeights of the flag types in the risk score.
var DefaultWeights = map[string]float64{
	MultipleFaces:       0.6,
	IdentityMismatch:    0.8,  // someone else sitting the exam: the most serious breach we see
	LookingAway:         0.2,  // often reading notes, as often thinking: worth a look
	ExtraPerson:         0.6,  // as MULTIPLE_FACES: someone who may be helping
	PhoneVisible:        0.5,  // a phone in reach during an oral exam: notes or a helper
	Mask:                0.3,  // hides the face: identity and lip movement unverifiable
	FaceOccluded:        0.15, // mostly a hand on the chin or a sip of water
	FaceAbsent:          0.3,
	LoginOutsideWindow:  0.2,
	EnteredBeforeOpen:   0.1,
	EnteredAfterStart:   0.4,
	AttachmentsNotRead:  0.1,
	SheetNotShown:       0.3,
	NoRoomScan:          0.3,
	EvidenceGap:         0.4,
	EvidenceStopped:     0.5,
	UploadLate:          0.3,
	WindowSwitch:        0.5,
	ScreenshotAttempted: 0.6,
	MultipleScreens:     0.5,
	// Audio (rules/answers.go): talking outside answer time may be someone helping; an unclosed
	// answer or a long silence is mostly a procedural slip.
	SpeechOutsideAnswer: 0.4,
	LongSilence:         0.15,
	AnswerNotClosed:     0.1,
}

func (c Config) withDefaults() Config {
	if c.FaceAbsentAfter == 0 {
		c.FaceAbsentAfter = 5 * time.Second
	}
	if c.MultipleFacesAfter == 0 {
		c.MultipleFacesAfter = 2 * time.Second
	}
	if c.MaxFrameGap == 0 {
		c.MaxFrameGap = 10 * time.Second
	}
	if c.Weights == nil {
		c.Weights = DefaultWeights
	}
	c.Timing = c.Timing.withDefaults()
	c.Vision = c.Vision.withDefaults()
	c.Objects = c.Objects.withDefaults()
	return c
}

// Engine applies the rules. It holds no per-session state and is safe for concurrent use.
type Engine struct {
	cfg Config
	// disabled flag types raise nothing (an exam's settings, see settings.go).
	disabled map[string]bool
	// settings, when set, gives each exam its own effective engine (Effective).
	settings *settingsCache
}

// New returns an engine with cfg's thresholds.
func New(cfg Config) *Engine { return &Engine{cfg: cfg.withDefaults()} }

// Config returns the thresholds in force.
func (e *Engine) Config() Config { return e.cfg }

// FrameInput is what the rules need from one analysed frame.
type FrameInput struct {
	Result       *store.FrameResult
	JPEG         []byte // kept as evidence if this frame raises a flag
	ModelVersion string
}

// FrameRule raises a flag when a condition holds on consecutive frames of one camera for at
// least After. Each check's rules live in its own method (faceRules, …) listed in frameRules.
type FrameRule struct {
	Type     string
	Severity string
	Camera   string // "main", "evidence", or "" for either (runs are per camera)
	After    time.Duration
	Holds    func(f *store.FrameResult) bool
	// Confidence of one frame: how sure the model is the condition holds (0..1).
	Confidence func(f *store.FrameResult) float64
	// Measure, when set, adds a score summarised over the run to the flag's details (e.g. the
	// identity similarity the reviewer sees beside the registration photo).
	Measure *Measure
}

func (e *Engine) frameRules() []FrameRule {
	all := e.faceRules()
	all = append(all, e.visionRules()...)
	all = append(all, e.objectRules()...)
	all = append(all, e.evidenceRules()...)
	if len(e.disabled) == 0 {
		return all
	}
	return slices.DeleteFunc(all, func(r FrameRule) bool { return e.disabled[r.Type] })
}

// faceRules judge the main camera only: the evidence camera films from behind and rarely sees
// the candidate's face.
func (e *Engine) faceRules() []FrameRule {
	return []FrameRule{
		{Type: FaceAbsent, Severity: store.SeverityDetection, Camera: "main", After: e.cfg.FaceAbsentAfter,
			Holds:      func(f *store.FrameResult) bool { return f.Faces == 0 },
			Confidence: func(f *store.FrameResult) float64 { return 1 - float64(f.TopFaceScore) }},
		{Type: MultipleFaces, Severity: store.SeverityAlert, Camera: "main", After: e.cfg.MultipleFacesAfter,
			Holds:      func(f *store.FrameResult) bool { return f.Faces >= 2 },
			Confidence: func(f *store.FrameResult) float64 { return float64(f.SecondFaceScore) }},
	}
}

// ApplyFrame runs the frame rules for a newly stored frame inside tx. It returns the ids of flags
// created or extended.
func (e *Engine) ApplyFrame(tx *gorm.DB, in FrameInput) ([]uint, error) {
	fr := in.Result
	var touched []uint
	for _, r := range e.frameRules() {
		if (r.Camera != "" && r.Camera != fr.Camera) || !r.Holds(fr) {
			continue
		}
		id, err := e.applyRun(tx, r, in)
		if err != nil {
			return nil, fmt.Errorf("rule %s: %w", r.Type, err)
		}
		if id != 0 {
			touched = append(touched, id)
		}
	}
	if len(touched) > 0 {
		if err := RecomputeRisk(tx, fr.SessionID, e.cfg.Weights); err != nil {
			return nil, err
		}
	}
	return touched, nil
}

// runScan bounds how many neighbouring frames are read each way. A run longer than this is
// already flagged, and the flag is found by overlap below.
const runScan = 400

// applyRun finds the maximal run of frames around this one where the rule holds and, if it is
// long enough, creates or extends the flag covering it.
func (e *Engine) applyRun(tx *gorm.DB, r FrameRule, in FrameInput) (uint, error) {
	fr := in.Result
	base := tx.Model(&store.FrameResult{}).Omit("observation").
		Where("session_id = ? AND camera = ?", fr.SessionID, fr.Camera)
	var before, after []store.FrameResult
	if err := base.Session(&gorm.Session{}).Where("captured_at_ms < ? OR (captured_at_ms = ? AND seq < ?)",
		fr.CapturedAtMs, fr.CapturedAtMs, fr.Seq).
		Order("captured_at_ms DESC").Order("seq DESC").Limit(runScan).Find(&before).Error; err != nil {
		return 0, err
	}
	if err := base.Session(&gorm.Session{}).Where("captured_at_ms > ? OR (captured_at_ms = ? AND seq > ?)",
		fr.CapturedAtMs, fr.CapturedAtMs, fr.Seq).
		Order("captured_at_ms").Order("seq").Limit(runScan).Find(&after).Error; err != nil {
		return 0, err
	}
	gap := e.cfg.MaxFrameGap.Milliseconds()
	start, end := fr.CapturedAtMs, fr.CapturedAtMs
	confSum, n := r.Confidence(fr), 1
	var ms measureSummary
	ms.add(r.Measure, fr)
	prev := fr.CapturedAtMs
	for i := range before {
		f := &before[i]
		if !r.Holds(f) || prev-f.CapturedAtMs > gap {
			break
		}
		start, prev = f.CapturedAtMs, f.CapturedAtMs
		confSum += r.Confidence(f)
		ms.add(r.Measure, f)
		n++
	}
	prev = fr.CapturedAtMs
	for i := range after {
		f := &after[i]
		if !r.Holds(f) || f.CapturedAtMs-prev > gap {
			break
		}
		end, prev = f.CapturedAtMs, f.CapturedAtMs
		confSum += r.Confidence(f)
		ms.add(r.Measure, f)
		n++
	}

	var existing store.Flag
	err := tx.Where("session_id = ? AND type = ? AND camera = ? AND start_ms <= ? AND end_ms >= ?",
		fr.SessionID, r.Type, fr.Camera, end, start).Order("start_ms").Limit(1).Find(&existing).Error
	if err != nil {
		return 0, err
	}
	if existing.ID == 0 && time.Duration(end-start)*time.Millisecond < r.After {
		return 0, nil
	}
	confidence := clamp01(confSum / float64(n))
	det := map[string]any{"frames": n, "threshold_ms": r.After.Milliseconds(), "max_gap_ms": gap}
	ms.into(r.Measure, det)
	details, _ := json.Marshal(det)
	if existing.ID != 0 {
		// The run grew (a later frame, or a late one filling in earlier time): widen the flag.
		// Its evidence stays the frame that first raised it.
		upd := map[string]any{"start_ms": min(existing.StartMs, start), "end_ms": max(existing.EndMs, end),
			"confidence": confidence, "details": string(details)}
		if err := tx.Model(&store.Flag{}).Where("id = ?", existing.ID).Updates(upd).Error; err != nil {
			return 0, err
		}
		return existing.ID, nil
	}
	flag := store.Flag{SessionID: fr.SessionID, Type: r.Type, Camera: fr.Camera,
		StartMs: start, EndMs: end, Severity: r.Severity, Confidence: confidence,
		ModelVersion: in.ModelVersion, Status: store.StatusOpen, EvidenceSeq: fr.Seq,
		Details: string(details)}
	if err := tx.Create(&flag).Error; err != nil {
		return 0, err
	}
	ev := store.Evidence{FlagID: flag.ID, Camera: fr.Camera, Seq: fr.Seq,
		CapturedAtMs: fr.CapturedAtMs, JPEG: in.JPEG}
	if err := tx.Create(&ev).Error; err != nil {
		return 0, err
	}
	return flag.ID, nil
}

// RecomputeRisk sets a session's risk score (0..100) and flag counts from its flags. Flags are
// treated as independent evidence: risk = 1 - Π(1 - p), where p is the type's weight times the
// flag's confidence for an open flag, 1 for a confirmed one and 0 for a dismissed one.
func RecomputeRisk(tx *gorm.DB, sessionID string, weights map[string]float64) error {
	var flags []store.Flag
	if err := tx.Select("type, status, confidence").Where("session_id = ?", sessionID).Find(&flags).Error; err != nil {
		return err
	}
	notBreach, open := 1.0, 0
	for _, f := range flags {
		var p float64
		switch f.Status {
		case store.StatusConfirmed:
			p = 1
		case store.StatusDismissed:
			p = 0
		default:
			open++
			w, ok := weights[f.Type]
			if !ok {
				w = 0.3
			}
			p = w * clamp01(f.Confidence)
		}
		notBreach *= 1 - p
	}
	risk := math.Round((1-notBreach)*1000) / 10
	return tx.Model(&store.Session{}).Where("id = ?", sessionID).
		Updates(map[string]any{"risk_score": risk, "open_flags": open, "total_flags": len(flags)}).Error
}

func clamp01(x float64) float64 { return math.Max(0, math.Min(1, x)) }
