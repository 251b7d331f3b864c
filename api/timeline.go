package api

import (
	"encoding/json"

	"github.com/gofiber/fiber/v2"

	"proctor/rules"
)

// timelineEvent is an event as the reviewer page shows it: with its class (flow, integrity,
// technical) and the phase it happened in.
type timelineEvent struct {
	Seq        int64           `json:"seq"`
	Type       string          `json:"type"`
	Class      string          `json:"class"`
	Phase      string          `json:"phase"`
	CapturedAt int64           `json:"captured_at"`
	ReceivedAt int64           `json:"received_at"`
	Data       json.RawMessage `json:"data,omitempty"`
}

// getTimeline is the backbone of the reviewer page: the session's phases, events, flags and
// uploads on one time axis (ms since epoch).
func (s *Server) getTimeline(c *fiber.Ctx) error {
	sess, err := s.sessionOf(c)
	if err != nil {
		return err
	}
	ctx := c.UserContext()
	events, err := s.store.SessionEvents(ctx, sess.ID)
	if err != nil {
		return err
	}
	flags, err := s.store.SessionFlags(ctx, sess.ID)
	if err != nil {
		return err
	}
	phases := rules.Phases(sess, events)
	out := make([]timelineEvent, 0, len(events))
	var technical int
	uploads := map[string]fiber.Map{}
	for _, e := range events {
		te := timelineEvent{Seq: e.Seq, Type: e.Type, Class: rules.EventClass(e.Type),
			Phase: rules.PhaseAt(phases, e.CapturedAtMs), CapturedAt: e.CapturedAtMs, ReceivedAt: e.ReceivedAtMs}
		if e.Payload != "" {
			te.Data = json.RawMessage(e.Payload)
		}
		if te.Class == rules.ClassTechnical {
			technical++
		}
		if e.Type == "upload_started" || e.Type == "upload_completed" || e.Type == "upload_failed" {
			var d struct {
				Camera string `json:"camera"`
			}
			_ = json.Unmarshal([]byte(e.Payload), &d)
			u := uploads[d.Camera]
			if u == nil {
				u = fiber.Map{"camera": d.Camera, "status": "started"}
				uploads[d.Camera] = u
			}
			switch e.Type {
			case "upload_started":
				u["started_at"] = e.CapturedAtMs
			case "upload_failed":
				u["status"], u["failed_at"] = "retrying", e.CapturedAtMs
			case "upload_completed":
				u["status"], u["completed_at"] = "completed", e.CapturedAtMs
			}
		}
		out = append(out, te)
	}
	uploadList := make([]fiber.Map, 0, len(uploads))
	for _, cam := range []string{"main", "evidence"} {
		if u := uploads[cam]; u != nil {
			uploadList = append(uploadList, u)
		}
	}
	body := fiber.Map{"session": sess, "phases": phases, "events": out, "flags": flags,
		"technical_events": technical, "uploads": uploadList}
	for _, extra := range s.timelineExtras {
		if err := extra(c, sess, body); err != nil {
			return err
		}
	}
	return c.JSON(body)
}
