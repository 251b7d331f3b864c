package app

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"image/color"
	"io"
	"mime/multipart"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"proctor/store"
)

// The authorisation matrix: every API route × every kind of caller × own / other organisation.
// The table below is the expected rule of each route, written independently of the code; the
// test enumerates the Fiber app's routes and fails on any route the table does not know, so a
// new route cannot ship without a rule.

// caller kinds: anonymous, an API key per scope, a signed-in user per role.
var matrixCallers = []string{"anon", "key:ingest", "key:review", "key:data", "key:admin", "user:reviewer", "user:data", "user:admin"}

// scopesOf is what each caller kind may do (admin implies everything).
func scopesOf(kind string) []string {
	switch kind {
	case "key:ingest":
		return []string{store.ScopeIngest}
	case "key:review", "user:reviewer":
		return []string{store.ScopeReview}
	case "key:data", "user:data":
		return []string{store.ScopeData}
	case "key:admin", "user:admin":
		return []string{store.ScopeIngest, store.ScopeReview, store.ScopeData, store.ScopeAdmin}
	}
	return nil
}

const (
	public  = "public"  // anyone, signed in or not
	anyAuth = "anyauth" // any authenticated caller
)

// matrixReq is a request built for one organisation's resources.
type matrixReq struct {
	path, ctype string
	body        []byte
}

// routeRule is one route's expected access.
type routeRule struct {
	method, route string
	// who: public, anyAuth, or the scopes of which one suffices.
	who []string
	// req builds a valid request against org's resources (mine=false: another organisation's).
	req func(t *testing.T, m *matrix, o *wsOrg) matrixReq
	// orgScoped: the route names a resource of an organisation: another's answers 404.
	orgScoped bool
	// ok lists the statuses an allowed caller may get on its own organisation (default: 2xx).
	ok []int
}

type matrix struct {
	a         *App
	mine, oth *wsOrg
	seq       int
}

func (m *matrix) next() int { m.seq++; return m.seq }

func jsonReq(path string, v any) matrixReq {
	b, _ := json.Marshal(v)
	return matrixReq{path: path, ctype: "application/json", body: b}
}

func get(path string) func(*testing.T, *matrix, *wsOrg) matrixReq {
	return func(*testing.T, *matrix, *wsOrg) matrixReq { return matrixReq{path: path} }
}

func sessPath(suffix string) func(*testing.T, *matrix, *wsOrg) matrixReq {
	return func(_ *testing.T, _ *matrix, o *wsOrg) matrixReq {
		return matrixReq{path: "/v1/sessions/" + o.Sessions[0].ID + suffix}
	}
}

func flagPath(suffix string) func(*testing.T, *matrix, *wsOrg) matrixReq {
	return func(_ *testing.T, _ *matrix, o *wsOrg) matrixReq {
		return matrixReq{path: fmt.Sprintf("/v1/flags/%d%s", o.Flags[o.Sessions[0].ID][0].ID, suffix)}
	}
}

// recording starts an upload in the organisation's first session (ingest key) and returns its id.
func (m *matrix) recording(t *testing.T, o *wsOrg) string {
	content := []byte(fmt.Sprintf("not really a video %d", m.next()))
	sum := sha256.Sum256(content)
	body, _ := json.Marshal(map[string]any{"camera": "main", "size": len(content), "sha256": hex.EncodeToString(sum[:]),
		"started_at": time.Now().Add(-time.Minute).UnixMilli(), "content_type": "video/mp4"})
	code, out := m.do(t, http.MethodPost, "/v1/sessions/"+o.Sessions[0].ID+"/recordings", "application/json", body, "key", o.Keys[store.ScopeIngest], "")
	var r struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(out, &r); err != nil || r.ID == "" {
		t.Fatalf("start a recording: %d %s", code, out)
	}
	return r.ID
}

// export builds an (audio-only, so quick) export of the organisation and returns its id.
func (m *matrix) export(t *testing.T, o *wsOrg) string {
	body, _ := json.Marshal(map[string]any{"purpose": fmt.Sprintf("authz %d", m.next()), "kinds": []string{"audio"}})
	code, out := m.do(t, http.MethodPost, "/v1/exports", "application/json", body, "key", o.Keys[store.ScopeData], "")
	var e struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(out, &e); err != nil || e.ID == "" {
		t.Fatalf("create an export: %d %s", code, out)
	}
	return e.ID
}

// label records a label in the organisation's first session and returns its id.
func (m *matrix) label(t *testing.T, o *wsOrg) uint {
	body, _ := json.Marshal(map[string]any{"kind": "phrase_missed", "at_ms": 1000 + m.next()})
	code, out := m.do(t, http.MethodPost, "/v1/sessions/"+o.Sessions[0].ID+"/labels", "application/json", body, "key", o.Keys[store.ScopeReview], "")
	var l struct {
		ID uint `json:"id"`
	}
	if err := json.Unmarshal(out, &l); err != nil || l.ID == 0 {
		t.Fatalf("create a label: %d %s", code, out)
	}
	return l.ID
}

func routeRules() []routeRule {
	photo := func(t *testing.T) []byte { return testJPEG(t, 96, 96, 1, color.RGBA{200, 200, 200, 255}) }
	now := func() string { return fmt.Sprint(time.Now().Add(-time.Second).UnixMilli()) }
	return []routeRule{
		{method: "GET", route: "/healthz", who: []string{public}, req: get("/healthz")},
		{method: "GET", route: "/readyz", who: []string{public}, req: get("/readyz")},
		{method: "GET", route: "/metrics", who: []string{public}, req: get("/metrics")},
		{method: "GET", route: "/openapi.yaml", who: []string{public}, req: get("/openapi.yaml")},
		{method: "GET", route: "/", who: []string{public}, req: get("/"), ok: []int{302}},
		{method: "GET", route: "/ui/*", who: []string{public}, req: get("/ui/app.js")},
		{method: "POST", route: "/v1/auth/login", who: []string{public}, req: func(_ *testing.T, _ *matrix, o *wsOrg) matrixReq {
			return jsonReq("/v1/auth/login", map[string]string{"email": o.Users[store.RoleReviewer], "password": o.Password})
		}},
		{method: "POST", route: "/v1/auth/logout", who: []string{anyAuth}, req: func(*testing.T, *matrix, *wsOrg) matrixReq { return matrixReq{path: "/v1/auth/logout"} }},
		{method: "GET", route: "/v1/me", who: []string{anyAuth}, req: get("/v1/me")},

		// Ingest (the exam platform).
		{method: "POST", route: "/v1/sessions", who: []string{store.ScopeIngest}, req: func(t *testing.T, m *matrix, _ *wsOrg) matrixReq {
			var buf bytes.Buffer
			w := multipart.NewWriter(&buf)
			for k, v := range map[string]string{"id": fmt.Sprintf("authz-new-%d", m.next()), "exam_id": "exam-authz", "candidate_id": "c",
				"scheduled_start": now(), "duration_sec": "600", "questions": "1"} {
				w.WriteField(k, v)
			}
			fw, _ := w.CreateFormFile("photo", "p.jpg")
			fw.Write(photo(t))
			w.Close()
			return matrixReq{path: "/v1/sessions", ctype: w.FormDataContentType(), body: buf.Bytes()}
		}},
		{method: "POST", route: "/v1/sessions/:id/frames", who: []string{store.ScopeIngest}, orgScoped: true, req: func(t *testing.T, m *matrix, o *wsOrg) matrixReq {
			return matrixReq{path: fmt.Sprintf("/v1/sessions/%s/frames?camera=main&seq=%d&captured_at=%s", o.Sessions[0].ID, 1000+m.next(), now()),
				ctype: "image/jpeg", body: photo(t)}
		}},
		{method: "POST", route: "/v1/sessions/:id/audio", who: []string{store.ScopeIngest}, orgScoped: true, req: func(t *testing.T, m *matrix, o *wsOrg) matrixReq {
			return matrixReq{path: fmt.Sprintf("/v1/sessions/%s/audio?seq=%d&captured_at=%s", o.Sessions[0].ID, 1000+m.next(), now()),
				ctype: "application/octet-stream", body: make([]byte, 3200)}
		}},
		{method: "POST", route: "/v1/sessions/:id/events", who: []string{store.ScopeIngest}, orgScoped: true, req: func(t *testing.T, m *matrix, o *wsOrg) matrixReq {
			return jsonReq("/v1/sessions/"+o.Sessions[0].ID+"/events", map[string]any{"seq": 1000 + m.next(), "type": "help_requested", "captured_at": time.Now().UnixMilli()})
		}},
		{method: "POST", route: "/v1/sessions/:id/recordings", who: []string{store.ScopeIngest}, orgScoped: true, req: func(t *testing.T, m *matrix, o *wsOrg) matrixReq {
			content := []byte(fmt.Sprintf("recording %d", m.next()))
			sum := sha256.Sum256(content)
			return jsonReq("/v1/sessions/"+o.Sessions[0].ID+"/recordings", map[string]any{"camera": "evidence", "size": len(content),
				"sha256": hex.EncodeToString(sum[:]), "started_at": time.Now().Add(-time.Minute).UnixMilli(), "content_type": "video/mp4"})
		}},
		{method: "GET", route: "/v1/sessions/:id/recordings", who: []string{store.ScopeIngest}, orgScoped: true, req: sessPath("/recordings")},
		{method: "PUT", route: "/v1/sessions/:id/recordings/:rid", who: []string{store.ScopeIngest}, orgScoped: true,
			ok: []int{200, 201, 202, 204, 422}, // 422: the test's bytes are not a video, but they passed authorisation
			req: func(t *testing.T, m *matrix, o *wsOrg) matrixReq {
				return matrixReq{path: "/v1/sessions/" + o.Sessions[0].ID + "/recordings/" + m.recording(t, o) + "?offset=0",
					ctype: "application/octet-stream", body: []byte("not")}
			}},
		{method: "GET", route: "/v1/sessions/:id/recordings/:rid", who: []string{store.ScopeIngest}, orgScoped: true, req: func(t *testing.T, m *matrix, o *wsOrg) matrixReq {
			return matrixReq{path: "/v1/sessions/" + o.Sessions[0].ID + "/recordings/" + m.recording(t, o)}
		}},

		// Reviewers.
		{method: "GET", route: "/v1/sessions", who: []string{store.ScopeReview}, req: get("/v1/sessions?limit=500")},
		{method: "GET", route: "/v1/sessions/:id", who: []string{store.ScopeReview}, orgScoped: true, req: sessPath("")},
		{method: "GET", route: "/v1/sessions/:id/timeline", who: []string{store.ScopeReview}, orgScoped: true, req: sessPath("/timeline")},
		{method: "GET", route: "/v1/sessions/:id/answers", who: []string{store.ScopeReview}, orgScoped: true, req: sessPath("/answers")},
		{method: "GET", route: "/v1/sessions/:id/photo", who: []string{store.ScopeReview}, orgScoped: true, req: sessPath("/photo")},
		{method: "GET", route: "/v1/sessions/:id/gallery", who: []string{store.ScopeReview}, orgScoped: true, req: sessPath("/gallery")},
		{method: "GET", route: "/v1/sessions/:id/gallery/:gid/photo", who: []string{store.ScopeReview}, orgScoped: true,
			req: func(_ *testing.T, _ *matrix, o *wsOrg) matrixReq {
				return matrixReq{path: fmt.Sprintf("/v1/sessions/%s/gallery/%d/photo", o.Sessions[0].ID, o.Gallery)}
			}},
		{method: "GET", route: "/v1/sessions/:id/report", who: []string{store.ScopeReview}, orgScoped: true, req: sessPath("/report")},
		// The reviewer's media (media_test.go seeds a frame, audio and a playable recording).
		{method: "GET", route: "/v1/sessions/:id/media", who: []string{store.ScopeReview}, orgScoped: true, req: mediaReq("/media")},
		{method: "GET", route: "/v1/sessions/:id/frames", who: []string{store.ScopeReview}, orgScoped: true, req: mediaReq("/frames?camera=main&from={from}&to={to}")},
		{method: "GET", route: "/v1/sessions/:id/frames/:camera/:seq", who: []string{store.ScopeReview}, orgScoped: true, req: mediaReq("/frames/main/{seq}?size=thumb")},
		{method: "GET", route: "/v1/sessions/:id/audio", who: []string{store.ScopeReview}, orgScoped: true, req: mediaReq("/audio?from={from}&to={to}")},
		{method: "GET", route: "/v1/sessions/:id/audio/peaks", who: []string{store.ScopeReview}, orgScoped: true, req: mediaReq("/audio/peaks?from={from}&to={to}&n=20")},
		{method: "GET", route: "/v1/sessions/:id/recordings/:rid/video", who: []string{store.ScopeReview}, orgScoped: true, req: mediaReq("/recordings/{rid}/video")},
		{method: "GET", route: "/v1/flags/:id", who: []string{store.ScopeReview}, orgScoped: true, req: flagPath("")},
		{method: "GET", route: "/v1/flags/:id/evidence", who: []string{store.ScopeReview}, orgScoped: true, req: flagPath("/evidence")},
		{method: "POST", route: "/v1/flags/:id/verdict", who: []string{store.ScopeReview}, orgScoped: true, req: func(_ *testing.T, _ *matrix, o *wsOrg) matrixReq {
			return jsonReq(fmt.Sprintf("/v1/flags/%d/verdict", o.Spare.ID), map[string]string{"verdict": "dismissed", "note": "authz"})
		}},
		{method: "POST", route: "/v1/verdicts", who: []string{store.ScopeReview}, orgScoped: true, req: func(_ *testing.T, _ *matrix, o *wsOrg) matrixReq {
			return jsonReq("/v1/verdicts", map[string]any{"flag_ids": []uint{o.Spare.ID}, "verdict": "confirmed"})
		}},
		// Undo acts on the caller's own verdicts only; the verdict routes above ran first.
		{method: "POST", route: "/v1/verdicts/undo", who: []string{store.ScopeReview}, req: func(*testing.T, *matrix, *wsOrg) matrixReq {
			return matrixReq{path: "/v1/verdicts/undo"}
		}},
		{method: "GET", route: "/v1/review/summary", who: []string{store.ScopeReview}, req: get("/v1/review/summary")},
		{method: "GET", route: "/v1/exams", who: []string{store.ScopeReview, store.ScopeData}, req: get("/v1/exams")},
		{method: "GET", route: "/v1/checks", who: []string{store.ScopeReview, store.ScopeData}, req: get("/v1/checks")},
		{method: "GET", route: "/v1/live", who: []string{store.ScopeReview}, req: get("/v1/live")},

		// Data team.
		{method: "GET", route: "/v1/exports/verdicts.csv", who: []string{store.ScopeData}, req: get("/v1/exports/verdicts.csv")},
		{method: "POST", route: "/v1/exports", who: []string{store.ScopeData}, ok: []int{201}, req: func(*testing.T, *matrix, *wsOrg) matrixReq {
			return jsonReq("/v1/exports", map[string]any{"purpose": "authz", "kinds": []string{"audio"}})
		}},
		{method: "GET", route: "/v1/exports", who: []string{store.ScopeData}, req: get("/v1/exports")},
		{method: "GET", route: "/v1/exports/:eid", who: []string{store.ScopeData}, orgScoped: true, req: func(t *testing.T, m *matrix, o *wsOrg) matrixReq {
			return matrixReq{path: "/v1/exports/" + m.export(t, o)}
		}},
		{method: "GET", route: "/v1/exports/:eid/archive", who: []string{store.ScopeData}, orgScoped: true, req: func(t *testing.T, m *matrix, o *wsOrg) matrixReq {
			return matrixReq{path: "/v1/exports/" + m.export(t, o) + "/archive"}
		}},
		{method: "POST", route: "/v1/sessions/:id/labels", who: []string{store.ScopeReview}, orgScoped: true, ok: []int{201}, req: func(_ *testing.T, _ *matrix, o *wsOrg) matrixReq {
			return jsonReq("/v1/sessions/"+o.Sessions[0].ID+"/labels", map[string]any{"kind": "answer_end", "at_ms": 1000})
		}},
		{method: "GET", route: "/v1/sessions/:id/labels", who: []string{store.ScopeReview, store.ScopeData}, orgScoped: true, req: sessPath("/labels")},
		{method: "DELETE", route: "/v1/labels/:lid", who: []string{store.ScopeReview}, orgScoped: true, req: func(t *testing.T, m *matrix, o *wsOrg) matrixReq {
			return matrixReq{path: fmt.Sprintf("/v1/labels/%d", m.label(t, o))}
		}},
		{method: "GET", route: "/v1/precision", who: []string{store.ScopeData}, req: get("/v1/precision?bucket=all")},
		// Model versions are service-wide: allowed callers reach the handler (a version that
		// does not exist answers 404, the built-in one cannot roll back: 409).
		{method: "GET", route: "/v1/models", who: []string{store.ScopeData}, req: get("/v1/models")},
		{method: "POST", route: "/v1/models", who: []string{store.ScopeData}, ok: []int{400}, req: func(*testing.T, *matrix, *wsOrg) matrixReq {
			return matrixReq{path: "/v1/models", ctype: "application/json", body: []byte("{}")}
		}},
		{method: "GET", route: "/v1/models/:name/:version/compare", who: []string{store.ScopeData}, req: get("/v1/models/attire-cnn/none/compare")},
		{method: "POST", route: "/v1/models/:name/:version/shadow", who: []string{store.ScopeData}, ok: []int{404}, req: func(*testing.T, *matrix, *wsOrg) matrixReq {
			return matrixReq{path: "/v1/models/attire-cnn/none/shadow"}
		}},
		{method: "POST", route: "/v1/models/:name/:version/unshadow", who: []string{store.ScopeData}, ok: []int{404}, req: func(*testing.T, *matrix, *wsOrg) matrixReq {
			return matrixReq{path: "/v1/models/attire-cnn/none/unshadow"}
		}},
		{method: "POST", route: "/v1/models/:name/:version/promote", who: []string{store.ScopeAdmin}, ok: []int{404}, req: func(*testing.T, *matrix, *wsOrg) matrixReq {
			return matrixReq{path: "/v1/models/attire-cnn/none/promote"}
		}},
		{method: "POST", route: "/v1/models/:name/rollback", who: []string{store.ScopeAdmin}, ok: []int{409}, req: func(*testing.T, *matrix, *wsOrg) matrixReq {
			return matrixReq{path: "/v1/models/attire-cnn/rollback"}
		}},

		// Admins.
		{method: "POST", route: "/v1/keys", who: []string{store.ScopeAdmin}, req: func(*testing.T, *matrix, *wsOrg) matrixReq {
			return jsonReq("/v1/keys", map[string]any{"name": "authz", "scopes": []string{"review"}})
		}},
		{method: "GET", route: "/v1/keys", who: []string{store.ScopeAdmin}, req: get("/v1/keys")},
		{method: "DELETE", route: "/v1/keys/:id", who: []string{store.ScopeAdmin}, orgScoped: true, req: func(t *testing.T, m *matrix, o *wsOrg) matrixReq {
			_, k, err := m.a.Store.CreateAPIKey(context.Background(), o.ID, "to revoke", []string{"review"})
			if err != nil {
				t.Fatal(err)
			}
			return matrixReq{path: "/v1/keys/" + k.ID}
		}},
		{method: "GET", route: "/v1/users", who: []string{store.ScopeAdmin}, req: get("/v1/users")},
		{method: "POST", route: "/v1/users", who: []string{store.ScopeAdmin}, req: func(_ *testing.T, m *matrix, _ *wsOrg) matrixReq {
			return jsonReq("/v1/users", map[string]string{"email": fmt.Sprintf("new%d@authz.example.com", m.next()), "role": "reviewer"})
		}},
		{method: "PUT", route: "/v1/users/:id", who: []string{store.ScopeAdmin}, orgScoped: true, req: func(_ *testing.T, _ *matrix, o *wsOrg) matrixReq {
			return jsonReq("/v1/users/"+o.Other, map[string]bool{"disabled": false})
		}},
		{method: "GET", route: "/v1/audit", who: []string{store.ScopeAdmin}, req: get("/v1/audit?limit=1000")},
		{method: "GET", route: "/v1/admin/deadletter", who: []string{store.ScopeAdmin}, req: get("/v1/admin/deadletter?limit=1000")},
		{method: "GET", route: "/v1/admin/status", who: []string{store.ScopeAdmin}, req: get("/v1/admin/status")},
		{method: "GET", route: "/v1/exams/:exam/settings", who: []string{store.ScopeAdmin}, req: get("/v1/exams/exam-shared/settings")},
		{method: "PUT", route: "/v1/exams/:exam/settings", who: []string{store.ScopeAdmin}, req: func(*testing.T, *matrix, *wsOrg) matrixReq {
			return jsonReq("/v1/exams/exam-shared/settings", map[string]any{"face_absent_after_sec": 6})
		}},
		// Personal data lifecycle: deletion on request (each request deletes a fresh session or
		// candidate of the organisation) and the retention policy.
		{method: "DELETE", route: "/v1/sessions/:id", who: []string{store.ScopeAdmin}, orgScoped: true, req: func(t *testing.T, m *matrix, o *wsOrg) matrixReq {
			return matrixReq{path: "/v1/sessions/" + m.victim(t, o).ID + "?reason=authz"}
		}},
		{method: "DELETE", route: "/v1/candidates/:candidate", who: []string{store.ScopeAdmin}, orgScoped: true, req: func(t *testing.T, m *matrix, o *wsOrg) matrixReq {
			return matrixReq{path: "/v1/candidates/" + m.victim(t, o).CandidateID + "?reason=authz"}
		}},
		{method: "GET", route: "/v1/retention", who: []string{store.ScopeAdmin}, req: get("/v1/retention")},
		{method: "PUT", route: "/v1/retention", who: []string{store.ScopeAdmin}, req: func(*testing.T, *matrix, *wsOrg) matrixReq {
			return jsonReq("/v1/retention", map[string]int{"frames": 60})
		}},
		{method: "GET", route: "/v1/exams/:exam/retention", who: []string{store.ScopeAdmin}, req: get("/v1/exams/exam-shared/retention")},
		{method: "PUT", route: "/v1/exams/:exam/retention", who: []string{store.ScopeAdmin}, req: func(*testing.T, *matrix, *wsOrg) matrixReq {
			return jsonReq("/v1/exams/exam-shared/retention", map[string]int{"frames": 30})
		}},
	}
}

// victim creates a session of its own candidate in the organisation, for a deletion to remove.
func (m *matrix) victim(t *testing.T, o *wsOrg) *store.Session {
	id := store.NewID()
	s := &store.Session{ID: "authz-del-" + id, OrgID: o.ID, ExamID: "exam-authz", CandidateID: "cand-del-" + id, ScheduledStart: time.Now()}
	if err := m.a.Store.CreateSession(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	return s
}

// do sends one request as a caller: kind "key" (token = API key), "user" (token = cookie,
// csrf = its token) or "anon".
func (m *matrix) do(t *testing.T, method, path, ctype string, body []byte, kind, token, csrf string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, m.a.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	switch kind {
	case "key":
		req.Header.Set("Authorization", "Bearer "+token)
	case "user":
		req.AddCookie(&http.Cookie{Name: "proctor_session", Value: token})
		if csrf != "" {
			req.Header.Set("X-CSRF-Token", csrf)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		return resp.StatusCode, nil // the live feed never ends: its status is what we test
	}
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

func TestAuthorisationMatrix(t *testing.T) {
	a := startAPI(t, "", nil)
	m := &matrix{a: a}
	m.mine = seedOrg(t, a, "org-a", "exam-shared")
	m.oth = seedOrg(t, a, "org-b", "exam-shared")
	ctx := context.Background()
	// Something of org-b's in every list an org-a caller can read: it must never show.
	if _, err := a.Store.CreateUser(ctx, "org-b", "marker@org-b.example.com", store.RoleReviewer, m.oth.Password, false); err != nil {
		t.Fatal(err)
	}
	if err := a.Store.RecordDeadLetter(ctx, &store.DeadLetter{Topic: "authz.events", Key: []byte(m.oth.Sessions[0].ID),
		Class: "invalid", Reason: "marker", DeadAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	otherMarks := []string{"org-b", m.oth.Sessions[0].CandidateID}

	rules := routeRules()
	table := map[string]routeRule{}
	for _, r := range rules {
		table[r.method+" "+r.route] = r
	}
	// Every route of the app has a rule (HEAD routes mirror GET ones).
	var missing []string
	for _, r := range a.http.GetRoutes(true) {
		key := r.Method + " " + r.Path
		if r.Method == http.MethodHead {
			key = "GET " + r.Path
		}
		if _, ok := table[key]; !ok && !slices.Contains(missing, key) {
			missing = append(missing, key)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Fatalf("routes without an authorisation rule in app/authz_test.go (add each to routeRules): %v", missing)
	}

	signedIn := map[string]*webUser{}
	login := func(kind string) *webUser {
		role := strings.TrimPrefix(kind, "user:")
		u := signIn(t, a.URL, m.mine.Users[role], m.mine.Password)
		signedIn[kind] = u
		return u
	}
	for _, kind := range matrixCallers {
		if strings.HasPrefix(kind, "user:") {
			login(kind)
		}
	}
	send := func(t *testing.T, kind string, method string, r matrixReq) (int, []byte) {
		switch {
		case kind == "anon":
			return m.do(t, method, r.path, r.ctype, r.body, "anon", "", "")
		case strings.HasPrefix(kind, "key:"):
			return m.do(t, method, r.path, r.ctype, r.body, "key", m.mine.Keys[strings.TrimPrefix(kind, "key:")], "")
		default:
			u := signedIn[kind]
			return m.do(t, method, r.path, r.ctype, r.body, "user", u.cookie, u.csrf)
		}
	}

	for _, kind := range matrixCallers {
		for _, r := range rules {
			allowed := false
			for _, w := range r.who {
				allowed = allowed || w == public || (w == anyAuth && kind != "anon") || slices.Contains(scopesOf(kind), w)
			}
			name := fmt.Sprintf("%s/%s_%s", kind, r.method, r.route)
			t.Run(name, func(t *testing.T) {
				// Own organisation.
				code, body := send(t, kind, r.method, r.req(t, m, m.mine))
				switch {
				case !allowed && kind == "anon":
					if code != 401 {
						t.Errorf("anonymous: %d %s, want 401", code, body)
					}
				case !allowed:
					if code != 403 {
						t.Errorf("not allowed: %d %s, want 403", code, body)
					}
				default:
					if ok := r.ok; (ok == nil && (code < 200 || code > 299)) || (ok != nil && !slices.Contains(ok, code)) {
						if !(r.route == "/v1/verdicts/undo" && code == 404 && strings.Contains(string(body), "nothing to undo")) {
							t.Errorf("allowed, own organisation: %d %s", code, body)
						}
					}
					for _, mark := range otherMarks {
						if bytes.Contains(body, []byte(mark)) && r.route != "/v1/auth/login" {
							t.Errorf("own organisation's answer shows another organisation's %q", mark)
						}
					}
				}
				if r.route == "/v1/auth/logout" && strings.HasPrefix(kind, "user:") && code == 204 {
					login(kind) // signed out: sign in again for the routes that follow
				}
				if !r.orgScoped {
					return
				}
				// Another organisation's resource: as if it did not exist (or forbidden outright).
				code, body = send(t, kind, r.method, r.req(t, m, m.oth))
				want := 404
				if !allowed {
					want = map[bool]int{true: 401, false: 403}[kind == "anon"]
				}
				if code != want {
					t.Errorf("other organisation's resource: %d %s, want %d", code, body, want)
				}
			})
		}
	}

	// Cookie sessions need the CSRF token on state-changing requests; API keys do not.
	u := signedIn["user:reviewer"]
	flag := fmt.Sprintf("/v1/flags/%d/verdict", m.mine.Spare.ID)
	verdict, _ := json.Marshal(map[string]string{"verdict": "dismissed"})
	if code, body := m.do(t, "POST", flag, "application/json", verdict, "user", u.cookie, ""); code != 403 || !strings.Contains(string(body), "CSRF") {
		t.Errorf("verdict by cookie without CSRF token: %d %s, want 403", code, body)
	}
	if code, body := m.do(t, "POST", flag, "application/json", verdict, "user", u.cookie, "wrong"+u.csrf[5:]); code != 403 {
		t.Errorf("verdict by cookie with a wrong CSRF token: %d %s, want 403", code, body)
	}
	if code, body := m.do(t, "POST", flag, "application/json", verdict, "key", m.mine.Keys["review"], ""); code != 200 {
		t.Errorf("verdict by API key without CSRF token: %d %s, want 200", code, body)
	}
	// A cross-site sign-in is refused.
	req, _ := http.NewRequest("POST", a.URL+"/v1/auth/login", strings.NewReader(`{"email":"x@y.z","password":"p"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", "https://evil.example.com")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 403 {
		t.Errorf("cross-site sign-in: %v %v, want 403", resp, err)
	} else {
		resp.Body.Close()
	}
}

func TestSignInRateLimit(t *testing.T) {
	a := startAPI(t, "", func(c *Config) { c.API.SignInBurst = 3; c.API.SignInEvery = time.Hour })
	o := seedOrg(t, a, "org-rl", "exam-rl")
	try := func(pw string) int {
		body, _ := json.Marshal(map[string]string{"email": o.Users["reviewer"], "password": pw})
		resp, err := http.Post(a.URL+"/v1/auth/login", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for i := range 3 {
		if code := try("wrong password"); code != 401 {
			t.Fatalf("failed sign-in %d: %d, want 401", i+1, code)
		}
	}
	// The bucket is full: even the right password waits (a guesser cannot tell it was right).
	if code := try(o.Password); code != 429 {
		t.Fatalf("sign-in after 3 failures: %d, want 429", code)
	}
}
