package rules

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"sync"
	"time"

	"gorm.io/gorm"

	"proctor/store"
)

// ExamSettings is an organisation's override of the rules for one exam, edited by admins on the
// settings page and stored as JSON (store.ExamSetting). Zero values keep the service's
// configuration, so an empty ExamSettings changes nothing.
type ExamSettings struct {
	// Disabled lists flag types whose check is off for this exam: they raise no flag.
	Disabled []string `json:"disabled,omitempty"`
	// Durations of the frame rules, in seconds.
	FaceAbsentAfterSec    float64 `json:"face_absent_after_sec,omitempty"`
	MultipleFacesAfterSec float64 `json:"multiple_faces_after_sec,omitempty"`
	MaxFrameGapSec        float64 `json:"max_frame_gap_sec,omitempty"`
	// Exam-flow windows (TimingConfig), in minutes or seconds as named.
	LoginOpensBeforeMin float64 `json:"login_opens_before_min,omitempty"`
	EnterOpensBeforeMin float64 `json:"enter_opens_before_min,omitempty"`
	SheetWindowMin      float64 `json:"sheet_window_min,omitempty"`
	ScanWithinMin       float64 `json:"scan_within_min,omitempty"`
	ScanMinDegrees      float64 `json:"scan_min_degrees,omitempty"`
	EvidenceMaxGapSec   float64 `json:"evidence_max_gap_sec,omitempty"`
	UploadWithinMin     float64 `json:"upload_within_min,omitempty"`
	// Vision (identity and head pose): durations in seconds, the identity threshold (cosine
	// similarity, 0 = the model's calibrated one) and the head-turn limits in degrees.
	IdentityMismatchAfterSec float64 `json:"identity_mismatch_after_sec,omitempty"`
	IdentityThreshold        float64 `json:"identity_threshold,omitempty"`
	LookingAwayAfterSec      float64 `json:"looking_away_after_sec,omitempty"`
	YawLimitDeg              float64 `json:"yaw_limit_deg,omitempty"`
	PitchLimitDeg            float64 `json:"pitch_limit_deg,omitempty"`
	// Weights overrides the risk weight of flag types (0..1); types not listed keep theirs.
	Weights map[string]float64 `json:"weights,omitempty"`
}

// FlagTypes lists every flag type the rules know, sorted: the settings page offers a switch and
// a weight for each.
func FlagTypes() []string {
	return slices.Sorted(maps.Keys(DefaultWeights))
}

// Validate says what is wrong with settings an admin submitted.
func (s ExamSettings) Validate() error {
	known := map[string]bool{}
	for _, t := range FlagTypes() {
		known[t] = true
	}
	for _, t := range s.Disabled {
		if !known[t] {
			return fmt.Errorf("disabled: unknown flag type %q", t)
		}
	}
	for t, w := range s.Weights {
		if !known[t] {
			return fmt.Errorf("weights: unknown flag type %q", t)
		}
		if math.IsNaN(w) || w < 0 || w > 1 {
			return fmt.Errorf("weights: %s must be between 0 and 1, got %v", t, w)
		}
	}
	for _, r := range []struct {
		name     string
		v, lo, h float64
	}{
		{"face_absent_after_sec", s.FaceAbsentAfterSec, 0.5, 600},
		{"multiple_faces_after_sec", s.MultipleFacesAfterSec, 0.5, 600},
		{"max_frame_gap_sec", s.MaxFrameGapSec, 1, 600},
		{"login_opens_before_min", s.LoginOpensBeforeMin, 1, 24 * 60},
		{"enter_opens_before_min", s.EnterOpensBeforeMin, 1, 24 * 60},
		{"sheet_window_min", s.SheetWindowMin, 1, 24 * 60},
		{"scan_within_min", s.ScanWithinMin, 0.5, 24 * 60},
		{"scan_min_degrees", s.ScanMinDegrees, 30, 360},
		{"evidence_max_gap_sec", s.EvidenceMaxGapSec, 1, 3600},
		{"upload_within_min", s.UploadWithinMin, 1, 7 * 24 * 60},
		{"identity_mismatch_after_sec", s.IdentityMismatchAfterSec, 0.5, 600},
		{"identity_threshold", s.IdentityThreshold, 0.05, 0.99},
		{"looking_away_after_sec", s.LookingAwayAfterSec, 0.5, 600},
		{"yaw_limit_deg", s.YawLimitDeg, 5, 90},
		{"pitch_limit_deg", s.PitchLimitDeg, 5, 90},
	} {
		if r.v != 0 && (math.IsNaN(r.v) || r.v < r.lo || r.v > r.h) {
			return fmt.Errorf("%s must be between %v and %v (or 0 for the default), got %v", r.name, r.lo, r.h, r.v)
		}
	}
	return nil
}

// ForExam returns an engine with the settings applied over this engine's configuration. The
// result never looks settings up again.
func (e *Engine) ForExam(s ExamSettings) *Engine {
	c := e.cfg
	sec := func(d *time.Duration, v float64, unit time.Duration) {
		if v > 0 {
			*d = time.Duration(v * float64(unit))
		}
	}
	sec(&c.FaceAbsentAfter, s.FaceAbsentAfterSec, time.Second)
	sec(&c.MultipleFacesAfter, s.MultipleFacesAfterSec, time.Second)
	sec(&c.MaxFrameGap, s.MaxFrameGapSec, time.Second)
	sec(&c.Timing.LoginOpensBefore, s.LoginOpensBeforeMin, time.Minute)
	sec(&c.Timing.EnterOpensBefore, s.EnterOpensBeforeMin, time.Minute)
	sec(&c.Timing.SheetWindow, s.SheetWindowMin, time.Minute)
	sec(&c.Timing.ScanWithin, s.ScanWithinMin, time.Minute)
	sec(&c.Timing.EvidenceMaxGap, s.EvidenceMaxGapSec, time.Second)
	sec(&c.Timing.UploadWithin, s.UploadWithinMin, time.Minute)
	sec(&c.Vision.IdentityMismatchAfter, s.IdentityMismatchAfterSec, time.Second)
	sec(&c.Vision.LookingAwayAfter, s.LookingAwayAfterSec, time.Second)
	for _, o := range []struct {
		dst *float64
		v   float64
	}{{&c.Timing.ScanMinDegrees, s.ScanMinDegrees},
		{&c.Vision.IdentityThreshold, s.IdentityThreshold}, {&c.Vision.YawLimit, s.YawLimitDeg}, {&c.Vision.PitchLimit, s.PitchLimitDeg}} {
		if o.v > 0 {
			*o.dst = o.v
		}
	}
	if len(s.Weights) > 0 {
		w := maps.Clone(c.Weights)
		maps.Copy(w, s.Weights)
		c.Weights = w
	}
	out := &Engine{cfg: c}
	if len(s.Disabled) > 0 {
		out.disabled = make(map[string]bool, len(s.Disabled))
		for _, t := range s.Disabled {
			out.disabled[t] = true
		}
	}
	return out
}

// Enabled reports whether the check raising flagType is on.
func (e *Engine) Enabled(flagType string) bool { return !e.disabled[flagType] }

// SettingsSource loads an exam's settings; found is false when the exam has none. It gets the
// caller's *gorm.DB so a lookup inside a transaction uses that transaction's connection.
type SettingsSource func(db *gorm.DB, orgID, examID string) (s ExamSettings, found bool, err error)

// StoreSettings reads settings from the store's exam_settings table.
func StoreSettings(db *gorm.DB, orgID, examID string) (ExamSettings, bool, error) {
	var s ExamSettings
	row, err := store.GetExamSetting(db, orgID, examID)
	if errors.Is(err, store.ErrNotFound) {
		return s, false, nil
	}
	if err != nil {
		return s, false, err
	}
	if err := json.Unmarshal([]byte(row.Settings), &s); err != nil {
		return s, false, fmt.Errorf("settings of exam %s/%s: %w", orgID, examID, err)
	}
	return s, true, nil
}

// settingsCache keeps each exam's effective engine for a short TTL: the per-frame hot path looks
// it up on every frame, and a database read per frame would cost more than the rules.
type settingsCache struct {
	load SettingsSource
	ttl  time.Duration
	m    sync.Map // orgID + "\x00" + examID → *cachedEngine
}

type cachedEngine struct {
	eng     *Engine
	expires int64 // unix ns
}

// WithSettings returns an engine that applies each exam's stored settings (see ForExam), cached
// for ttl (default 15 s: a change on the settings page reaches every worker within that).
func (e *Engine) WithSettings(load SettingsSource, ttl time.Duration) *Engine {
	if ttl <= 0 {
		ttl = 15 * time.Second
	}
	out := *e
	out.settings = &settingsCache{load: load, ttl: ttl}
	return &out
}

// Effective returns the engine to use for one exam of an organisation: this one with the exam's
// settings applied, or this one unchanged when no settings source is configured.
func (e *Engine) Effective(db *gorm.DB, orgID, examID string) (*Engine, error) {
	c := e.settings
	if c == nil {
		return e, nil
	}
	key := orgID + "\x00" + examID
	now := time.Now().UnixNano()
	if v, ok := c.m.Load(key); ok {
		if ce := v.(*cachedEngine); ce.expires > now {
			return ce.eng, nil
		}
	}
	s, found, err := c.load(db, orgID, examID)
	if err != nil {
		return nil, err
	}
	base := *e
	base.settings = nil
	eng := &base
	if found {
		eng = base.ForExam(s)
	}
	c.m.Store(key, &cachedEngine{eng: eng, expires: now + int64(c.ttl)})
	return eng, nil
}

// ForgetSettings drops an exam's cached engine, so this process uses new settings at once
// (other processes within the TTL).
func (e *Engine) ForgetSettings(orgID, examID string) {
	if e.settings != nil {
		e.settings.m.Delete(orgID + "\x00" + examID)
	}
}
