package app

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"proctor/privacy"
	"proctor/store"
)

// TestPrivacyAPI walks the admin's side over HTTP: a retention policy that breaks the rules is
// refused, a valid one is stored; once the sweeper (fake clock) has deleted the evidence, the
// flag stays and its evidence answers 410 "evidence deleted on DATE"; a candidate deletion needs
// a reason, erases the session and is in the audit log.
func TestPrivacyAPI(t *testing.T) {
	a := startAPI(t, "", nil)
	org := seedOrg(t, a, "org-privacy", "exam-p")
	admin := org.Keys[store.ScopeAdmin]
	m := &matrix{a: a}
	call := func(method, path string, body any) (int, map[string]any) {
		t.Helper()
		var raw []byte
		if body != nil {
			raw, _ = json.Marshal(body)
		}
		code, out := m.do(t, method, path, "application/json", raw, "key", admin, "")
		var v map[string]any
		json.Unmarshal(out, &v)
		return code, v
	}

	if code, v := call("PUT", "/v1/retention", map[string]int{"frames": 400}); code != 422 || !strings.Contains(v["error"].(string), "longer than flags") {
		t.Fatalf("frames kept longer than flags: %d %v", code, v)
	}
	if code, _ := m.do(t, "PUT", "/v1/retention", "application/json", nil, "key", admin, ""); code != 400 {
		t.Fatalf("no body: %d", code)
	}
	if code, v := call("PUT", "/v1/retention", map[string]int{"nonsense": 4}); code != 400 {
		t.Fatalf("unknown class: %d %v", code, v)
	}
	if code, v := call("PUT", "/v1/retention", map[string]int{"frames": 10}); code != 200 || v["effective"].(map[string]any)["frames"] != 10.0 {
		t.Fatalf("valid policy: %d %v", code, v)
	}
	if code, v := call("GET", "/v1/exams/exam-p/retention", nil); code != 200 || v["effective"].(map[string]any)["frames"] != 10.0 ||
		len(v["classes"].([]any)) != 7 {
		t.Fatalf("exam inherits: %d %v", code, v)
	}

	sess := org.Sessions[0]
	flag := org.Flags[sess.ID][0]
	sw := &privacy.Sweeper{Store: a.Store, Now: func() time.Time { return time.Now().AddDate(0, 0, 11) }}
	if _, err := sw.Sweep(context.Background()); err != nil {
		t.Fatal(err)
	}
	code, v := call("GET", "/v1/flags/"+itoa(int64(flag.ID))+"/evidence", nil)
	want := "evidence deleted on " + time.Now().AddDate(0, 0, 11).UTC().Format("2006-01-02") + " under the retention policy"
	if code != http.StatusGone || v["error"] != want {
		t.Fatalf("evidence after retention: %d %v, want 410 %q", code, v, want)
	}
	code, v = call("GET", "/v1/sessions/"+sess.ID, nil)
	if code != 200 || len(v["flags"].([]any)) == 0 || v["retention_deleted"].(map[string]any)["frames"] == nil {
		t.Fatalf("session after retention: %d %v", code, v)
	}

	// Biometrics (30 days by default) go next: the photo says when.
	sw.Now = func() time.Time { return time.Now().AddDate(0, 0, 31) }
	if _, err := sw.Sweep(context.Background()); err != nil {
		t.Fatal(err)
	}
	code, v = call("GET", "/v1/sessions/"+sess.ID+"/photo", nil)
	if code != http.StatusGone || !strings.Contains(v["error"].(string), "registration photo deleted on") {
		t.Fatalf("photo after retention: %d %v", code, v)
	}

	if code, _ := call("DELETE", "/v1/candidates/"+sess.CandidateID, nil); code != 400 {
		t.Fatalf("deletion without a reason: %d", code)
	}
	code, v = call("DELETE", "/v1/candidates/"+sess.CandidateID+"?reason=candidate+request", nil)
	if code != 200 || len(v["sessions"].([]any)) == 0 || !strings.Contains(v["kafka"].(string), "retention") {
		t.Fatalf("delete candidate: %d %v", code, v)
	}
	if code, _ := call("GET", "/v1/sessions/"+sess.ID, nil); code != 404 {
		t.Fatalf("deleted session answers %d", code)
	}
	code, v = call("GET", "/v1/audit?action=privacy.delete_candidate", nil)
	if code != 200 || !strings.Contains(func() string { b, _ := json.Marshal(v); return string(b) }(), "candidate request") {
		t.Fatalf("audit: %d %v", code, v)
	}
}
