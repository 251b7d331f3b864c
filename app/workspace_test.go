package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"proctor/rules"
	"proctor/store"
)

// Fixtures shared by the authorisation matrix and the browser test: two organisations, each with
// users of every role, API keys of every scope, and an exam whose sessions carry flags with
// evidence frames — written straight to the store, so these tests need neither the models nor
// the workers.

// wsOrg is one organisation's fixtures.
type wsOrg struct {
	ID       string
	Sessions []*store.Session // by risk, highest first once seeded
	Flags    map[string][]store.Flag
	Keys     map[string]string // scope → token
	Users    map[string]string // role → email
	Password string            // every user's password
	Spare    store.Flag        // a flag the matrix may judge freely
	Other    string            // an id of a user (for PUT /v1/users/:id)
	Gallery  uint              // a gallery face of Sessions[0]
}

// startAPI starts the API role only (embedded Kafka + SQLite, or PostgreSQL when dsn is set).
func startAPI(t *testing.T, dsn string, mutate func(*Config)) *App {
	t.Helper()
	cfg := Config{Addr: "127.0.0.1:0", RunAPI: true, Store: store.Config{DSN: dsn, DataDir: t.TempDir(), Keys: store.InsecureTestKeys()},
		Kafka: kafkaConfig(backend{}), Log: quietLog()}
	cfg.API.LivePoll = 200 * time.Millisecond
	if mutate != nil {
		mutate(&cfg)
	}
	a, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("start API: %v", err)
	}
	t.Cleanup(a.Close)
	return a
}

// testJPEG draws a frame: a room-coloured background with n head-and-shoulder shapes.
func testJPEG(t testing.TB, w, hgt, heads int, bg color.RGBA) []byte {
	img := image.NewRGBA(image.Rect(0, 0, w, hgt))
	for y := 0; y < hgt; y++ {
		for x := 0; x < w; x++ {
			shade := uint8(20 * y / hgt)
			img.Set(x, y, color.RGBA{bg.R - shade, bg.G - shade, bg.B - shade, 255})
		}
	}
	for i := 0; i < heads; i++ {
		cx, cy, r := w*(i+1)/(heads+1), hgt*2/5, hgt/7
		for y := max(0, cy-2*r); y < hgt; y++ {
			for x := cx - 2*r; x < cx+2*r; x++ {
				dx, dy := x-cx, y-cy
				head := dx*dx+dy*dy*3/4 < r*r
				body := y > cy+r && (x-cx)*(x-cx) < (2*r)*(2*r)-(y-cy-r)*(y-cy-r)/3
				if head {
					img.Set(x, y, color.RGBA{224, 188, 160, 255})
				} else if body {
					img.Set(x, y, color.RGBA{52, 73, 110, 255})
				}
			}
		}
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 80}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// seedOrg creates an organisation with users, keys and an exam of three sessions:
//   - the riskiest: MULTIPLE_FACES and FACE_ABSENT from the main camera (with frames) and a
//     WINDOW_SWITCH from the exam events, plus technical events;
//   - one with a single FACE_ABSENT;
//   - one with no flags.
func seedOrg(t *testing.T, a *App, id, exam string) *wsOrg {
	t.Helper()
	ctx := context.Background()
	st := a.Store
	if err := st.EnsureOrganisation(ctx, id, id); err != nil {
		t.Fatal(err)
	}
	o := &wsOrg{ID: id, Flags: map[string][]store.Flag{}, Keys: map[string]string{}, Users: map[string]string{},
		Password: "correct horse battery " + id}
	for _, sc := range []string{store.ScopeIngest, store.ScopeReview, store.ScopeData, store.ScopeAdmin} {
		tok, _, err := st.CreateAPIKey(ctx, id, sc+" key", []string{sc})
		if err != nil {
			t.Fatal(err)
		}
		o.Keys[sc] = tok
	}
	for _, role := range []string{store.RoleReviewer, store.RoleData, store.RoleAdmin} {
		email := role + "@" + id + ".example.com"
		if _, err := st.CreateUser(ctx, id, email, role, o.Password, false); err != nil {
			t.Fatal(err)
		}
		o.Users[role] = email
	}
	other, err := st.CreateUser(ctx, id, "someone@"+id+".example.com", store.RoleReviewer, o.Password, false)
	if err != nil {
		t.Fatal(err)
	}
	o.Other = other.ID

	start := time.Now().Add(-20 * time.Minute).Truncate(time.Minute)
	photo := testJPEG(t, 240, 320, 1, color.RGBA{235, 235, 240, 255})
	type flagSpec struct {
		typ, sev, camera string
		at, dur          time.Duration
		conf             float64
		heads            int // evidence frame: -1 = none (exam-flow flag)
		details          string
	}
	sessions := []struct {
		cand  string
		flags []flagSpec
	}{
		{"cand-" + id + "-017", []flagSpec{
			{rules.FaceAbsent, store.SeverityDetection, "main", 95 * time.Second, 7 * time.Second, 0.82, 0, `{"frames":7,"threshold_ms":5000}`},
			{rules.WindowSwitch, store.SeverityAlert, "main", 150 * time.Second, 0, 1, -1, `{"event":"focus_lost","event_seq":14}`},
			{rules.MultipleFaces, store.SeverityAlert, "main", 240 * time.Second, 5 * time.Second, 0.91, 2, `{"frames":5,"threshold_ms":2000,"similarity":0.41}`},
		}},
		{"cand-" + id + "-004", []flagSpec{
			{rules.FaceAbsent, store.SeverityDetection, "main", 400 * time.Second, 6 * time.Second, 0.7, 0, `{"frames":6,"threshold_ms":5000}`},
		}},
		{"cand-" + id + "-031", nil},
		{"cand-" + id + "-spare", []flagSpec{
			{rules.FaceAbsent, store.SeverityDetection, "main", 30 * time.Second, 6 * time.Second, 0.5, 0, `{"frames":6}`},
		}},
	}
	for i, sp := range sessions {
		sess := &store.Session{ID: id + "-s" + fmt.Sprint(i+1), OrgID: id, ExamID: exam, CandidateID: sp.cand,
			ScheduledStart: start, DurationSec: 1800, Questions: 3, RegistrationPhoto: photo, Phase: rules.PhaseAnswering}
		if err := st.CreateSession(ctx, sess); err != nil {
			t.Fatal(err)
		}
		at := func(d time.Duration) int64 { return start.Add(d).UnixMilli() }
		events := []struct {
			d   time.Duration
			typ string
		}{{-30 * time.Minute, "face_login"}, {-24 * time.Minute, "evidence_recording_started"}, {-23 * time.Minute, "room_scan_completed"},
			{-6 * time.Minute, "exam_entered"}, {0, "answering_started"}, {150 * time.Second, "focus_lost"},
			{200 * time.Second, "network_lost"}, {212 * time.Second, "network_restored"}, {300 * time.Second, "help_requested"}}
		for j, e := range events {
			if _, err := store.InsertEvent(st.DB, &store.Event{SessionID: sess.ID, Seq: int64(j), Type: e.typ,
				CapturedAtMs: at(e.d), ReceivedAtMs: at(e.d)}); err != nil {
				t.Fatal(err)
			}
		}
		for _, fs := range sp.flags {
			f := store.Flag{SessionID: sess.ID, Type: fs.typ, Camera: fs.camera, StartMs: at(fs.at), EndMs: at(fs.at + fs.dur),
				Severity: fs.sev, Confidence: fs.conf, Status: store.StatusOpen, Phase: rules.PhaseAnswering, Details: fs.details,
				ModelVersion: "faces=ultraface-rfb-320"}
			if fs.heads < 0 {
				f.ModelVersion = "exam-flow-rules"
			}
			err := st.DB.Transaction(func(tx *gorm.DB) error {
				if err := tx.Create(&f).Error; err != nil {
					return err
				}
				if fs.heads >= 0 {
					return tx.Create(&store.Evidence{FlagID: f.ID, Camera: fs.camera, Seq: int64(fs.at / time.Second),
						CapturedAtMs: f.StartMs, JPEG: testJPEG(t, 320, 240, fs.heads, color.RGBA{196, 186, 170, 255})}).Error
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			o.Flags[sess.ID] = append(o.Flags[sess.ID], f)
		}
		if err := rules.RecomputeRisk(st.DB, sess.ID, rules.DefaultWeights()); err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(sp.cand, "spare") {
			o.Spare = o.Flags[sess.ID][0]
			continue
		}
		o.Sessions = append(o.Sessions, sess)
	}
	g := store.GalleryFace{SessionID: o.Sessions[0].ID, Seq: 1, CapturedAtMs: o.Sessions[0].ScheduledStart.UnixMilli(),
		Model: "test@1", Vector: []byte{0, 0, 128, 63}, PhotoSimilarity: 0.8, Source: store.GalleryFromPhoto, JPEG: photo}
	if err := store.AddGalleryFace(st.DB, &g); err != nil {
		t.Fatal(err)
	}
	o.Gallery = g.ID
	return o
}

// webUser is a signed-in browser session, for tests that speak HTTP themselves.
type webUser struct {
	cookie, csrf string
}

func signIn(t *testing.T, base, email, password string) *webUser {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"email": email, "password": password})
	resp, err := http.Post(base+"/v1/auth/login", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("sign in %s: %d %s", email, resp.StatusCode, data)
	}
	var me struct {
		CSRF string `json:"csrf_token"`
	}
	if err := json.Unmarshal(data, &me); err != nil || me.CSRF == "" {
		t.Fatalf("sign in %s: no CSRF token in %s", email, data)
	}
	for _, c := range resp.Cookies() {
		if c.Name == "proctor_session" {
			if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode {
				t.Errorf("session cookie must be HttpOnly and SameSite=Strict: %+v", c)
			}
			return &webUser{cookie: c.Value, csrf: me.CSRF}
		}
	}
	t.Fatalf("sign in %s: no session cookie", email)
	return nil
}
