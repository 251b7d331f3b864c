package api

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"gorm.io/gorm"

	"proctor/rules"
	"proctor/store"
)

// queueFilter reads the reviewer queue's filters: exam_id, from and to (dates YYYY-MM-DD of
// the scheduled start, both inclusive), flag_type and review (open | reviewed | clean).
func queueFilter(c *fiber.Ctx) (store.SessionFilter, error) {
	f := store.SessionFilter{OrgID: principal(c).OrgID, ExamID: c.Query("exam_id"), FlagType: c.Query("flag_type"),
		Review: c.Query("review")}
	var err error
	if f.From, err = queryDay(c, "from"); err != nil {
		return f, err
	}
	if f.To, err = queryDay(c, "to"); err != nil {
		return f, err
	}
	if !f.To.IsZero() {
		f.To = f.To.AddDate(0, 0, 1) // inclusive
	}
	if _, ok := queryValue(c, "review"); ok && f.Review == "" {
		return f, bad(fiber.StatusBadRequest, "review must be open, reviewed, clean or all")
	}
	switch f.Review {
	case "", "all":
		f.Review = ""
	case store.ReviewOpen, store.ReviewDone, store.ReviewClean:
	default:
		return f, bad(fiber.StatusBadRequest, "review must be open, reviewed, clean or all")
	}
	return f, nil
}

// reviewSummary counts open flags per type over the filtered queue and the reviewer's progress
// today (since local midnight, or since=RFC 3339).
func (s *Server) reviewSummary(c *fiber.Ctx) error {
	f, err := queueFilter(c)
	if err != nil {
		return err
	}
	now := time.Now()
	since, err := queryTime(c, "since", time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, now.Location()))
	if err != nil {
		return err
	}
	sum, err := s.store.Summary(c.UserContext(), f, principal(c).Actor, since.UTC())
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"summary": sum, "flag_types": rules.FlagTypes()})
}

// listExams lists the organisation's exams (sessions and open flags per exam).
func (s *Server) listExams(c *fiber.Ctx) error {
	exams, err := s.store.ListExams(c.UserContext(), principal(c).OrgID)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"exams": exams})
}

// getPhoto returns a session's registration photo, for comparing with the flagged frames. Each
// view is audit-logged: it is the candidate's face.
func (s *Server) getPhoto(c *fiber.Ctx) error {
	photo, err := s.store.GetRegistrationPhoto(c.UserContext(), principal(c).OrgID, c.Params("id"))
	if errors.Is(err, store.ErrNotFound) {
		return bad(fiber.StatusNotFound, "no session "+c.Params("id"))
	}
	if err != nil {
		return err
	}
	if len(photo) == 0 {
		if sess, err := s.store.GetSession(c.UserContext(), principal(c).OrgID, c.Params("id")); err == nil {
			marks, err := s.store.RetentionMarks(c.UserContext(), sess.ID)
			if err != nil {
				return err
			}
			if at, ok := marks["biometrics"]; ok {
				return bad(fiber.StatusGone, "registration photo deleted on "+at.Format("2006-01-02")+" under the retention policy")
			}
		}
		return bad(fiber.StatusNotFound, "session has no registration photo")
	}
	if err := s.audit(c, "photo.view", "session:"+c.Params("id"), nil); err != nil {
		return err
	}
	c.Set(fiber.HeaderContentType, "image/jpeg")
	c.Set(fiber.HeaderCacheControl, "private, max-age=3600")
	return c.Send(photo)
}

// getGallery lists the session's reference faces (the candidate's own verified login frames) and
// how much of the main camera's time identity could be verified.
func (s *Server) getGallery(c *fiber.Ctx) error {
	faces, err := s.store.ListGallery(c.UserContext(), principal(c).OrgID, c.Params("id"))
	if errors.Is(err, store.ErrNotFound) {
		return bad(fiber.StatusNotFound, "no session "+c.Params("id"))
	}
	if err != nil {
		return err
	}
	voted, abstained, err := rules.IdentityCoverage(s.store.DB.WithContext(c.UserContext()), c.Params("id"))
	if err != nil {
		return err
	}
	var share *float64
	if n := voted + abstained; n > 0 {
		v := float64(voted) / float64(n)
		share = &v
	}
	return c.JSON(fiber.Map{"faces": faces, "identity": fiber.Map{"voted": voted, "abstained": abstained, "verified_share": share}})
}

// getGalleryPhoto serves one gallery frame (audit-logged, like the registration photo).
func (s *Server) getGalleryPhoto(c *fiber.Ctx) error {
	id, err := strconv.ParseUint(c.Params("gid"), 10, 32)
	if err != nil {
		return bad(fiber.StatusBadRequest, "gallery id must be a positive number")
	}
	photo, err := s.store.GalleryPhoto(c.UserContext(), principal(c).OrgID, c.Params("id"), uint(id))
	if errors.Is(err, store.ErrNotFound) {
		return bad(fiber.StatusNotFound, "no such gallery face")
	}
	if err != nil {
		return err
	}
	if err := s.audit(c, "gallery.view", "session:"+c.Params("id"), map[string]any{"gallery_id": id}); err != nil {
		return err
	}
	c.Set(fiber.HeaderContentType, "image/jpeg")
	c.Set(fiber.HeaderCacheControl, "private, max-age=3600")
	return c.Send(photo)
}

type verdictsIn struct {
	FlagIDs []uint `json:"flag_ids"`
	Verdict string `json:"verdict"`
	Note    string `json:"note"`
}

// maxBulk bounds one bulk verdict: a page of flags, not an exam.
const maxBulk = 500

// postVerdicts judges several flags at once: {"flag_ids": [...], "verdict", "note"}. All or
// none: a flag of another organisation makes the whole request 404. One undo takes it back.
func (s *Server) postVerdicts(c *fiber.Ctx) error {
	var in verdictsIn
	if err := json.Unmarshal(c.Body(), &in); err != nil {
		return bad(fiber.StatusBadRequest, "body must be JSON {\"flag_ids\": [1, 2], \"verdict\": \"confirmed\"|\"dismissed\", \"note\": \"...\"}")
	}
	if err := refuseNull(c.Body(), &in); err != nil {
		return err
	}
	if len(in.FlagIDs) == 0 || len(in.FlagIDs) > maxBulk {
		return bad(fiber.StatusBadRequest, "flag_ids must list 1 to "+strconv.Itoa(maxBulk)+" flags")
	}
	for _, id := range in.FlagIDs {
		if id == 0 || id > maxID {
			return bad(fiber.StatusBadRequest, "flag_ids: every id is a whole number from 1 to "+strconv.FormatUint(maxID, 10))
		}
	}
	verdicts, err := s.recordVerdicts(c, in.FlagIDs, in.Verdict, in.Note, store.NewID()[:16])
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"verdicts": verdicts})
}

// recordVerdicts validates and records verdicts on flags, recomputing each session's risk with
// its exam's weights.
func (s *Server) recordVerdicts(c *fiber.Ctx, ids []uint, verdict, note, batch string) ([]store.Verdict, error) {
	if verdict != store.StatusConfirmed && verdict != store.StatusDismissed {
		return nil, bad(fiber.StatusBadRequest, "verdict must be 'confirmed' or 'dismissed'")
	}
	note = strings.TrimSpace(note)
	if err := checkFields(field{"note", note, 4000}); err != nil {
		return nil, err
	}
	p := principal(c)
	out, err := s.store.RecordVerdicts(c.UserContext(), store.VerdictInput{OrgID: p.OrgID, FlagIDs: ids,
		Verdict: verdict, Note: note, Reviewer: p.Actor, RemoteIP: c.IP(), Batch: batch}, s.recomputeRisk)
	if errors.Is(err, store.ErrNotFound) {
		return nil, bad(fiber.StatusNotFound, "no such flag (or not in your organisation)")
	}
	return out, err
}

// undoVerdict takes back the caller's latest verdict (a whole bulk action at once).
func (s *Server) undoVerdict(c *fiber.Ctx) error {
	p := principal(c)
	undone, err := s.store.UndoLastVerdict(c.UserContext(), p.OrgID, p.Actor, c.IP(), s.recomputeRisk)
	if errors.Is(err, store.ErrNotFound) {
		return bad(fiber.StatusNotFound, "nothing to undo: you have no standing verdict")
	}
	if errors.Is(err, store.ErrConflict) {
		return bad(fiber.StatusConflict, err.Error())
	}
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"undone": undone})
}

// recomputeRisk sets a session's risk with the weights of its exam's settings.
func (s *Server) recomputeRisk(tx *gorm.DB, sessionID string) error {
	var sess store.Session
	if err := tx.Select("id, org_id, exam_id").Take(&sess, "id = ?", sessionID).Error; err != nil {
		return err
	}
	eng, err := s.rules.Effective(tx, sess.OrgID, sess.ExamID)
	if err != nil {
		return err
	}
	return rules.RecomputeRisk(tx, sessionID, eng.Weights())
}
