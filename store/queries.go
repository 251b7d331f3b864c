package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// CreateSession inserts a new session.
func (s *Store) CreateSession(ctx context.Context, sess *Session) error {
	if sess.ID == "" {
		sess.ID = NewID()
	}
	// The photo is sealed for the row and restored for the caller afterwards.
	plain := sess.RegistrationPhoto
	sealed, err := seal(s.DB, plain, aadPhoto(sess.ID))
	if err != nil {
		return err
	}
	sess.RegistrationPhoto = sealed
	err = s.DB.WithContext(ctx).Create(sess).Error
	sess.RegistrationPhoto = plain
	if err != nil {
		if errors.Is(err, gorm.ErrDuplicatedKey) {
			return fmt.Errorf("session %s already exists: %w", sess.ID, err)
		}
		return fmt.Errorf("create session: %w", err)
	}
	return nil
}

// ScopedSessionID is the key of organisation orgID's session whose platform id another
// organisation already holds: the id (cut to 53 characters) + "~" + 10 hex digits of a hash of
// both. "~" is outside the session-id pattern, so it never equals an id a platform can choose,
// and it is deterministic, so the platform's id resolves to it with no lookup table.
func ScopedSessionID(orgID, id string) string {
	sum := sha256.Sum256([]byte(orgID + "\x00" + id))
	return id[:min(len(id), 53)] + "~" + hex.EncodeToString(sum[:5])
}

// CreatePlatformSession creates sess under the id the platform chose (sess.ID; empty: a new
// random id), scoped to sess.OrgID: if the organisation already has a session with that id it
// returns that one (created false: a retried request is harmless); if another organisation holds
// the id, sess is created under ScopedSessionID with PlatformID set, so the caller cannot tell
// that the id was taken.
func (s *Store) CreatePlatformSession(ctx context.Context, sess *Session) (_ *Session, created bool, err error) {
	if sess.ID == "" {
		return sess, true, s.CreateSession(ctx, sess)
	}
	id := sess.ID
	if existing, err := s.GetSession(ctx, sess.OrgID, id); err == nil {
		return existing, false, nil
	} else if !errors.Is(err, ErrNotFound) {
		return nil, false, err
	}
	err = s.CreateSession(ctx, sess)
	if errors.Is(err, ErrDuplicatedKey) {
		owner, gerr := s.GetSession(ctx, "", id)
		if gerr != nil {
			return nil, false, gerr
		}
		if owner.OrgID == sess.OrgID { // the same organisation's concurrent create won
			return owner, false, nil
		}
		sess.ID, sess.PlatformID = ScopedSessionID(sess.OrgID, id), id
		err = s.CreateSession(ctx, sess)
	}
	if errors.Is(err, ErrDuplicatedKey) { // a concurrent create of the scoped id won
		existing, gerr := s.GetSession(ctx, sess.OrgID, id)
		return existing, false, gerr
	}
	return sess, err == nil, err
}

// GetSession returns a session of the organisation by the platform's id or by its key (orgID ""
// means any, by key: used by workers).
func (s *Store) GetSession(ctx context.Context, orgID, id string) (*Session, error) {
	var sess Session
	q := s.DB.WithContext(ctx).Omit("registration_photo")
	if orgID != "" {
		q = q.Where("org_id = ? AND id IN ?", orgID, []string{id, ScopedSessionID(orgID, id)})
	} else {
		q = q.Where("id = ?", id)
	}
	if err := q.Take(&sess).Error; err != nil {
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return nil, ErrNotFound
		}
		return nil, err
	}
	var err error
	if sess.FaceEmbedding, err = open(s.DB, sess.FaceEmbedding, aadEmbedding(sess.ID)); err != nil {
		return nil, fmt.Errorf("session %s face embedding: %w", sess.ID, err)
	}
	return &sess, nil
}

// SessionFilter narrows the reviewer queue.
type SessionFilter struct {
	OrgID  string
	ExamID string
	Limit  int
	Offset int
	// From and To bound the scheduled start (To exclusive); zero means unbounded.
	From, To time.Time
	// FlagType keeps sessions with at least one flag of this type.
	FlagType string
	// Review keeps sessions by review status: ReviewOpen (open flags left), ReviewDone (flags,
	// all judged) or ReviewClean (no flags).
	Review string
}

// Review statuses of a session in the queue.
const (
	ReviewOpen  = "open"
	ReviewDone  = "reviewed"
	ReviewClean = "clean"
)

// Where applies the filter (except limit and offset) to a query on sessions.
func (f SessionFilter) Where(q *gorm.DB) *gorm.DB {
	q = q.Where("sessions.org_id = ?", f.OrgID)
	if f.ExamID != "" {
		q = q.Where("sessions.exam_id = ?", f.ExamID)
	}
	if !f.From.IsZero() {
		q = q.Where("sessions.scheduled_start >= ?", f.From)
	}
	if !f.To.IsZero() {
		q = q.Where("sessions.scheduled_start < ?", f.To)
	}
	if f.FlagType != "" {
		q = q.Where("sessions.id IN (?)", q.Session(&gorm.Session{NewDB: true}).Model(&Flag{}).
			Select("session_id").Where("type = ?", f.FlagType))
	}
	switch f.Review {
	case ReviewOpen:
		q = q.Where("sessions.open_flags > 0")
	case ReviewDone:
		q = q.Where("sessions.open_flags = 0 AND sessions.total_flags > 0")
	case ReviewClean:
		q = q.Where("sessions.total_flags = 0")
	}
	return q
}

// ListSessions returns sessions ranked by risk, highest first.
func (s *Store) ListSessions(ctx context.Context, f SessionFilter) ([]Session, error) {
	q := f.Where(s.DB.WithContext(ctx).Model(&Session{}).Omit("registration_photo"))
	if f.Limit <= 0 || f.Limit > 500 {
		f.Limit = 100
	}
	var out []Session
	err := q.Order("risk_score DESC").Order("created_at DESC").Limit(f.Limit).Offset(f.Offset).Find(&out).Error
	return out, err
}

// SessionFlags returns a session's flags in time order.
func (s *Store) SessionFlags(ctx context.Context, sessionID string) ([]Flag, error) {
	var out []Flag
	err := s.DB.WithContext(ctx).Where("session_id = ?", sessionID).
		Order("start_ms").Order("id").Find(&out).Error
	return out, err
}

// GetFlag returns a flag together with its session (for the organisation check).
func (s *Store) GetFlag(ctx context.Context, orgID string, id uint) (*Flag, *Session, error) {
	var f Flag
	if err := s.DB.WithContext(ctx).Take(&f, id).Error; err != nil {
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return nil, nil, ErrNotFound
		}
		return nil, nil, err
	}
	sess, err := s.GetSession(ctx, orgID, f.SessionID)
	if err != nil {
		return nil, nil, err
	}
	return &f, sess, nil
}

// GetEvidence returns the evidence JPEG of a flag.
func (s *Store) GetEvidence(ctx context.Context, flagID uint) (*Evidence, error) {
	var e Evidence
	if err := s.DB.WithContext(ctx).Take(&e, "flag_id = ?", flagID).Error; err != nil {
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return nil, ErrNotFound
		}
		return nil, err
	}
	return &e, nil
}

// FlagVerdicts returns the verdict history of a flag, oldest first.
func (s *Store) FlagVerdicts(ctx context.Context, flagID uint) ([]Verdict, error) {
	var out []Verdict
	err := s.DB.WithContext(ctx).Where("flag_id = ?", flagID).Order("id").Find(&out).Error
	return out, err
}

// InsertFrameResult stores a frame's result unless (session, camera, seq) is already stored.
// It reports whether the row is new: false means a redelivery, whose rules already ran.
func InsertFrameResult(tx *gorm.DB, fr *FrameResult) (bool, error) {
	res := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(fr)
	if res.Error != nil {
		return false, fmt.Errorf("store frame %s/%s/%d: %w", fr.SessionID, fr.Camera, fr.Seq, res.Error)
	}
	if res.RowsAffected == 0 {
		return false, nil
	}
	return true, tx.Model(&Session{}).Where("id = ?", fr.SessionID).
		UpdateColumn("frames", gorm.Expr("frames + 1")).Error
}

// FrameStored reports whether a frame was already analysed (the API uses it to answer resends).
func (s *Store) FrameStored(ctx context.Context, sessionID, camera string, seq int64) (bool, error) {
	var n int64
	err := s.DB.WithContext(ctx).Model(&FrameResult{}).
		Where("session_id = ? AND camera = ? AND seq = ?", sessionID, camera, seq).Count(&n).Error
	return n > 0, err
}

// CountFrames returns how many frames of a session were analysed.
func (s *Store) CountFrames(ctx context.Context, sessionID string) (int64, error) {
	var n int64
	err := s.DB.WithContext(ctx).Model(&FrameResult{}).Where("session_id = ?", sessionID).Count(&n).Error
	return n, err
}

// InsertEvent stores an event unless (session, seq) is already stored.
func InsertEvent(tx *gorm.DB, e *Event) (bool, error) {
	res := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(e)
	return res.RowsAffected > 0, res.Error
}

// InsertAudioChunk stores an audio chunk record unless (session, seq) is already stored.
func InsertAudioChunk(tx *gorm.DB, a *AudioChunk) (bool, error) {
	res := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(a)
	return res.RowsAffected > 0, res.Error
}

// SessionEvents returns a session's events in capture order.
func (s *Store) SessionEvents(ctx context.Context, sessionID string) ([]Event, error) {
	var out []Event
	err := s.DB.WithContext(ctx).Where("session_id = ?", sessionID).
		Order("captured_at_ms").Order("seq").Find(&out).Error
	return out, err
}

// ListAudit returns the newest audit entries of an organisation.
func (s *Store) ListAudit(ctx context.Context, orgID string, limit int) ([]AuditEntry, error) {
	if limit <= 0 || limit > 1000 {
		limit = 200
	}
	var out []AuditEntry
	err := s.DB.WithContext(ctx).Where("org_id = ?", orgID).Order("id DESC").Limit(limit).Find(&out).Error
	return out, err
}

// RecordVerdict stores a verdict, sets the flag's status and writes the audit entry in one
// transaction; after is called inside it (to recompute the session's risk).
func (s *Store) RecordVerdict(ctx context.Context, f *Flag, v *Verdict, audit AuditEntry,
	after func(tx *gorm.DB, sessionID string) error) error {
	return s.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		v.FlagID = f.ID
		v.CreatedAt = time.Now().UTC()
		if err := tx.Create(v).Error; err != nil {
			return err
		}
		if err := tx.Model(&Flag{}).Where("id = ?", f.ID).Update("status", v.Verdict).Error; err != nil {
			return err
		}
		if err := Audit(tx, audit); err != nil {
			return err
		}
		return after(tx, f.SessionID)
	})
}

// FrameSignals is what the rules read of a stored frame: its place in time and the checks'
// signals (FrameResult.Signals).
type FrameSignals struct {
	Seq          int64
	CapturedAtMs int64
	Signals      string
}

// NeighbourFrames returns up to limit frames of a session's camera next to the position
// (capturedAtMs, seq), nearest first: those before it, or with after those after it. The rules
// page through them to find the run a frame belongs to.
func NeighbourFrames(tx *gorm.DB, sessionID, camera string, capturedAtMs, seq int64, after bool, limit int) ([]FrameSignals, error) {
	q := tx.Model(&FrameResult{}).Select("seq, captured_at_ms, signals").
		Where("session_id = ? AND camera = ?", sessionID, camera)
	if after {
		q = q.Where("captured_at_ms > ? OR (captured_at_ms = ? AND seq > ?)", capturedAtMs, capturedAtMs, seq).
			Order("captured_at_ms").Order("seq")
	} else {
		q = q.Where("captured_at_ms < ? OR (captured_at_ms = ? AND seq < ?)", capturedAtMs, capturedAtMs, seq).
			Order("captured_at_ms DESC").Order("seq DESC")
	}
	var out []FrameSignals
	return out, q.Limit(limit).Find(&out).Error
}

// CameraFrames returns every frame of a session's camera in time order (the timing rules read
// the evidence camera's whole recording).
func CameraFrames(tx *gorm.DB, sessionID, camera string) ([]FrameSignals, error) {
	var out []FrameSignals
	err := tx.Model(&FrameResult{}).Select("seq, captured_at_ms, signals").
		Where("session_id = ? AND camera = ?", sessionID, camera).Order("captured_at_ms").Order("seq").
		Find(&out).Error
	return out, err
}

// NeighbourFramesExcept is NeighbourFrames without the frames of seqs in except (frames a batch
// stored but has not judged yet).
func NeighbourFramesExcept(tx *gorm.DB, sessionID, camera string, capturedAtMs, seq int64, after bool, limit int, except []int64) ([]FrameSignals, error) {
	if len(except) == 0 {
		return NeighbourFrames(tx, sessionID, camera, capturedAtMs, seq, after, limit)
	}
	return NeighbourFrames(tx.Where("seq NOT IN ?", except), sessionID, camera, capturedAtMs, seq, after, limit)
}

// errFrameRace: a frame of a batch was stored by someone else between the batch's check and
// its insert (two workers during a rebalance). The batch is rolled back and retried message by
// message, which then skips it.
var errFrameRace = errors.New("a frame of the batch was stored concurrently")

// InsertFrameResults stores a batch of new frame results in one statement (a multi-row insert;
// SQLite and PostgreSQL alike) and counts them on their sessions. The caller checked that none
// is stored yet (StoredFrames); if one is after all, nothing is counted and an error says so
// (roll back and retry).
func InsertFrameResults(tx *gorm.DB, rows []*FrameResult) error {
	if len(rows) == 0 {
		return nil
	}
	// 100 rows × 10 columns stays below every driver's bound on parameters per statement.
	res := tx.Clauses(clause.OnConflict{DoNothing: true}).CreateInBatches(rows, 100)
	if res.Error != nil {
		return fmt.Errorf("store %d frames: %w", len(rows), res.Error)
	}
	if res.RowsAffected != int64(len(rows)) {
		return errFrameRace
	}
	perSession := map[string]int{}
	for _, r := range rows {
		perSession[r.SessionID]++
	}
	for id, n := range perSession {
		if err := tx.Model(&Session{}).Where("id = ?", id).
			UpdateColumn("frames", gorm.Expr("frames + ?", n)).Error; err != nil {
			return err
		}
	}
	return nil
}

// FrameKey names a stored frame of a session.
type FrameKey struct {
	Camera string
	Seq    int64
}

// StoredFrames returns which of seqs (any camera) are already stored for a session.
func (s *Store) StoredFrames(ctx context.Context, sessionID string, seqs []int64) ([]FrameKey, error) {
	var out []FrameKey
	err := s.DB.WithContext(ctx).Model(&FrameResult{}).Select("camera, seq").
		Where("session_id = ? AND seq IN ?", sessionID, seqs).Find(&out).Error
	return out, err
}
