package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"
	"gorm.io/gorm"

	"proctor/rules"
	"proctor/store"
)

// examSettingsBody is what the settings page reads: the exam's overrides, the values that apply
// without overrides, and the declarations it builds its form from (settings with unit, range
// and default, per check; flag types with severity and weight).
func (s *Server) examSettingsBody(examID string, row *store.ExamSetting, set rules.ExamSettings) fiber.Map {
	out := fiber.Map{"exam_id": examID, "settings": set, "defaults": s.rules.Defaults(), "flag_types": rules.FlagTypes(),
		"checks": rules.Checks(), "engine_settings": rules.EngineSettings()}
	if row != nil {
		out["updated_at"], out["updated_by"] = row.UpdatedAt, row.UpdatedBy
	}
	return out
}

// listChecks serves the checks' declarations (flag types, severities, weights, settings,
// labels): the reviewer page builds its forms from them.
func (s *Server) listChecks(c *fiber.Ctx) error {
	return c.JSON(fiber.Map{"checks": rules.Checks(), "engine_settings": rules.EngineSettings()})
}

// validExamID: exam ids come from the platform (≤ 128 characters, see createSession).
func validExamID(id string) bool { return id != "" && utf8.RuneCountInString(id) <= 128 }

// getExamSettings returns an exam's settings (empty when none were saved: defaults apply).
func (s *Server) getExamSettings(c *fiber.Ctx) error {
	exam := c.Params("exam")
	if !validExamID(exam) {
		return bad(fiber.StatusBadRequest, "exam id must be 1-128 characters")
	}
	row, err := store.GetExamSetting(s.store.DB.WithContext(c.UserContext()), principal(c).OrgID, exam)
	var set rules.ExamSettings
	switch {
	case errors.Is(err, store.ErrNotFound):
		row = nil
	case err != nil:
		return err
	default:
		if err := json.Unmarshal([]byte(row.Settings), &set); err != nil {
			return err
		}
	}
	return c.JSON(s.examSettingsBody(exam, row, set))
}

// putExamSettings replaces an exam's settings, audit-logs the change and recomputes the risk of
// the exam's sessions with the new weights. Workers pick the new settings up within their cache
// TTL (15 s); this process at once.
func (s *Server) putExamSettings(c *fiber.Ctx) error {
	exam := c.Params("exam")
	if !validExamID(exam) {
		return bad(fiber.StatusBadRequest, "exam id must be 1-128 characters")
	}
	var set rules.ExamSettings
	dec := json.NewDecoder(bytes.NewReader(c.Body()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&set); err != nil {
		return bad(fiber.StatusBadRequest, "body must be the JSON settings object (see GET): "+err.Error())
	}
	if err := refuseNull(c.Body(), nil); err != nil {
		return err
	}
	if err := set.Validate(); err != nil {
		return bad(fiber.StatusBadRequest, err.Error())
	}
	js, _ := json.Marshal(set)
	p := principal(c)
	row := &store.ExamSetting{OrgID: p.OrgID, ExamID: exam, Settings: string(js), UpdatedBy: p.Actor}
	audit := store.AuditEntry{OrgID: p.OrgID, Actor: p.Actor, Action: "settings.update", Target: "exam:" + exam,
		Detail: string(js), RemoteIP: c.IP()}
	eng := s.rules.ForExam(set)
	err := s.store.PutExamSetting(c.UserContext(), row, audit, func(tx *gorm.DB) error {
		ids, err := store.SessionIDsOfExam(tx, p.OrgID, exam)
		if err != nil {
			return err
		}
		for _, id := range ids {
			if err := rules.RecomputeRisk(tx, id, eng.Weights()); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	s.rules.ForgetSettings(p.OrgID, exam)
	return c.JSON(s.examSettingsBody(exam, row, set))
}
