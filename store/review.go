package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"gorm.io/gorm"
)

// VerdictInput is a reviewer's decision on one or more flags.
type VerdictInput struct {
	OrgID    string
	FlagIDs  []uint
	Verdict  string // StatusConfirmed or StatusDismissed
	Note     string
	Reviewer string // the actor: "user:<email>" or "key:<id>"
	RemoteIP string
	// Batch groups a bulk action's verdicts so one undo takes them all back ("" for one flag).
	Batch string
}

// ErrConflict is returned when a request contradicts the current state: an undo that would
// overwrite someone else's later decision, a model version registered twice, nothing to roll
// back to.
var ErrConflict = errors.New("conflict")

// RecordVerdicts stores one verdict per flag, sets each flag's status and writes one audit entry
// per verdict (and one for the bulk action), in one transaction; after runs inside it once per
// session touched (to recompute its risk). Flags of another organisation are ErrNotFound: nothing
// is written.
func (s *Store) RecordVerdicts(ctx context.Context, in VerdictInput, after func(tx *gorm.DB, sessionID string) error) ([]Verdict, error) {
	if len(in.FlagIDs) == 0 {
		return nil, errors.New("no flags given")
	}
	var out []Verdict
	err := s.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var flags []Flag
		if err := tx.Where("id IN ? AND session_id IN (?)", in.FlagIDs,
			tx.Session(&gorm.Session{NewDB: true}).Model(&Session{}).Select("id").Where("org_id = ?", in.OrgID)).
			Order("id").Find(&flags).Error; err != nil {
			return err
		}
		if len(flags) != len(dedupe(in.FlagIDs)) {
			return ErrNotFound
		}
		now := time.Now().UTC()
		var sessions []string
		seen := map[string]bool{}
		for _, f := range flags {
			v := Verdict{FlagID: f.ID, Verdict: in.Verdict, Note: in.Note, Reviewer: in.Reviewer,
				CreatedAt: now, Previous: f.Status, Batch: in.Batch}
			if err := tx.Create(&v).Error; err != nil {
				return err
			}
			if err := tx.Model(&Flag{}).Where("id = ?", f.ID).Update("status", in.Verdict).Error; err != nil {
				return err
			}
			detail := map[string]any{"verdict": in.Verdict, "previous": f.Status, "note": in.Note,
				"session": f.SessionID, "type": f.Type}
			if in.Batch != "" {
				detail["batch"] = in.Batch
			}
			if err := auditJSON(tx, in.OrgID, in.Reviewer, "flag.verdict", "flag:"+utoa(f.ID), in.RemoteIP, detail); err != nil {
				return err
			}
			out = append(out, v)
			if !seen[f.SessionID] {
				seen[f.SessionID] = true
				sessions = append(sessions, f.SessionID)
			}
		}
		if in.Batch != "" {
			if err := auditJSON(tx, in.OrgID, in.Reviewer, "verdict.bulk", "batch:"+in.Batch, in.RemoteIP,
				map[string]any{"verdict": in.Verdict, "flags": in.FlagIDs, "note": in.Note}); err != nil {
				return err
			}
		}
		for _, sid := range sessions {
			if err := after(tx, sid); err != nil {
				return err
			}
		}
		return nil
	})
	return out, err
}

// UndoLastVerdict takes back the reviewer's latest verdict (all of it, if it was a bulk action):
// each flag gets the status it had before, the verdict is marked undone and the undo is
// audit-logged. ErrNotFound: nothing to undo; ErrConflict: someone judged one of those flags
// since, and their decision stands.
func (s *Store) UndoLastVerdict(ctx context.Context, orgID, reviewer, remoteIP string,
	after func(tx *gorm.DB, sessionID string) error) ([]Verdict, error) {
	var out []Verdict
	err := s.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var last Verdict
		err := tx.Model(&Verdict{}).Joins("JOIN flags ON flags.id = verdicts.flag_id").
			Joins("JOIN sessions ON sessions.id = flags.session_id").
			Where("verdicts.reviewer = ? AND sessions.org_id = ? AND verdicts.undone = ?", reviewer, orgID, false).
			Order("verdicts.id DESC").Limit(1).Select("verdicts.*").Take(&last).Error
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		group := []Verdict{last}
		if last.Batch != "" {
			group = nil
			if err := tx.Where("batch = ? AND reviewer = ? AND undone = ?", last.Batch, reviewer, false).
				Order("id").Find(&group).Error; err != nil {
				return err
			}
		}
		seen := map[string]bool{}
		var sessions []string
		for _, v := range group {
			// The verdict must still be the flag's latest standing decision.
			var newer int64
			if err := tx.Model(&Verdict{}).Where("flag_id = ? AND id > ? AND undone = ?", v.FlagID, v.ID, false).
				Count(&newer).Error; err != nil {
				return err
			}
			if newer > 0 {
				return fmt.Errorf("flag %d was judged again after your verdict: %w", v.FlagID, ErrConflict)
			}
			var f Flag
			if err := tx.Select("id, session_id, type").Take(&f, v.FlagID).Error; err != nil {
				return err
			}
			prev := v.Previous
			if prev == "" {
				prev = StatusOpen
			}
			if err := tx.Model(&Verdict{}).Where("id = ?", v.ID).Update("undone", true).Error; err != nil {
				return err
			}
			if err := tx.Model(&Flag{}).Where("id = ?", v.FlagID).Update("status", prev).Error; err != nil {
				return err
			}
			if err := auditJSON(tx, orgID, reviewer, "flag.verdict.undo", "flag:"+utoa(v.FlagID), remoteIP,
				map[string]any{"undone": v.Verdict, "restored": prev, "verdict_id": v.ID, "session": f.SessionID}); err != nil {
				return err
			}
			v.Undone = true
			out = append(out, v)
			if !seen[f.SessionID] {
				seen[f.SessionID] = true
				sessions = append(sessions, f.SessionID)
			}
		}
		for _, sid := range sessions {
			if err := after(tx, sid); err != nil {
				return err
			}
		}
		return nil
	})
	return out, err
}

// ReviewSummary is what the queue page shows above the list.
type ReviewSummary struct {
	// OpenByType counts open flags per flag type over the filtered sessions.
	OpenByType map[string]int64 `json:"open_by_type"`
	// AlertTypes are the types among them raised with alert severity (shown first, in red).
	AlertTypes []string `json:"alert_types"`
	Sessions   int64    `json:"sessions"`
	Open       int64    `json:"sessions_open"`     // with flags left to judge
	Reviewed   int64    `json:"sessions_reviewed"` // every flag judged
	// The caller's day: verdicts given since Since, and on how many sessions.
	Since          time.Time `json:"since"`
	MyVerdicts     int64     `json:"my_verdicts"`
	MySessions     int64     `json:"my_sessions"`
	OrgVerdicts    int64     `json:"org_verdicts"`
	OpenFlagsTotal int64     `json:"open_flags"`
}

// Summary counts open flags per type and the review progress for the queue page.
func (s *Store) Summary(ctx context.Context, f SessionFilter, reviewer string, since time.Time) (*ReviewSummary, error) {
	db := s.DB.WithContext(ctx)
	out := &ReviewSummary{OpenByType: map[string]int64{}, Since: since}
	var rows []struct {
		Type, Severity string
		N              int64
	}
	sessIDs := f.Where(db.Session(&gorm.Session{NewDB: true}).Model(&Session{})).Select("sessions.id")
	if err := db.Model(&Flag{}).Select("type, severity, COUNT(*) AS n").
		Where("status = ? AND session_id IN (?)", StatusOpen, sessIDs).Group("type, severity").Scan(&rows).Error; err != nil {
		return nil, err
	}
	for _, r := range rows {
		out.OpenByType[r.Type] += r.N
		out.OpenFlagsTotal += r.N
		if r.Severity == SeverityAlert && !slices.Contains(out.AlertTypes, r.Type) {
			out.AlertTypes = append(out.AlertTypes, r.Type)
		}
	}
	var c struct{ Sessions, Open, Reviewed int64 }
	if err := f.Where(db.Model(&Session{})).Select(
		"COUNT(*) AS sessions, " +
			"COALESCE(SUM(CASE WHEN open_flags > 0 THEN 1 ELSE 0 END), 0) AS open, " +
			"COALESCE(SUM(CASE WHEN open_flags = 0 AND total_flags > 0 THEN 1 ELSE 0 END), 0) AS reviewed").
		Scan(&c).Error; err != nil {
		return nil, err
	}
	out.Sessions, out.Open, out.Reviewed = c.Sessions, c.Open, c.Reviewed
	mine := db.Model(&Verdict{}).Joins("JOIN flags ON flags.id = verdicts.flag_id").
		Joins("JOIN sessions ON sessions.id = flags.session_id").
		Where("sessions.org_id = ? AND verdicts.created_at >= ? AND verdicts.undone = ?", f.OrgID, since, false)
	var m struct{ N, S int64 }
	if err := mine.Session(&gorm.Session{}).Where("verdicts.reviewer = ?", reviewer).
		Select("COUNT(*) AS n, COUNT(DISTINCT flags.session_id) AS s").Scan(&m).Error; err != nil {
		return nil, err
	}
	out.MyVerdicts, out.MySessions = m.N, m.S
	if err := mine.Session(&gorm.Session{}).Count(&out.OrgVerdicts).Error; err != nil {
		return nil, err
	}
	return out, nil
}

// VerdictRow is one verdict with its flag and session, for the CSV export.
type VerdictRow struct {
	VerdictID    uint
	ExamID       string
	SessionID    string
	CandidateID  string
	FlagID       uint
	FlagType     string
	Severity     string
	Camera       string
	Phase        string
	StartMs      int64
	EndMs        int64
	Confidence   float64
	ModelVersion string
	FlagStatus   string
	Verdict      string
	Previous     string
	Note         string
	Reviewer     string
	Batch        string
	Undone       bool
	CreatedAt    time.Time
}

// ExportVerdicts returns the verdicts on an organisation's sessions (optionally one exam, and
// verdicts given in [from, to)), oldest first, at most limit rows.
func (s *Store) ExportVerdicts(ctx context.Context, orgID, examID string, from, to time.Time, limit int) ([]VerdictRow, error) {
	q := s.DB.WithContext(ctx).Model(&Verdict{}).
		Joins("JOIN flags ON flags.id = verdicts.flag_id").
		Joins("JOIN sessions ON sessions.id = flags.session_id").
		Where("sessions.org_id = ?", orgID)
	if examID != "" {
		q = q.Where("sessions.exam_id = ?", examID)
	}
	if !from.IsZero() {
		q = q.Where("verdicts.created_at >= ?", from)
	}
	if !to.IsZero() {
		q = q.Where("verdicts.created_at < ?", to)
	}
	var out []VerdictRow
	err := q.Select("verdicts.id AS verdict_id, sessions.exam_id, sessions.id AS session_id, sessions.candidate_id, " +
		"flags.id AS flag_id, flags.type AS flag_type, flags.severity, flags.camera, flags.phase, flags.start_ms, " +
		"flags.end_ms, flags.confidence, flags.model_version, flags.status AS flag_status, verdicts.verdict, " +
		"verdicts.previous, verdicts.note, verdicts.reviewer, verdicts.batch, verdicts.undone, verdicts.created_at").
		Order("verdicts.id").Limit(limit).Scan(&out).Error
	return out, err
}

// FlagChange is a flag created or changed, with its session's state, for the live feed.
type FlagChange struct {
	Flag
	OrgID      string  `json:"org_id"`
	ExamID     string  `json:"exam_id"`
	RiskScore  float64 `json:"risk_score"`
	OpenFlags  int     `json:"open_flags"`
	TotalFlags int     `json:"total_flags"`
}

// FlagsChangedSince returns flags updated at or after since (every organisation: the live feed
// fans them out), oldest change first.
func (s *Store) FlagsChangedSince(ctx context.Context, since time.Time, limit int) ([]FlagChange, error) {
	var out []FlagChange
	err := s.DB.WithContext(ctx).Model(&Flag{}).Joins("JOIN sessions ON sessions.id = flags.session_id").
		Where("flags.updated_at >= ?", since).
		Select("flags.*, sessions.org_id, sessions.exam_id, sessions.risk_score, sessions.open_flags, sessions.total_flags").
		Order("flags.updated_at").Order("flags.id").Limit(limit).Scan(&out).Error
	return out, err
}

// GetRegistrationPhoto returns the registration photo of an organisation's session.
func (s *Store) GetRegistrationPhoto(ctx context.Context, orgID, id string) ([]byte, error) {
	var sess Session
	err := s.DB.WithContext(ctx).Select("id, registration_photo").Where("org_id = ? AND id IN ?", orgID, []string{id, ScopedSessionID(orgID, id)}).Take(&sess).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return open(s.DB, sess.RegistrationPhoto, aadPhoto(sess.ID))
}

func auditJSON(tx *gorm.DB, orgID, actor, action, target, ip string, detail any) error {
	d, _ := json.Marshal(detail)
	return Audit(tx, AuditEntry{OrgID: orgID, Actor: actor, Action: action, Target: target, Detail: string(d), RemoteIP: ip})
}

func utoa(id uint) string { return strconv.FormatUint(uint64(id), 10) }

func dedupe(ids []uint) []uint {
	seen := make(map[uint]bool, len(ids))
	out := ids[:0:0]
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

// SessionVerdicts returns the verdicts on a session's flags, oldest first.
func (s *Store) SessionVerdicts(ctx context.Context, sessionID string) ([]Verdict, error) {
	var out []Verdict
	err := s.DB.WithContext(ctx).Where("flag_id IN (?)",
		s.DB.Model(&Flag{}).Select("id").Where("session_id = ?", sessionID)).Order("id").Find(&out).Error
	return out, err
}
