package rules

import (
	"encoding/json"
	"time"

	"proctor/store"
)

// Exam phases, in order (DESIGN.md §1 steps). Every frame and flag is stamped with one.
const (
	PhaseRegistered  = "registered"  // session created, nothing done yet
	PhaseLogin       = "login"       // step 2: face login
	PhasePreparation = "preparation" // steps 3–5: evidence phone, room scan, A4 sheet, lottery, attachments
	PhaseWaiting     = "waiting"     // steps 6–7: entered the exam, devices confirmed, countdown
	PhaseAnswering   = "answering"   // step 8: questions shown, oral answers
	PhaseEnded       = "ended"       // step 9: recording stopped, uploads pending
	PhaseClosed      = "closed"      // both recordings uploaded
)

var phaseOrder = []string{PhaseRegistered, PhaseLogin, PhasePreparation, PhaseWaiting, PhaseAnswering, PhaseEnded, PhaseClosed}

// phaseOf maps the events that move a session forward to the phase they start.
var phaseOf = map[string]string{
	"face_login":                 PhaseLogin,
	"evidence_bound":             PhasePreparation,
	"evidence_recording_started": PhasePreparation,
	"room_scan_started":          PhasePreparation,
	"room_scan_completed":        PhasePreparation,
	"a4_sheet_shown":             PhasePreparation,
	"lottery_drawn":              PhasePreparation,
	"lottery_auto_assigned":      PhasePreparation,
	"attachment_read":            PhasePreparation,
	"exam_entered":               PhaseWaiting,
	"devices_confirmed":          PhaseWaiting,
	"waiting_started":            PhaseWaiting,
	"answering_started":          PhaseAnswering,
	"question_shown":             PhaseAnswering,
	"exam_ended":                 PhaseEnded,
}

// Event classes: technical events are shown to reviewers but never raise a flag or add risk.
const (
	ClassFlow      = "flow"      // the exam's normal steps
	ClassIntegrity = "integrity" // may be cheating: window switching, screenshots, screens
	ClassTechnical = "technical" // network, help, uploads retried, devices changed
)

// EventClass says how reviewers should read an event type.
func EventClass(eventType string) string {
	switch eventType {
	case "focus_lost", "window_switched", "screenshot_attempted", "multiple_screens_detected", "evidence_recording_stopped":
		return ClassIntegrity
	case "network_lost", "network_restored", "help_requested", "upload_failed", "device_changed", "upload_started":
		return ClassTechnical
	}
	return ClassFlow
}

// PhaseSpan is one phase with its start and end (ms since epoch; End 0 = still running).
type PhaseSpan struct {
	Phase   string `json:"phase"`
	StartMs int64  `json:"start_ms"`
	EndMs   int64  `json:"end_ms,omitempty"`
}

// Phases computes the session's phases from its events (by captured_at, so late events land where
// they belong) and its schedule: answering starts at the scheduled start at the latest, and ends
// at the scheduled end at the latest.
func Phases(sess *store.Session, events []store.Event) []PhaseSpan {
	start := make(map[string]int64, len(phaseOrder))
	set := func(p string, t int64) {
		if cur, ok := start[p]; !ok || t < cur {
			start[p] = t
		}
	}
	set(PhaseRegistered, sess.CreatedAt.UnixMilli())
	uploaded := map[string]int64{}
	for _, e := range events {
		if p, ok := phaseOf[e.Type]; ok {
			set(p, e.CapturedAtMs)
		}
		if e.Type == "upload_completed" {
			if cam := payloadString(e.Payload, "camera"); cam != "" {
				if t, ok := uploaded[cam]; !ok || e.CapturedAtMs < t {
					uploaded[cam] = e.CapturedAtMs
				}
			}
		}
	}
	if !sess.ScheduledStart.IsZero() {
		set(PhaseAnswering, sess.ScheduledStart.UnixMilli())
		if sess.DurationSec > 0 {
			set(PhaseEnded, sess.ScheduledStart.Add(time.Duration(sess.DurationSec)*time.Second).UnixMilli())
		}
	}
	if m, ok1 := uploaded["main"]; ok1 {
		if ev, ok2 := uploaded["evidence"]; ok2 {
			set(PhaseClosed, max(m, ev))
		}
	}
	// The session exists before anything happens in it (the platform may create it late).
	for _, t := range start {
		start[PhaseRegistered] = min(start[PhaseRegistered], t)
	}
	// A phase that starts no later than an earlier phase (a late login after entering) is
	// shadowed by the later one: a session never goes back.
	var spans []PhaseSpan
	for _, p := range phaseOrder {
		t, ok := start[p]
		if !ok {
			continue
		}
		for len(spans) > 1 && spans[len(spans)-1].StartMs >= t {
			spans = spans[:len(spans)-1]
		}
		spans = append(spans, PhaseSpan{Phase: p, StartMs: t})
	}
	for i := range len(spans) - 1 {
		spans[i].EndMs = spans[i+1].StartMs
	}
	return spans
}

// PhaseAt returns the phase at time t (ms).
func PhaseAt(spans []PhaseSpan, t int64) string {
	phase := PhaseRegistered
	for _, s := range spans {
		if s.StartMs <= t {
			phase = s.Phase
		}
	}
	return phase
}

func payloadString(payload, key string) string {
	if payload == "" {
		return ""
	}
	var m map[string]any
	if json.Unmarshal([]byte(payload), &m) != nil {
		return ""
	}
	s, _ := m[key].(string)
	return s
}

func payloadInt(payload, key string) (int, bool) {
	if payload == "" {
		return 0, false
	}
	var m map[string]any
	if json.Unmarshal([]byte(payload), &m) != nil {
		return 0, false
	}
	f, ok := m[key].(float64)
	return int(f), ok
}

// BeforeAnswering reports whether a session in this phase has not started answering yet (face
// login, preparation, the wait): the identity check builds its gallery then.
func BeforeAnswering(phase string) bool {
	switch phase {
	case "", PhaseRegistered, PhaseLogin, PhasePreparation, PhaseWaiting:
		return true
	}
	return false
}

// AnsweringStart is when the session's answering began (ms): the earliest of the answering
// phase's start as last computed from its events (Session.Phases) and the scheduled start; 0
// when neither is known.
func AnsweringStart(sess *store.Session) int64 {
	var start int64
	if !sess.ScheduledStart.IsZero() {
		start = sess.ScheduledStart.UnixMilli()
	}
	if sess.Phases != "" {
		var spans []PhaseSpan
		if json.Unmarshal([]byte(sess.Phases), &spans) == nil {
			for _, s := range spans {
				if s.Phase == PhaseAnswering && s.StartMs > 0 && (start == 0 || s.StartMs < start) {
					start = s.StartMs
				}
			}
		}
	}
	return start
}
