package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/color"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"proctor/internal/testdb"
	"proctor/pipeline"
	"proctor/store"
)

// Honest status (issue #19): a database or broker that is down answers 503 with Retry-After,
// /healthz and /readyz say only which component is down, unknown methods answer 405 with Allow,
// and the sign-in limit counts per account and, higher, per address.

type httpResult struct {
	code   int
	header http.Header
	body   []byte
}

func call(t *testing.T, method, url, token, ctype string, body []byte) httpResult {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	var out []byte
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		out, _ = io.ReadAll(resp.Body)
	}
	return httpResult{resp.StatusCode, resp.Header, out}
}

// waitWithin polls cond every 100 ms until it holds or budget passes; it returns how long it took.
func waitWithin(t *testing.T, what string, budget time.Duration, cond func() (bool, string)) time.Duration {
	t.Helper()
	start := time.Now()
	var last string
	for {
		ok, state := cond()
		if ok {
			return time.Since(start)
		}
		last = state
		if time.Since(start) > budget {
			t.Fatalf("%s: not within %v; last: %s", what, budget, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// checkPublicHealth checks a /healthz or /readyz answer: the wanted status and component
// states, and nothing else that could tell an outsider about the deployment.
func checkPublicHealth(t *testing.T, r httpResult, code int, status string, components map[string]string, leaks ...string) {
	t.Helper()
	var body struct {
		Status     string            `json:"status"`
		Components map[string]string `json:"components"`
		Models     map[string]string `json:"models"`
	}
	dec := json.NewDecoder(bytes.NewReader(r.body))
	if err := dec.Decode(&body); err != nil || r.code != code || body.Status != status || fmt.Sprint(body.Components) != fmt.Sprint(components) {
		t.Fatalf("health: %d %s, want %d status %q components %v", r.code, r.body, code, status, components)
	}
	var raw map[string]any
	json.Unmarshal(r.body, &raw)
	for k := range raw {
		if !slices.Contains([]string{"status", "components", "models"}, k) {
			t.Errorf("health answer has field %q: %s", k, r.body)
		}
	}
	if code == 503 && r.header.Get("Retry-After") == "" {
		t.Errorf("health 503 without Retry-After")
	}
	for _, leak := range append(leaks, "127.0.0.1", "localhost", "dial", "refused", "closed", "error", "sqlite", "postgres") {
		if leak != "" && bytes.Contains(bytes.ToLower(r.body), []byte(strings.ToLower(leak))) {
			t.Errorf("public health answer shows %q: %s", leak, r.body)
		}
	}
}

// noDatabase lists the routes that work without the database.
var noDatabase = []string{"/metrics", "/openapi.yaml", "/", "/ui/*"}

// TestDatabaseClosed503 closes the database under a running API: every route that needs it
// answers 503 with Retry-After and a JSON error, never 500; /healthz and /readyz answer 503 and
// name only the component.
func TestDatabaseClosed503(t *testing.T) {
	a := startAPI(t, "", nil)
	m := &matrix{a: a}
	m.mine = seedOrg(t, a, "org-down", "exam-down")
	checkPublicHealth(t, call(t, "GET", a.URL+"/healthz", "", "", nil), 200, "ok", map[string]string{"database": "ok", "kafka": "ok"})

	// Every request is built while the database is up (some create what they name).
	type built struct {
		r   routeRule
		req matrixReq
	}
	var reqs []built
	for _, r := range routeRules() {
		reqs = append(reqs, built{r, r.req(t, m, m.mine)})
	}
	sqlDB, err := a.Store.DB.DB()
	if err != nil {
		t.Fatal(err)
	}
	sqlDB.Close()
	waitWithin(t, "/healthz 503 with the database closed", 10*time.Second, func() (bool, string) {
		r := call(t, "GET", a.URL+"/healthz", "", "", nil)
		return r.code == 503, fmt.Sprintf("%d %s", r.code, r.body)
	})

	admin := m.mine.Keys[store.ScopeAdmin]
	for _, b := range reqs {
		t.Run(b.r.method+"_"+b.r.route, func(t *testing.T) {
			res := call(t, b.r.method, a.URL+b.req.path, admin, b.req.ctype, b.req.body)
			switch {
			case slices.Contains(noDatabase, b.r.route):
				if res.code >= 400 {
					t.Errorf("needs no database: %d %s", res.code, res.body)
				}
			case b.r.route == "/healthz" || b.r.route == "/readyz":
				checkPublicHealth(t, res, 503, "degraded", map[string]string{"database": "down", "kafka": "ok"})
			default:
				var e struct {
					Error string `json:"error"`
				}
				if res.code != 503 || res.header.Get("Retry-After") == "" || json.Unmarshal(res.body, &e) != nil ||
					!strings.Contains(e.Error, "temporarily unavailable") {
					t.Errorf("database closed: %d Retry-After=%q %s, want 503 with Retry-After and a JSON error",
						res.code, res.header.Get("Retry-After"), res.body)
				}
			}
		})
	}
}

// TestKafkaDownHealth stops the embedded broker under a running API: /healthz and /readyz turn
// 503 within 10 s, ingest posts answer 503 with Retry-After, the admin status says why; after a
// restart on the same port and data, everything is ok again and posts are accepted.
func TestKafkaDownHealth(t *testing.T) {
	a := startAPI(t, "", func(c *Config) { c.Kafka.WriteTimeout = 3 * time.Second })
	o := seedOrg(t, a, "org-kafka", "exam-kafka")
	admin := o.Keys[store.ScopeAdmin]
	up := map[string]string{"database": "ok", "kafka": "ok"}
	down := map[string]string{"database": "ok", "kafka": "down"}
	checkPublicHealth(t, call(t, "GET", a.URL+"/healthz", "", "", nil), 200, "ok", up)
	checkPublicHealth(t, call(t, "GET", a.URL+"/readyz", "", "", nil), 200, "ok", up)
	st := call(t, "GET", a.URL+"/v1/admin/status", admin, "", nil)
	if st.code != 200 || !bytes.Contains(st.body, []byte(`"lag":{`)) || !bytes.Contains(st.body, []byte(a.Broker.Addr())) {
		t.Fatalf("admin status with everything up: %d %s, want the brokers and the lag", st.code, st.body)
	}

	seq := 0
	frame := func() httpResult {
		seq++
		path := fmt.Sprintf("/v1/sessions/%s/frames?camera=main&seq=%d&captured_at=%d", o.Sessions[0].ID, 5000+seq, time.Now().Add(-time.Second).UnixMilli())
		return call(t, "POST", a.URL+path, o.Keys[store.ScopeIngest], "image/jpeg", testJPEG(t, 96, 96, 1, color.RGBA{200, 200, 200, 255}))
	}
	if r := frame(); r.code != 202 {
		t.Fatalf("frame with Kafka up: %d %s", r.code, r.body)
	}

	port, addr := a.Broker.Port(), a.Broker.Addr()
	a.Broker.Close()
	took := waitWithin(t, "/healthz 503 after the broker stopped", 10*time.Second, func() (bool, string) {
		r := call(t, "GET", a.URL+"/healthz", "", "", nil)
		return r.code == 503, fmt.Sprintf("%d %s", r.code, r.body)
	})
	t.Logf("/healthz answered 503 %v after the broker stopped", took.Round(time.Millisecond))
	checkPublicHealth(t, call(t, "GET", a.URL+"/healthz", "", "", nil), 503, "degraded", down, strconv.Itoa(port))
	checkPublicHealth(t, call(t, "GET", a.URL+"/readyz", "", "", nil), 503, "degraded", down, strconv.Itoa(port))
	if r := frame(); r.code != 503 || r.header.Get("Retry-After") == "" {
		t.Errorf("frame with Kafka down: %d Retry-After=%q %s, want 503 with Retry-After", r.code, r.header.Get("Retry-After"), r.body)
	}
	var status struct {
		Status     string `json:"status"`
		Components struct {
			Kafka struct {
				Status    string   `json:"status"`
				Error     string   `json:"error"`
				Bootstrap []string `json:"bootstrap"`
			} `json:"kafka"`
		} `json:"components"`
	}
	st = call(t, "GET", a.URL+"/v1/admin/status", admin, "", nil)
	if err := json.Unmarshal(st.body, &status); err != nil || st.code != 200 || status.Status != "degraded" ||
		status.Components.Kafka.Status != "down" || status.Components.Kafka.Error == "" || !slices.Contains(status.Components.Kafka.Bootstrap, addr) {
		t.Errorf("admin status with Kafka down: %d %s, want kafka down with the error and the brokers", st.code, st.body)
	}
	if r := call(t, "GET", a.URL+"/v1/admin/status", o.Keys[store.ScopeReview], "", nil); r.code != 403 {
		t.Errorf("admin status for a reviewer key: %d, want 403", r.code)
	}

	b, err := pipeline.StartEmbeddedBroker(context.Background(), pipeline.EmbeddedBrokerConfig{Port: port,
		DataDir: filepath.Join(a.cfg.Store.DataDir, "kafka"), Logger: quietLog()})
	if err != nil {
		t.Fatalf("restart the broker on port %d: %v", port, err)
	}
	t.Cleanup(b.Close)
	waitWithin(t, "/healthz ok after the broker restarted", 30*time.Second, func() (bool, string) {
		r := call(t, "GET", a.URL+"/healthz", "", "", nil)
		return r.code == 200, fmt.Sprintf("%d %s", r.code, r.body)
	})
	checkPublicHealth(t, call(t, "GET", a.URL+"/readyz", "", "", nil), 200, "ok", up)
	waitWithin(t, "a frame accepted after the broker restarted", 60*time.Second, func() (bool, string) {
		r := frame()
		return r.code == 202, fmt.Sprintf("%d %s", r.code, r.body)
	})
}

// TestUnknownMethod405 asks every route path of the app with every method it does not have:
// 405 with Allow listing the methods it has, before any authentication.
func TestUnknownMethod405(t *testing.T) {
	a := startAPI(t, "", nil)
	methods := map[string][]string{}
	for _, r := range a.http.GetRoutes(true) {
		if !slices.Contains(methods[r.Path], r.Method) {
			methods[r.Path] = append(methods[r.Path], r.Method)
		}
	}
	param := regexp.MustCompile(`:[a-z]+`)
	order := []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"}
	for route, have := range methods {
		path := strings.ReplaceAll(param.ReplaceAllString(route, "x1"), "*", "x1")
		var allow []string
		for _, m := range order {
			if slices.Contains(have, m) {
				allow = append(allow, m)
			}
		}
		for _, m := range order {
			if slices.Contains(have, m) {
				continue
			}
			r := call(t, m, a.URL+path, "", "", nil)
			if r.code != 405 || r.header.Get("Allow") != strings.Join(allow, ", ") {
				t.Errorf("%s %s (route %s): %d Allow=%q %s, want 405 Allow=%q", m, path, route, r.code, r.header.Get("Allow"), r.body, strings.Join(allow, ", "))
			}
		}
	}
	if r := call(t, "PATCH", a.URL+"/v1/sessions", "", "", nil); r.code != 405 || r.header.Get("Allow") != "GET, HEAD, POST" {
		t.Errorf("PATCH /v1/sessions: %d Allow=%q, want 405 Allow=\"GET, HEAD, POST\"", r.code, r.header.Get("Allow"))
	}
	if r := call(t, "DELETE", a.URL+"/v1/no-such-thing", "", "", nil); r.code != 404 {
		t.Errorf("DELETE on an unknown path: %d %s, want 404", r.code, r.body)
	}
	// Methods outside HTTP's usual set (Fiber itself would answer a bare 400) get the same
	// answers, with the JSON error body.
	for _, m := range []string{"QUERY", "PROPFIND", "FOO"} {
		r := call(t, m, a.URL+"/v1/sessions", "", "", nil)
		if r.code != 405 || r.header.Get("Allow") != "GET, HEAD, POST" || !strings.Contains(string(r.body), `"error"`) {
			t.Errorf("%s /v1/sessions: %d Allow=%q %s, want 405 Allow=\"GET, HEAD, POST\" with a JSON error", m, r.code, r.header.Get("Allow"), r.body)
		}
		if r := call(t, m, a.URL+"/v1/no-such-thing", "", "", nil); r.code != 404 {
			t.Errorf("%s on an unknown path: %d %s, want 404", m, r.code, r.body)
		}
	}
}

// TestSignInLockoutPerAccount: one account's failures lock that account (429 + Retry-After), not
// the others behind the same address, until the higher per-address limit.
func TestSignInLockoutPerAccount(t *testing.T) {
	a := startAPI(t, "", func(c *Config) {
		c.API.SignInBurst, c.API.SignInIPBurst, c.API.SignInEvery = 3, 6, time.Hour
	})
	o := seedOrg(t, a, "org-lock", "exam-lock")
	try := func(email, pw string) httpResult {
		body, _ := json.Marshal(map[string]string{"email": email, "password": pw})
		return call(t, "POST", a.URL+"/v1/auth/login", "", "application/json", body)
	}
	locked := o.Users[store.RoleReviewer]
	for i := range 3 {
		if r := try(locked, "typo"); r.code != 401 {
			t.Fatalf("failed sign-in %d: %d %s, want 401", i+1, r.code, r.body)
		}
	}
	r := try(locked, o.Password)
	if wait, _ := strconv.Atoi(r.header.Get("Retry-After")); r.code != 429 || wait < 1 || !strings.Contains(string(r.body), "account") {
		t.Fatalf("locked account, right password: %d Retry-After=%q %s, want 429 with Retry-After", r.code, r.header.Get("Retry-After"), r.body)
	}
	// Same address, other account: signs in.
	if r := try(o.Users[store.RoleData], o.Password); r.code != 200 {
		t.Fatalf("another account from the same address: %d %s, want 200", r.code, r.body)
	}
	// Three more failures on other accounts reach the per-address limit (6).
	for _, email := range []string{o.Users[store.RoleData], "nobody@org-lock.example.com", "someone@org-lock.example.com"} {
		if r := try(email, "typo"); r.code != 401 {
			t.Fatalf("failed sign-in as %s: %d %s, want 401", email, r.code, r.body)
		}
	}
	if r := try(o.Users[store.RoleAdmin], o.Password); r.code != 429 || r.header.Get("Retry-After") == "" || !strings.Contains(string(r.body), "address") {
		t.Fatalf("after the per-address limit: %d %s, want 429", r.code, r.body)
	}
}

// TestPostgresStopStart stops a real PostgreSQL under a running API and starts it again: API
// routes answer 503 with Retry-After, /healthz 503 naming only the component, then everything
// is ok again. It runs its own throwaway cluster (scripts/postgres.sh on a free port) where
// scripts/test.sh provides PostgreSQL.
func TestPostgresStopStart(t *testing.T) {
	if testdb.PostgresDSN() == "" {
		t.Skip("PROCTOR_TEST_POSTGRES_DSN not set: real PostgreSQL stop/start skipped (scripts/test.sh sets it)")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	pg := func(cmd string) string {
		t.Helper()
		c := exec.Command("../scripts/postgres.sh", cmd)
		c.Env = append(os.Environ(), "PGPORT_TEST="+port)
		out, err := c.CombinedOutput()
		if err != nil {
			t.Fatalf("scripts/postgres.sh %s (port %s): %v\n%s", cmd, port, err, out)
		}
		return string(out)
	}
	out := pg("start")
	t.Cleanup(func() { pg("stop") })
	dsn := regexp.MustCompile(`ready DSN=(.*)`).FindStringSubmatch(out)
	if dsn == nil {
		t.Fatalf("no DSN from scripts/postgres.sh start:\n%s", out)
	}
	a := startAPI(t, dsn[1], func(c *Config) {
		if brokers := os.Getenv("PROCTOR_TEST_KAFKA_BROKERS"); brokers != "" { // the real one, when there
			c.Kafka = kafkaConfig(backend{brokers: strings.Split(brokers, ",")})
		}
	})
	o := seedOrg(t, a, "org-pg", "exam-pg")
	review := o.Keys[store.ScopeReview]
	checkPublicHealth(t, call(t, "GET", a.URL+"/healthz", "", "", nil), 200, "ok", map[string]string{"database": "ok", "kafka": "ok"})
	// A fresh cluster may still be creating its offsets topic: the lag comes once it did.
	waitWithin(t, "the consumer lag in the admin status", 30*time.Second, func() (bool, string) {
		r := call(t, "GET", a.URL+"/v1/admin/status", o.Keys[store.ScopeAdmin], "", nil)
		return r.code == 200 && bytes.Contains(r.body, []byte(`"lag":{`)), fmt.Sprintf("%d %s", r.code, r.body)
	})

	pg("halt")
	waitWithin(t, "/healthz 503 with PostgreSQL stopped", 10*time.Second, func() (bool, string) {
		r := call(t, "GET", a.URL+"/healthz", "", "", nil)
		return r.code == 503, fmt.Sprintf("%d %s", r.code, r.body)
	})
	checkPublicHealth(t, call(t, "GET", a.URL+"/healthz", "", "", nil), 503, "degraded", map[string]string{"database": "down", "kafka": "ok"}, port)
	for _, path := range []string{"/v1/sessions", "/v1/sessions/" + o.Sessions[0].ID, "/v1/review/summary", "/v1/exams"} {
		r := call(t, "GET", a.URL+path, review, "", nil)
		if r.code != 503 || r.header.Get("Retry-After") == "" || bytes.Contains(r.body, []byte(port)) || !bytes.Contains(r.body, []byte("temporarily unavailable")) {
			t.Errorf("GET %s with PostgreSQL stopped: %d Retry-After=%q %s, want 503 with Retry-After and no address", path, r.code, r.header.Get("Retry-After"), r.body)
		}
	}
	body, _ := json.Marshal(map[string]string{"email": o.Users[store.RoleReviewer], "password": o.Password})
	if r := call(t, "POST", a.URL+"/v1/auth/login", "", "application/json", body); r.code != 503 {
		t.Errorf("sign-in with PostgreSQL stopped: %d %s, want 503", r.code, r.body)
	}

	pg("resume")
	waitWithin(t, "/healthz ok after PostgreSQL restarted", 30*time.Second, func() (bool, string) {
		r := call(t, "GET", a.URL+"/healthz", "", "", nil)
		return r.code == 200, fmt.Sprintf("%d %s", r.code, r.body)
	})
	waitWithin(t, "the queue answers after PostgreSQL restarted", 30*time.Second, func() (bool, string) {
		r := call(t, "GET", a.URL+"/v1/sessions", review, "", nil)
		return r.code == 200, fmt.Sprintf("%d %s", r.code, r.body)
	})
}
