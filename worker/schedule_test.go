package worker

import (
	"context"
	"encoding/json"
	"image"
	"image/color"
	"log/slog"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"gocv.io/x/gocv"

	"proctor/analyzers"
	"proctor/internal/testdb"
	"proctor/models"
	"proctor/pipeline"
	"proctor/rules"
	"proctor/store"
)

// truth is what fake analyzers report for one frame (what real models would see in it).
type truth struct {
	faces           int
	yaw, sim        float32
	mask, occluded  float32
	persons, phones int
	writing         bool
}

func normal() truth { return truth{faces: 1, sim: 0.9, mask: 0.1, occluded: 0.1, persons: 1} }

// fakeCatalog is the built-in analyzers' names with fakes that report the truth of each frame
// (by capture time); calls counts how often each ran.
type fakeCatalog struct {
	mu     sync.Mutex
	truths map[int64]truth
	calls  map[string]int
}

type fakeAnalyzer struct {
	name string
	c    *fakeCatalog
}

func (a fakeAnalyzer) Name() string    { return a.name }
func (a fakeAnalyzer) Version() string { return "fake" }
func (a fakeAnalyzer) Close() error    { return nil }
func (a fakeAnalyzer) Analyze(_ context.Context, f *analyzers.Frame, obs *analyzers.Observation) error {
	a.c.mu.Lock()
	tr := a.c.truths[f.CapturedAt.UnixMilli()]
	a.c.calls[a.name]++
	a.c.mu.Unlock()
	face := func(i int) *analyzers.Face { return &obs.Faces[i] }
	switch a.name {
	case "faces":
		for i := range tr.faces {
			obs.Faces = append(obs.Faces, analyzers.Face{Box: faceBox(i), Score: 0.95 - 0.05*float32(i)})
		}
		obs.TopFaceScore = 0.1
		if tr.faces > 0 {
			obs.TopFaceScore = 0.95
		}
	case "landmarks":
		for i := range obs.Faces {
			f.FaceLandmarks = append(f.FaceLandmarks, fakeLandmarks(obs.Faces[i].Box, float64(tr.yaw)))
		}
	case "identity":
		if len(obs.Faces) > 0 {
			face(0).Match = &analyzers.Match{Similarity: tr.sim, SamePerson: tr.sim >= 0.5, Measured: true, Threshold: 0.5}
		}
	case "headpose":
		if len(obs.Faces) > 0 {
			yaw, pitch := tr.yaw, float32(0)
			face(0).Yaw, face(0).Pitch = &yaw, &pitch
		}
	case "attire":
		for i := range obs.Faces {
			face(i).Mask = &analyzers.Attribute{Score: tr.mask, Present: tr.mask >= 0.5}
			face(i).Occluded = &analyzers.Attribute{Score: tr.occluded, Present: tr.occluded >= 0.5}
		}
	case "persons":
		persons, phones := tr.persons, tr.phones
		obs.Persons, obs.Phones = &persons, &phones
		for range persons {
			obs.Objects = append(obs.Objects, analyzers.Object{Class: analyzers.ClassPerson, Score: 0.8})
		}
		for range phones {
			obs.Objects = append(obs.Objects, analyzers.Object{Class: analyzers.ClassPhone, Score: 0.7})
		}
	case "sheet":
		if f.Camera == analyzers.CameraEvidence {
			obs.Sheet = &analyzers.SheetObservation{Present: tr.writing, Writing: tr.writing, WritingScore: 0.8}
		}
	}
	return nil
}

// fakeLandmarks projects a generic face (the six points the pose fit reads) turned by yaw
// degrees into the middle of box, as the landmarks model would find them.
func fakeLandmarks(box [4]float32, yaw float64) models.Landmarks68 {
	model := [6][3]float64{{0, 0, 0}, {0, 330, 65}, {-225, -170, 135}, {225, -170, 135}, {-150, 150, 125}, {150, 150, 125}}
	idx := [6]int{30, 8, 36, 45, 48, 54}
	r := yaw * math.Pi / 180
	var lm models.Landmarks68
	cx, cy := float64(box[0]+box[2]/2), float64(box[1]+box[3]/2)
	for i, m := range model {
		x := math.Cos(r)*m[0] + math.Sin(r)*m[2]
		z := -math.Sin(r)*m[0] + math.Cos(r)*m[2] + 4000
		lm[idx[i]] = [2]float32{float32(cx + 640*x/z - 0), float32(cy + 640*m[1]/z)}
	}
	return lm
}

var fakeNames = []string{"faces", "landmarks", "identity", "headpose", "attire", "persons", "sheet"}

func newFakeCatalog() *fakeCatalog {
	return &fakeCatalog{truths: map[int64]truth{}, calls: map[string]int{}}
}

func (c *fakeCatalog) catalog() *analyzers.Catalog {
	cat := analyzers.NewCatalog()
	for _, n := range fakeNames {
		cat.Replace(n, func(*analyzers.Config) (analyzers.Analyzer, error) { return fakeAnalyzer{n, c}, nil })
	}
	return cat
}

func faceBox(i int) [4]float32 {
	if i == 0 {
		return [4]float32{260, 120, 120, 150}
	}
	return [4]float32{60 + 160*float32(i-1), 140, 90, 110}
}

// drawFrame paints what a camera would show for tr: a textured room, the faces, and a person
// or a phone coming into view where they are (what makes the scene change).
func drawFrame(t *testing.T, tr truth, k int) []byte {
	img := gocv.NewMatWithSizeFromScalar(gocv.NewScalar(90, 110, 130, 0), 480, 640, gocv.MatTypeCV8UC3)
	defer img.Close()
	for x := 0; x < 640; x += 40 { // shelves, a door: something for the scene to be
		gocv.Line(&img, image.Pt(x, 0), image.Pt(x, 479), color.RGBA{60, 70, 80, 0}, 2)
	}
	for i := range tr.faces {
		b := faceBox(i)
		shade := uint8(180)
		if i == 0 && tr.sim < 0.5 {
			shade = 140 // someone else
		}
		r := image.Rect(int(b[0]), int(b[1]), int(b[0]+b[2]), int(b[1]+b[3]))
		gocv.Rectangle(&img, r, color.RGBA{shade, shade + 20, shade + 40, 0}, -1)
		if i == 0 && tr.mask >= 0.5 {
			gocv.Rectangle(&img, image.Rect(r.Min.X, r.Min.Y+r.Dy()/2, r.Max.X, r.Max.Y), color.RGBA{240, 240, 240, 0}, -1)
		}
		if i == 0 && tr.occluded >= 0.5 { // a hand over the mouth
			gocv.Rectangle(&img, image.Rect(r.Min.X+10, r.Min.Y+r.Dy()/2, r.Max.X-10, r.Max.Y+20), color.RGBA{110, 140, 200, 0}, -1)
		}
		if i == 0 && tr.yaw > 30 { // turned away: hair where the face was
			gocv.Rectangle(&img, image.Rect(r.Min.X, r.Min.Y, r.Min.X+r.Dx()*2/3, r.Max.Y), color.RGBA{30, 30, 40, 0}, -1)
		}
		// The candidate moves a little: a different frame every second.
		gocv.Circle(&img, image.Pt(r.Min.X+30+k%5, r.Min.Y+50), 8, color.RGBA{40, 40, 40, 0}, -1)
	}
	if tr.faces == 0 || tr.persons == 0 {
		gocv.Rectangle(&img, image.Rect(240, 280, 400, 480), color.RGBA{90, 110, 130, 0}, -1) // empty chair
	} else {
		gocv.Rectangle(&img, image.Rect(230, 280, 410, 480), color.RGBA{30, 60, 120, 0}, -1) // shoulders
	}
	if tr.persons >= 2 && tr.faces < 2 {
		gocv.Rectangle(&img, image.Rect(480, 60, 620, 480), color.RGBA{50, 50, 160, 0}, -1) // someone behind, face away
	}
	if tr.phones > 0 {
		gocv.Rectangle(&img, image.Rect(120, 300, 160, 380), color.RGBA{20, 20, 20, 0}, -1)
	}
	if tr.writing {
		gocv.Rectangle(&img, image.Rect(60, 40, 200, 240), color.RGBA{250, 250, 250, 0}, -1)
	}
	buf, err := gocv.IMEncode(gocv.JPEGFileExt, img)
	if err != nil {
		t.Fatal(err)
	}
	defer buf.Close()
	return append([]byte(nil), buf.GetBytes()...)
}

// TestScheduleNeverDelaysAFlag: under the analysis schedule, every frame flag type is raised no
// later than its configured duration + 1 s after the event starts, when the event starts
// between two scheduled runs of the person detector (runs at 0 s and 10 s, event at 7 s) and
// on a frame that would be still if nothing happened (its analysis carried over from 6 s), on
// SQLite and PostgreSQL; and on a quiet scene the detector is skipped on most frames. An event
// the picture shows is measured on the frame it starts; one the still-frame thumbnail cannot see
// (unseen: the picture stays as it was) is measured one frame later, and its flag is still on
// time.
func TestScheduleNeverDelaysAFlag(t *testing.T) {
	p := rules.DefaultParams()
	sec := func(key string) time.Duration { return p.Duration(key) }
	cases := []struct {
		flag   string
		camera string
		after  time.Duration
		event  func(*truth)
		unseen bool
	}{
		{rules.FaceAbsent, "main", sec(rules.SettingFaceAbsentAfter), func(tr *truth) { tr.faces, tr.persons = 0, 0 }, false},
		{rules.MultipleFaces, "main", sec(rules.SettingMultipleFacesAfter), func(tr *truth) { tr.faces, tr.persons = 2, 2 }, false},
		{rules.LookingAway, "main", sec(rules.SettingLookingAwayAfter), func(tr *truth) { tr.yaw = 55 }, false},
		{rules.IdentityMismatch, "main", sec(rules.SettingIdentityMismatchAfter), func(tr *truth) { tr.sim = 0.2 }, false},
		{rules.Mask, "main", sec(rules.SettingMaskAfter), func(tr *truth) { tr.mask = 0.9 }, false},
		{rules.FaceOccluded, "main", sec(rules.SettingOccludedAfter), func(tr *truth) { tr.occluded = 0.95 }, false},
		{rules.ExtraPerson, "main", sec(rules.SettingExtraPersonAfter), func(tr *truth) { tr.persons = 2 }, false},
		{rules.ExtraPerson, "evidence", sec(rules.SettingExtraPersonAfter), func(tr *truth) { tr.persons = 2 }, false},
		{rules.PhoneVisible, "main", sec(rules.SettingPhoneVisibleAfter), func(tr *truth) { tr.phones = 1 }, false},
		{rules.PhoneVisible, "evidence", sec(rules.SettingPhoneVisibleAfter), func(tr *truth) { tr.phones = 1 }, false},
		{rules.SheetWriting, "evidence", sec(rules.SettingSheetWritingAfter), func(tr *truth) { tr.writing = true }, false},
		{rules.LookingAway, "main", sec(rules.SettingLookingAwayAfter), func(tr *truth) { tr.yaw = 55 }, true},
		{rules.IdentityMismatch, "main", sec(rules.SettingIdentityMismatchAfter), func(tr *truth) { tr.sim = 0.2 }, true},
		{rules.Mask, "main", sec(rules.SettingMaskAfter), func(tr *truth) { tr.mask = 0.9 }, true},
		{rules.FaceOccluded, "main", sec(rules.SettingOccludedAfter), func(tr *truth) { tr.occluded = 0.95 }, true},
	}
	const frames, eventAt = 20, 7 // seconds; the detector ran at 0 and is next due at 10
	for _, b := range testdb.Open(t) {
		for _, tc := range cases {
			name := b.Name + "/" + tc.flag + "/" + tc.camera
			if tc.unseen {
				name += "/unseen"
			}
			t.Run(name, func(t *testing.T) {
				ctx := context.Background()
				fakes := newFakeCatalog()
				h, err := NewFrameHandlers(analyzers.Config{Analyzers: fakeNames, Catalog: fakes.catalog()}, 1, b.Store,
					rules.New(rules.Config{}), nil, slog.New(slog.DiscardHandler))
				if err != nil {
					t.Fatal(err)
				}
				defer h.Close()
				// The frames come an hour before the start (writing on the sheet counts then only),
				// except for IDENTITY_MISMATCH, which applies from the answering start on.
				start := time.Now()
				if tc.flag == rules.IdentityMismatch {
					start = start.Add(-2 * time.Hour)
				}
				sess := &store.Session{OrgID: "org", ExamID: "e", CandidateID: "c", ScheduledStart: start}
				if err := b.Store.CreateSession(ctx, sess); err != nil {
					t.Fatal(err)
				}
				t0 := time.Now().Add(-time.Hour).Truncate(time.Second).UnixMilli()
				raisedAt := int64(-1)
				for k := range frames {
					tr := normal()
					if k >= eventAt {
						tc.event(&tr)
					}
					at := t0 + int64(k)*1000
					fakes.mu.Lock()
					fakes.truths[at] = tr
					fakes.mu.Unlock()
					shown := tr
					if tc.unseen {
						shown = normal()
					}
					m := pipeline.EncodeFrame(pipeline.FrameMessage{SessionID: sess.ID, Camera: tc.camera, Seq: int64(k),
						CapturedAtMs: at, ReceivedAtMs: at, JPEG: drawFrame(t, shown, k)})
					if err := h.HandleBatch(ctx, []kafka.Message{m}); err != nil {
						t.Fatal(err)
					}
					flags, err := b.Store.SessionFlags(ctx, sess.ID)
					if err != nil {
						t.Fatal(err)
					}
					for _, f := range flags {
						if f.Type != tc.flag {
							if k < eventAt || f.Type != rules.ExtraPerson && f.Type != rules.MultipleFaces {
								t.Errorf("unexpected flag %s at %d s", f.Type, k)
							}
							continue
						}
						if raisedAt < 0 {
							raisedAt = int64(k)
							late := f.StartMs - (t0 + eventAt*1000)
							if late < 0 || late > 0 && !tc.unseen || late > 1000 {
								t.Errorf("%s starts at %d ms, the event at %d ms", tc.flag, f.StartMs-t0, eventAt*1000)
							}
						}
					}
				}
				deadline := time.Duration(eventAt)*time.Second + tc.after + time.Second
				if raisedAt < 0 || time.Duration(raisedAt)*time.Second > deadline {
					t.Fatalf("%s raised at %d s (-1: never); the event started at %d s, duration %v: due by %v",
						tc.flag, raisedAt, eventAt, tc.after, deadline)
				}
				fakes.mu.Lock()
				runs, poses := fakes.calls["persons"], fakes.calls["headpose"]
				fakes.mu.Unlock()
				t.Logf("%s on %s raised at %d s (due by %v); person detector ran on %d of %d frames, head-pose network on %d",
					tc.flag, tc.camera, raisedAt, deadline, runs, frames, poses)
				if runs >= frames {
					t.Errorf("the person detector ran on every frame: the schedule saved nothing")
				}
			})
		}
	}
}

// TestScheduleQuietScene: on an unchanging scene every other frame is still (nothing runs, its
// whole observation is carried from the second before) and the frames in between say (in the
// observation and the checks' signals) which values were carried. The candidate's eye moves a
// pixel or two each second; with QuietEvery off the person detector runs once per PersonsEvery,
// the face detector and the head-pose network once per FacesEvery and HeadPoseEvery of the
// analysed frames. By default the person detector, which looks outside the face, runs once (the
// scene stays quiet for it), and the face detector and the pose network skip their 5 s floor
// while the eye is back within a few levels of where it was when they ran.
func TestScheduleQuietScene(t *testing.T) {
	for _, tc := range []quietScene{
		{"quiet floor off", -1, 3, 5, 5, 27, 25, 10, 5000, 10000},
		{"default", 0, 1, 3, 3, 29, 27, 12, 30000, 30000},
	} {
		t.Run(tc.name, func(t *testing.T) { testQuietScene(t, tc) })
	}
}

// quietScene is a configuration of TestScheduleQuietScene and what it should give: how often
// each detector runs, how many frames carry its output, and the oldest carried output (ms).
type quietScene struct {
	name                           string
	quietEvery                     time.Duration
	personRuns, poseRuns, faceRuns int
	carriedPersons, poses, faces   int
	oldestFace, oldestPersons      int64
}

func testQuietScene(t *testing.T, want quietScene) {
	fakes := newFakeCatalog()
	st := testdb.Open(t)[0].Store
	cfg := analyzers.Config{Analyzers: fakeNames, Catalog: fakes.catalog()}
	cfg.Schedule.QuietEvery = want.quietEvery
	h, err := NewFrameHandlers(cfg, 1, st, rules.New(rules.Config{}), nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	ctx := context.Background()
	sess := &store.Session{OrgID: "org", ExamID: "e", CandidateID: "c", ScheduledStart: time.Now()}
	if err := st.CreateSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now().Add(-time.Hour).Truncate(time.Second).UnixMilli()
	var msgs []kafka.Message
	for k := range 30 {
		at := t0 + int64(k)*1000
		fakes.truths[at] = normal()
		msgs = append(msgs, pipeline.EncodeFrame(pipeline.FrameMessage{SessionID: sess.ID, Camera: "main", Seq: int64(k),
			CapturedAtMs: at, ReceivedAtMs: at, JPEG: drawFrame(t, normal(), k)}))
	}
	if err := h.HandleBatch(ctx, msgs); err != nil {
		t.Fatal(err)
	}
	if got := fakes.calls["persons"]; got != want.personRuns {
		t.Errorf("person detector ran %d times on 30 quiet seconds, want %d", got, want.personRuns)
	}
	if got := fakes.calls["headpose"]; got != want.poseRuns {
		t.Errorf("head-pose network ran %d times on 30 quiet seconds, want %d", got, want.poseRuns)
	}
	if got := fakes.calls["landmarks"]; got != 15 {
		t.Errorf("landmarks ran %d times on 30 quiet seconds, want 15 (every other frame still)", got)
	}
	if got := fakes.calls["faces"]; got != want.faceRuns {
		t.Errorf("face detector ran %d times on 30 quiet seconds, want %d", got, want.faceRuns)
	}
	var rows []store.FrameResult
	if err := st.DB.Where("session_id = ?", sess.ID).Order("seq").Find(&rows).Error; err != nil {
		t.Fatal(err)
	}
	carried, poses, still, faces := 0, 0, 0, 0
	for _, r := range rows {
		var obs analyzers.Observation
		if err := jsonUnmarshal(r.Observation, &obs); err != nil {
			t.Fatal(err)
		}
		if _, ok := obs.Carried["headpose"]; ok {
			poses++
			if obs.Faces[0].Yaw == nil {
				t.Errorf("frame %d: head pose carried but no yaw", r.Seq)
			}
			if !strings.Contains(r.Signals, `"carried":1`) {
				t.Errorf("frame %d: carried pose not marked in the signals %s", r.Seq, r.Signals)
			}
		}
		if from, ok := obs.Carried["faces"]; ok && r.Seq%2 == 0 {
			faces++
			if from > r.CapturedAtMs || r.CapturedAtMs-from >= want.oldestFace || len(obs.Faces) != 1 {
				t.Errorf("analysed frame %d carries %d faces from %d ms earlier", r.Seq, len(obs.Faces), r.CapturedAtMs-from)
			}
		}
		if from, ok := obs.Carried["landmarks"]; ok {
			still++
			carriedMatch := len(obs.Faces) == 1 && obs.Faces[0].Match != nil && !obs.Faces[0].Match.Measured
			if r.Seq%2 != 1 || r.CapturedAtMs-from != 1000 || !carriedMatch {
				t.Errorf("frame %d: still frame carried from %d ms earlier, %d faces, carried match %v; want odd frames, 1000 ms, the face with a carried match",
					r.Seq, r.CapturedAtMs-from, len(obs.Faces), carriedMatch)
			}
		}
		if from, ok := obs.Carried["persons"]; ok {
			carried++
			if from > r.CapturedAtMs || r.CapturedAtMs-from >= want.oldestPersons {
				t.Errorf("frame %d carries a detection from %d ms earlier", r.Seq, r.CapturedAtMs-from)
			}
		}
	}
	if poses != want.poses {
		t.Errorf("%d frames say their head pose was carried, want %d", poses, want.poses)
	}
	if still != 15 {
		t.Errorf("%d still frames, want 15", still)
	}
	if faces != want.faces {
		t.Errorf("%d analysed frames carry the face, want %d", faces, want.faces)
	}
	if carried != want.carriedPersons {
		t.Errorf("%d frames say their counts were carried, want %d", carried, want.carriedPersons)
	}
}

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }
