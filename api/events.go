package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// EventTypes is the vocabulary of exam-flow and client events the platform may post, in the
// order of the exam's steps (DESIGN.md §1). The exam-flow state machine consumes them.
var EventTypes = []string{
	"face_login",                 // step 2: face login done
	"evidence_bound",             // step 3: phone bound by QR or binding code
	"evidence_recording_started", // step 3: phone starts recording
	"evidence_recording_stopped", // phone stopped recording (must not happen before the end)
	"room_scan_started",          // step 3: 360° scan begins
	"room_scan_completed",        // step 3: 360° scan done
	"a4_sheet_shown",             // step 3: sheet shown to the phone (data.side: front|back)
	"lottery_drawn",              // step 4: candidate drew a number
	"lottery_auto_assigned",      // step 4: number assigned automatically
	"attachment_read",            // step 5: data.attachment names it
	"exam_entered",               // step 6: "enter exam" clicked
	"devices_confirmed",          // step 7: camera and microphone chosen
	"waiting_started",            // step 7: countdown page
	"answering_started",          // step 8: questions appear
	"question_shown",             // step 8: data.question = n (1-based)
	"help_requested",             // technical: help button
	"focus_lost",                 // window lost focus
	"window_switched",            // switched to another window
	"screenshot_attempted",       // screenshot key or tool
	"multiple_screens_detected",  // a second display appeared
	"network_lost",               // technical
	"network_restored",           // technical
	"device_changed",             // technical: camera or microphone switched
	"exam_ended",                 // step 9: recording stops
	"upload_started",             // step 9: data.camera = main|evidence
	"upload_completed",           // step 9: data.camera = main|evidence
	"upload_failed",              // technical: will be retried
}

var knownEvents = func() map[string]bool {
	m := make(map[string]bool, len(EventTypes))
	for _, t := range EventTypes {
		m[t] = true
	}
	return m
}()

// payloadRules say which data fields an event type must carry.
var payloadRules = map[string]func(m map[string]any) error{
	"question_shown": func(m map[string]any) error {
		if q, ok := m["question"].(float64); !ok || q < 1 || q != float64(int(q)) {
			return errors.New(`question_shown needs data {"question": n} with n ≥ 1`)
		}
		return nil
	},
	"a4_sheet_shown":   oneOf("side", "front", "back"),
	"upload_started":   oneOf("camera", "main", "evidence"),
	"upload_completed": oneOf("camera", "main", "evidence"),
	"upload_failed":    oneOf("camera", "main", "evidence"),
	"attachment_read": func(m map[string]any) error {
		if a, ok := m["attachment"].(string); !ok || a == "" {
			return errors.New(`attachment_read needs data {"attachment": "name or id"}`)
		}
		return nil
	},
}

func oneOf(field string, values ...string) func(map[string]any) error {
	return func(m map[string]any) error {
		v, _ := m[field].(string)
		if slices.Contains(values, v) {
			return nil
		}
		return fmt.Errorf("needs data {%q: %s}", field, strings.Join(values, " | "))
	}
}

// validatePayload checks the data of an event whose type requires some.
func validatePayload(eventType string, data []byte) error {
	rule, ok := payloadRules[eventType]
	if !ok {
		return nil
	}
	var m map[string]any
	if len(data) == 0 || json.Unmarshal(data, &m) != nil {
		return rule(map[string]any{})
	}
	return rule(m)
}

// KnownEventType reports whether t is in the vocabulary.
func KnownEventType(t string) bool { return knownEvents[t] }
