package app

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"proctor/internal/testdb"
	"proctor/rules"
	"proctor/store"
)

// TestReviewWorkflow exercises the reviewer workspace's API on SQLite and, when configured,
// PostgreSQL: queue filters and summary, bulk verdicts and undo, the live feed, exports, and
// per-exam settings feeding the risk score.
func TestReviewWorkflow(t *testing.T) {
	dsns := []string{""}
	if dsn := testdb.PostgresDSN(); dsn != "" {
		dsns = append(dsns, dsn)
	}
	for _, dsn := range dsns {
		name := map[bool]string{true: "sqlite", false: "postgres"}[dsn == ""]
		t.Run(name, func(t *testing.T) {
			a := startAPI(t, dsn, nil)
			id := "org-" + store.NewID()[:6]
			exam := "exam-" + id
			o := seedOrg(t, a, id, exam)
			m := &matrix{a: a}
			admin := signIn(t, a.URL, o.Users[store.RoleAdmin], o.Password)
			call := func(method, path string, body any, out any) int {
				t.Helper()
				var b []byte
				if body != nil {
					b, _ = json.Marshal(body)
				}
				code, data := m.do(t, method, path, "application/json", b, "user", admin.cookie, admin.csrf)
				if out != nil && code < 300 {
					if err := json.Unmarshal(data, out); err != nil {
						t.Fatalf("%s %s: %v: %s", method, path, err, data)
					}
				}
				if code >= 300 {
					t.Logf("%s %s: %d %s", method, path, code, data)
				}
				return code
			}
			top := o.Sessions[0]
			flags := o.Flags[top.ID]

			// Queue filters.
			var q struct{ Sessions []store.Session }
			call("GET", "/v1/sessions?review=open&flag_type=MULTIPLE_FACES&exam_id="+exam, nil, &q)
			if len(q.Sessions) != 1 || q.Sessions[0].ID != top.ID {
				t.Errorf("queue filtered by flag type: %+v", q.Sessions)
			}
			today := time.Now().Format("2006-01-02")
			call("GET", "/v1/sessions?review=clean&from="+today+"&to="+today+"&exam_id="+exam, nil, &q)
			if len(q.Sessions) != 1 || q.Sessions[0].TotalFlags != 0 {
				t.Errorf("queue of clean sessions today: %+v", q.Sessions)
			}
			if code := call("GET", "/v1/sessions?from=yesterday", nil, nil); code != 400 {
				t.Errorf("bad date: %d", code)
			}

			// Live feed: listen before judging.
			req, _ := http.NewRequest("GET", a.URL+"/v1/live", nil)
			req.AddCookie(&http.Cookie{Name: "proctor_session", Value: admin.cookie})
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			resp, err := http.DefaultClient.Do(req.WithContext(ctx))
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("live feed: %v %v", resp, err)
			}
			defer resp.Body.Close()
			events := make(chan store.FlagChange, 16)
			go func() {
				sc := bufio.NewScanner(resp.Body)
				for sc.Scan() {
					if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok && data != "{}" {
						var fc store.FlagChange
						if json.Unmarshal([]byte(data), &fc) == nil {
							events <- fc
						}
					}
				}
			}()
			time.Sleep(300 * time.Millisecond) // the poller starts with the first listener

			// Bulk verdict on two flags, then one undo takes both back.
			var bulk struct{ Verdicts []store.Verdict }
			if code := call("POST", "/v1/verdicts", map[string]any{"flag_ids": []uint{flags[0].ID, flags[2].ID}, "verdict": "dismissed", "note": "=cmd|' /C calc'!A0"}, &bulk); code != 200 || len(bulk.Verdicts) != 2 {
				t.Fatalf("bulk verdict: %d %+v", code, bulk)
			}
			seen := map[uint]string{}
			deadline := time.After(10 * time.Second)
			for seen[flags[0].ID] != store.StatusDismissed || seen[flags[2].ID] != store.StatusDismissed {
				select {
				case fc := <-events:
					if fc.OrgID != id {
						t.Errorf("live feed sent another organisation's flag: %+v", fc)
					}
					seen[fc.ID] = fc.Status
				case <-deadline:
					t.Fatalf("live feed: saw %v, want both flags dismissed", seen)
				}
			}
			var sum struct{ Summary store.ReviewSummary }
			call("GET", "/v1/review/summary?exam_id="+exam, nil, &sum)
			if sum.Summary.MyVerdicts != 2 || sum.Summary.OpenByType[rules.WindowSwitch] != 1 || sum.Summary.OpenByType[rules.MultipleFaces] != 0 {
				t.Errorf("summary after bulk: %+v", sum.Summary)
			}
			var undone struct{ Undone []store.Verdict }
			if code := call("POST", "/v1/verdicts/undo", nil, &undone); code != 200 || len(undone.Undone) != 2 {
				t.Fatalf("undo: %d %+v", code, undone)
			}
			var det struct {
				Session store.Session
				Flags   []store.Flag
			}
			call("GET", "/v1/sessions/"+top.ID, nil, &det)
			for _, f := range det.Flags {
				if f.Status != store.StatusOpen {
					t.Errorf("flag %d is %s after undo", f.ID, f.Status)
				}
			}
			if det.Session.RiskScore != top.RiskScore && det.Session.OpenFlags != 3 {
				t.Errorf("risk after undo %.1f, was %.1f", det.Session.RiskScore, top.RiskScore)
			}
			if code := call("POST", "/v1/verdicts/undo", nil, nil); code != 404 {
				t.Errorf("second undo: %d, want 404 (nothing left)", code)
			}
			// A colleague's later verdict wins over an undo.
			call("POST", fmt.Sprintf("/v1/flags/%d/verdict", flags[1].ID), map[string]string{"verdict": "confirmed"}, nil)
			colleague := signIn(t, a.URL, o.Users[store.RoleReviewer], o.Password)
			if code, body := m.do(t, "POST", fmt.Sprintf("/v1/flags/%d/verdict", flags[1].ID), "application/json", []byte(`{"verdict":"dismissed"}`), "user", colleague.cookie, colleague.csrf); code != 200 {
				t.Fatalf("colleague's verdict: %d %s", code, body)
			}
			if code := call("POST", "/v1/verdicts/undo", nil, nil); code != 409 {
				t.Errorf("undo over a colleague's later verdict: %d, want 409", code)
			}

			// Export: every verdict, formulas defused, audit-logged.
			code, data := m.do(t, "GET", "/v1/exports/verdicts.csv?exam_id="+exam, "", nil, "user", admin.cookie, "")
			if code != 200 {
				t.Fatalf("export: %d %s", code, data)
			}
			rows, err := csv.NewReader(strings.NewReader(strings.TrimPrefix(string(data), "\ufeff"))).ReadAll()
			if err != nil || len(rows) != 1+4 {
				t.Fatalf("export rows %d: %v\n%s", len(rows), err, data)
			}
			if note := rows[1][18]; !strings.HasPrefix(note, "'=") {
				t.Errorf("a note starting with = was exported as %q (a formula)", note)
			}

			// Settings: weights change the risk at once; a disabled check and its weight are stored.
			var set map[string]any
			if code := call("PUT", "/v1/exams/"+exam+"/settings", map[string]any{
				"weights": map[string]float64{rules.MultipleFaces: 0, rules.FaceAbsent: 0, rules.WindowSwitch: 0}, "disabled": []string{rules.LongSilence},
			}, &set); code != 200 {
				t.Fatalf("put settings: %d", code)
			}
			call("GET", "/v1/sessions/"+top.ID, nil, &det)
			if det.Session.RiskScore != 0 {
				t.Errorf("risk with all open flags weighted 0: %.1f", det.Session.RiskScore)
			}
			call("GET", "/v1/exams/"+exam+"/settings", nil, &set)
			if s, _ := json.Marshal(set["settings"]); !strings.Contains(string(s), rules.LongSilence) || set["updated_by"] != "user:"+o.Users[store.RoleAdmin] {
				t.Errorf("settings read back: %v", set)
			}
			if code := call("PUT", "/v1/exams/"+exam+"/settings", map[string]any{"weights": map[string]float64{"NOPE": 1}}, nil); code != 400 {
				t.Errorf("unknown flag type in settings: %d", code)
			}
			if code := call("PUT", "/v1/exams/"+exam+"/settings", map[string]any{"face_absent_afer": 3}, nil); code != 400 {
				t.Errorf("misspelt setting: %d", code)
			}

			audit, err := a.Store.QueryAudit(context.Background(), store.AuditFilter{OrgID: id, Limit: 1000})
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]int{}
			for _, e := range audit {
				got[e.Action]++
			}
			for action, n := range map[string]int{"flag.verdict": 4, "verdict.bulk": 1, "flag.verdict.undo": 2, "export.verdicts": 1, "settings.update": 1, "auth.login": 2} {
				if got[action] != n {
					t.Errorf("audit: %d %s, want %d (all: %v)", got[action], action, n, got)
				}
			}
		})
	}
}
