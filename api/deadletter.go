package api

import (
	"encoding/json"
	"strconv"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"
	"github.com/segmentio/kafka-go"

	"proctor/store"
)

// deadLetterOut is one dead letter as admins see it: where it came from, why it failed, its
// original headers (text where they are text) and its size; not the payload (a frame is a
// candidate's face; `proctor deadletter list --payload` shows it to the operator).
type deadLetterOut struct {
	store.DeadLetter
	Key     string            `json:"key"`
	Headers map[string]string `json:"headers"`
}

// listDeadLetters lists the messages the workers gave up on, newest first (admin). An
// organisation's admin sees the dead letters whose key is one of its sessions; those whose key
// names no session belong to no organisation and only the operator's CLI lists them. Filters:
// topic, session_id, pending=true (not replayed yet), limit (1..1000, default 100), before=ID.
func (s *Server) listDeadLetters(c *fiber.Ctx) error {
	f := store.DeadLetterFilter{OrgID: principal(c).OrgID, Topic: c.Query("topic"), SessionID: c.Query("session_id")}
	var err error
	if f.Pending, err = queryBool(c, "pending"); err != nil {
		return err
	}
	if f.Limit, err = queryInt(c, "limit", 0, 1, 1000); err != nil {
		return err
	}
	if f.Before, err = queryID(c, "before"); err != nil {
		return err
	}
	list, err := s.store.ListDeadLetters(c.UserContext(), f)
	if err != nil {
		return err
	}
	out := make([]deadLetterOut, len(list))
	for i, d := range list {
		out[i] = deadLetterOut{DeadLetter: d, Key: printable(d.Key), Headers: map[string]string{}}
		var hs []kafka.Header
		_ = json.Unmarshal([]byte(d.Headers), &hs)
		for _, h := range hs {
			out[i].Headers[h.Key] = printable(h.Value)
		}
	}
	return c.JSON(fiber.Map{"dead_letters": out})
}

// printable is b as text when it is UTF-8 without NUL, else its bytes quoted Go-style.
func printable(b []byte) string {
	if utf8.Valid(b) && store.CheckText("", string(b), 0) == nil {
		return string(b)
	}
	return strconv.Quote(string(b))
}
