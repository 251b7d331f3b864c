package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// Label kinds: reviewer corrections beyond a verdict, the raw material of retraining.
const (
	LabelAnswerEnd    = "answer_end"    // the answer really ended at AtMs (the phrase ends there)
	LabelPhraseMissed = "phrase_missed" // the phrase was said, ending at AtMs, and not spotted
	LabelNotPhrase    = "not_phrase"    // the detection ending at AtMs is not the phrase
	LabelAttribute    = "attribute"     // what the flag's evidence frame really shows
)

// Label is one reviewer correction. Rows are never deleted: a withdrawn label keeps its row with
// WithdrawnAt set, so an export made before still reads the same.
type Label struct {
	ID        uint   `gorm:"primaryKey" json:"id"`
	OrgID     string `gorm:"size:64;index" json:"-"`
	SessionID string `gorm:"size:64;index" json:"session_id"`
	Kind      string `gorm:"size:24" json:"kind"`
	// AtMs is the session time (client clock, ms) of an audio label.
	AtMs *int64 `json:"at_ms,omitempty"`
	// FlagID is the flag an attribute label corrects; its evidence frame is what was judged.
	FlagID    *uint `gorm:"index" json:"flag_id,omitempty"`
	Mask      *bool `json:"mask,omitempty"`
	Occluded  *bool `json:"occluded,omitempty"`
	Earphones *bool `json:"earphones,omitempty"`
	// EarsCovered: an ear in view is covered (hair, hand, hood, headphones); false: none is.
	EarsCovered *bool     `json:"ears_covered,omitempty"`
	Persons     *int      `json:"persons,omitempty"`
	Note        string    `json:"note,omitempty"`
	Reviewer    string    `gorm:"size:320" json:"reviewer"`
	CreatedAt   time.Time `gorm:"index" json:"created_at"`
	// WithdrawnAt marks a label its reviewer (or another) took back.
	WithdrawnAt *time.Time `json:"withdrawn_at,omitempty"`
	WithdrawnBy string     `gorm:"size:320" json:"withdrawn_by,omitempty"`
}

// Validate checks that a label is complete for its kind; the message is for the API client.
func (l *Label) Validate() error {
	switch l.Kind {
	case LabelAnswerEnd, LabelPhraseMissed, LabelNotPhrase:
		if l.AtMs == nil || *l.AtMs < 0 {
			return fmt.Errorf("a %s label needs at_ms (session ms, ≥ 0)", l.Kind)
		}
		if l.FlagID != nil || l.Mask != nil || l.Occluded != nil || l.Earphones != nil || l.EarsCovered != nil || l.Persons != nil {
			return fmt.Errorf("a %s label takes at_ms only (no flag_id or attributes)", l.Kind)
		}
	case LabelAttribute:
		if l.FlagID == nil {
			return errors.New("an attribute label needs flag_id")
		}
		if l.Mask == nil && l.Occluded == nil && l.Earphones == nil && l.EarsCovered == nil && l.Persons == nil {
			return errors.New("an attribute label needs at least one of mask, occluded, earphones, ears_covered, persons")
		}
		if l.Persons != nil && (*l.Persons < 0 || *l.Persons > 20) {
			return errors.New("persons must be between 0 and 20")
		}
		if l.AtMs != nil {
			return errors.New("an attribute label takes no at_ms (the flag's evidence frame is what is labelled)")
		}
	default:
		return fmt.Errorf("unknown label kind %q (want answer_end, phrase_missed, not_phrase or attribute)", l.Kind)
	}
	return CheckText("note", l.Note, 2000)
}

// AddLabel stores a validated label and its audit entry in one transaction. An attribute label's
// flag must belong to the same session.
func (s *Store) AddLabel(ctx context.Context, l *Label, remoteIP string) error {
	if err := l.Validate(); err != nil {
		return err
	}
	return s.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if l.FlagID != nil {
			var n int64
			if err := tx.Model(&Flag{}).Where("id = ? AND session_id = ?", *l.FlagID, l.SessionID).Count(&n).Error; err != nil {
				return err
			}
			if n == 0 {
				return fmt.Errorf("%w: flag %d is not a flag of session %s", ErrNotFound, *l.FlagID, l.SessionID)
			}
		}
		l.CreatedAt = time.Now().UTC()
		if err := tx.Create(l).Error; err != nil {
			return err
		}
		return auditJSON(tx, l.OrgID, l.Reviewer, "label.create", "session:"+l.SessionID, remoteIP, l)
	})
}

// WithdrawLabel marks an organisation's label withdrawn (idempotent) and audit-logs it.
func (s *Store) WithdrawLabel(ctx context.Context, orgID string, id uint, actor, remoteIP string) (*Label, error) {
	var l Label
	err := s.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Where("id = ? AND org_id = ?", id, orgID).Take(&l).Error; err != nil {
			if errors.Is(err, gorm.ErrRecordNotFound) {
				return ErrNotFound
			}
			return err
		}
		if l.WithdrawnAt != nil {
			return nil
		}
		now := time.Now().UTC()
		l.WithdrawnAt, l.WithdrawnBy = &now, actor
		if err := tx.Model(&Label{}).Where("id = ?", id).Updates(map[string]any{"withdrawn_at": now, "withdrawn_by": actor}).Error; err != nil {
			return err
		}
		return auditJSON(tx, orgID, actor, "label.withdraw", "label:"+utoa(id), remoteIP, map[string]any{"session_id": l.SessionID})
	})
	return &l, err
}

// SessionLabels lists a session's labels, oldest first, withdrawn ones included.
func (s *Store) SessionLabels(ctx context.Context, sessionID string) ([]Label, error) {
	var out []Label
	err := s.DB.WithContext(ctx).Where("session_id = ?", sessionID).Order("id").Find(&out).Error
	return out, err
}
