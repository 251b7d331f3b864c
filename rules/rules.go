// Package rules turns per-frame observations into flags over time. State lives in the database,
// not in memory, so a worker that crashes and is replaced (or a redelivered message) sees exactly
// what the previous one saw, and frames that arrive late or out of order still join their run.
package rules

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"time"

	"gorm.io/gorm"

	"proctor/analyzers"
	"proctor/store"
)

// Config is the service's own configuration of the rules; exams override it (ExamSettings).
// Zero values take the checks' declared defaults.
type Config struct {
	// Settings overrides the declared default of settings, by key in the setting's unit
	// (Settings() lists them; e.g. "face_absent_after_sec": 8 for --face-absent-after 8s).
	Settings Params
	// Weights overrides the default risk weight of flag types (0..1).
	Weights map[string]float64
}

// Engine applies the checks' rules. It holds no per-session state and is safe for concurrent use.
type Engine struct {
	params  Params
	weights map[string]float64
	// disabled flag types raise nothing (an exam's settings, see settings.go).
	disabled map[string]bool
	// overrides are the exam's own setting values (ForExam), already applied to params.
	overrides Params
	// frames are the frame rules in force, built with params and disabled (read-only).
	frames []FrameRule
	// settings, when set, gives each exam its own effective engine (Effective).
	settings *settingsCache
}

// New returns an engine with cfg over the declared defaults. A key that no check declares is
// a programming error and panics.
func New(cfg Config) *Engine {
	p := DefaultParams()
	for k, v := range cfg.Settings {
		if _, ok := settingByKey[k]; !ok {
			panic(fmt.Sprintf("rules.New: no check declares setting %q", k))
		}
		if v != 0 {
			p[k] = v
		}
	}
	w := DefaultWeights()
	maps.Copy(w, cfg.Weights)
	e := &Engine{params: p, weights: w}
	e.frames = e.buildFrameRules()
	return e
}

// Params returns the settings in force (read-only).
func (e *Engine) Params() Params { return e.params }

// Weights returns the risk weights in force (read-only).
func (e *Engine) Weights() map[string]float64 { return e.weights }

// FrameInput is what the rules need from one analysed frame.
type FrameInput struct {
	Result       *store.FrameResult
	JPEG         []byte // kept as evidence if this frame raises a flag
	ModelVersion string
	// Session is the frame's session as the worker read it (nil: rules with a When run).
	Session *store.Session
}

// Frame is what the rules see of one stored frame: its place in time and each check's signal.
type Frame struct {
	Seq, CapturedAtMs int64
	signals           map[string]Signal
}

// Signal returns what the named check kept of this frame (nil: nothing measured).
func (f *Frame) Signal(check string) Signal { return f.signals[check] }

func parseFrame(fs store.FrameSignals) (Frame, error) {
	f := Frame{Seq: fs.Seq, CapturedAtMs: fs.CapturedAtMs}
	if fs.Signals == "" {
		return f, nil
	}
	if err := json.Unmarshal([]byte(fs.Signals), &f.signals); err != nil {
		return f, fmt.Errorf("signals of frame %d: %w", fs.Seq, err)
	}
	return f, nil
}

// Observe runs every check's Observe on a frame's observation, with the settings in force, and
// returns the signals to store with it (store.FrameResult.Signals). Every check observes,
// whether or not an exam has it on, so switching a check on later judges the frames that follow
// with full context.
func (e *Engine) Observe(obs *analyzers.Observation, camera string) (string, error) {
	sig := make(map[string]Signal, len(checks))
	for _, c := range checks {
		if c.Observe == nil {
			continue
		}
		if s := c.Observe(obs, camera, e.params); len(s) > 0 {
			for _, a := range c.Analyzers {
				if _, ok := obs.Carried[a]; ok {
					// Not measured on this frame: the analysis schedule carried an earlier
					// frame's output over an unchanged scene (analyzers.Schedule).
					s[SignalCarried] = 1
				}
			}
			sig[c.Name] = s
		}
	}
	b, err := json.Marshal(sig)
	return string(b), err
}

// SignalCarried is set (to 1) in a check's Signal when an analyzer it reads did not run on the
// frame and its last output was carried over by the analysis schedule.
const SignalCarried = "carried"

// FrameRule raises a flag when a condition holds on consecutive frames of one camera for at
// least After. Checks declare them (Check.Rules).
type FrameRule struct {
	Type   string
	Camera string // "main", "evidence", or "" for either (runs are per camera)
	After  time.Duration
	Holds  func(f *Frame) bool
	// Confidence of one frame: how sure the model is the condition holds (0..1).
	Confidence func(f *Frame) float64
	// Measure, when set, adds a score summarised over the run to the flag's details (e.g. the
	// identity similarity the reviewer sees beside the registration photo).
	Measure *Measure
	// Skip, when set, marks frames that abstain (a turned head cannot vote on identity): they
	// neither continue nor break a run, though the gap limit still counts from the last frame
	// that voted.
	Skip func(f *Frame) bool
	// When, when set, says whether the rule applies to the session at all (e.g. identity
	// mismatches are not raised when the person at the login was never verified: that session
	// has its own flag).
	When func(sess *store.Session) bool
	// During, when set, says whether the rule applies at a moment of the session (e.g. writing
	// on the sheet counts before the start only, when the exam allows notes): a frame outside
	// neither raises the flag nor continues a run. Not applied when the worker passed no session.
	During func(sess *store.Session, atMs int64) bool
}

// frameRules are the rules of every frame check that is on, built once per engine (engines are
// cached per exam): the per-frame path only reads them.
func (e *Engine) frameRules() []FrameRule { return e.frames }

func (e *Engine) buildFrameRules() []FrameRule {
	var all []FrameRule
	for _, c := range checks {
		if c.Input != InputFrames {
			continue
		}
		for _, r := range c.Rules(e.params) {
			if !e.disabled[r.Type] {
				all = append(all, r)
			}
		}
	}
	return all
}

// runScan bounds how many neighbouring frames are read each way. A run longer than this is
// already flagged, and the flag is found by overlap below.
const runScan = 400

// neighbourPage: most runs end within a few frames, so neighbours are read a page at a time.
const neighbourPage = 32

// neighbours reads a frame's neighbours on demand from its camera's window, once for all the
// rules that hold on it.
type neighbours struct {
	cf  *cameraFrames
	pos Frame
	idx int // the frame's index in cf.frames, -1 until found
}

// at returns the i-th neighbour on one side (0 before, nearest first; 1 after), reading more as
// needed.
func (n *neighbours) at(side, i int) (*Frame, error) {
	if i >= runScan {
		return nil, nil
	}
	c := n.cf
	for {
		if n.idx < 0 {
			if n.idx = c.index(&n.pos); n.idx < 0 {
				return nil, fmt.Errorf("frame %d not in its window", n.pos.Seq)
			}
		}
		j := n.idx - 1 - i
		if side == 1 {
			j = n.idx + 1 + i
		}
		if j >= 0 && j < len(c.frames) {
			return &c.frames[j], nil
		}
		if (side == 0 && c.loDone) || (side == 1 && c.hiDone) {
			return nil, nil
		}
		if err := c.grow(side); err != nil {
			return nil, err
		}
		n.idx = -1 // grown before it: the frame moved
	}
}

// applyRun finds the maximal run of frames around this one where the rule holds and, if it is
// long enough, creates or extends the flag covering it.
func (e *Engine) applyRun(tx *gorm.DB, r FrameRule, in FrameInput, cur *Frame, nb *neighbours) (uint, error) {
	fr := in.Result
	gap := e.params.Duration(SettingMaxFrameGap).Milliseconds()
	start, end := fr.CapturedAtMs, fr.CapturedAtMs
	confSum, n := r.Confidence(cur), 1
	var ms measureSummary
	ms.add(r.Measure, cur)
	for side := range 2 {
		prev := fr.CapturedAtMs
		for i := 0; ; i++ {
			f, err := nb.at(side, i)
			if err != nil {
				return 0, err
			}
			if f != nil && r.Skip != nil && r.Skip(f) {
				continue
			}
			if f == nil || !r.Holds(f) || abs64(f.CapturedAtMs-prev) > gap ||
				(r.During != nil && in.Session != nil && !r.During(in.Session, f.CapturedAtMs)) {
				break
			}
			prev = f.CapturedAtMs
			if side == 0 {
				start = f.CapturedAtMs
			} else {
				end = f.CapturedAtMs
			}
			confSum += r.Confidence(f)
			ms.add(r.Measure, f)
			n++
		}
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
		StartMs: start, EndMs: end, Severity: Severity(r.Type), Confidence: confidence,
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

func abs64(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
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

// Measure is a per-frame score a FrameRule summarises over its run into the flag's details:
// Name (mean), Name_min, Name_max and, with Threshold, Name_threshold (at the latest frame).
type Measure struct {
	Name      string
	Value     func(f *Frame) (float64, bool)
	Threshold func(f *Frame) float64
}

// measureSummary accumulates up to one Measure over a run.
type measureSummary struct {
	sum, lo, hi float64
	n           int
	threshold   float64
}

func (s *measureSummary) add(m *Measure, f *Frame) {
	if m == nil {
		return
	}
	v, ok := m.Value(f)
	if !ok {
		return
	}
	if s.n == 0 {
		s.lo, s.hi = v, v
		if m.Threshold != nil {
			s.threshold = m.Threshold(f)
		}
	}
	s.sum += v
	s.lo, s.hi = math.Min(s.lo, v), math.Max(s.hi, v)
	s.n++
}

func (s *measureSummary) into(m *Measure, details map[string]any) {
	if m == nil || s.n == 0 {
		return
	}
	r := func(x float64) float64 { return math.Round(x*1000) / 1000 }
	details[m.Name] = r(s.sum / float64(s.n))
	details[m.Name+"_min"] = r(s.lo)
	details[m.Name+"_max"] = r(s.hi)
	if m.Threshold != nil {
		details[m.Name+"_threshold"] = r(s.threshold)
	}
}
