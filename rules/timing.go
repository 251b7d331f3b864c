package rules

import (
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"gorm.io/gorm"

	"proctor/analyzers"
	"proctor/store"
)

// FlagSpec is a flag an exam-flow check says should exist.
type FlagSpec struct {
	Type, Camera   string
	StartMs, EndMs int64
	Details        map[string]any
}

// TimingView is everything the exam-flow checks look at, in one clock (client ms).
type TimingView struct {
	Session    *store.Session
	Events     []store.Event // by captured_at
	Evidence   []Frame       // the evidence camera's frames with their signals, by captured_at
	Now        int64
	Start, End int64 // the exam's scheduled start and end
	Spans      []PhaseSpan
	first      map[string]*store.Event
}

func newTimingView(sess *store.Session, events []store.Event, evidence []Frame, now int64) *TimingView {
	v := &TimingView{Session: sess, Events: events, Evidence: evidence, Now: now,
		Start: sess.ScheduledStart.UnixMilli(), first: map[string]*store.Event{}}
	v.End = v.Start + int64(sess.DurationSec)*1000
	for i := range events {
		if _, ok := v.first[events[i].Type]; !ok {
			v.first[events[i].Type] = &events[i]
		}
	}
	v.Spans = Phases(sess, events)
	return v
}

// First is the earliest event of a type, nil if none came.
func (v *TimingView) First(eventType string) *store.Event { return v.first[eventType] }

// EvidenceStart is when the evidence recording began: the platform's event, else its first
// frame; 0 when neither is known.
func (v *TimingView) EvidenceStart() int64 {
	if ev := v.First("evidence_recording_started"); ev != nil {
		return ev.CapturedAtMs
	}
	if len(v.Evidence) > 0 {
		return v.Evidence[0].CapturedAtMs
	}
	return 0
}

// Timing evaluates every exam-flow check that is on. It is a pure function of its input, so
// it can run again whenever a late event or frame arrives; checks whose deadline is still ahead
// say nothing yet.
func (e *Engine) Timing(v *TimingView) []FlagSpec {
	var out []FlagSpec
	raise := func(f FlagSpec) {
		if !e.disabled[f.Type] { // a check switched off in the exam's settings
			out = append(out, f)
		}
	}
	for _, c := range checks {
		if c.Input == InputEvents {
			c.Timing(v, e.params, raise)
		}
	}
	return out
}

// nextDeadline is the next moment after now at which an exam-flow check can change its mind
// with no new input.
func (e *Engine) nextDeadline(v *TimingView) int64 {
	var next int64
	for _, c := range checks {
		if c.Input != InputEvents || c.Deadlines == nil {
			continue
		}
		for _, t := range c.Deadlines(v, e.params) {
			if t > v.Now && (next == 0 || t < next) {
				next = t
			}
		}
	}
	return next
}

// ApplyTiming loads a session's events and evidence frames, evaluates the timing rules at now,
// reconciles the flags (creating new ones, withdrawing open ones the rules no longer raise),
// restamps phases, recomputes the risk and schedules the next check. Run it in a transaction.
func (e *Engine) ApplyTiming(tx *gorm.DB, sessionID string, now time.Time) error {
	var sess store.Session
	if err := tx.Omit("registration_photo").Take(&sess, "id = ?", sessionID).Error; err != nil {
		return fmt.Errorf("load session %s: %w", sessionID, err)
	}
	e, err := e.Effective(tx, sess.OrgID, sess.ExamID) // the exam's own settings
	if err != nil {
		return err
	}
	var events []store.Event
	if err := tx.Where("session_id = ?", sessionID).Order("captured_at_ms").Order("seq").Find(&events).Error; err != nil {
		return err
	}
	rows, err := store.CameraFrames(tx, sessionID, analyzers.CameraEvidence)
	if err != nil {
		return err
	}
	evidence := make([]Frame, len(rows))
	for i, r := range rows {
		if evidence[i], err = parseFrame(r); err != nil {
			return err
		}
	}
	v := newTimingView(&sess, events, evidence, now.UnixMilli())
	specs := e.Timing(v)

	var existing []store.Flag
	if err := tx.Where("session_id = ? AND type IN ?", sessionID, flagTypesOf(InputEvents)).Find(&existing).Error; err != nil {
		return err
	}
	type key struct {
		typ, camera string
		start       int64
	}
	have := make(map[key]store.Flag, len(existing))
	for _, f := range existing {
		have[key{f.Type, f.Camera, f.StartMs}] = f
	}
	spans := v.Spans
	made := make(map[key]bool, len(specs))
	for _, s := range specs {
		details, _ := json.Marshal(s.Details)
		k := key{s.Type, s.Camera, s.StartMs}
		if made[k] {
			// Two causes of one flag at one instant (focus_lost and window_switched from the
			// same switch): the flag's unique key allows it once.
			continue
		}
		made[k] = true
		if f, ok := have[k]; ok {
			delete(have, k)
			if f.EndMs != s.EndMs || f.Details != string(details) {
				if err := tx.Model(&store.Flag{}).Where("id = ?", f.ID).
					Updates(map[string]any{"end_ms": s.EndMs, "details": string(details)}).Error; err != nil {
					return err
				}
			}
			continue
		}
		f := store.Flag{SessionID: sessionID, Type: s.Type, Camera: s.Camera, StartMs: s.StartMs, EndMs: s.EndMs,
			Severity: Severity(s.Type), Confidence: 1, ModelVersion: "exam-flow-rules", Status: store.StatusOpen,
			Phase: PhaseAt(spans, s.StartMs), Details: string(details)}
		if err := tx.Create(&f).Error; err != nil {
			return err
		}
	}
	// What is left was raised on incomplete information and no longer holds. Reviewed flags stay:
	// a reviewer's decision is never erased.
	for _, f := range have {
		if f.Status == store.StatusOpen {
			if err := tx.Delete(&store.Flag{}, f.ID).Error; err != nil {
				return err
			}
		}
	}
	if err := restampPhases(tx, &sess, spans, now); err != nil {
		return err
	}
	if err := RecomputeRisk(tx, sessionID, e.weights); err != nil {
		return err
	}
	return tx.Model(&store.Session{}).Where("id = ?", sessionID).
		Update("next_check_at_ms", e.nextDeadline(v)).Error
}

// restampPhases stamps every frame and flag of the session with the phase it happened in, and
// the session with its phase now. Rows already right are not touched, so a run where nothing
// moved costs a few indexed scans.
func restampPhases(tx *gorm.DB, sess *store.Session, spans []PhaseSpan, now time.Time) error {
	for i, s := range spans {
		lo, hi := s.StartMs, s.EndMs
		if i == 0 {
			lo = -1 << 62
		}
		if hi == 0 {
			hi = 1 << 62
		}
		for _, m := range []struct {
			model any
			col   string
		}{{&store.FrameResult{}, "captured_at_ms"}, {&store.Flag{}, "start_ms"}} {
			if err := tx.Model(m.model).
				Where("session_id = ? AND "+m.col+" >= ? AND "+m.col+" < ? AND phase <> ?", sess.ID, lo, hi, s.Phase).
				Update("phase", s.Phase).Error; err != nil {
				return err
			}
		}
	}
	js, _ := json.Marshal(spans)
	return tx.Model(&store.Session{}).Where("id = ?", sess.ID).
		Updates(map[string]any{"phases": string(js), "phase": PhaseAt(spans, now.UnixMilli())}).Error
}

// coverage is the angle swept by a camera turning by the given steps: the span of its
// cumulative heading, so turning back and forth does not count twice.
func coverage(steps []float32) float64 {
	var heading, lo, hi float64
	for _, d := range steps {
		heading += float64(d)
		lo, hi = min(lo, heading), max(hi, heading)
	}
	return min(hi-lo, 360)
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		if k != "" {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}
