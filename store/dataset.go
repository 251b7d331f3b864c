package store

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"strings"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// AudioSample keeps the PCM of one analysed audio chunk (s16le mono at SampleRate) so reviewer
// labels can later be exported as snippets. It is written in the chunk's transaction and removed
// with the audio retention class (privacy.Sweeper, store.PurgeAudio).
type AudioSample struct {
	SessionID    string `gorm:"primaryKey;size:64"`
	Seq          int64  `gorm:"primaryKey"`
	CapturedAtMs int64  `gorm:"index"`
	SampleRate   int
	PCM          []byte
	CreatedAt    time.Time `gorm:"index"`
}

// InsertAudioSample stores a chunk's PCM; a redelivery is a no-op.
func InsertAudioSample(tx *gorm.DB, a *AudioSample) error {
	a.CreatedAt = time.Now().UTC()
	return tx.Clauses(clause.OnConflict{DoNothing: true}).Create(a).Error
}

// AudioSamplesBetween returns the session's chunks that overlap [fromMs, toMs), in time order.
// Chunks are at most a few seconds long, so a margin of one minute before fromMs finds the one
// that starts earlier and reaches into the window.
func (s *Store) AudioSamplesBetween(ctx context.Context, sessionID string, fromMs, toMs int64) ([]AudioSample, error) {
	var out []AudioSample
	err := s.DB.WithContext(ctx).Where("session_id = ? AND captured_at_ms >= ? AND captured_at_ms < ?",
		sessionID, fromMs-60_000, toMs).Order("captured_at_ms, seq").Find(&out).Error
	return out, err
}

// PseudonymKey is an organisation's random key for export pseudonyms, created on first use.
type PseudonymKey struct {
	OrgID     string `gorm:"primaryKey;size:64"`
	Key       []byte
	CreatedAt time.Time
}

// Pseudonymizer turns identifiers into stable pseudonyms: HMAC-SHA256 under the organisation's
// key, so the same candidate gets the same pseudonym in every export and nobody without the
// database can reverse or recompute it.
type Pseudonymizer struct{ key []byte }

// Pseudonymizer returns the organisation's pseudonymizer, creating its key on first use.
func (s *Store) Pseudonymizer(ctx context.Context, orgID string) (*Pseudonymizer, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	db := s.DB.WithContext(ctx)
	if err := db.Clauses(clause.OnConflict{DoNothing: true}).Create(&PseudonymKey{OrgID: orgID, Key: key, CreatedAt: time.Now().UTC()}).Error; err != nil {
		return nil, err
	}
	var pk PseudonymKey
	if err := db.Where("org_id = ?", orgID).Take(&pk).Error; err != nil {
		return nil, err
	}
	return &Pseudonymizer{key: pk.Key}, nil
}

// Of returns prefix + 16 base32 characters (80 bits) of HMAC(kind, id); "" stays "".
func (p *Pseudonymizer) Of(prefix, id string) string {
	if id == "" {
		return ""
	}
	m := hmac.New(sha256.New, p.key)
	m.Write([]byte(prefix + "\x00" + id))
	return prefix + strings.ToLower(base32.StdEncoding.EncodeToString(m.Sum(nil))[:16])
}

// Export records one dataset export: who made it, why, with which filters, what it holds.
type Export struct {
	ID        string `gorm:"primaryKey;size:40" json:"id"`
	OrgID     string `gorm:"size:64;index" json:"-"`
	CreatedBy string `gorm:"size:320" json:"created_by"`
	Purpose   string `json:"purpose"`
	// Filters and Counts are JSON (see export.Filters and export.Counts).
	Filters        string    `json:"filters"`
	Counts         string    `json:"counts"`
	ManifestSHA256 string    `gorm:"size:64" json:"manifest_sha256"`
	Bytes          int64     `json:"bytes"`
	Archive        []byte    `json:"-"`
	CreatedAt      time.Time `gorm:"index" json:"created_at"`
}

// SaveExport stores an export with its zip archive and the audit entry.
func (s *Store) SaveExport(ctx context.Context, e *Export, remoteIP string) error {
	return s.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Create(e).Error; err != nil {
			return err
		}
		return auditJSON(tx, e.OrgID, e.CreatedBy, "export.create", "export:"+e.ID, remoteIP,
			map[string]any{"purpose": e.Purpose, "filters": e.Filters, "counts": e.Counts, "manifest_sha256": e.ManifestSHA256})
	})
}

// ListExports lists an organisation's exports, newest first, without archives.
func (s *Store) ListExports(ctx context.Context, orgID string, limit int) ([]Export, error) {
	var out []Export
	err := s.DB.WithContext(ctx).Omit("archive").Where("org_id = ?", orgID).Order("created_at DESC").Limit(limit).Find(&out).Error
	return out, err
}

// GetExport returns one of the organisation's exports; withArchive loads the zip too.
func (s *Store) GetExport(ctx context.Context, orgID, id string, withArchive bool) (*Export, error) {
	q := s.DB.WithContext(ctx).Where("id = ? AND org_id = ?", id, orgID)
	if !withArchive {
		q = q.Omit("archive")
	}
	var e Export
	if err := q.Take(&e).Error; err != nil {
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return nil, ErrNotFound
		}
		return nil, err
	}
	return &e, nil
}

// DatasetQuery selects what an export may contain. Zero fields do not filter.
type DatasetQuery struct {
	OrgID     string
	ExamID    string
	From, To  time.Time // session creation time
	FlagTypes []string
	// Model keeps flags decided by exactly this model version (e.g. "attire-cnn@1"), as ModelOf
	// attributes them (required with Model).
	Model    string
	ModelOf  ModelOf
	Verdicts []string // flag statuses: confirmed, dismissed, open
	Limit    int
}

// DatasetFlag is a flag with its session, for the vision part of an export.
type DatasetFlag struct {
	Flag
	ExamID      string
	CandidateID string
}

func (s *Store) sessionScope(q DatasetQuery) *gorm.DB {
	db := s.DB.Model(&Session{}).Select("id").Where("org_id = ?", q.OrgID)
	if q.ExamID != "" {
		db = db.Where("exam_id = ?", q.ExamID)
	}
	if !q.From.IsZero() {
		db = db.Where("created_at >= ?", q.From)
	}
	if !q.To.IsZero() {
		db = db.Where("created_at < ?", q.To)
	}
	return db
}

// DatasetFlags returns the flags matching q that a reviewer judged (a verdict, or an attribute
// label still standing), oldest first. The model filter is exact on the deciding model version
// (q.ModelOf), so "attire-cnn@1" does not match "attire-cnn@10".
func (s *Store) DatasetFlags(ctx context.Context, q DatasetQuery) ([]DatasetFlag, error) {
	labelled := s.DB.Model(&Label{}).Select("flag_id").Where("kind = ? AND withdrawn_at IS NULL AND flag_id IS NOT NULL", LabelAttribute)
	db := s.DB.WithContext(ctx).Model(&Flag{}).Joins("JOIN sessions ON sessions.id = flags.session_id").
		Where("flags.session_id IN (?)", s.sessionScope(q)).
		Where("(flags.status <> ? OR flags.id IN (?))", StatusOpen, labelled)
	if len(q.FlagTypes) > 0 {
		db = db.Where("flags.type IN ?", q.FlagTypes)
	}
	if len(q.Verdicts) > 0 {
		db = db.Where("flags.status IN ?", q.Verdicts)
	}
	if q.Model != "" {
		db = db.Where("flags.model_version LIKE ?", "%"+q.Model+"%") // narrows; exact below
	}
	var rows []DatasetFlag
	if err := db.Select("flags.*, sessions.exam_id, sessions.candidate_id").Order("flags.id").Find(&rows).Error; err != nil {
		return nil, err
	}
	out := rows[:0]
	for _, f := range rows {
		if q.Model == "" || q.ModelOf(f.Type, f.ModelVersion) == q.Model {
			out = append(out, f)
		}
		if q.Limit > 0 && len(out) == q.Limit {
			break
		}
	}
	return out, nil
}

// DatasetLabels returns the labels (withdrawn ones excluded) on the sessions matching q, and
// given before cutoff, oldest first.
func (s *Store) DatasetLabels(ctx context.Context, q DatasetQuery, cutoff time.Time) ([]Label, error) {
	var out []Label
	err := s.DB.WithContext(ctx).Where("session_id IN (?) AND withdrawn_at IS NULL AND created_at <= ?", s.sessionScope(q), cutoff).
		Order("id").Limit(q.Limit).Find(&out).Error
	return out, err
}

// DatasetPhrases returns the phrase detections on the sessions matching q, with their session.
func (s *Store) DatasetPhrases(ctx context.Context, q DatasetQuery) ([]PhraseDetection, error) {
	var out []PhraseDetection
	err := s.DB.WithContext(ctx).Where("session_id IN (?)", s.sessionScope(q)).Order("session_id, onset_ms").Limit(q.Limit).Find(&out).Error
	return out, err
}
