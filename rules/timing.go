package rules

import (
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"gorm.io/gorm"

	"proctor/store"
)

// Flag types raised by the exam-flow timing rules (DESIGN.md §1).
const (
	LoginOutsideWindow  = "LOGIN_OUTSIDE_WINDOW" // face login before it opens (60 min) or after the start
	EnteredBeforeOpen   = "ENTERED_BEFORE_OPEN"  // "enter exam" before it opens (15 min before)
	EnteredAfterStart   = "ENTERED_AFTER_START"  // no entry after the start
	AttachmentsNotRead  = "ATTACHMENTS_NOT_READ" // entered before reading every attachment
	SheetNotShown       = "A4_NOT_SHOWN"         // sheet not shown front and back in the 15 min before the start
	NoRoomScan          = "NO_ROOM_SCAN"         // no 360° scan at the start of the evidence recording
	EvidenceGap         = "EVIDENCE_GAP"         // evidence recording interrupted longer than allowed
	EvidenceStopped     = "EVIDENCE_STOPPED"     // phone stopped recording before the end
	UploadLate          = "UPLOAD_LATE"          // recording not uploaded within 30 min after the end
	WindowSwitch        = "WINDOW_SWITCH"        // focus lost / window switched while answering
	ScreenshotAttempted = "SCREENSHOT_ATTEMPTED" // screenshot while answering
	MultipleScreens     = "MULTIPLE_SCREENS"     // a second display while answering
)

// timingTypes are the flag types this file owns: a later evaluation may withdraw an open one
// (e.g. UPLOAD_LATE once a late-arriving event shows the upload finished in time).
var timingTypes = []string{LoginOutsideWindow, EnteredBeforeOpen, EnteredAfterStart, AttachmentsNotRead,
	SheetNotShown, NoRoomScan, EvidenceGap, EvidenceStopped, UploadLate, WindowSwitch, ScreenshotAttempted, MultipleScreens}

// TimingConfig holds the exam-flow windows. Zero values take the defaults, which are the exam's
// published rules.
type TimingConfig struct {
	LoginOpensBefore time.Duration // default 60 min
	EnterOpensBefore time.Duration // default 15 min
	SheetWindow      time.Duration // sheet shown within this long before the start; default 15 min
	// ScanWithin: the room scan must happen within this long of the evidence recording's start.
	// Default 5 min.
	ScanWithin time.Duration
	// ScanMinDegrees of camera rotation count as a full room scan when the platform sends no
	// room_scan_completed event. Default 300: a hand-held turn rarely measures a clean 360.
	ScanMinDegrees float64
	EvidenceMaxGap time.Duration // default 30 s
	UploadWithin   time.Duration // default 30 min after the end
}

func (c TimingConfig) withDefaults() TimingConfig {
	def := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.LoginOpensBefore, 60*time.Minute)
	def(&c.EnterOpensBefore, 15*time.Minute)
	def(&c.SheetWindow, 15*time.Minute)
	def(&c.ScanWithin, 5*time.Minute)
	def(&c.EvidenceMaxGap, 30*time.Second)
	def(&c.UploadWithin, 30*time.Minute)
	if c.ScanMinDegrees == 0 {
		c.ScanMinDegrees = 300
	}
	return c
}

var timingSeverity = map[string]string{
	EnteredAfterStart: store.SeverityAlert, EvidenceGap: store.SeverityAlert, EvidenceStopped: store.SeverityAlert,
	WindowSwitch: store.SeverityAlert, ScreenshotAttempted: store.SeverityAlert, MultipleScreens: store.SeverityAlert,
}

// EvidenceFrame is what the timing rules need of one evidence-camera frame.
type EvidenceFrame struct {
	Seq          int64
	CapturedAtMs int64
	Sheet        int8    // 0 none, 1 blank sheet, 2 sheet with writing
	YawDelta     float32 // degrees turned since the previous evidence frame
}

// TimingInput is everything the timing rules look at.
type TimingInput struct {
	Session  *store.Session
	Events   []store.Event   // by captured_at
	Evidence []EvidenceFrame // by captured_at
	Now      time.Time
}

// FlagSpec is a flag the timing rules say should exist.
type FlagSpec struct {
	Type, Camera   string
	StartMs, EndMs int64
	Details        map[string]any
}

// Timing evaluates every exam-flow rule. It is a pure function of its input, so it can run again
// whenever a late event or frame arrives; rules whose deadline is still ahead say nothing yet.
func (e *Engine) Timing(in TimingInput) []FlagSpec {
	c := e.cfg.Timing
	sess := in.Session
	now := in.Now.UnixMilli()
	start := sess.ScheduledStart.UnixMilli()
	end := start + int64(sess.DurationSec)*1000
	ms := func(d time.Duration) int64 { return d.Milliseconds() }
	var out []FlagSpec
	flag := func(typ, camera string, from, to int64, details map[string]any) {
		if !e.disabled[typ] { // a check switched off in the exam's settings
			out = append(out, FlagSpec{typ, camera, from, to, details})
		}
	}

	first := map[string]*store.Event{}
	for i := range in.Events {
		ev := &in.Events[i]
		if _, ok := first[ev.Type]; !ok {
			first[ev.Type] = ev
		}
	}
	spans := Phases(sess, in.Events)

	if ev := first["face_login"]; ev != nil {
		if ev.CapturedAtMs < start-ms(c.LoginOpensBefore) || ev.CapturedAtMs > start {
			flag(LoginOutsideWindow, "main", ev.CapturedAtMs, ev.CapturedAtMs, map[string]any{
				"minutes_before_start": float64(start-ev.CapturedAtMs) / 60000, "window_minutes": c.LoginOpensBefore.Minutes()})
		}
	}
	if ev := first["exam_entered"]; ev != nil {
		if ev.CapturedAtMs < start-ms(c.EnterOpensBefore) {
			flag(EnteredBeforeOpen, "main", ev.CapturedAtMs, ev.CapturedAtMs, map[string]any{
				"minutes_before_start": float64(start-ev.CapturedAtMs) / 60000})
		}
		if ev.CapturedAtMs > start {
			flag(EnteredAfterStart, "main", ev.CapturedAtMs, ev.CapturedAtMs, map[string]any{
				"seconds_late": float64(ev.CapturedAtMs-start) / 1000})
		}
		if sess.Attachments > 0 {
			read := map[string]bool{}
			for _, a := range in.Events {
				if a.Type == "attachment_read" && a.CapturedAtMs <= ev.CapturedAtMs {
					read[payloadString(a.Payload, "attachment")] = true
				}
			}
			if len(read) < sess.Attachments {
				flag(AttachmentsNotRead, "main", ev.CapturedAtMs, ev.CapturedAtMs, map[string]any{
					"read": len(read), "required": sess.Attachments})
			}
		}
	}

	// The A4 sheet, front and back, in the window before the start: from the platform's events
	// or, failing those, from the evidence camera (two separate sightings of a blank sheet: it
	// was turned over in between).
	if now >= start {
		from := start - ms(c.SheetWindow)
		sides := map[string]bool{}
		for _, ev := range in.Events {
			if ev.Type == "a4_sheet_shown" && ev.CapturedAtMs >= from && ev.CapturedAtMs <= start {
				sides[payloadString(ev.Payload, "side")] = true
			}
		}
		sightings, seen := 0, false
		for _, f := range in.Evidence {
			if f.CapturedAtMs < from || f.CapturedAtMs > start {
				continue
			}
			blank := f.Sheet == 1
			if blank && !seen {
				sightings++
			}
			seen = blank
		}
		if !(sides["front"] && sides["back"]) && sightings < 2 {
			flag(SheetNotShown, "evidence", from, start, map[string]any{
				"sides_reported": keys(sides), "camera_sightings": sightings})
		}
	}

	// The room scan: reported by the platform, or measured as camera rotation at the start of
	// the evidence recording.
	if rec := evidenceStart(first, in.Evidence); rec > 0 && (now >= rec+ms(c.ScanWithin) || now >= start) {
		if first["room_scan_completed"] == nil {
			var yaw []float32
			for _, f := range in.Evidence {
				if f.CapturedAtMs >= rec && f.CapturedAtMs <= rec+ms(c.ScanWithin) {
					yaw = append(yaw, f.YawDelta)
				}
			}
			if cov := coverage(yaw); cov < c.ScanMinDegrees {
				flag(NoRoomScan, "evidence", rec, rec+ms(c.ScanWithin), map[string]any{
					"degrees_covered": cov, "required_degrees": c.ScanMinDegrees})
			}
		}
	}

	// Evidence recording gaps, from the evidence frames' own timestamps: between frames, and
	// from the last frame to the end once the exam is over.
	if n := len(in.Evidence); n > 0 {
		gap := ms(c.EvidenceMaxGap)
		prev := in.Evidence[0].CapturedAtMs
		for _, f := range in.Evidence[1:] {
			if f.CapturedAtMs-prev > gap && prev < end {
				flag(EvidenceGap, "evidence", prev, f.CapturedAtMs, map[string]any{"seconds": float64(f.CapturedAtMs-prev) / 1000})
			}
			prev = f.CapturedAtMs
		}
		if now >= end && end-prev > gap {
			flag(EvidenceGap, "evidence", prev, end, map[string]any{"seconds": float64(end-prev) / 1000, "until_end": true})
		}
	}
	if ev := first["evidence_recording_stopped"]; ev != nil && ev.CapturedAtMs < end {
		ended := first["exam_ended"]
		if ended == nil || ev.CapturedAtMs < ended.CapturedAtMs {
			flag(EvidenceStopped, "evidence", ev.CapturedAtMs, end, nil)
		}
	}

	// Uploads confirmed within 30 min after the end. Judged only once the deadline passed (the
	// scheduler wakes up for it), by the upload's own captured_at: an upload confirmed in time
	// whose event arrives late withdraws the flag.
	if deadline := end + ms(c.UploadWithin); now >= deadline {
		done := map[string]bool{}
		for _, ev := range in.Events {
			if ev.Type == "upload_completed" && ev.CapturedAtMs <= deadline {
				done[payloadString(ev.Payload, "camera")] = true
			}
		}
		for _, cam := range []string{"main", "evidence"} {
			if !done[cam] {
				flag(UploadLate, cam, end, deadline, map[string]any{"within_minutes": c.UploadWithin.Minutes()})
			}
		}
	}

	// Window switching, screenshots and extra screens count while answering.
	for _, ev := range in.Events {
		typ := map[string]string{"focus_lost": WindowSwitch, "window_switched": WindowSwitch,
			"screenshot_attempted": ScreenshotAttempted, "multiple_screens_detected": MultipleScreens}[ev.Type]
		if typ != "" && PhaseAt(spans, ev.CapturedAtMs) == PhaseAnswering {
			flag(typ, "main", ev.CapturedAtMs, ev.CapturedAtMs, map[string]any{"event": ev.Type, "event_seq": ev.Seq})
		}
	}
	return out
}

// evidenceStart is when the evidence recording began: the platform's event, else its first frame.
func evidenceStart(first map[string]*store.Event, frames []EvidenceFrame) int64 {
	if ev := first["evidence_recording_started"]; ev != nil {
		return ev.CapturedAtMs
	}
	if len(frames) > 0 {
		return frames[0].CapturedAtMs
	}
	return 0
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

// nextDeadline is the next moment after now at which a timing rule can change its mind with no
// new input: the start, the end, the scan window and the upload deadline.
func (e *Engine) nextDeadline(in TimingInput) int64 {
	c := e.cfg.Timing
	start := in.Session.ScheduledStart.UnixMilli()
	end := start + int64(in.Session.DurationSec)*1000
	now := in.Now.UnixMilli()
	var next int64
	for _, t := range []int64{start, end, end + c.UploadWithin.Milliseconds(), evidenceStartOf(in) + c.ScanWithin.Milliseconds()} {
		if t > now && (next == 0 || t < next) {
			next = t
		}
	}
	return next
}

func evidenceStartOf(in TimingInput) int64 {
	first := map[string]*store.Event{}
	for i := range in.Events {
		if _, ok := first[in.Events[i].Type]; !ok {
			first[in.Events[i].Type] = &in.Events[i]
		}
	}
	if s := evidenceStart(first, in.Evidence); s > 0 {
		return s
	}
	return -1 << 40
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
	in := TimingInput{Session: &sess, Now: now}
	if err := tx.Where("session_id = ?", sessionID).Order("captured_at_ms").Order("seq").Find(&in.Events).Error; err != nil {
		return err
	}
	if err := tx.Model(&store.FrameResult{}).Select("seq, captured_at_ms, sheet, yaw_delta").
		Where("session_id = ? AND camera = ?", sessionID, "evidence").Order("captured_at_ms").Order("seq").
		Find(&in.Evidence).Error; err != nil {
		return err
	}
	specs := e.Timing(in)

	var existing []store.Flag
	if err := tx.Where("session_id = ? AND type IN ?", sessionID, timingTypes).Find(&existing).Error; err != nil {
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
	spans := Phases(&sess, in.Events)
	for _, s := range specs {
		details, _ := json.Marshal(s.Details)
		k := key{s.Type, s.Camera, s.StartMs}
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
		sev := timingSeverity[s.Type]
		if sev == "" {
			sev = store.SeverityDetection
		}
		f := store.Flag{SessionID: sessionID, Type: s.Type, Camera: s.Camera, StartMs: s.StartMs, EndMs: s.EndMs,
			Severity: sev, Confidence: 1, ModelVersion: "exam-flow-rules", Status: store.StatusOpen,
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
	if err := RecomputeRisk(tx, sessionID, e.cfg.Weights); err != nil {
		return err
	}
	return tx.Model(&store.Session{}).Where("id = ?", sessionID).
		Update("next_check_at_ms", e.nextDeadline(in)).Error
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
