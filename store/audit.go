package store

import (
	"context"
	"strings"
	"time"

	"gorm.io/gorm"
)

// The audit log is append-only. In code, nothing updates or deletes AuditEntry rows (Audit is the
// only writer). In the database, triggers refuse UPDATE and DELETE (and TRUNCATE on PostgreSQL),
// so not even a mistaken migration or a psql session can rewrite history without first dropping
// the trigger — which is itself visible in the schema.
func (s *Store) auditAppendOnly(db *gorm.DB) error {
	if !s.Postgres {
		for _, op := range []string{"UPDATE", "DELETE"} {
			stmt := "CREATE TRIGGER IF NOT EXISTS audit_entries_no_" + strings.ToLower(op) +
				" BEFORE " + op + " ON audit_entries BEGIN SELECT RAISE(ABORT, 'audit_entries is append-only: " +
				op + " refused'); END"
			if err := db.Exec(stmt).Error; err != nil {
				return err
			}
		}
		return nil
	}
	// Several processes migrate at start-up: the advisory lock serialises the DDL (concurrent
	// CREATE OR REPLACE FUNCTION fails with "tuple concurrently updated").
	return db.Transaction(func(tx *gorm.DB) error {
		for _, stmt := range []string{
			`SELECT pg_advisory_xact_lock(727170)`,
			`CREATE OR REPLACE FUNCTION proctor_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'audit_entries is append-only: % refused', TG_OP;
END $$`,
			`CREATE OR REPLACE TRIGGER audit_entries_append_only BEFORE UPDATE OR DELETE ON audit_entries
	FOR EACH ROW EXECUTE FUNCTION proctor_audit_append_only()`,
			`CREATE OR REPLACE TRIGGER audit_entries_no_truncate BEFORE TRUNCATE ON audit_entries
	FOR EACH STATEMENT EXECUTE FUNCTION proctor_audit_append_only()`,
		} {
			if err := tx.Exec(stmt).Error; err != nil {
				return err
			}
		}
		return nil
	})
}

// AuditFilter narrows the audit log.
type AuditFilter struct {
	OrgID  string
	Action string // exact action, or a prefix ending in '.' ("flag.")
	Actor  string
	Target string
	Since  time.Time
	Limit  int // default 200, at most 1000
	Before uint
}

// QueryAudit returns an organisation's audit entries, newest first.
func (s *Store) QueryAudit(ctx context.Context, f AuditFilter) ([]AuditEntry, error) {
	if f.Limit <= 0 || f.Limit > 1000 {
		f.Limit = 200
	}
	q := s.DB.WithContext(ctx).Where("org_id = ?", f.OrgID)
	if f.Action != "" {
		if strings.HasSuffix(f.Action, ".") {
			q = q.Where("action LIKE ?", f.Action+"%")
		} else {
			q = q.Where("action = ?", f.Action)
		}
	}
	if f.Actor != "" {
		q = q.Where("actor = ?", f.Actor)
	}
	if f.Target != "" {
		q = q.Where("target = ?", f.Target)
	}
	if !f.Since.IsZero() {
		q = q.Where("at >= ?", f.Since)
	}
	if f.Before > 0 {
		q = q.Where("id < ?", f.Before)
	}
	var out []AuditEntry
	err := q.Order("id DESC").Limit(f.Limit).Find(&out).Error
	return out, err
}
