package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// DeadLetter is a Kafka message the workers gave up on, as recorded from the dead-letter topic
// (which keeps it too, for the topic's retention, even when this record could not be written).
// Its origin (topic, partition, offset) is unique: a dead letter seen twice is recorded once.
type DeadLetter struct {
	ID        uint   `gorm:"primaryKey" json:"id"`
	Topic     string `gorm:"size:255;uniqueIndex:dead_letter_origin,priority:1" json:"topic"`
	Partition int    `gorm:"column:kafka_partition;uniqueIndex:dead_letter_origin,priority:2" json:"partition"`
	Offset    int64  `gorm:"column:kafka_offset;uniqueIndex:dead_letter_origin,priority:3" json:"offset"`
	// Key is the message key as sent; SessionID the same when it is storable text (it always is
	// for messages the API produced), "" otherwise.
	Key       []byte `json:"key"`
	SessionID string `gorm:"size:64;index" json:"session_id"`
	// Class is why (pipeline.DeadLetterReason: invalid, panic, store_failed); Reason the error.
	Class    string `gorm:"size:32" json:"class"`
	Reason   string `json:"reason"`
	Group    string `gorm:"size:255" json:"group"`
	Attempts int    `json:"attempts"`
	// Headers are the original message's headers (JSON [{"Key","Value" base64}]), for replay.
	Headers      string    `json:"-"`
	Payload      []byte    `json:"-"`
	PayloadBytes int       `json:"payload_bytes"`
	DeadAt       time.Time `gorm:"index" json:"dead_at"`
	RecordedAt   time.Time `json:"recorded_at"`
	// ReplayedAt is set when the message was produced to its topic again; ReplayedBy says who.
	ReplayedAt *time.Time `json:"replayed_at,omitempty"`
	ReplayedBy string     `gorm:"size:320" json:"replayed_by,omitempty"`
}

// RecordDeadLetter stores d unless its origin is already recorded (a redelivered dead letter).
// Text fields are cleaned first: a dead letter exists because something in it was unstorable.
func (s *Store) RecordDeadLetter(ctx context.Context, d *DeadLetter) error {
	d.Topic, d.Reason, d.Group = CleanText(d.Topic, 255), CleanText(d.Reason, 4096), CleanText(d.Group, 255)
	d.Class, d.Headers = CleanText(d.Class, 32), CleanText(d.Headers, 0)
	if CheckText("key", string(d.Key), 64) == nil {
		d.SessionID = string(d.Key)
	}
	d.PayloadBytes = len(d.Payload)
	if d.RecordedAt.IsZero() {
		d.RecordedAt = time.Now().UTC()
	}
	return s.DB.WithContext(ctx).Clauses(clause.OnConflict{DoNothing: true}).Create(d).Error
}

// DeadLetterFilter selects dead letters.
type DeadLetterFilter struct {
	// OrgID, if set, keeps only dead letters whose key is a session of that organisation. A dead
	// letter whose key names no session (or is not text) belongs to no organisation: only the
	// operator's CLI lists it.
	OrgID     string
	Topic     string
	SessionID string
	IDs       []uint
	Pending   bool // only those not replayed yet
	Before    uint // page back: ids below this
	Limit     int  // default 100, at most 1000
}

func (s *Store) deadLetterQuery(ctx context.Context, f DeadLetterFilter) *gorm.DB {
	q := s.DB.WithContext(ctx).Model(&DeadLetter{})
	if f.OrgID != "" {
		q = q.Where("session_id IN (?)", s.DB.Model(&Session{}).Select("id").Where("org_id = ?", f.OrgID))
	}
	if f.Topic != "" {
		q = q.Where("topic = ?", f.Topic)
	}
	if f.SessionID != "" {
		q = q.Where("session_id = ?", f.SessionID)
	}
	if len(f.IDs) > 0 {
		q = q.Where("id IN ?", f.IDs)
	}
	if f.Pending {
		q = q.Where("replayed_at IS NULL")
	}
	if f.Before > 0 {
		q = q.Where("id < ?", f.Before)
	}
	if f.Limit <= 0 || f.Limit > 1000 {
		f.Limit = 100
	}
	return q.Order("id DESC").Limit(f.Limit)
}

// ListDeadLetters returns dead letters, newest first, without their payloads.
func (s *Store) ListDeadLetters(ctx context.Context, f DeadLetterFilter) ([]DeadLetter, error) {
	var out []DeadLetter
	err := s.deadLetterQuery(ctx, f).Omit("payload").Find(&out).Error
	return out, err
}

// DeadLettersForReplay returns dead letters with their payloads, oldest first (the order they
// failed in, so a session's messages are replayed in their order).
func (s *Store) DeadLettersForReplay(ctx context.Context, f DeadLetterFilter) ([]DeadLetter, error) {
	var out []DeadLetter
	err := s.deadLetterQuery(ctx, f).Find(&out).Error
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, err
}

// ErrAlreadyReplayed is returned by ClaimDeadLetterReplay for a dead letter replayed before.
var ErrAlreadyReplayed = errors.New("already replayed")

// ClaimDeadLetterReplay marks a dead letter replayed by actor and writes the audit entry, in one
// transaction, before the message is produced again: of two concurrent replays only one wins
// (the other gets ErrAlreadyReplayed). If producing then fails, UnclaimDeadLetterReplay undoes
// the mark (the audit entry stays: the attempt happened).
func (s *Store) ClaimDeadLetterReplay(ctx context.Context, d *DeadLetter, actor string) error {
	now := time.Now().UTC()
	return s.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res := tx.Model(&DeadLetter{}).Where("id = ? AND replayed_at IS NULL", d.ID).
			Updates(map[string]any{"replayed_at": now, "replayed_by": CleanText(actor, 128)})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return ErrAlreadyReplayed
		}
		var org string
		if d.SessionID != "" {
			tx.Model(&Session{}).Select("org_id").Where("id = ?", d.SessionID).Scan(&org)
		}
		d.ReplayedAt, d.ReplayedBy = &now, actor
		return Audit(tx, AuditEntry{OrgID: org, Actor: CleanText(actor, 128), Action: "deadletter.replay",
			Target: fmt.Sprintf("deadletter:%d", d.ID),
			Detail: fmt.Sprintf("%s/%d/%d session %s (%s)", d.Topic, d.Partition, d.Offset, d.SessionID, d.Class)})
	})
}

// UnclaimDeadLetterReplay clears the replay mark after the message could not be produced.
func (s *Store) UnclaimDeadLetterReplay(ctx context.Context, id uint) error {
	return s.DB.WithContext(ctx).Model(&DeadLetter{}).Where("id = ?", id).
		Updates(map[string]any{"replayed_at": nil, "replayed_by": ""}).Error
}
