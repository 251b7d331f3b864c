package privacy

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sort"
	"time"

	"gorm.io/gorm"

	"proctor/store"
)

// Sweeper deletes what the retention policy says has expired. Every worker runs one: each
// (session, class) is claimed by inserting its store.RetentionMark (a whole session by its
// store.DeletedSession) in the transaction that deletes it, so two sweepers never delete the
// same thing twice, and a sweeper that crashes mid-batch leaves its claim uncommitted: the next
// pass does the work again.
type Sweeper struct {
	Store         *store.Store
	RecordingsDir string
	// Defaults is the service's policy before organisation and exam overrides (nil: Defaults()).
	Defaults Policy
	// Batch is how many sessions one query fetches. Default 100.
	Batch int
	// Now is the clock (tests use a fake one); nil: time.Now.
	Now func() time.Time
	Log *slog.Logger
}

// Swept counts what one pass deleted: sessions per session class, rows for exports and audit.
type Swept map[string]int64

func (s *Sweeper) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

// Run sweeps every interval until ctx ends.
func (s *Sweeper) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if got, err := s.Sweep(ctx); err != nil && ctx.Err() == nil {
			s.log().Error("retention sweep", "err", err)
		} else if len(got) > 0 {
			s.log().Info("retention sweep deleted expired data", "swept", map[string]int64(got))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *Sweeper) log() *slog.Logger {
	if s.Log == nil {
		return slog.Default()
	}
	return s.Log
}

// Policies are the effective policies: defaults, organisations' and exams' overrides.
type Policies struct {
	defaults Policy
	org      map[string]Policy
	exam     map[string]map[string]Policy // org → exam → override
}

// LoadPolicies reads every retention setting.
func LoadPolicies(ctx context.Context, st *store.Store, defaults Policy) (*Policies, error) {
	defaults = Defaults().With(defaults) // a partial service policy overrides some classes
	rows, err := st.RetentionSettings(ctx)
	if err != nil {
		return nil, err
	}
	ps := &Policies{defaults: defaults, org: map[string]Policy{}, exam: map[string]map[string]Policy{}}
	for _, r := range rows {
		p, err := ParseOverride([]byte(r.Days))
		if err != nil {
			return nil, fmt.Errorf("retention setting of %s/%s: %w", r.OrgID, r.ExamID, err)
		}
		if r.ExamID == "" {
			ps.org[r.OrgID] = p
		} else {
			if ps.exam[r.OrgID] == nil {
				ps.exam[r.OrgID] = map[string]Policy{}
			}
			ps.exam[r.OrgID][r.ExamID] = p
		}
	}
	return ps, nil
}

// Org is an organisation's effective policy.
func (ps *Policies) Org(org string) Policy { return ps.defaults.With(ps.org[org]) }

// ExamOverrides are an organisation's exam overrides by exam.
func (ps *Policies) ExamOverrides(org string) map[string]Policy { return ps.exam[org] }

// Exam is an exam's effective policy.
func (ps *Policies) Exam(org, exam string) Policy { return ps.Org(org).With(ps.exam[org][exam]) }

// Sweep runs one pass over every organisation and returns what it deleted.
func (s *Sweeper) Sweep(ctx context.Context) (Swept, error) {
	ps, err := LoadPolicies(ctx, s.Store, s.Defaults)
	if err != nil {
		return nil, err
	}
	var orgs []string
	db := s.Store.DB.WithContext(ctx)
	if err := db.Model(&store.Session{}).Distinct("org_id").Pluck("org_id", &orgs).Error; err != nil {
		return nil, err
	}
	var more []string
	if err := db.Model(&store.Organisation{}).Pluck("id", &more).Error; err != nil {
		return nil, err
	}
	orgs = append(orgs, more...)
	sort.Strings(orgs)
	total := Swept{}
	for i, org := range orgs {
		if i > 0 && org == orgs[i-1] {
			continue
		}
		got, err := s.sweepOrg(ctx, ps, org)
		for k, v := range got {
			total[k] += v
		}
		if err != nil {
			return total, fmt.Errorf("organisation %s: %w", org, err)
		}
	}
	return total, nil
}

func (s *Sweeper) sweepOrg(ctx context.Context, ps *Policies, org string) (Swept, error) {
	got := Swept{}
	now := s.now()
	batch := s.Batch
	if batch <= 0 {
		batch = 100
	}
	exams := make([]string, 0, len(ps.exam[org]))
	for e := range ps.exam[org] {
		exams = append(exams, e)
	}
	sort.Strings(exams)
	for _, class := range SessionClasses {
		// One group per exam with an override, then every other exam of the organisation.
		type group struct {
			exam string // "" = exams without an override
			days int
		}
		groups := []group{{"", ps.Org(org)[class]}}
		for _, e := range exams {
			groups = append(groups, group{e, ps.Exam(org, e)[class]})
		}
		for _, g := range groups {
			cutoff := now.AddDate(0, 0, -g.days)
			for {
				q := s.Store.DB.WithContext(ctx).Model(&store.Session{}).Where("org_id = ? AND created_at < ?", org, cutoff)
				if g.exam != "" {
					q = q.Where("exam_id = ?", g.exam)
				} else if len(exams) > 0 {
					q = q.Where("exam_id NOT IN ?", exams)
				}
				if class != Flags {
					q = q.Where("id NOT IN (?)", s.Store.DB.Model(&store.RetentionMark{}).Select("session_id").Where("class = ?", class))
				}
				var ids []string
				if err := q.Order("created_at, id").Limit(batch).Pluck("id", &ids).Error; err != nil {
					return got, err
				}
				if len(ids) == 0 {
					break
				}
				done := 0
				for _, id := range ids {
					ok, err := s.purge(ctx, org, id, class, now)
					if err != nil {
						return got, fmt.Errorf("%s of session %s: %w", class, id, err)
					}
					if ok {
						got[class]++
						done++
					}
				}
				if done == 0 {
					break // another sweeper claimed these (and finishes them): do not spin on them
				}
			}
		}
	}
	p := ps.Org(org)
	for {
		n, err := s.Store.PurgeExports(ctx, org, now.AddDate(0, 0, -p[Exports]), batch)
		got[Exports] += n
		if err != nil {
			return got, err
		}
		if n == 0 {
			break
		}
	}
	for {
		n, err := s.Store.PurgeAudit(ctx, org, now.AddDate(0, 0, -p[AuditLog]), batch)
		got[AuditLog] += n
		if err != nil {
			return got, err
		}
		if n == 0 {
			break
		}
	}
	for k, v := range got {
		if v == 0 {
			delete(got, k)
		}
	}
	if len(got) > 0 {
		detail, _ := json.Marshal(map[string]any{"deleted": got, "unit": "sessions per session class; rows for exports and audit"})
		if err := store.Audit(s.Store.DB.WithContext(ctx), store.AuditEntry{At: now, OrgID: org, Actor: "retention-sweeper",
			Action: "retention.sweep", Target: "org:" + org, Detail: string(detail)}); err != nil {
			return got, err
		}
	}
	return got, nil
}

// purge deletes one class of one session if no other sweeper did; false when it was claimed.
func (s *Sweeper) purge(ctx context.Context, org, id, class string, now time.Time) (bool, error) {
	claimed := false
	err := s.Store.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		// Another sweeper (or a deletion on request) may have removed the whole session since
		// it was listed: its marks went with it, so the session row is the claim's ground.
		if ok, err := store.LockSessions(tx, s.Store.Postgres, []string{id}); err != nil || len(ok) == 0 {
			return err
		}
		var err error
		if class == Flags {
			// The row lock is the claim: a second sweeper waits for it, then finds no session.
			if err = store.MarkDeleted(tx, id, store.DeletedByRetention, now); err != nil {
				return err
			}
			claimed = true
			recs, err := store.SessionRecordingIDs(tx, []string{id})
			if err != nil {
				return err
			}
			if _, err := store.DeleteSessionRows(tx, org, "", []string{id}); err != nil {
				return err
			}
			_, err = removeSessionFiles(s.RecordingsDir, []string{id}, recs)
			return err
		}
		if claimed, err = store.ClaimRetention(tx, id, class, now); err != nil || !claimed {
			return err
		}
		var n int64
		switch class {
		case Frames:
			n, err = store.PurgeFrames(tx, id)
		case Audio:
			n, err = store.PurgeAudio(tx, id)
		case Biometrics:
			n, err = store.PurgeBiometrics(tx, id)
		case Recordings:
			var recs []string
			if recs, err = store.SessionRecordingIDs(tx, []string{id}); err == nil {
				var files int
				files, err = removeSessionFiles(s.RecordingsDir, []string{id}, recs)
				n = int64(files)
			}
		}
		if err != nil {
			return err
		}
		return tx.Model(&store.RetentionMark{}).Where("session_id = ? AND class = ?", id, class).Update("removed", n).Error
	})
	return claimed && err == nil, err
}
