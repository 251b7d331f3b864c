package privacy_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"proctor/export"
	"proctor/internal/testdb"
	"proctor/privacy"
	"proctor/store"
)

// what counts a session's data per class (and the organisation's exports and audit entries).
func what(t *testing.T, st *store.Store, dir string, s seeded) map[string]int64 {
	t.Helper()
	db := st.DB
	n := func(model any, where string, args ...any) int64 {
		var c int64
		must(t, db.Model(model).Where(where, args...).Count(&c).Error)
		return c
	}
	out := map[string]int64{
		"frames": n(&store.FrameResult{}, "session_id = ?", s.sess) + n(&store.Evidence{}, "flag_id = ?", s.flagID) +
			n(&store.FrameImage{}, "session_id = ?", s.sess),
		"audio": n(&store.AudioSample{}, "session_id = ?", s.sess) + n(&store.AudioStretch{}, "session_id = ? AND state IS NOT NULL", s.sess),
		"photo": n(&store.Session{}, "id = ? AND registration_photo IS NOT NULL", s.sess) + n(&store.GalleryFace{}, "session_id = ?", s.sess) +
			n(&store.VoiceWindow{}, "session_id = ?", s.sess),
		"flags":    n(&store.Flag{}, "session_id = ?", s.sess) + n(&store.Verdict{}, "flag_id = ?", s.flagID),
		"session":  n(&store.Session{}, "id = ?", s.sess),
		"exports":  n(&store.Export{}, "org_id = ?", s.org),
		"audit":    n(&store.AuditEntry{}, "org_id = ? AND action = ?", s.org, "label.create"),
		"answers":  n(&store.AnswerSegment{}, "session_id = ?", s.sess),
		"rec_rows": n(&store.Recording{}, "session_id = ?", s.sess),
	}
	out["files"] = int64(len(filesOf(t, dir, s)))
	return out
}

func filesOf(t *testing.T, dir string, s seeded) []string {
	var out []string
	for _, f := range filesUnder(t, dir) {
		if len(f) >= len(s.rec) && f[:len(s.rec)] == s.rec || len(f) >= len(s.sess) && f[:len(s.sess)] == s.sess {
			out = append(out, f)
		}
	}
	return out
}

func putPolicy(t *testing.T, st *store.Store, org, exam string, p privacy.Policy) {
	t.Helper()
	js, _ := json.Marshal(p)
	must(t, st.PutRetentionSetting(context.Background(), &store.RetentionSetting{OrgID: org, ExamID: exam, Days: string(js), UpdatedBy: "test"},
		store.AuditEntry{OrgID: org, Actor: "test", Action: "retention.update", Target: "org:" + org}))
}

// ownStores are a fresh SQLite store and, with PostgreSQL configured, a fresh database: a
// sweeper with a clock years ahead deletes every organisation's data, which other packages'
// tests sharing the test database must not lose.
func ownStores(t *testing.T) []testdb.Backend {
	t.Helper()
	ctx := context.Background()
	lite, err := store.Open(ctx, store.Config{DataDir: t.TempDir()})
	must(t, err)
	t.Cleanup(func() { lite.Close() })
	out := []testdb.Backend{{Name: "sqlite", Store: lite}}
	if testdb.PostgresDSN() != "" {
		pg, err := store.Open(ctx, store.Config{DSN: testdb.FreshPostgresDSN(t), Keys: store.InsecureTestKeys()})
		must(t, err)
		t.Cleanup(func() { pg.Close() })
		out = append(out, testdb.Backend{Name: "postgres", Store: pg})
	}
	return out
}

// TestRetentionByClass moves a fake clock day by day: each class expires on its own day (an
// exam's override on its own), and nothing of any other class goes with it.
func TestRetentionByClass(t *testing.T) {
	for _, b := range ownStores(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			st, dir := b.Store, t.TempDir()
			u := store.NewID()[:8]
			org := "org-ret-" + u
			t0 := time.Now().UTC()
			s1 := seed(t, st, dir, org, "sess-ret1-"+u, "cand-ret1-"+u, "exam-1", t0)
			s2 := seed(t, st, dir, org, "sess-ret2-"+u, "cand-ret2-"+u, "exam-2", t0)
			bld := &export.Builder{Store: st}
			defer bld.Close()
			res, err := bld.Build(ctx, export.Request{OrgID: org, Actor: "data", Purpose: "retrain", Filters: export.Filters{Kinds: []string{"audio"}}})
			must(t, err)
			rec := res.StoreRecord(org)
			rec.CreatedAt = t0
			must(t, st.SaveExport(ctx, rec, ""))
			putPolicy(t, st, org, "", privacy.Policy{privacy.Frames: 10, privacy.Audio: 20, privacy.Recordings: 30,
				privacy.Biometrics: 40, privacy.Flags: 50, privacy.Exports: 60, privacy.AuditLog: 400})
			putPolicy(t, st, org, "exam-2", privacy.Policy{privacy.Frames: 5})

			day := 0
			sw := &privacy.Sweeper{Store: st, RecordingsDir: dir, Batch: 1, Now: func() time.Time { return t0.Add(time.Duration(day)*24*time.Hour + time.Minute) }}
			before1, before2 := what(t, st, dir, s1), what(t, st, dir, s2)
			for k, v := range before1 {
				if v == 0 && k != "audit" {
					t.Fatalf("seed left %s empty: %v", k, before1)
				}
			}
			// step sweeps on day d and checks that exactly the listed keys went to zero.
			step := func(d int, gone1, gone2 []string) {
				t.Helper()
				day = d
				got, err := sw.Sweep(ctx)
				if err != nil {
					t.Fatalf("day %d: %v", d, err)
				}
				for _, c := range []struct {
					s      seeded
					before map[string]int64
					gone   []string
				}{{s1, before1, gone1}, {s2, before2, gone2}} {
					now := what(t, st, dir, c.s)
					want := map[string]int64{}
					for k, v := range c.before {
						want[k] = v
					}
					for _, k := range c.gone {
						want[k] = 0
					}
					for k, v := range want {
						if now[k] != v {
							t.Errorf("day %d, %s: %s = %d, want %d (swept %v)", d, c.s.sess, k, now[k], v, got)
						}
					}
				}
			}
			step(4, nil, nil)
			step(6, nil, []string{"frames"}) // exam-2's override: 5 days
			step(9, nil, []string{"frames"})
			step(11, []string{"frames"}, []string{"frames"})
			audio := []string{"frames", "audio"}
			step(21, audio, audio)
			recs := append(audio, "files")
			step(31, recs, recs)
			bio := append(recs, "photo")
			step(41, bio, bio)
			// The session's record: all of it goes; exports (their own class) stay.
			all := append(bio, "flags", "session", "answers", "rec_rows")
			step(51, all, all)
			step(61, append(all, "exports"), append(all, "exports"))
			step(399, append(all, "exports"), append(all, "exports"))
			step(401, append(all, "exports", "audit"), append(all, "exports", "audit"))

			// Flags outlived the evidence: the mark says when the evidence went (checked before
			// day 51 in TestEvidenceDeletedNotice).
		})
	}
}

// TestConcurrentSweepers runs two sweepers at once over the same expired data: everything is
// deleted exactly once (the counts add up) and neither fails.
func TestConcurrentSweepers(t *testing.T) {
	for _, b := range ownStores(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			st, dir := b.Store, t.TempDir()
			u := store.NewID()[:8]
			org := "org-conc-" + u
			t0 := time.Now().UTC()
			const n = 6
			for i := 0; i < n; i++ {
				seed(t, st, dir, org, "sess-conc-"+u+"-"+string(rune('a'+i)), "cand-conc-"+u+"-"+string(rune('a'+i)), "exam-1", t0)
			}
			// Two sweeps of two concurrent sweepers: on day 100 every part of the sessions has
			// expired but their record (flags, 365 days); on day 3000 the record and the audit log.
			both := func(day int) privacy.Swept {
				clock := func() time.Time { return t0.AddDate(0, 0, day) }
				var wg sync.WaitGroup
				results := make([]privacy.Swept, 2)
				errs := make([]error, 2)
				for i := range results {
					wg.Add(1)
					go func() {
						defer wg.Done()
						sw := &privacy.Sweeper{Store: st, RecordingsDir: dir, Batch: 2, Now: clock}
						results[i], errs[i] = sw.Sweep(ctx)
					}()
				}
				wg.Wait()
				sum := privacy.Swept{}
				for i, r := range results {
					if errs[i] != nil {
						t.Fatalf("day %d, sweeper %d: %v", day, i, errs[i])
					}
					for k, v := range r {
						sum[k] += v
					}
				}
				t.Logf("day %d: %v + %v", day, results[0], results[1])
				return sum
			}
			got := both(100)
			want := privacy.Swept{privacy.Frames: n, privacy.Audio: n, privacy.Recordings: n, privacy.Biometrics: n}
			if len(got) != len(want) {
				t.Errorf("day 100: swept %v, want %v", got, want)
			}
			for k, v := range want {
				if got[k] != v {
					t.Errorf("day 100: %s deleted %d times, want exactly %d", k, got[k], v)
				}
			}
			var entries int64 // the labels' and the day-100 sweep's: all older than 1095 days by then
			st.DB.Model(&store.AuditEntry{}).Where("org_id = ?", org).Count(&entries)
			got = both(3000)
			if got[privacy.Flags] != n || got[privacy.AuditLog] != entries {
				t.Errorf("day 3000: swept %v, want %d sessions and %d audit entries", got, n, entries)
			}
			var left int64
			st.DB.Model(&store.Session{}).Where("org_id = ?", org).Count(&left)
			if left != 0 || len(filesUnder(t, dir)) != 0 {
				t.Errorf("after both sweeps: %d sessions, files %v", left, filesUnder(t, dir))
			}
		})
	}
}

// TestSweepResumesAfterCrash: a sweep that dies mid-batch (here: its context ends while another
// transaction holds the second session) keeps what it committed and leaves the rest unclaimed;
// the next sweep deletes the rest and nothing twice. PostgreSQL only: there the wait is on one
// session's row, where SQLite's single writer would block the whole sweep.
func TestSweepResumesAfterCrash(t *testing.T) {
	if testdb.PostgresDSN() == "" {
		t.Skip("needs PROCTOR_TEST_POSTGRES_DSN (scripts/test.sh starts PostgreSQL)")
	}
	ctx := context.Background()
	st, err := store.Open(ctx, store.Config{DSN: testdb.FreshPostgresDSN(t), Keys: store.InsecureTestKeys()})
	must(t, err)
	defer st.Close()
	dir := t.TempDir()
	t0 := time.Now().UTC()
	a := seed(t, st, dir, "org-crash", "sess-crash-a", "cand-a", "exam-1", t0.Add(-time.Minute))
	b := seed(t, st, dir, "org-crash", "sess-crash-b", "cand-b", "exam-1", t0)
	putPolicy(t, st, "org-crash", "", privacy.Policy{privacy.Frames: 10})
	clock := func() time.Time { return t0.AddDate(0, 0, 11) }

	// Another transaction holds session b's row, as a worker writing its frames would.
	hold := st.DB.Begin()
	must(t, hold.Exec("SELECT id FROM sessions WHERE id = ? FOR UPDATE", b.sess).Error)
	short, cancel := context.WithTimeout(ctx, 3*time.Second)
	got, err := (&privacy.Sweeper{Store: st, RecordingsDir: dir, Batch: 10, Now: clock}).Sweep(short)
	cancel()
	hold.Rollback()
	if err == nil || got[privacy.Frames] != 1 {
		t.Fatalf("interrupted sweep: %v, %v; want an error after deleting a's frames", got, err)
	}
	if n := what(t, st, dir, a)["frames"]; n != 0 {
		t.Errorf("a's frames after the interrupted sweep: %d, want 0 (committed)", n)
	}
	if n := what(t, st, dir, b)["frames"]; n == 0 {
		t.Error("b's frames went although its transaction never committed")
	}
	got, err = (&privacy.Sweeper{Store: st, RecordingsDir: dir, Batch: 10, Now: clock}).Sweep(ctx)
	if err != nil || got[privacy.Frames] != 1 {
		t.Fatalf("resumed sweep: %v, %v; want b's frames only", got, err)
	}
	if n := what(t, st, dir, b)["frames"]; n != 0 {
		t.Errorf("b's frames after the resumed sweep: %d", n)
	}
}
