package store

import (
	"context"
	"strings"
	"time"

	"gorm.io/gorm"
)

// The audit log is append-only. In code, nothing updates AuditEntry rows (Audit is the only
// writer) and only the retention sweeper deletes (PurgeAudit). In the database, triggers refuse
// UPDATE, TRUNCATE (PostgreSQL) and every DELETE but of rows older than a recorded AuditPurge of
// their organisation, so not even a mistaken migration or a psql session can rewrite history
// without first dropping the trigger — which is itself visible in the schema.
func (s *Store) auditAppendOnly(db *gorm.DB) error {
	if !s.Postgres {
		return db.Transaction(func(tx *gorm.DB) error {
			for _, stmt := range []string{
				"CREATE TRIGGER IF NOT EXISTS audit_entries_no_update BEFORE UPDATE ON audit_entries " +
					"BEGIN SELECT RAISE(ABORT, 'audit_entries is append-only: UPDATE refused'); END",
				// Before retention: DELETE was refused outright.
				"DROP TRIGGER IF EXISTS audit_entries_no_delete",
				"CREATE TRIGGER IF NOT EXISTS audit_entries_no_delete_unpurged BEFORE DELETE ON audit_entries " +
					"WHEN NOT EXISTS (SELECT 1 FROM audit_purges p WHERE p.org_id = OLD.org_id AND OLD.at < p.before) " +
					"BEGIN SELECT RAISE(ABORT, 'audit_entries is append-only: DELETE refused (only the retention sweeper deletes expired entries)'); END",
			} {
				if err := tx.Exec(stmt).Error; err != nil {
					return err
				}
			}
			return nil
		})
	}
	// Several processes migrate at start-up: the advisory lock serialises the DDL (concurrent
	// CREATE OR REPLACE FUNCTION fails with "tuple concurrently updated").
	return db.Transaction(func(tx *gorm.DB) error {
		for _, stmt := range []string{
			`SELECT pg_advisory_xact_lock(727170)`,
			`CREATE OR REPLACE FUNCTION proctor_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF TG_OP = 'DELETE' AND EXISTS (SELECT 1 FROM audit_purges p WHERE p.org_id = OLD.org_id AND OLD.at < p.before) THEN
		RETURN OLD; -- expired under the retention policy (store.PurgeAudit)
	END IF;
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
