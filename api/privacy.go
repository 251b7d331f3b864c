package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"

	"proctor/privacy"
	"proctor/store"
)

// Personal data lifecycle (docs/privacy.md): deletion on request and the retention policy.

func (s *Server) privacyRoutes(v1 fiber.Router, admin fiber.Handler) {
	v1.Delete("/sessions/:id", admin, maxParams(map[string]int{"reason": 1000}), s.deleteSession)
	v1.Delete("/candidates/:candidate", admin, maxParams(map[string]int{"reason": 1000}), s.deleteCandidate)
	v1.Get("/retention", admin, s.getRetention)
	v1.Put("/retention", admin, s.putRetention)
	v1.Get("/exams/:exam/retention", admin, s.getRetention)
	v1.Put("/exams/:exam/retention", admin, s.putRetention)
}

// deleteSession erases one session: every row, file and export item (DELETE /v1/sessions/{id}).
func (s *Server) deleteSession(c *fiber.Ctx) error {
	return s.erase(c, privacy.Request{SessionID: c.Params("id")})
}

// deleteCandidate erases every session of a candidate (DELETE /v1/candidates/{candidate_id}).
func (s *Server) deleteCandidate(c *fiber.Ctx) error {
	id := c.Params("candidate")
	if id == "" || utf8.RuneCountInString(id) > 128 {
		return bad(fiber.StatusBadRequest, "candidate id must be 1-128 characters")
	}
	return s.erase(c, privacy.Request{CandidateID: id})
}

func (s *Server) erase(c *fiber.Ctx, r privacy.Request) error {
	p := principal(c)
	r.OrgID, r.Actor, r.RemoteIP, r.Reason = p.OrgID, p.Actor, c.IP(), c.Query("reason")
	if strings.TrimSpace(r.Reason) == "" {
		return bad(fiber.StatusBadRequest, privacy.ErrReason.Error()+": pass it as ?reason=")
	}
	d := &privacy.Deleter{Store: s.store, RecordingsDir: s.cfg.Recordings.Dir}
	rep, err := d.Delete(c.UserContext(), r)
	switch {
	case errors.Is(err, store.ErrNotFound):
		if r.CandidateID != "" {
			return bad(fiber.StatusNotFound, "no session of candidate "+r.CandidateID+" in your organisation")
		}
		return bad(fiber.StatusNotFound, "no session "+r.SessionID)
	case errors.Is(err, store.ErrInvalid) || errors.Is(err, privacy.ErrReason):
		return bad(fiber.StatusBadRequest, err.Error())
	case err != nil:
		return err
	}
	// This process's ingest cache must not route posts to the deleted keys (another API
	// process's cached posts reach Kafka and are dropped by the workers, counted).
	gone := map[string]bool{}
	for _, id := range rep.Sessions {
		gone[id] = true
	}
	s.sessionKeys.Range(func(k, v any) bool {
		if gone[v.(string)] {
			s.sessionKeys.Delete(k)
		}
		return true
	})
	return c.JSON(rep)
}

// retentionBody is what the settings page reads: the declared classes (range, default), the
// override stored at this level, the policy it inherits and the effective one.
func (s *Server) retentionBody(c *fiber.Ctx, exam string) (fiber.Map, error) {
	p := principal(c)
	ps, err := privacy.LoadPolicies(c.UserContext(), s.store, s.cfg.RetentionDefaults)
	if err != nil {
		return nil, err
	}
	inherited, effective := ps.Org(p.OrgID), ps.Org(p.OrgID)
	override := privacy.Policy{}
	row, err := s.store.GetRetentionSetting(c.UserContext(), p.OrgID, exam)
	switch {
	case errors.Is(err, store.ErrNotFound):
		row = nil
	case err != nil:
		return nil, err
	default:
		if override, err = privacy.ParseOverride([]byte(row.Days)); err != nil {
			return nil, err
		}
	}
	if exam == "" {
		inherited = privacy.Defaults().With(s.cfg.RetentionDefaults)
	} else {
		effective = ps.Exam(p.OrgID, exam)
	}
	out := fiber.Map{"classes": privacy.Classes(), "override": override, "inherited": inherited, "effective": effective}
	if exam != "" {
		out["exam_id"] = exam
	}
	if row != nil {
		out["updated_at"], out["updated_by"] = row.UpdatedAt, row.UpdatedBy
	}
	return out, nil
}

// getRetention serves the organisation's (or an exam's) retention policy.
func (s *Server) getRetention(c *fiber.Ctx) error {
	exam, err := retentionExam(c)
	if err != nil {
		return err
	}
	body, err := s.retentionBody(c, exam)
	if err != nil {
		return err
	}
	return c.JSON(body)
}

// putRetention replaces the override of the organisation (or an exam): a JSON object of days per
// class; classes left out inherit. The effective policy must keep the audit log longest and a
// session's record (flags) at least as long as its parts.
func (s *Server) putRetention(c *fiber.Ctx) error {
	exam, err := retentionExam(c)
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(c.Body())) == 0 {
		return bad(fiber.StatusBadRequest, `body must be a JSON object of days per class, e.g. {"frames": 60} ({} inherits everything)`)
	}
	o, err := privacy.ParseOverride(c.Body())
	if err != nil {
		return bad(fiber.StatusBadRequest, err.Error())
	}
	if err := refuseNull(c.Body(), nil); err != nil {
		return err
	}
	p := principal(c)
	ps, err := privacy.LoadPolicies(c.UserContext(), s.store, s.cfg.RetentionDefaults)
	if err != nil {
		return err
	}
	// The new policy must hold at this level and for every exam that inherits from it.
	check := []privacy.Policy{}
	if exam == "" {
		org := privacy.Defaults().With(s.cfg.RetentionDefaults).With(o)
		check = append(check, org)
		for _, eo := range ps.ExamOverrides(p.OrgID) {
			check = append(check, org.With(eo))
		}
	} else {
		check = append(check, ps.Org(p.OrgID).With(o))
	}
	// Each value in range but the whole inconsistent: the request was understood, not applicable.
	for _, pol := range check {
		if err := pol.Validate(); err != nil {
			return bad(fiber.StatusUnprocessableEntity, err.Error())
		}
	}
	js, _ := json.Marshal(o)
	target := "org:" + p.OrgID
	if exam != "" {
		target = "exam:" + exam
	}
	row := &store.RetentionSetting{OrgID: p.OrgID, ExamID: exam, Days: string(js), UpdatedBy: p.Actor}
	if err := s.store.PutRetentionSetting(c.UserContext(), row, store.AuditEntry{At: time.Now().UTC(), OrgID: p.OrgID,
		Actor: p.Actor, Action: "retention.update", Target: target, Detail: string(js), RemoteIP: c.IP()}); err != nil {
		return err
	}
	body, err := s.retentionBody(c, exam)
	if err != nil {
		return err
	}
	return c.JSON(body)
}

func retentionExam(c *fiber.Ctx) (string, error) {
	exam := c.Params("exam")
	if c.Route().Path == "/v1/retention" {
		return "", nil
	}
	if !validExamID(exam) {
		return "", bad(fiber.StatusBadRequest, "exam id must be 1-128 characters")
	}
	return exam, nil
}
