package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"
	"time"

	"proctor/internal/testdb"
	"proctor/store"
)

// TestBadText posts NUL bytes, invalid UTF-8 and over-long values to every handler that stores or
// queries text, on SQLite and (when configured) PostgreSQL, which refuses such text: each answers
// 400 with a message naming the field, never a database error, and writes nothing. Also the
// session id pattern and the 8192 px image limit.
func TestBadText(t *testing.T) {
	dsns := []string{""}
	if dsn := testdb.PostgresDSN(); dsn != "" {
		dsns = append(dsns, dsn)
	}
	for _, dsn := range dsns {
		name := map[bool]string{true: "sqlite", false: "postgres"}[dsn == ""]
		t.Run(name, func(t *testing.T) { badText(t, dsn) })
	}
}

func badText(t *testing.T, dsn string) {
	ctx := context.Background()
	a := startAPI(t, dsn, nil)
	o := seedOrg(t, a, "org-txt-"+store.NewID()[:8], "exam-txt")
	m := &matrix{a: a}
	sess := o.Sessions[0]
	flag := o.Flags[sess.ID][0]
	ms := fmt.Sprint(time.Now().Add(-time.Second).UnixMilli())

	// What must stay unwritten, counted before and after.
	counts := func() map[string]int64 {
		out := map[string]int64{}
		for name, q := range map[string]any{"sessions": &store.Session{}, "verdicts": &store.Verdict{}, "labels": &store.Label{},
			"keys": &store.APIKey{}, "users": &store.User{}, "exports": &store.Export{}} {
			var n int64
			db := a.Store.DB.Model(q)
			switch name {
			case "verdicts":
				db = db.Where("flag_id IN (SELECT id FROM flags WHERE session_id IN (SELECT id FROM sessions WHERE org_id = ?))", o.ID)
			case "labels":
				db = db.Where("session_id = ?", sess.ID)
			default:
				db = db.Where("org_id = ?", o.ID)
			}
			if err := db.Count(&n).Error; err != nil {
				t.Fatalf("count %s: %v", name, err)
			}
			out[name] = n
		}
		return out
	}
	before := counts()

	form := func(fields map[string]string, photo []byte) matrixReq {
		var buf bytes.Buffer
		w := multipart.NewWriter(&buf)
		for k, v := range map[string]string{"exam_id": "exam-txt", "candidate_id": "c", "scheduled_start": ms,
			"duration_sec": "600", "questions": "1"} {
			if _, ok := fields[k]; !ok {
				w.WriteField(k, v)
			}
		}
		for k, v := range fields {
			w.WriteField(k, v)
		}
		fw, _ := w.CreateFormFile("photo", "p.jpg")
		if photo == nil {
			photo = testJPEG(t, 96, 96, 1, color.RGBA{200, 200, 200, 255})
		}
		fw.Write(photo)
		w.Close()
		return matrixReq{path: "/v1/sessions", ctype: w.FormDataContentType(), body: buf.Bytes()}
	}
	raw := func(path, body string) matrixReq {
		return matrixReq{path: path, ctype: "application/json", body: []byte(body)}
	}
	huge := func(w, h int) []byte {
		var b bytes.Buffer
		if err := jpeg.Encode(&b, image.NewGray(image.Rect(0, 0, w, h)), nil); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	const nul, bad = "\x00", "\xff\xfe"
	long := func(n int) string { return strings.Repeat("x", n) }
	verdict := fmt.Sprintf("/v1/flags/%d/verdict", flag.ID)
	labels := "/v1/sessions/" + sess.ID + "/labels"

	cases := []struct {
		name, method, scope string
		req                 matrixReq
		msg                 string // part of the 400's message
	}{
		{"session exam_id NUL", "POST", store.ScopeIngest, form(map[string]string{"exam_id": "e" + nul}, nil), "exam_id: contains a NUL byte"},
		{"session exam_id invalid UTF-8", "POST", store.ScopeIngest, form(map[string]string{"exam_id": "e" + bad}, nil), "exam_id: is not valid UTF-8"},
		{"session exam_id too long", "POST", store.ScopeIngest, form(map[string]string{"exam_id": long(129)}, nil), "exam_id: is 129 characters long"},
		{"session candidate_id NUL", "POST", store.ScopeIngest, form(map[string]string{"candidate_id": nul}, nil), "candidate_id: contains a NUL byte"},
		{"session candidate_id invalid UTF-8", "POST", store.ScopeIngest, form(map[string]string{"candidate_id": bad}, nil), "candidate_id: is not valid UTF-8"},
		{"session candidate_id too long", "POST", store.ScopeIngest, form(map[string]string{"candidate_id": long(129)}, nil), "candidate_id: is 129 characters long"},
		{"session id .", "POST", store.ScopeIngest, form(map[string]string{"id": "."}, nil), "id must be"},
		{"session id ..", "POST", store.ScopeIngest, form(map[string]string{"id": ".."}, nil), "id must be"},
		{"session id with slash", "POST", store.ScopeIngest, form(map[string]string{"id": "a/b"}, nil), "id must be"},
		{"session id NUL", "POST", store.ScopeIngest, form(map[string]string{"id": "a" + nul}, nil), "id: contains a NUL byte"},
		{"session id too long", "POST", store.ScopeIngest, form(map[string]string{"id": long(65)}, nil), "id: is 65 characters long"},
		{"photo 8193 px wide", "POST", store.ScopeIngest, form(nil, huge(8193, 100)), "larger than 8192x8192"},
		{"frame 8193 px wide", "POST", store.ScopeIngest, matrixReq{path: "/v1/sessions/" + sess.ID + "/frames?camera=main&seq=1&captured_at=" + ms,
			ctype: "image/jpeg", body: huge(8193, 100)}, "larger than 8192x8192"},
		{"frame 8193 px tall", "POST", store.ScopeIngest, matrixReq{path: "/v1/sessions/" + sess.ID + "/frames?camera=main&seq=1&captured_at=" + ms,
			ctype: "image/jpeg", body: huge(100, 8193)}, "larger than 8192x8192"},
		{"event data NUL", "POST", store.ScopeIngest, raw("/v1/sessions/"+sess.ID+"/events",
			`{"seq":1,"type":"help_requested","captured_at":`+ms+`,"data":{"note":"a\u0000b"}}`), "data.note: contains a NUL byte"},
		{"event data invalid UTF-8", "POST", store.ScopeIngest, raw("/v1/sessions/"+sess.ID+"/events",
			`[{"seq":1,"type":"help_requested","captured_at":`+ms+`,"data":{"note":"`+bad+`"}}]`), "[0].data.note: is not valid UTF-8"},
		{"verdict note NUL", "POST", store.ScopeReview, raw(verdict, `{"verdict":"confirmed","note":"a\u0000"}`), "note: contains a NUL byte"},
		{"verdict note invalid UTF-8", "POST", store.ScopeReview, raw(verdict, `{"verdict":"confirmed","note":"`+bad+`"}`), "note: is not valid UTF-8"},
		{"verdict note too long", "POST", store.ScopeReview, raw(verdict, `{"verdict":"confirmed","note":"`+long(4001)+`"}`), "note: is 4001 characters long"},
		{"bulk verdict note NUL", "POST", store.ScopeReview, raw("/v1/verdicts", fmt.Sprintf(`{"flag_ids":[%d],"verdict":"dismissed","note":"\u0000"}`, flag.ID)), "note: contains a NUL byte"},
		{"bulk verdict note invalid UTF-8", "POST", store.ScopeReview, raw("/v1/verdicts", fmt.Sprintf(`{"flag_ids":[%d],"verdict":"dismissed","note":"%s"}`, flag.ID, bad)), "note: is not valid UTF-8"},
		{"bulk verdict note too long", "POST", store.ScopeReview, raw("/v1/verdicts", fmt.Sprintf(`{"flag_ids":[%d],"verdict":"dismissed","note":"%s"}`, flag.ID, long(4001))), "note: is 4001 characters long"},
		{"label note NUL", "POST", store.ScopeReview, raw(labels, `{"kind":"answer_end","at_ms":1000,"note":"\u0000"}`), "note: contains a NUL byte"},
		{"label note invalid UTF-8", "POST", store.ScopeReview, raw(labels, `{"kind":"answer_end","at_ms":1000,"note":"`+bad+`"}`), "note: is not valid UTF-8"},
		{"label note too long", "POST", store.ScopeReview, raw(labels, `{"kind":"answer_end","at_ms":1000,"note":"`+long(2001)+`"}`), "note: is 2001 characters long"},
		{"queue flag_type NUL", "GET", store.ScopeReview, matrixReq{path: "/v1/sessions?flag_type=%00"}, "flag_type: contains a NUL byte"},
		{"queue exam_id invalid UTF-8", "GET", store.ScopeReview, matrixReq{path: "/v1/sessions?exam_id=%FF"}, "exam_id: is not valid UTF-8"},
		{"queue exam_id too long", "GET", store.ScopeReview, matrixReq{path: "/v1/sessions?exam_id=" + long(1025)}, "exam_id: is 1025 characters long"},
		{"summary flag_type NUL", "GET", store.ScopeReview, matrixReq{path: "/v1/review/summary?flag_type=%00"}, "flag_type: contains a NUL byte"},
		{"audit actor NUL", "GET", store.ScopeAdmin, matrixReq{path: "/v1/audit?actor=%00"}, "actor: contains a NUL byte"},
		{"precision model invalid UTF-8", "GET", store.ScopeData, matrixReq{path: "/v1/precision?model=%C3"}, "model: is not valid UTF-8"},
		{"key name NUL", "POST", store.ScopeAdmin, raw("/v1/keys", `{"name":"k\u0000","scopes":["review"]}`), "name: contains a NUL byte"},
		{"key name invalid UTF-8", "POST", store.ScopeAdmin, raw("/v1/keys", `{"name":"k`+bad+`","scopes":["review"]}`), "name: is not valid UTF-8"},
		{"key name too long", "POST", store.ScopeAdmin, raw("/v1/keys", `{"name":"`+long(201)+`","scopes":["review"]}`), "name: is 201 characters long"},
		{"key scope NUL", "POST", store.ScopeAdmin, raw("/v1/keys", `{"name":"k","scopes":["rev\u0000"]}`), "contains a NUL byte"},
		{"user email NUL", "POST", store.ScopeAdmin, raw("/v1/users", `{"email":"a\u0000@x.example.com","role":"reviewer"}`), "email: contains a NUL byte"},
		{"user email invalid UTF-8", "POST", store.ScopeAdmin, raw("/v1/users", `{"email":"a`+bad+`@x.example.com","role":"reviewer"}`), "email: is not valid UTF-8"},
		{"user email too long", "POST", store.ScopeAdmin, raw("/v1/users", `{"email":"`+long(250)+`@x.example.com","role":"reviewer"}`), "email: is 264 characters long"},
		{"export purpose NUL", "POST", store.ScopeData, raw("/v1/exports", `{"purpose":"p\u0000","kinds":["audio"]}`), "purpose: contains a NUL byte"},
		{"export purpose invalid UTF-8", "POST", store.ScopeData, raw("/v1/exports", `{"purpose":"p`+bad+`","kinds":["audio"]}`), "purpose: is not valid UTF-8"},
		{"export purpose too long", "POST", store.ScopeData, raw("/v1/exports", `{"purpose":"`+long(1001)+`","kinds":["audio"]}`), "purpose: is 1001 characters long"},
		{"export exam filter NUL", "POST", store.ScopeData, raw("/v1/exports", `{"purpose":"p","exam":"\u0000","kinds":["audio"]}`), "exam: contains a NUL byte"},
		{"login email NUL", "POST", "", raw("/v1/auth/login", `{"email":"a\u0000@x.example.com","password":"x"}`), "email: contains a NUL byte"},
		{"settings invalid UTF-8", "PUT", store.ScopeAdmin, raw("/v1/exams/exam-txt/settings", `{"note`+bad+`":1}`), "is not valid UTF-8"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			kind, token := "key", o.Keys[tc.scope]
			if tc.scope == "" {
				kind, token = "anon", ""
			}
			code, out := m.do(t, tc.method, tc.req.path, tc.req.ctype, tc.req.body, kind, token, "")
			var e struct {
				Error string `json:"error"`
			}
			_ = json.Unmarshal(out, &e)
			if code != http.StatusBadRequest || !strings.Contains(e.Error, tc.msg) {
				t.Errorf("%d %s, want 400 mentioning %q", code, out, tc.msg)
			}
			for _, leak := range []string{"SQLSTATE", "ERROR:", "sqlite", "pq:", "pgx"} {
				if strings.Contains(string(out), leak) {
					t.Errorf("the answer echoes a database error: %s", out)
				}
			}
		})
	}
	after := counts()
	for k, v := range before {
		if after[k] != v {
			t.Errorf("%s: %d before the bad requests, %d after: something was written", k, v, after[k])
		}
	}
	if n, _ := a.Store.CountFrames(ctx, sess.ID); n != 0 {
		t.Errorf("%d frames stored", n)
	}
	// Ids the demo and the tests use still pass the session id pattern.
	rnd := store.NewID()[:6]
	for _, id := range []string{"authz-new-" + rnd, store.NewID(), "exam.2026-06_A-" + rnd, "S" + rnd} {
		r := form(map[string]string{"id": id}, nil)
		if code, out := m.do(t, "POST", r.path, r.ctype, r.body, "key", o.Keys[store.ScopeIngest], ""); code != http.StatusCreated {
			t.Errorf("session id %q: %d %s", id, code, out)
		}
	}
}
