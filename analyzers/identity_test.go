package analyzers_test

import (
	"context"
	"fmt"
	"image"
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	"proctor/analyzers"
	"proctor/internal/scenario"
	"proctor/models"
)

var vision = []string{"faces", "landmarks", "identity", "headpose"}

var (
	demoOnce   sync.Once
	demo       *scenario.Frames
	demoOthers [][]byte
	demoErr    error
)

// demoFrames builds the scenario frames and impostors once (they need the models and the demo
// photos that scripts/setup.sh fetches; tests skip without them).
func demoFrames(t *testing.T) (*scenario.Frames, [][]byte) {
	t.Helper()
	demoOnce.Do(func() {
		dir, err := scenario.DemoDir()
		if err != nil {
			demoErr = err
			return
		}
		set, err := analyzers.NewSet(analyzers.Config{Analyzers: vision})
		if err != nil {
			demoErr = err
			return
		}
		defer set.Close()
		if demo, demoErr = scenario.Build(context.Background(), set, dir); demoErr != nil {
			return
		}
		demoOthers, demoErr = scenario.Impostors(context.Background(), set, dir, demo, 3)
	})
	if demoErr != nil {
		t.Skipf("demo frames unavailable (%v): run scripts/setup.sh", demoErr)
	}
	return demo, demoOthers
}

func TestIdentityMatchesTheCandidateOnly(t *testing.T) {
	f, others := demoFrames(t)
	set, err := analyzers.NewSet(analyzers.Config{Analyzers: vision})
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	ctx := context.Background()
	enr, err := set.Enroll(ctx, f.Photo)
	if err != nil {
		t.Fatal(err)
	}
	if enr.Model != set.EnrollModel() || len(enr.Vector) == 0 {
		t.Fatalf("enrollment %q with %d values", enr.Model, len(enr.Vector))
	}
	if v := analyzers.DecodeVector(analyzers.EncodeVector(enr.Vector)); !slices.Equal(v, enr.Vector) {
		t.Error("embedding does not survive EncodeVector/DecodeVector")
	}
	match := func(jpeg []byte, session string) *analyzers.Match {
		t.Helper()
		obs, err := set.AnalyzeFrameJPEG(ctx, jpeg, analyzers.FrameMeta{Camera: analyzers.CameraMain, Session: session, Enrolled: &enr})
		if err != nil {
			t.Fatal(err)
		}
		if len(obs.Faces) != 1 || len(obs.Faces[0].Landmarks) != 5 || obs.Faces[0].Yaw == nil {
			t.Fatalf("faces %+v: want one face with 5 landmarks and a pose", obs.Faces)
		}
		return obs.Faces[0].Match
	}
	for i, jpg := range f.Candidate {
		if m := match(jpg, ""); m == nil || !m.SamePerson || !m.Measured {
			t.Errorf("candidate frame %d: match %+v, want the same person", i, m)
		}
	}
	for i, jpg := range others {
		if m := match(jpg, ""); m == nil || m.SamePerson {
			t.Errorf("impostor frame %d: match %+v, want another person", i, m)
		}
	}

	// Within one session's face track the embedding is computed one frame in three; someone
	// else appearing in the same place is measured at once.
	m0 := match(f.Candidate[0], "s1")
	m1 := match(f.Candidate[0], "s1")
	if !m0.Measured || m1.Measured || m1.Similarity != m0.Similarity {
		t.Errorf("same face twice: %+v then %+v, want measured then carried", m0, m1)
	}
	if m := match(others[0], "s1"); !m.Measured || m.SamePerson {
		t.Errorf("another face in the track: %+v, want measured at once and not the same person", m)
	}

	// A scene that keeps its two faces is carried like one face; a face more or less is a new
	// track, measured at once.
	main := func(jpeg []byte) *analyzers.Match {
		t.Helper()
		obs, err := set.AnalyzeFrameJPEG(ctx, jpeg, analyzers.FrameMeta{Camera: analyzers.CameraMain, Session: "s2", Enrolled: &enr})
		if err != nil {
			t.Fatal(err)
		}
		i := analyzers.MainFace(obs.Faces, len(obs.Faces))
		if len(obs.Faces) < 2 || i < 0 || obs.Faces[i].Match == nil {
			t.Fatalf("group frame: faces %+v, want two or more with the main one matched", obs.Faces)
		}
		return obs.Faces[i].Match
	}
	g0, g1 := main(f.Group[0]), main(f.Group[0])
	if !g0.Measured || g1.Measured || g1.Similarity != g0.Similarity {
		t.Errorf("the same two-face scene twice: %+v then %+v, want measured then carried", g0, g1)
	}
	if m := match(f.Candidate[0], "s2"); !m.Measured {
		t.Errorf("one face after two: %+v, want measured at once", m)
	}
}

func TestSimilarityToTemplate(t *testing.T) {
	tmpl := [5][2]float32{{38.2946, 51.6963}, {73.5318, 51.5014}, {56.0252, 71.7366}, {41.5493, 92.3655}, {70.7299, 92.2041}}
	// The template scaled by 2, rotated by 30° and moved must map back onto the template.
	var pts [5][2]float32
	c, s := math.Cos(math.Pi/6), math.Sin(math.Pi/6)
	for i, p := range tmpl {
		x, y := 2*float64(p[0]), 2*float64(p[1])
		pts[i] = [2]float32{float32(c*x - s*y + 100), float32(s*x + c*y + 40)}
	}
	m, err := models.SimilarityToTemplate(pts)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range pts {
		x := m[0]*float64(p[0]) + m[1]*float64(p[1]) + m[2]
		y := m[3]*float64(p[0]) + m[4]*float64(p[1]) + m[5]
		if math.Abs(x-float64(tmpl[i][0])) > 1e-3 || math.Abs(y-float64(tmpl[i][1])) > 1e-3 {
			t.Errorf("point %d maps to (%.3f, %.3f), want %v", i, x, y, tmpl[i])
		}
	}
	if _, err := models.SimilarityToTemplate([5][2]float32{}); err == nil {
		t.Error("five equal points: want ErrDegeneratePoints")
	}
}

func TestBuildChecksAnalyzerOrder(t *testing.T) {
	for _, names := range [][]string{{"faces", "identity"}, {"landmarks", "faces"}, {"headpose"}} {
		if s, err := analyzers.NewSet(analyzers.Config{Analyzers: names}); err == nil {
			s.Close()
			t.Errorf("%v: built, want an error naming the missing analyzer", names)
		}
	}
}

func TestEnrollWithoutFace(t *testing.T) {
	f, _ := demoFrames(t)
	set, err := analyzers.NewSet(analyzers.Config{Analyzers: vision})
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	if _, err := set.Enroll(context.Background(), f.Nobody[0]); err != analyzers.ErrNoFaceInPhoto {
		t.Errorf("enrolling an empty room: %v, want ErrNoFaceInPhoto", err)
	}
	faces, err := analyzers.NewSet(analyzers.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer faces.Close()
	if _, err := faces.Enroll(context.Background(), f.Photo); err != analyzers.ErrNoEnroller {
		t.Errorf("enrolling without identity: %v, want ErrNoEnroller", err)
	}
}

// The first look (IdentityConfig.FirstLook) settles clear matches with the cheaper model and
// leaves every other face, and every face of the login phase, to the full model: the decisions
// are the full model's.
func TestIdentityFirstLook(t *testing.T) {
	f, others := demoFrames(t)
	mk := func(first string, stranger float32) *analyzers.Set {
		t.Helper()
		set, err := analyzers.NewSet(analyzers.Config{Analyzers: vision,
			Identity: analyzers.IdentityConfig{Model: analyzers.DefaultIdentityModel, FirstLook: first, FirstLookStranger: stranger}})
		if err != nil {
			t.Skipf("%v: run scripts/setup.sh (it builds facenet-keras-int8)", err)
		}
		t.Cleanup(func() { set.Close() })
		return set
	}
	full, cascade := mk("none", 0), mk("", 0) // the default model's first look
	ctx := context.Background()
	enr, err := full.Enroll(ctx, f.Photo)
	if err != nil {
		t.Fatal(err)
	}
	if e2, err := cascade.Enroll(ctx, f.Photo); err != nil || e2.Model != enr.Model || !slices.Equal(e2.Vector, enr.Vector) {
		t.Fatalf("the cascade enrols %q (%v), want the full model's %q embedding", e2.Model, err, enr.Model)
	}
	match := func(set *analyzers.Set, jpeg []byte, e *analyzers.Enrollment) *analyzers.Match {
		t.Helper()
		obs, err := set.AnalyzeFrameJPEG(ctx, jpeg, analyzers.FrameMeta{Camera: analyzers.CameraMain, Enrolled: e})
		if err != nil {
			t.Fatal(err)
		}
		if len(obs.Faces) != 1 || obs.Faces[0].Match == nil {
			t.Fatalf("faces %+v: want one matched face", obs.Faces)
		}
		return obs.Faces[0].Match
	}
	settled := 0
	for i, jpg := range append(slices.Clone(f.Candidate), others...) {
		want, got := match(full, jpg, &enr), match(cascade, jpg, &enr)
		if got.SamePerson != want.SamePerson || !got.Measured {
			t.Errorf("frame %d: cascade %+v, full model %+v: want the same decision", i, got, want)
		}
		if got.Embedding == nil { // settled by the first look: a clear match, no vector to keep
			settled++
			if !got.SamePerson || got.Similarity < got.Threshold+analyzers.DefaultFirstLookMargin {
				t.Errorf("frame %d settled by the first look at %.3f (threshold %.3f)", i, got.Similarity, got.Threshold)
			}
		} else if got.Similarity != want.Similarity {
			t.Errorf("frame %d measured by the full model at %.4f, the full model alone %.4f", i, got.Similarity, want.Similarity)
		}
	}
	t.Logf("%d of %d candidate frames settled by the first look", settled, len(f.Candidate))
	if settled == 0 || settled > len(f.Candidate) {
		t.Errorf("%d frames settled by the first look, want some of the %d candidate frames and no impostor", settled, len(f.Candidate))
	}
	// In a session, a clear stranger is settled by the first look too; without one (evaluation,
	// `proctor analyze`) the full model measures it, as above. The demo's other people score
	// above the default line (0.174), so this part draws the line 0.05 below the threshold.
	identity := func(set *analyzers.Set) *analyzers.Identity {
		for _, a := range set.Analyzers() {
			if v, ok := a.(*analyzers.Identity); ok {
				return v
			}
		}
		t.Fatal("no identity analyzer")
		return nil
	}
	if id := identity(cascade); id.StrangerBelow() != id.Threshold()-analyzers.DefaultFirstLookStranger {
		t.Errorf("stranger line %.3f, want the threshold %.3f less the default margin", id.StrangerBelow(), id.Threshold())
	}
	if identity(mk("", -1)).StrangerBelow() != 0 {
		t.Error("FirstLookStranger -1: a stranger line, want none")
	}
	strict := mk("", 0.05)
	below := identity(strict).StrangerBelow()
	strangers := 0
	for i, jpg := range others {
		want := match(full, jpg, &enr)
		if m := match(strict, jpg, &enr); m.Embedding == nil || m.Similarity != want.Similarity {
			t.Errorf("other person %d without a session: %+v, want the full model's %.4f", i, m, want.Similarity)
		}
		obs, err := strict.AnalyzeFrameJPEG(ctx, jpg, analyzers.FrameMeta{Camera: analyzers.CameraMain, Enrolled: &enr,
			Session: fmt.Sprint("stranger-", i), CapturedAt: time.Unix(int64(i), 0)})
		if err != nil {
			t.Fatal(err)
		}
		if len(obs.Faces) != 1 || obs.Faces[0].Match == nil {
			t.Fatalf("other person %d: faces %+v, want one matched face", i, obs.Faces)
		}
		got := obs.Faces[0].Match
		if got.SamePerson || !got.Measured {
			t.Errorf("other person %d in a session: %+v, want measured as someone else", i, got)
		}
		if got.Embedding == nil {
			strangers++
			if got.Similarity >= below {
				t.Errorf("other person %d settled as a stranger at %.3f, above the line %.3f", i, got.Similarity, below)
			}
		} else if got.Similarity != want.Similarity {
			t.Errorf("other person %d measured by the full model at %.4f, the full model alone %.4f", i, got.Similarity, want.Similarity)
		}
	}
	t.Logf("%d of %d frames of other people settled as strangers by the first look (below %.3f)", strangers, len(others), below)
	if strangers != len(others) {
		t.Errorf("%d of %d other people settled as strangers by the first look (line %.3f), want all", strangers, len(others), below)
	}
	gathering := enr
	gathering.Gathering = true
	settledFrame := -1
	for i, jpg := range f.Candidate {
		if m := match(cascade, jpg, &gathering); m.Embedding == nil {
			t.Errorf("login frame %d: no embedding, want the full model's (it may join the gallery)", i)
		}
		if m := match(cascade, jpg, &enr); m.Embedding == nil && settledFrame < 0 {
			settledFrame = i
		}
	}
	// In a session, a login face track that continues unchanged gets the full model at most
	// every GatherEvery (15 s) of capture time, and the first look in between; with
	// GatherEvery −1 the full model on every measured login frame. The track is measured every
	// Every-th (3rd) frame: at 0, 3, …, 21 s.
	fullAt := func(set *analyzers.Set, session string) []int {
		t.Helper()
		var at []int
		for k := range 22 {
			obs, err := set.AnalyzeFrameJPEG(ctx, f.Candidate[settledFrame], analyzers.FrameMeta{Camera: analyzers.CameraMain,
				Enrolled: &gathering, Session: session, CapturedAt: time.Unix(1000+int64(k), 0)})
			if err != nil {
				t.Fatal(err)
			}
			if m := obs.Faces[0].Match; m != nil && m.Measured && m.Embedding != nil {
				at = append(at, k)
			}
		}
		return at
	}
	if settledFrame < 0 {
		t.Fatal("no candidate frame settled by the first look")
	}
	if got := fullAt(cascade, "login-cadence"); !slices.Equal(got, []int{0, 15}) {
		t.Errorf("login track: the full model at %v s, want [0 15] (every 15 s, the first look between)", got)
	}
	everyLogin, err := analyzers.NewSet(analyzers.Config{Analyzers: vision,
		Identity: analyzers.IdentityConfig{Model: analyzers.DefaultIdentityModel, GatherEvery: -1}})
	if err != nil {
		t.Fatal(err)
	}
	defer everyLogin.Close()
	if got := fullAt(everyLogin, "login-every"); !slices.Equal(got, []int{0, 3, 6, 9, 12, 15, 18, 21}) {
		t.Errorf("login track, GatherEvery −1: the full model at %v s, want every measured frame", got)
	}
	if _, err := analyzers.NewSet(analyzers.Config{Analyzers: vision,
		Identity: analyzers.IdentityConfig{Model: "facenet-keras", FirstLook: "faceplugin-embedding"}}); err == nil {
		t.Error("a first look with another crop: built, want an error")
	}
}

// TestIdentityQuietCadence: under the pipeline's schedule, a continuing face track due for its
// cadence measurement carries the last one while the picture is quiet since it
// (ScheduleConfig.QuietEvery, 30 s), and is measured at once when a few cells change, however
// faintly; without a schedule it is measured every Every-th frame.
func TestIdentityQuietCadence(t *testing.T) {
	f, _ := demoFrames(t)
	set, err := analyzers.NewSet(analyzers.Config{Analyzers: vision, Identity: analyzers.IdentityConfig{Model: analyzers.DefaultIdentityModel}})
	if err != nil {
		t.Skipf("%v: run scripts/setup.sh", err)
	}
	defer set.Close()
	ctx := context.Background()
	enr, err := set.Enroll(ctx, f.Photo)
	if err != nil {
		t.Fatal(err)
	}
	frame := f.Candidate[0]
	faint := analyzers.WithShadeForTest(t, frame, image.Rect(0, 0, 40, 40), 12) // four thumbnail cells, below the scene trigger
	measuredAt := func(session string, sched *analyzers.Schedule, faintFrom int) []int {
		t.Helper()
		var at []int
		for sec := 0; sec <= 34; sec += 2 { // 2 s apart: never a still frame
			jpg := frame
			if faintFrom >= 0 && sec >= faintFrom {
				jpg = faint
			}
			meta := analyzers.FrameMeta{Camera: analyzers.CameraMain, Enrolled: &enr, Session: session,
				CapturedAt: time.Unix(2000+int64(sec), 0)}
			if sched != nil {
				meta.Plan = sched.Plan(session, analyzers.CameraMain)
			}
			obs, err := set.AnalyzeFrameJPEG(ctx, jpg, meta)
			if err != nil {
				t.Fatal(err)
			}
			if len(obs.Faces) != 1 || obs.Faces[0].Match == nil {
				t.Fatalf("at %d s: faces %+v, want one matched face", sec, obs.Faces)
			}
			if obs.Faces[0].Match.Measured {
				at = append(at, sec)
			}
		}
		return at
	}
	for _, tc := range []struct {
		name      string
		sched     *analyzers.Schedule
		faintFrom int
		want      []int
	}{
		{"no schedule", nil, -1, []int{0, 6, 12, 18, 24, 30}},
		{"quiet", analyzers.NewSchedule(analyzers.ScheduleConfig{}), -1, []int{0, 30}},
		{"a faint change at 10 s", analyzers.NewSchedule(analyzers.ScheduleConfig{}), 10, []int{0, 10}},
		{"quiet floor off", analyzers.NewSchedule(analyzers.ScheduleConfig{QuietEvery: -1}), -1, []int{0, 6, 12, 18, 24, 30}},
	} {
		if got := measuredAt(tc.name, tc.sched, tc.faintFrom); !slices.Equal(got, tc.want) {
			t.Errorf("%s: measured at %v s, want %v", tc.name, got, tc.want)
		}
	}
}
