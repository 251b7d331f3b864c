package app

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"proctor/analyzers"
	"proctor/internal/platform"
	"proctor/rules"
	"proctor/store"
)

// TestSessionIDsPerOrganisation: session ids are the platform's, scoped per organisation. An id
// that another organisation holds is created all the same (no 409 to tell it exists), each
// organisation's frames, events, flags and photo stay its own under the same id, and a third
// organisation is answered exactly as for an id nobody used.
func TestSessionIDsPerOrganisation(t *testing.T) {
	f := sampleFrames(t)
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			a := startApp(t, b, func(c *Config) {
				c.Analyzers = analyzers.Config{Analyzers: []string{"faces"}}
			})
			type org struct {
				plat, rev *platform.Client
				ingest    string
				candidate string
			}
			// A long-lived PostgreSQL keeps earlier runs' rows: names of this run only.
			run := store.NewID()[:6]
			orgs := map[string]*org{}
			for _, name := range []string{"org-a", "org-b", "org-c"} {
				ingest, review := keys(t, a, name+"-"+run)
				orgs[name] = &org{plat: platform.New(a.URL, ingest), rev: platform.New(a.URL, review), ingest: ingest,
					candidate: "cand-of-" + name}
			}
			id := "exam7.cand-" + run
			start := time.Now().Add(-10 * time.Minute).Truncate(time.Second)
			create := func(o *org) *store.Session {
				t.Helper()
				s, err := o.plat.CreateSession(ctx, platform.NewSession{ID: id, ExamID: "exam7", CandidateID: o.candidate,
					ScheduledStart: start, DurationSec: 3600, Questions: 2, Photo: f.Photo})
				if err != nil {
					t.Fatalf("create %s as %s: %v (another organisation's id must not conflict)", id, o.candidate, err)
				}
				return s
			}
			for _, name := range []string{"org-a", "org-b"} {
				o := orgs[name]
				for range 2 { // created, then a retried request answered with the same session
					if s := create(o); s.ID != id || s.OrgID != name+"-"+run || s.CandidateID != o.candidate {
						t.Errorf("%s: created %s of %s for %s; want %s of %s for %s", name, s.ID, s.OrgID, s.CandidateID, id, name, o.candidate)
					}
				}
			}
			var n int64
			a.Store.DB.Model(&store.Session{}).Where("org_id IN ?", []string{"org-a-" + run, "org-b-" + run}).Count(&n)
			if n != 2 {
				t.Fatalf("%d sessions stored for two organisations' one id each, want 2", n)
			}

			// The same seq under the same id in both organisations: two frames, not a duplicate.
			for _, name := range []string{"org-a", "org-b"} {
				if code, err := orgs[name].plat.PostFrame(ctx, id, analyzers.CameraMain, 1, start.Add(time.Second), f.Candidate[0]); err != nil || code != http.StatusAccepted {
					t.Fatalf("%s: frame 1: %d %v, want 202", name, code, err)
				}
			}
			// A window switch in org-b only.
			if code, err := orgs["org-b"].plat.PostEvents(ctx, id, platform.Event{Seq: 1, Type: "window_switched",
				CapturedAt: time.Now().UnixMilli()}); err != nil || code != http.StatusAccepted {
				t.Fatalf("org-b: window_switched: %d %v", code, err)
			}
			waitFor(t, func() bool {
				d, err := orgs["org-b"].rev.Session(ctx, id)
				return err == nil && hasFlag(d.Flags, rules.WindowSwitch) && d.Session.Frames == 1
			}, "org-b's frame and WINDOW_SWITCH")
			waitFor(t, func() bool {
				d, err := orgs["org-a"].rev.Session(ctx, id)
				return err == nil && d.Session.Frames == 1
			}, "org-a's frame")
			for _, name := range []string{"org-a", "org-b"} {
				d, err := orgs[name].rev.Session(ctx, id)
				if err != nil {
					t.Fatal(err)
				}
				if d.Session.ID != id || d.Session.CandidateID != orgs[name].candidate {
					t.Errorf("%s sees session %s of %s, want %s of %s", name, d.Session.ID, d.Session.CandidateID, id, orgs[name].candidate)
				}
				if got, want := hasFlag(d.Flags, rules.WindowSwitch), name == "org-b"; got != want {
					t.Errorf("%s: WINDOW_SWITCH %v, want %v: the other organisation's event reached it", name, got, want)
				}
				list, err := orgs[name].rev.Sessions(ctx)
				if err != nil || len(list) != 1 || list[0].ID != id || list[0].CandidateID != orgs[name].candidate {
					t.Errorf("%s's queue: %+v %v; want its own %s only", name, list, err, id)
				}
				if code, _ := orgs[name].rev.Do(ctx, http.MethodGet, "/v1/sessions/"+id+"/photo", "", nil, nil); code != http.StatusOK {
					t.Errorf("%s: photo %d", name, code)
				}
			}

			// org-c, which never used the id: exactly the answers for an id nobody used.
			c := orgs["org-c"]
			for _, r := range []struct {
				client *platform.Client
				method string
				path   string
				ctype  string
				body   []byte
			}{
				{c.rev, http.MethodGet, "/v1/sessions/%s", "", nil},
				{c.rev, http.MethodGet, "/v1/sessions/%s/photo", "", nil},
				{c.plat, http.MethodPost, "/v1/sessions/%s/frames?camera=main&seq=9&captured_at=" + itoa(start.UnixMilli()), "image/jpeg", f.Candidate[0]},
				{c.plat, http.MethodPost, "/v1/sessions/%s/events", "application/json", []byte(`{"seq":1,"type":"window_switched","captured_at":` + itoa(time.Now().UnixMilli()) + `}`)},
			} {
				taken := strings.Replace(r.path, "%s", id, 1)
				codeT, errT := r.client.Do(ctx, r.method, taken, r.ctype, r.body, nil)
				codeN, errN := r.client.Do(ctx, r.method, strings.Replace(r.path, "%s", "never-used-7", 1), r.ctype, r.body, nil)
				msgT, msgN := errText(errT), strings.ReplaceAll(errText(errN), "never-used-7", id)
				if codeT != http.StatusNotFound || codeT != codeN || msgT != msgN {
					t.Errorf("org-c %s %s: %d %q; an id nobody used: %d %q (must be the same 404)", r.method, taken, codeT, msgT, codeN, msgN)
				}
			}
			if s := create(c); s.ID != id || s.CandidateID != c.candidate {
				t.Errorf("org-c creating the id too: %s of %s", s.ID, s.CandidateID)
			}
		})
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }
