package store

import (
	"context"
	"errors"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// ExamSetting is an organisation's per-exam override of the rules (which checks are on,
// durations, thresholds, risk weights). Settings is the JSON of rules.ExamSettings: the store
// does not interpret it, so adding a setting needs no migration.
type ExamSetting struct {
	OrgID     string    `gorm:"primaryKey;size:64" json:"org_id"`
	ExamID    string    `gorm:"primaryKey;size:128" json:"exam_id"`
	Settings  string    `json:"settings"`
	UpdatedAt time.Time `json:"updated_at"`
	UpdatedBy string    `gorm:"size:320" json:"updated_by"`
}

// GetExamSetting returns the settings row of (org, exam), or ErrNotFound. It takes a *gorm.DB so
// the timing rules can read it inside their transaction.
func GetExamSetting(db *gorm.DB, orgID, examID string) (*ExamSetting, error) {
	var es ExamSetting
	if err := db.Where("org_id = ? AND exam_id = ?", orgID, examID).Take(&es).Error; err != nil {
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return nil, ErrNotFound
		}
		return nil, err
	}
	return &es, nil
}

// ListExamSettings returns an organisation's settings rows by exam id.
func (s *Store) ListExamSettings(ctx context.Context, orgID string) ([]ExamSetting, error) {
	var out []ExamSetting
	err := s.DB.WithContext(ctx).Where("org_id = ?", orgID).Order("exam_id").Find(&out).Error
	return out, err
}

// PutExamSetting stores the settings of (org, exam) and writes the audit entry in one
// transaction; after runs inside it too (to recompute the exam's risk scores with new weights).
func (s *Store) PutExamSetting(ctx context.Context, es *ExamSetting, audit AuditEntry, after func(tx *gorm.DB) error) error {
	es.UpdatedAt = time.Now().UTC()
	return s.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Clauses(clause.OnConflict{
			Columns:   []clause.Column{{Name: "org_id"}, {Name: "exam_id"}},
			DoUpdates: clause.AssignmentColumns([]string{"settings", "updated_at", "updated_by"}),
		}).Create(es).Error; err != nil {
			return err
		}
		if err := Audit(tx, audit); err != nil {
			return err
		}
		if after != nil {
			return after(tx)
		}
		return nil
	})
}

// ExamSummary is one exam of an organisation, for the queue's filter and the settings page.
type ExamSummary struct {
	ExamID    string `json:"exam_id"`
	Sessions  int64  `json:"sessions"`
	OpenFlags int64  `json:"open_flags"`
}

// ListExams returns the exams an organisation has sessions or settings for.
func (s *Store) ListExams(ctx context.Context, orgID string) ([]ExamSummary, error) {
	var out []ExamSummary
	err := s.DB.WithContext(ctx).Model(&Session{}).
		Select("exam_id, COUNT(*) AS sessions, COALESCE(SUM(open_flags), 0) AS open_flags").
		Where("org_id = ?", orgID).Group("exam_id").Order("exam_id").Scan(&out).Error
	if err != nil {
		return nil, err
	}
	settings, err := s.ListExamSettings(ctx, orgID)
	if err != nil {
		return nil, err
	}
	have := map[string]bool{}
	for _, e := range out {
		have[e.ExamID] = true
	}
	for _, es := range settings {
		if !have[es.ExamID] {
			out = append(out, ExamSummary{ExamID: es.ExamID})
		}
	}
	return out, nil
}

// SessionIDsOfExam returns the ids of an organisation's sessions of one exam.
func SessionIDsOfExam(tx *gorm.DB, orgID, examID string) ([]string, error) {
	var ids []string
	err := tx.Model(&Session{}).Where("org_id = ? AND exam_id = ?", orgID, examID).Pluck("id", &ids).Error
	return ids, err
}
