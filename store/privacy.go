package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
	"gorm.io/gorm/schema"
)

// DeletedSession remembers that a session was deleted (on request or when its retention ended)
// so workers drop the messages still in Kafka for it. It holds a hash of the id, not the id:
// after a deletion no row anywhere names the session (the audit log aside). Deleters serialise
// on the session row (LockSessions), not on this table: a platform may create a session with a
// deleted one's id again, and that one must be deletable too.
type DeletedSession struct {
	IDHash    string    `gorm:"primaryKey;size:64"`
	DeletedAt time.Time `gorm:"index"`
	// Why: "request" (DELETE /v1/sessions, /v1/candidates, proctor delete) or "retention".
	Why string `gorm:"size:16"`
}

// Reasons a session was deleted.
const (
	DeletedOnRequest   = "request"
	DeletedByRetention = "retention"
)

// SessionHash is the DeletedSession key of a session id.
func SessionHash(id string) string {
	h := sha256.Sum256([]byte("proctor-deleted-session\x00" + id))
	return hex.EncodeToString(h[:])
}

// SessionDeleted reports whether the session was deleted (messages for it are to be dropped).
func SessionDeleted(db *gorm.DB, id string) (bool, error) {
	var n int64
	err := db.Model(&DeletedSession{}).Where("id_hash = ?", SessionHash(id)).Count(&n).Error
	return n > 0, err
}

// SessionExists reports whether the session row is there, inside tx: a worker's transaction checks
// it before writing so a deletion that committed meanwhile is not undone by late rows. On
// PostgreSQL the row is locked FOR SHARE until tx ends, so a concurrent deletion waits and then
// removes what tx wrote (SQLite transactions are serial anyway).
func SessionExists(tx *gorm.DB, postgres bool, id string) (bool, error) {
	q := "SELECT id FROM sessions WHERE id = ?"
	if postgres {
		q += " FOR SHARE"
	}
	var ids []string
	err := tx.Raw(q, id).Scan(&ids).Error
	return len(ids) > 0, err
}

// LockSessions returns which of the sessions exist, locking their rows FOR UPDATE on PostgreSQL
// until tx ends: deleters take it first, so a worker's FOR SHARE (SessionExists) waits for the
// deletion and then finds nothing, and two deleters of one session run one after the other.
func LockSessions(tx *gorm.DB, postgres bool, ids []string) ([]string, error) {
	var out []string
	if len(ids) == 0 {
		return out, nil
	}
	q := "SELECT id FROM sessions WHERE id IN ? ORDER BY id"
	if postgres {
		q += " FOR UPDATE"
	}
	err := tx.Raw(q, ids).Scan(&out).Error
	return out, err
}

// MarkDeleted writes (or refreshes) the tombstone of session id inside the deleting transaction.
func MarkDeleted(tx *gorm.DB, id, why string, now time.Time) error {
	return tx.Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "id_hash"}},
		DoUpdates: clause.AssignmentColumns([]string{"deleted_at", "why"}),
	}).Create(&DeletedSession{IDHash: SessionHash(id), DeletedAt: now.UTC(), Why: why}).Error
}

// Removed counts deleted rows per table (and files under "files").
type Removed map[string]int64

// Add merges o into r.
func (r Removed) Add(o Removed) {
	for k, v := range o {
		r[k] += v
	}
}

// Total is the number of rows (and files) removed.
func (r Removed) Total() int64 {
	var n int64
	for _, v := range r {
		n += v
	}
	return n
}

// sessionTable is a table whose rows belong to sessions: by a session_id column, by a flag_id
// column (rows about one of the session's flags), or the sessions table itself.
type sessionTable struct {
	model   any
	table   string
	bySess  bool // has session_id
	byFlag  bool // has flag_id
	bySelf  bool // is sessions
	hasCand bool // has candidate_id
	hasOrg  bool // has org_id
}

var (
	tablesOnce sync.Once
	tablesList []sessionTable
	tablesErr  error
)

// sessionTables derives, from every migrated model, which tables hold rows of a session. It is
// generic on purpose: a table added to allModels with a session_id (or flag_id) column is
// deleted with its session without touching this file.
func sessionTables(ns schema.Namer) ([]sessionTable, error) {
	tablesOnce.Do(func() {
		cache := &sync.Map{}
		for _, m := range allModels() {
			sch, err := schema.Parse(m, cache, ns)
			if err != nil {
				tablesErr = err
				return
			}
			t := sessionTable{model: m, table: sch.Table}
			t.bySelf = sch.Table == "sessions"
			t.bySess = sch.LookUpField("session_id") != nil
			t.byFlag = sch.LookUpField("flag_id") != nil
			t.hasCand = sch.LookUpField("candidate_id") != nil
			t.hasOrg = sch.LookUpField("org_id") != nil
			if t.bySelf || t.bySess || t.byFlag || t.hasCand {
				tablesList = append(tablesList, t)
			}
		}
		// Rows hanging off flags go before the flags; sessions go last.
		sort.SliceStable(tablesList, func(i, j int) bool { return rank(tablesList[i]) < rank(tablesList[j]) })
	})
	return tablesList, tablesErr
}

func rank(t sessionTable) int {
	switch {
	case t.bySelf:
		return 3
	case t.table == "flags":
		return 2
	case t.byFlag:
		return 0
	default:
		return 1
	}
}

// SessionTableNames lists the tables deleted with a session (docs/privacy.md, tests).
func (s *Store) SessionTableNames() ([]string, error) {
	ts, err := sessionTables(s.DB.NamingStrategy)
	var out []string
	for _, t := range ts {
		out = append(out, t.table)
	}
	return out, err
}

// DeleteSessionRows deletes every row of the sessions ids in every table that holds session data
// (sessionTables), and rows carrying candidateID in tables of orgID with a candidate_id column
// (candidate "" skips those). It runs inside the caller's transaction.
func DeleteSessionRows(tx *gorm.DB, orgID, candidateID string, ids []string) (Removed, error) {
	out := Removed{}
	ts, err := sessionTables(tx.NamingStrategy)
	if err != nil {
		return nil, err
	}
	if _, err := LockSessions(tx, tx.Dialector.Name() == "postgres", ids); err != nil {
		return nil, err
	}
	var flagIDs []uint
	if len(ids) > 0 {
		if err := tx.Model(&Flag{}).Where("session_id IN ?", ids).Pluck("id", &flagIDs).Error; err != nil {
			return nil, err
		}
	}
	for _, t := range ts {
		var n int64
		del := func(q *gorm.DB) error {
			res := q.Delete(t.model)
			n += res.RowsAffected
			return res.Error
		}
		switch {
		case t.bySelf:
			if len(ids) > 0 {
				err = del(tx.Where("id IN ?", ids))
			}
		default:
			if t.byFlag && len(flagIDs) > 0 {
				if err = del(tx.Where("flag_id IN ?", flagIDs)); err != nil {
					break
				}
			}
			if t.bySess && len(ids) > 0 {
				if err = del(tx.Where("session_id IN ?", ids)); err != nil {
					break
				}
			}
			if t.hasCand && candidateID != "" {
				if !t.hasOrg {
					err = fmt.Errorf("table %s has candidate_id but no org_id: candidate ids are per organisation", t.table)
					break
				}
				err = del(tx.Where("org_id = ? AND candidate_id = ?", orgID, candidateID))
			}
		}
		if err != nil {
			return nil, fmt.Errorf("delete from %s: %w", t.table, err)
		}
		if n > 0 {
			out[t.table] += n
		}
	}
	return out, nil
}

// CandidateSessionIDs returns the keys of an organisation's sessions of a candidate.
func (s *Store) CandidateSessionIDs(ctx context.Context, orgID, candidateID string) ([]string, error) {
	var ids []string
	err := s.DB.WithContext(ctx).Model(&Session{}).Where("org_id = ? AND candidate_id = ?", orgID, candidateID).
		Order("id").Pluck("id", &ids).Error
	return ids, err
}

// SessionRecordingIDs returns the ids of the sessions' recordings (their files are named after them).
func SessionRecordingIDs(tx *gorm.DB, ids []string) ([]string, error) {
	var out []string
	if len(ids) == 0 {
		return out, nil
	}
	err := tx.Model(&Recording{}).Where("session_id IN ?", ids).Order("id").Pluck("id", &out).Error
	return out, err
}

// RetentionMark records that one data class of a session was deleted under the retention
// policy, and when: the reviewer page then says "evidence deleted on DATE" instead of failing.
// (session, class) is the primary key: inserting it is the sweeper's claim, so two sweepers
// never delete the same class of the same session twice.
type RetentionMark struct {
	SessionID string    `gorm:"primaryKey;size:64" json:"-"`
	Class     string    `gorm:"primaryKey;size:16" json:"class"`
	DeletedAt time.Time `json:"deleted_at"`
	// Rows and files removed, for the audit of the sweep.
	Removed int64 `json:"removed"`
}

// ClaimRetention inserts the mark of (session, class); false when it exists (done or being done).
func ClaimRetention(tx *gorm.DB, sessionID, class string, now time.Time) (bool, error) {
	res := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&RetentionMark{SessionID: sessionID, Class: class, DeletedAt: now.UTC()})
	return res.RowsAffected == 1, res.Error
}

// RetentionMarks returns what of a session was deleted under the retention policy, by class.
func (s *Store) RetentionMarks(ctx context.Context, sessionID string) (map[string]time.Time, error) {
	var rows []RetentionMark
	if err := s.DB.WithContext(ctx).Where("session_id = ?", sessionID).Find(&rows).Error; err != nil {
		return nil, err
	}
	out := make(map[string]time.Time, len(rows))
	for _, r := range rows {
		out[r.Class] = r.DeletedAt
	}
	return out, nil
}

// RetentionSetting is an organisation's retention policy (ExamID "") or an exam's override:
// Days is the JSON {"class": days} of the classes it sets (privacy.Classes).
type RetentionSetting struct {
	OrgID     string    `gorm:"primaryKey;size:64" json:"-"`
	ExamID    string    `gorm:"primaryKey;size:128" json:"exam_id,omitempty"`
	Days      string    `json:"-"`
	UpdatedAt time.Time `json:"updated_at"`
	UpdatedBy string    `gorm:"size:320" json:"updated_by"`
}

// GetRetentionSetting returns the row of (org, exam) — exam "" for the organisation — or ErrNotFound.
func (s *Store) GetRetentionSetting(ctx context.Context, orgID, examID string) (*RetentionSetting, error) {
	var r RetentionSetting
	err := s.DB.WithContext(ctx).Where("org_id = ? AND exam_id = ?", orgID, examID).Take(&r).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, ErrNotFound
	}
	return &r, err
}

// RetentionSettings returns every retention row (all organisations, the sweeper's view).
func (s *Store) RetentionSettings(ctx context.Context) ([]RetentionSetting, error) {
	var out []RetentionSetting
	err := s.DB.WithContext(ctx).Order("org_id, exam_id").Find(&out).Error
	return out, err
}

// PutRetentionSetting stores a policy row and its audit entry in one transaction.
func (s *Store) PutRetentionSetting(ctx context.Context, r *RetentionSetting, audit AuditEntry) error {
	r.UpdatedAt = time.Now().UTC()
	return s.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Clauses(clause.OnConflict{
			Columns:   []clause.Column{{Name: "org_id"}, {Name: "exam_id"}},
			DoUpdates: clause.AssignmentColumns([]string{"days", "updated_at", "updated_by"}),
		}).Create(r).Error; err != nil {
			return err
		}
		return Audit(tx, audit)
	})
}

// AuditPurge records that an organisation's audit entries before Before were deleted under the
// retention policy. The append-only triggers refuse every DELETE on audit_entries except of rows
// older than a recorded purge of their organisation, so even the retention sweeper leaves a
// trace, and nothing else can delete.
type AuditPurge struct {
	ID     uint      `gorm:"primaryKey"`
	OrgID  string    `gorm:"size:64;index"`
	Before time.Time `gorm:"index"`
	At     time.Time
}

// PurgeAudit deletes an organisation's audit entries older than before (in batches of limit) and
// returns how many went.
func (s *Store) PurgeAudit(ctx context.Context, orgID string, before time.Time, limit int) (int64, error) {
	var n int64
	var ids []uint
	db := s.DB.WithContext(ctx)
	// Looked up outside a transaction: on SQLite every transaction takes the write lock.
	if err := db.Model(&AuditEntry{}).Where("org_id = ? AND at < ?", orgID, before).Order("id").Limit(limit).Pluck("id", &ids).Error; err != nil || len(ids) == 0 {
		return 0, err
	}
	err := db.Transaction(func(tx *gorm.DB) error {
		if err := tx.Create(&AuditPurge{OrgID: orgID, Before: before.UTC(), At: time.Now().UTC()}).Error; err != nil {
			return err
		}
		res := tx.Where("id IN ?", ids).Delete(&AuditEntry{})
		n = res.RowsAffected
		return res.Error
	})
	return n, err
}

// PurgeExports deletes an organisation's exports created before cutoff (limit per call).
func (s *Store) PurgeExports(ctx context.Context, orgID string, before time.Time, limit int) (int64, error) {
	var ids []string
	db := s.DB.WithContext(ctx)
	if err := db.Model(&Export{}).Where("org_id = ? AND created_at < ?", orgID, before).Order("id").Limit(limit).Pluck("id", &ids).Error; err != nil || len(ids) == 0 {
		return 0, err
	}
	res := db.Where("id IN ?", ids).Delete(&Export{})
	return res.RowsAffected, res.Error
}

// Per-class deletions of one session's data under the retention policy (privacy.Sweeper), each
// inside the caller's transaction; they return the rows removed.

// PurgeFrames deletes the session's frame results, shadow observations and evidence frames.
func PurgeFrames(tx *gorm.DB, sessionID string) (int64, error) {
	var n int64
	flags := tx.Model(&Flag{}).Select("id").Where("session_id = ?", sessionID)
	for _, q := range []struct {
		model any
		where *gorm.DB
	}{
		{&Evidence{}, tx.Where("flag_id IN (?)", flags)},
		{&FrameImage{}, tx.Where("session_id = ?", sessionID)},
		{&FrameResult{}, tx.Where("session_id = ?", sessionID)},
		{&ShadowObservation{}, tx.Where("session_id = ?", sessionID)},
	} {
		res := q.where.Delete(q.model)
		if res.Error != nil {
			return n, res.Error
		}
		n += res.RowsAffected
	}
	return n, nil
}

// PurgeAudio deletes the session's stored PCM and clears the audio analyzers' saved state
// (derived from the voice); speech segments, phrases and answers stay with the flags.
func PurgeAudio(tx *gorm.DB, sessionID string) (int64, error) {
	res := tx.Where("session_id = ?", sessionID).Delete(&AudioSample{})
	if res.Error != nil {
		return 0, res.Error
	}
	n := res.RowsAffected
	res = tx.Model(&AudioStretch{}).Where("session_id = ? AND state IS NOT NULL", sessionID).Update("state", nil)
	return n + res.RowsAffected, res.Error
}

// biometricModels are the tables whose rows are biometric data of a session, deleted whole when
// the biometrics class expires. A new one (voice enrolments) is added here; its rows are deleted
// on request anyway through its session_id column.
func biometricModels() []any { return []any{&GalleryFace{}, &VoiceWindow{}} }

// PurgeBiometrics clears the session's registration photo and face embedding and deletes its
// biometric rows (gallery frames and embeddings).
func PurgeBiometrics(tx *gorm.DB, sessionID string) (int64, error) {
	res := tx.Model(&Session{}).Where("id = ? AND (registration_photo IS NOT NULL OR face_embedding IS NOT NULL)", sessionID).
		Updates(map[string]any{"registration_photo": nil, "face_embedding": nil})
	if res.Error != nil {
		return 0, res.Error
	}
	n := res.RowsAffected
	for _, m := range biometricModels() {
		res := tx.Where("session_id = ?", sessionID).Delete(m)
		if res.Error != nil {
			return n, res.Error
		}
		n += res.RowsAffected
	}
	return n, nil
}
