package privacy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gorm.io/gorm"

	"proctor/export"
	"proctor/store"
)

// Deleter deletes sessions and candidates on request: every row of every table that holds them,
// their files, and their items inside stored exports (which are rebuilt without them).
type Deleter struct {
	Store *store.Store
	// RecordingsDir holds uploaded recordings (files named after the recording id) and any
	// per-session folder (named after the session key).
	RecordingsDir string
	// Now is the clock (tests); nil: time.Now.
	Now func() time.Time
}

// Request is one deletion on request.
type Request struct {
	OrgID       string
	SessionID   string // the platform's id (or the key); or
	CandidateID string // every session of the candidate in the organisation
	Actor       string
	Reason      string // required: recorded in the audit log
	RemoteIP    string
}

// Report says what a deletion removed. It names only ids.
type Report struct {
	Sessions []string      `json:"sessions"`
	Removed  store.Removed `json:"removed"`
	Files    int           `json:"files"`
	// ExportsRebuilt are stored exports that held items of the deleted sessions: each was
	// rebuilt without them (same id, new manifest checksum, a note in its export.json).
	ExportsRebuilt []ExportChange `json:"exports_rebuilt"`
	// Kafka: messages already in the topics are not deleted one by one; workers drop them and
	// the topic retention removes them.
	Kafka string `json:"kafka"`
}

// ExportChange is one export rebuilt by a deletion.
type ExportChange struct {
	ID           string `json:"id"`
	ItemsRemoved int    `json:"items_removed"`
}

// ErrReason: a deletion needs a reason.
var ErrReason = errors.New("a deletion needs a reason (why the data is erased: e.g. 'candidate request 2026-12-01')")

const kafkaNote = "messages still in Kafka for these sessions are dropped by the workers and disappear when the topics' retention.ms passes (Kafka does not delete single messages)"

func (d *Deleter) now() time.Time {
	if d.Now != nil {
		return d.Now().UTC()
	}
	return time.Now().UTC()
}

// Delete erases a session or a candidate. store.ErrNotFound when the organisation has no such
// session or candidate.
func (d *Deleter) Delete(ctx context.Context, r Request) (*Report, error) {
	if strings.TrimSpace(r.Reason) == "" {
		return nil, ErrReason
	}
	if err := store.CheckText("reason", r.Reason, 1000); err != nil {
		return nil, err
	}
	var ids []string
	action, target := "", ""
	switch {
	case r.SessionID != "" && r.CandidateID == "":
		sess, err := d.Store.GetSession(ctx, r.OrgID, r.SessionID)
		if err != nil {
			return nil, err
		}
		ids, action, target = []string{sess.ID}, "privacy.delete_session", "session:"+r.SessionID
	case r.CandidateID != "" && r.SessionID == "":
		var err error
		if ids, err = d.Store.CandidateSessionIDs(ctx, r.OrgID, r.CandidateID); err != nil {
			return nil, err
		}
		if len(ids) == 0 {
			return nil, fmt.Errorf("%w: no session of candidate %s", store.ErrNotFound, r.CandidateID)
		}
		action, target = "privacy.delete_candidate", "candidate:"+r.CandidateID
	default:
		return nil, errors.New("name either a session or a candidate")
	}

	// Exports are read (and rebuilt) before the transaction: SQLite has one writer, and the
	// pseudonymizer writes its key on first use.
	pseudo, err := d.Store.Pseudonymizer(ctx, r.OrgID)
	if err != nil {
		return nil, err
	}
	drop := map[string]bool{}
	for _, id := range ids {
		drop[pseudo.Of("s_", id)] = true
	}
	now := d.now()
	rebuilt, changes, err := d.redactExports(ctx, r.OrgID, drop, now)
	if err != nil {
		return nil, err
	}

	rep := &Report{Sessions: ids, Removed: store.Removed{}, ExportsRebuilt: changes, Kafka: kafkaNote}
	err = d.Store.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		// Lock first: a worker writing for these sessions finishes before, or finds them gone.
		if _, err := store.LockSessions(tx, d.Store.Postgres, ids); err != nil {
			return err
		}
		for _, id := range ids {
			if err := store.MarkDeleted(tx, id, store.DeletedOnRequest, now); err != nil {
				return err
			}
		}
		recs, err := store.SessionRecordingIDs(tx, ids)
		if err != nil {
			return err
		}
		removed, err := store.DeleteSessionRows(tx, r.OrgID, r.CandidateID, ids)
		if err != nil {
			return err
		}
		rep.Removed.Add(removed)
		for _, e := range rebuilt {
			res := tx.Model(&store.Export{}).Where("id = ? AND org_id = ?", e.ID, r.OrgID).Updates(map[string]any{
				"archive": e.Archive, "counts": e.Counts, "manifest_sha256": e.ManifestSHA256, "bytes": e.Bytes})
			if res.Error != nil {
				return res.Error
			}
		}
		// Files last, inside the transaction: if the commit fails the rows are still there and
		// a retry finds the files already gone (removing a missing file is not an error).
		if rep.Files, err = removeSessionFiles(d.RecordingsDir, ids, recs); err != nil {
			return err
		}
		detail, _ := json.Marshal(map[string]any{"reason": r.Reason, "sessions": ids, "removed": rep.Removed,
			"files": rep.Files, "exports_rebuilt": changes})
		return store.Audit(tx, store.AuditEntry{At: now, OrgID: r.OrgID, Actor: r.Actor, Action: action, Target: target,
			Detail: string(detail), RemoteIP: r.RemoteIP})
	})
	if err != nil {
		return nil, err
	}
	return rep, nil
}

// redactExports rebuilds the organisation's exports that hold items of the dropped sessions.
func (d *Deleter) redactExports(ctx context.Context, orgID string, drop map[string]bool, now time.Time) ([]*store.Export, []ExportChange, error) {
	list, err := d.Store.ListExports(ctx, orgID, 100000)
	if err != nil {
		return nil, nil, err
	}
	changes := []ExportChange{}
	var rows []*store.Export
	for _, e := range list {
		full, err := d.Store.GetExport(ctx, orgID, e.ID, true)
		if err != nil {
			return nil, nil, err
		}
		res, n, err := export.Redact(full.Archive, drop, now)
		if err != nil {
			return nil, nil, fmt.Errorf("rebuild export %s: %w", e.ID, err)
		}
		if res == nil {
			continue
		}
		counts, _ := json.Marshal(res.Record.Counts)
		rows = append(rows, &store.Export{ID: e.ID, Archive: res.Zip, Counts: string(counts),
			ManifestSHA256: res.Record.ManifestSHA256, Bytes: int64(len(res.Zip))})
		changes = append(changes, ExportChange{ID: e.ID, ItemsRemoved: n})
	}
	return rows, changes, nil
}

// removeSessionFiles removes the files of the sessions under dir: every file whose name starts
// with one of their recording ids (the upload "<id>.video" and anything derived from it, e.g.
// "<id>.mp4"), and each session's own folder "<dir>/<session key>" if one exists. New file
// kinds are covered as long as they follow either convention (docs/privacy.md).
func removeSessionFiles(dir string, sessions, recordings []string) (int, error) {
	if dir == "" {
		return 0, nil
	}
	n := 0
	for _, id := range recordings {
		if id == "" || strings.ContainsAny(id, `/\*?[`) {
			continue
		}
		matches, err := filepath.Glob(filepath.Join(dir, id+"*"))
		if err != nil {
			return n, err
		}
		for _, m := range matches {
			if err := os.RemoveAll(m); err != nil {
				return n, fmt.Errorf("remove %s: %w", m, err)
			}
			n++
		}
	}
	for _, id := range sessions {
		if id == "" || id == "." || id == ".." || strings.ContainsAny(id, `/\`) {
			continue
		}
		p := filepath.Join(dir, id)
		if _, err := os.Lstat(p); err == nil {
			count := 0
			filepath.WalkDir(p, func(_ string, de os.DirEntry, err error) error {
				if err == nil && !de.IsDir() {
					count++
				}
				return nil
			})
			if err := os.RemoveAll(p); err != nil {
				return n, fmt.Errorf("remove %s: %w", p, err)
			}
			n += count
		}
	}
	return n, nil
}
