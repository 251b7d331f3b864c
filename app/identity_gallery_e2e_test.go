package app

import (
	"context"
	"encoding/json"
	"image"
	"net/http"
	"strings"
	"testing"
	"time"

	"gocv.io/x/gocv"

	"proctor/analyzers"
	"proctor/internal/platform"
	"proctor/rules"
	"proctor/store"
)

// galleryRun is one session of the identity-gallery test, driven over HTTP.
type galleryRun struct {
	t         *testing.T
	a         *App
	plat, rev *platform.Client
	sess      *store.Session
	seq       int64
	at        time.Time
}

func newGalleryRun(t *testing.T, a *App, plat, rev *platform.Client, photo []byte, candidate string) *galleryRun {
	t.Helper()
	// The exam starts in an hour: the session stays before answering until answering_started.
	sess, err := plat.CreateSession(context.Background(), platform.NewSession{ExamID: "exam-gallery", CandidateID: candidate,
		ScheduledStart: time.Now().Add(time.Hour).Truncate(time.Second), DurationSec: 1800, Questions: 2, Photo: photo})
	if err != nil {
		t.Fatal(err)
	}
	return &galleryRun{t: t, a: a, plat: plat, rev: rev, sess: sess, at: time.Now().Add(-time.Minute).Truncate(time.Second)}
}

// post sends frames one second apart and waits until every frame sent so far is analysed.
func (g *galleryRun) post(frames ...[]byte) {
	g.t.Helper()
	ctx := context.Background()
	for _, f := range frames {
		code, err := g.plat.PostFrame(ctx, g.sess.ID, analyzers.CameraMain, g.seq, g.at, f)
		if err != nil || code != http.StatusAccepted {
			g.t.Fatalf("frame %d: %d %v", g.seq, code, err)
		}
		g.seq++
		g.at = g.at.Add(time.Second)
	}
	wctx, cancel := context.WithTimeout(ctx, 120*time.Second)
	defer cancel()
	if _, err := g.rev.WaitFrames(wctx, g.sess.ID, g.seq); err != nil {
		g.t.Fatal(err)
	}
}

// startAnswering posts answering_started and waits for the session to be in the answering phase.
func (g *galleryRun) startAnswering() {
	g.t.Helper()
	ctx := context.Background()
	if code, err := g.plat.PostEvents(ctx, g.sess.ID, platform.Event{Seq: 1, Type: "answering_started", CapturedAt: g.at.UnixMilli()}); err != nil || code != http.StatusAccepted {
		g.t.Fatalf("answering_started: %d %v", code, err)
	}
	g.waitFor("the answering phase", func(d *platform.SessionDetail) bool { return d.Session.Phase == rules.PhaseAnswering })
}

func (g *galleryRun) waitFor(what string, cond func(d *platform.SessionDetail) bool) *platform.SessionDetail {
	g.t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		d, err := g.rev.Session(context.Background(), g.sess.ID)
		if err == nil && cond(d) {
			return d
		}
		if time.Now().After(deadline) {
			g.t.Fatalf("session %s: waited 90 s for %s (err %v)", g.sess.ID, what, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// waitForFlag waits until the session has a flag of type typ.
func (g *galleryRun) waitForFlag(typ string) {
	g.t.Helper()
	g.waitFor(typ, func(d *platform.SessionDetail) bool {
		for _, fl := range d.Flags {
			if fl.Type == typ {
				return true
			}
		}
		return false
	})
}

func (g *galleryRun) flags(types ...string) []store.Flag {
	d, err := g.rev.Session(context.Background(), g.sess.ID)
	if err != nil {
		g.t.Fatal(err)
	}
	var out []store.Flag
	for _, f := range d.Flags {
		for _, t := range types {
			if f.Type == t {
				out = append(out, f)
			}
		}
	}
	return out
}

// identitySignal reads what the identity check kept of one stored frame.
func (g *galleryRun) identitySignal(seq int64) (sig map[string]float64, similarity float64) {
	g.t.Helper()
	var fr store.FrameResult
	if err := g.a.Store.DB.Where("session_id = ? AND camera = ? AND seq = ?", g.sess.ID, analyzers.CameraMain, seq).Take(&fr).Error; err != nil {
		g.t.Fatal(err)
	}
	var all map[string]map[string]float64
	if err := json.Unmarshal([]byte(fr.Signals), &all); err != nil {
		g.t.Fatal(err)
	}
	var obs analyzers.Observation
	if err := json.Unmarshal([]byte(fr.Observation), &obs); err != nil {
		g.t.Fatal(err)
	}
	for _, f := range obs.Faces {
		if f.Match != nil {
			similarity = float64(f.Match.Similarity)
		}
	}
	return all["identity"], similarity
}

// shrink scales a frame down so its face is under the identity quality gate's 60 px (but over
// the analyzer's 40 px, so identity is measured and then abstains): the sample candidate's face
// box is ~290 px high at full size, ~50 px at 0.17.
func shrink(t *testing.T, jpg []byte, scale float64) []byte {
	t.Helper()
	m, err := gocv.IMDecode(jpg, gocv.IMReadColor)
	if err != nil || m.Empty() {
		t.Fatalf("decode: %v", err)
	}
	defer m.Close()
	small := gocv.NewMat()
	defer small.Close()
	gocv.Resize(m, &small, image.Pt(int(float64(m.Cols())*scale), int(float64(m.Rows())*scale)), 0, 0, gocv.InterpolationArea)
	canvas := gocv.NewMatWithSize(m.Rows(), m.Cols(), m.Type())
	defer canvas.Close()
	roi := canvas.Region(image.Rect(0, 0, small.Cols(), small.Rows()))
	small.CopyTo(&roi)
	roi.Close()
	buf, err := gocv.IMEncode(gocv.JPEGFileExt, canvas)
	if err != nil {
		t.Fatal(err)
	}
	defer buf.Close()
	return append([]byte(nil), buf.GetBytes()...)
}

// TestIdentityGalleryEndToEnd: login frames that match the registration photo enrol into the
// session's gallery and later frames are compared with it; a face too small to judge abstains
// instead of counting as someone else; a session whose login never matched raises one
// IDENTITY_NOT_VERIFIED and no stream of IDENTITY_MISMATCH.
func TestIdentityGalleryEndToEnd(t *testing.T) {
	f := sampleFrames(t)
	others := impostorFrames(t, f)
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			a := startApp(t, b, func(c *Config) { c.Analyzers.Analyzers = visionAnalyzers })
			ingestKey, reviewKey := keys(t, a, "org-gallery")
			plat, rev := platform.New(a.URL, ingestKey), platform.New(a.URL, reviewKey)

			t.Run("verified login builds the gallery", func(t *testing.T) {
				g := newGalleryRun(t, a, plat, rev, f.Photo, "cand-ok")
				g.post(f.Candidate...)
				if d := g.waitFor("the photo's enrolment", func(d *platform.SessionDetail) bool { return d.Session.RegistrationFace != "" }); d.Session.RegistrationFace != store.RegistrationFaceFound {
					t.Errorf("registration_face %q, want found", d.Session.RegistrationFace)
				}
				var gallery []store.GalleryFace
				a.Store.DB.Where("session_id = ?", g.sess.ID).Find(&gallery)
				s, _ := a.Store.GetSession(context.Background(), "", g.sess.ID)
				if len(gallery) == 0 || s.LoginFaceMatches == 0 || s.LoginFaceFrames < s.LoginFaceMatches {
					t.Fatalf("gallery %d faces, login frames %d matched %d: want login frames that matched to enrol",
						len(gallery), s.LoginFaceFrames, s.LoginFaceMatches)
				}
				for _, gf := range gallery {
					if gf.Source != store.GalleryFromPhoto || len(gf.JPEG) == 0 || len(gf.Vector) == 0 {
						t.Errorf("gallery face %+v: want source photo, a frame and a vector", gf.Source)
					}
				}
				g.startAnswering()
				// The same picture as a gallery frame: compared with the gallery it is the same
				// face (similarity ≈ 1; the first look's int8 embedding of the same crop is within
				// 0.02 of the full model's: 0.965 on a CPU without VNNI before models.exactInt8),
				// which the photo alone never gives.
				var same []byte
				for i, c := range f.Candidate {
					if int64(i) == gallery[0].Seq {
						same = c
					}
				}
				g.post(same)
				if _, sim := g.identitySignal(g.seq - 1); sim < 0.97 {
					t.Errorf("answering frame equal to a gallery frame: similarity %.3f, want ≈ 1 (compared with the gallery)", sim)
				}
				// Faces too small to judge abstain, for longer than the mismatch duration.
				var small [][]byte
				for i := range 6 {
					small = append(small, shrink(t, f.Candidate[i%len(f.Candidate)], 0.17))
				}
				g.post(small...)
				if sig, _ := g.identitySignal(g.seq - 1); sig["abstain"] != 1 {
					t.Errorf("small face: identity signal %v, want it to abstain", sig)
				}
				if fl := g.flags(rules.IdentityMismatch, rules.IdentityNotVerified); len(fl) != 0 {
					t.Errorf("flags %+v on the candidate's own session", fl)
				}
			})

			t.Run("unverified login raises one flag", func(t *testing.T) {
				g := newGalleryRun(t, a, plat, rev, f.Photo, "cand-other")
				var login [][]byte
				for i := range 4 {
					login = append(login, others[i%len(others)])
				}
				g.post(login...)
				s, _ := a.Store.GetSession(context.Background(), "", g.sess.ID)
				if s.LoginFaceFrames < 3 || s.LoginFaceMatches != 0 {
					t.Fatalf("login frames %d matched %d: want ≥ 3 quality frames, none matching", s.LoginFaceFrames, s.LoginFaceMatches)
				}
				g.startAnswering()
				g.waitForFlag(rules.IdentityNotVerified)
				var answering [][]byte
				for i := range 8 {
					answering = append(answering, others[i%len(others)])
				}
				g.post(answering...)
				nv, mm := g.flags(rules.IdentityNotVerified), g.flags(rules.IdentityMismatch)
				if len(nv) != 1 || len(mm) != 0 {
					t.Fatalf("%d IDENTITY_NOT_VERIFIED and %d IDENTITY_MISMATCH, want 1 and 0", len(nv), len(mm))
				}
				if nv[0].Severity != store.SeverityAlert || !strings.Contains(nv[0].Details, `"login_matches":0`) {
					t.Errorf("flag %+v", nv[0])
				}
			})

			// A photo without a face leaves nothing to compare with: the session says so at once
			// (registration_face), and the exam raises one IDENTITY_NOT_VERIFIED instead of
			// running with the identity checks silently off.
			t.Run("photo without a face raises one flag", func(t *testing.T) {
				g := newGalleryRun(t, a, plat, rev, f.Nobody[0], "cand-no-face")
				g.waitFor("the photo's enrolment", func(d *platform.SessionDetail) bool {
					return d.Session.RegistrationFace == store.RegistrationFaceNone
				})
				g.post(f.Candidate[:3]...)
				g.startAnswering()
				g.waitForFlag(rules.IdentityNotVerified)
				g.post(others[:4]...)
				nv, mm := g.flags(rules.IdentityNotVerified), g.flags(rules.IdentityMismatch)
				if len(nv) != 1 || len(mm) != 0 {
					t.Fatalf("%d IDENTITY_NOT_VERIFIED and %d IDENTITY_MISMATCH, want 1 and 0", len(nv), len(mm))
				}
				if !strings.Contains(nv[0].Details, `"registration_photo":"no usable face"`) {
					t.Errorf("flag details %s: want the photo named as the reason", nv[0].Details)
				}
			})
		})
	}
}
