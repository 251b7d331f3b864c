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
//
// Its JSON is flat: {"disabled": [...], "weights": {...}, "<setting key>": value, ...}, one key
// per declared setting (Settings()), in the setting's unit.
type ExamSettings struct {
	// Disabled lists flag types whose check is off for this exam: they raise no flag.
	Disabled []string
	// Weights overrides the risk weight of flag types (0..1); types not listed keep theirs.
	Weights map[string]float64
	// Values overrides declared settings by key; 0 or absent keeps the service's value.
	Values Params
}

// MarshalJSON writes the flat form, leaving out what is not set.
func (s ExamSettings) MarshalJSON() ([]byte, error) {
	m := make(map[string]any, len(s.Values)+2)
	for k, v := range s.Values {
		if v != 0 {
			m[k] = v
		}
	}
	if len(s.Disabled) > 0 {
		m["disabled"] = s.Disabled
	}
	if len(s.Weights) > 0 {
		m["weights"] = s.Weights
	}
	return json.Marshal(m)
}

// UnmarshalJSON reads the flat form. A key that is neither "disabled", "weights" nor a declared
// setting is an error, so a typo on the settings API is not silently ignored.
func (s *ExamSettings) UnmarshalJSON(b []byte) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	*s = ExamSettings{}
	for k, v := range raw {
		var err error
		switch k {
		case "disabled":
			err = json.Unmarshal(v, &s.Disabled)
		case "weights":
			err = json.Unmarshal(v, &s.Weights)
		default:
			if _, ok := settingByKey[k]; !ok {
				return fmt.Errorf("json: unknown field %q", k)
			}
			var f float64
			if err = json.Unmarshal(v, &f); err == nil {
				if s.Values == nil {
					s.Values = Params{}
				}
				s.Values[k] = f
			}
		}
		if err != nil {
			return fmt.Errorf("%s: %w", k, err)
		}
	}
	return nil
}

// Validate says what is wrong with settings an admin submitted.
func (s ExamSettings) Validate() error {
	for _, t := range s.Disabled {
		if _, ok := checkOfFlag[t]; !ok {
			return fmt.Errorf("disabled: unknown flag type %q", t)
		}
	}
	for _, t := range slices.Sorted(maps.Keys(s.Weights)) {
		w := s.Weights[t]
		if _, ok := checkOfFlag[t]; !ok {
			return fmt.Errorf("weights: unknown flag type %q", t)
		}
		if math.IsNaN(w) || w < 0 || w > 1 {
			return fmt.Errorf("weights: %s must be between 0 and 1, got %v", t, w)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(s.Values)) {
		set, ok := settingByKey[k]
		if !ok {
			return fmt.Errorf("unknown setting %q", k)
		}
		if err := set.valid(s.Values[k]); err != nil {
			return err
		}
	}
	return nil
}

// ForExam returns an engine with the settings applied over this engine's configuration. The
// result never looks settings up again.
func (e *Engine) ForExam(s ExamSettings) *Engine {
	p := maps.Clone(e.params)
	for k, v := range s.Values {
		if _, ok := settingByKey[k]; ok && v > 0 {
			p[k] = v
		}
	}
	w := e.weights
	if len(s.Weights) > 0 {
		w = maps.Clone(e.weights)
		maps.Copy(w, s.Weights)
	}
	out := &Engine{params: p, weights: w, overrides: s.Values}
	if len(s.Disabled) > 0 {
		out.disabled = make(map[string]bool, len(s.Disabled))
		for _, t := range s.Disabled {
			out.disabled[t] = true
		}
	}
	out.frames = out.buildFrameRules()
	return out
}

// Override is the exam's own value of a setting, if its settings set one (engines from ForExam).
func (e *Engine) Override(key string) (float64, bool) {
	v, ok := e.overrides[key]
	return v, ok && v > 0
}

// Defaults is the settings an exam gets without overrides, in ExamSettings' form: every
// declared setting's value in force and every flag type's weight (the settings page shows them
// beside the exam's own values).
func (e *Engine) Defaults() ExamSettings {
	return ExamSettings{Values: maps.Clone(e.params), Weights: maps.Clone(e.weights)}
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
