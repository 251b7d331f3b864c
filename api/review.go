package api

import (
	"encoding/json"
	"errors"
	"strconv"

	"github.com/gofiber/fiber/v2"

	"proctor/store"
)

// listSessions is the reviewer queue: the organisation's sessions, riskiest first.
func (s *Server) listSessions(c *fiber.Ctx) error {
	limit, err := queryInt(c, "limit", 100, 1, 500)
	if err != nil {
		return err
	}
	offset, err := queryInt(c, "offset", 0, 0, maxOffset)
	if err != nil {
		return err
	}
	f, err := queueFilter(c)
	if err != nil {
		return err
	}
	f.Limit, f.Offset = limit, offset
	list, err := s.store.ListSessions(c.UserContext(), f)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"sessions": list})
}

// sessionOf loads :id for a reviewer; another organisation's session is answered 404, as if it
// did not exist, so ids cannot be probed.
func (s *Server) sessionOf(c *fiber.Ctx) (*store.Session, error) {
	sess, err := s.store.GetSession(c.UserContext(), principal(c).OrgID, c.Params("id"))
	if errors.Is(err, store.ErrNotFound) {
		return nil, bad(fiber.StatusNotFound, "no session "+c.Params("id"))
	}
	return sess, err
}

// getSession returns a session with its flags in time order.
func (s *Server) getSession(c *fiber.Ctx) error {
	sess, err := s.sessionOf(c)
	if err != nil {
		return err
	}
	flags, err := s.store.SessionFlags(c.UserContext(), sess.ID)
	if err != nil {
		return err
	}
	// What the retention policy already deleted, by class ("frames": evidence), with the date.
	deleted, err := s.store.RetentionMarks(c.UserContext(), sess.ID)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"session": sess, "flags": flags, "retention_deleted": deleted})
}

func (s *Server) flagOf(c *fiber.Ctx) (*store.Flag, error) {
	id, err := parseID(c.Params("id"), "flag id")
	if err != nil {
		return nil, err
	}
	f, _, err := s.store.GetFlag(c.UserContext(), principal(c).OrgID, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, bad(fiber.StatusNotFound, "no flag "+c.Params("id"))
	}
	return f, err
}

// getFlag returns one flag with its verdict history.
func (s *Server) getFlag(c *fiber.Ctx) error {
	f, err := s.flagOf(c)
	if err != nil {
		return err
	}
	verdicts, err := s.store.FlagVerdicts(c.UserContext(), f.ID)
	if err != nil {
		return err
	}
	out := fiber.Map{"flag": f, "verdicts": verdicts,
		"evidence_url": "/v1/flags/" + strconv.FormatUint(uint64(f.ID), 10) + "/evidence"}
	if err := s.flagAudio(c, f, out); err != nil { // media.go: an audio flag's stored audio
		return err
	}
	return c.JSON(out)
}

// getEvidence returns the JPEG of the frame that raised a flag. Each view is audit-logged:
// evidence shows a candidate's face.
func (s *Server) getEvidence(c *fiber.Ctx) error {
	f, err := s.flagOf(c)
	if err != nil {
		return err
	}
	ev, err := s.store.GetEvidence(c.UserContext(), f.ID)
	if errors.Is(err, store.ErrNotFound) {
		// Flags may outlive their evidence: say when and why it went.
		marks, merr := s.store.RetentionMarks(c.UserContext(), f.SessionID)
		if merr != nil {
			return merr
		}
		if at, ok := marks["frames"]; ok {
			return bad(fiber.StatusGone, "evidence deleted on "+at.Format("2006-01-02")+" under the retention policy")
		}
		return bad(fiber.StatusNotFound, "flag has no evidence image")
	}
	if err != nil {
		return err
	}
	if err := s.audit(c, "evidence.view", "flag:"+strconv.FormatUint(uint64(f.ID), 10),
		map[string]any{"session": f.SessionID, "camera": ev.Camera, "seq": ev.Seq}); err != nil {
		return err
	}
	switch c.Query("crop") {
	case "":
	case "ears":
		// The ear crops the ears analyzer judged (EARS_COVERED, EARPHONES), made from the stored frame.
		png, err := s.ears.png(c.UserContext(), ev.JPEG)
		if errors.Is(err, errNoEars) {
			return bad(fiber.StatusNotFound, err.Error())
		}
		if err != nil {
			return bad(fiber.StatusServiceUnavailable, "ear crops unavailable: "+err.Error())
		}
		c.Set(fiber.HeaderContentType, "image/png")
		c.Set(fiber.HeaderCacheControl, "private, max-age=3600")
		return c.Send(png)
	default:
		return bad(fiber.StatusBadRequest, "crop must be ears (or absent for the whole frame)")
	}
	c.Set(fiber.HeaderContentType, "image/jpeg")
	c.Set(fiber.HeaderCacheControl, "private, max-age=3600")
	return c.Send(ev.JPEG)
}

type verdictIn struct {
	Verdict string `json:"verdict"`
	Note    string `json:"note"`
}

// postVerdict records a reviewer's decision: confirmed or dismissed, with an optional note.
func (s *Server) postVerdict(c *fiber.Ctx) error {
	f, err := s.flagOf(c)
	if err != nil {
		return err
	}
	var in verdictIn
	if err := json.Unmarshal(c.Body(), &in); err != nil {
		return bad(fiber.StatusBadRequest, "body must be JSON {\"verdict\": \"confirmed\"|\"dismissed\", \"note\": \"...\"}")
	}
	if err := refuseNull(c.Body(), &in); err != nil {
		return err
	}
	verdicts, err := s.recordVerdicts(c, []uint{f.ID}, in.Verdict, in.Note, "")
	if err != nil {
		return err
	}
	f.Status = in.Verdict
	return c.JSON(fiber.Map{"flag": f, "verdict": verdicts[0]})
}

type keyIn struct {
	Name   string   `json:"name"`
	Scopes []string `json:"scopes"`
}

// createKey issues an API key in the admin's organisation. The token is shown only here.
func (s *Server) createKey(c *fiber.Ctx) error {
	var in keyIn
	if err := json.Unmarshal(c.Body(), &in); err != nil {
		return bad(fiber.StatusBadRequest, "body must be JSON {\"name\": \"...\", \"scopes\": [\"ingest\"|\"review\"|\"admin\"]}")
	}
	if err := refuseNull(c.Body(), &in); err != nil {
		return err
	}
	if err := checkFields(field{"name", in.Name, 200}); err != nil {
		return err
	}
	if blank(in.Name) {
		return bad(fiber.StatusBadRequest, "name is required (at most 200 characters)")
	}
	token, k, err := s.store.CreateAPIKey(c.UserContext(), principal(c).OrgID, in.Name, in.Scopes)
	if errors.Is(err, store.ErrInvalid) {
		return bad(fiber.StatusBadRequest, err.Error())
	}
	if err != nil {
		return err // a database error: logged, never echoed
	}
	if err := s.audit(c, "key.create", "key:"+k.ID, k.Name+" ["+k.Scopes+"]"); err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(fiber.Map{"id": k.ID, "token": token, "scopes": in.Scopes})
}

// listAudit returns the newest audit entries of the admin's organisation, optionally filtered by
// action (exact, or a prefix ending in '.'), actor and target; before=ID pages back.
func (s *Server) listAudit(c *fiber.Ctx) error {
	limit, err := queryInt(c, "limit", 200, 1, 1000)
	if err != nil {
		return err
	}
	before, err := queryID(c, "before")
	if err != nil {
		return err
	}
	entries, err := s.store.QueryAudit(c.UserContext(), store.AuditFilter{OrgID: principal(c).OrgID, Limit: limit,
		Action: c.Query("action"), Actor: c.Query("actor"), Target: c.Query("target"), Before: before})
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"entries": entries})
}
