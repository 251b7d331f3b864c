package analyzers

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/draw"
	"image/jpeg"
	"slices"
	"testing"
	"time"

	"gocv.io/x/gocv"
)

// TestStillFrames: a main-camera frame that looks like the last analysed one is carried over
// at most StillMax after it, only when that frame was calm, never on another camera and never
// after a pause; a changed picture is analysed.
func TestStillFrames(t *testing.T) {
	one := func(sim float32) *Observation {
		persons, phones := 1, 0
		return &Observation{Width: 640, Height: 480, Persons: &persons, Phones: &phones,
			Faces: []Face{{Box: [4]float32{200, 100, 150, 180}, Match: &Match{Similarity: sim, SamePerson: sim >= 0.5, Measured: true, Embedding: []float32{1}}}}}
	}
	two := func() *Observation { o := one(0.9); o.Faces = append(o.Faces, o.Faces[0]); return o }
	phone := func() *Observation { o := one(0.9); n := 1; o.Phones = &n; return o }
	same, other := testJPEG(t, 640, 480), handRaised(t)
	t0 := time.Unix(1_700_000_000, 0)
	cases := []struct {
		name   string
		camera string
		full   *Observation
		next   []byte
		after  time.Duration
		still  bool
	}{
		{"same picture 1 s later", CameraMain, one(0.9), same, time.Second, true},
		{"same picture 2 s later", CameraMain, one(0.9), same, 2 * time.Second, false},
		{"picture changed", CameraMain, one(0.9), other, time.Second, false},
		{"evidence camera", CameraEvidence, one(0.9), same, time.Second, false},
		{"two faces", CameraMain, two(), same, time.Second, false},
		{"a phone", CameraMain, phone(), same, time.Second, false},
		{"someone else", CameraMain, one(0.2), same, time.Second, false},
		{"after a pause", CameraMain, one(0.9), same, 5 * time.Second, false},
	}
	names := []Analyzer{namedAnalyzer("faces"), namedAnalyzer("identity")}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := NewSchedule(ScheduleConfig{})
			first := s.Plan("s1", tc.camera).(*framePlan)
			if _, still := first.carryStill(same, FrameMeta{Camera: tc.camera, CapturedAt: t0}, names); still {
				t.Fatal("the first frame of a camera was carried")
			}
			first.analysed(&Frame{Camera: tc.camera, CapturedAt: t0}, tc.full)
			next := s.Plan("s1", tc.camera).(*framePlan)
			obs, still := next.carryStill(tc.next, FrameMeta{Camera: tc.camera, CapturedAt: t0.Add(tc.after)}, names)
			if still != tc.still {
				t.Fatalf("still = %v, want %v", still, tc.still)
			}
			if !still {
				return
			}
			if obs.Carried["faces"] != t0.UnixMilli() || obs.Carried["identity"] != t0.UnixMilli() {
				t.Errorf("carried = %v, want every analyzer from %d", obs.Carried, t0.UnixMilli())
			}
			m := obs.Faces[0].Match
			if m.Measured || m.Embedding != nil || m.Similarity != 0.9 {
				t.Errorf("carried match %+v: want the similarity, not measured, no embedding", m)
			}
			if tc.full.Faces[0].Match.Measured != true {
				t.Error("carrying changed the analysed frame's observation")
			}
		})
	}
}

// handRaised is testJPEG's picture with a dark 80×120 block in it (a hand coming into view).
func handRaised(t *testing.T) []byte {
	return withBlock(t, testJPEG(t, 640, 480), image.Rect(400, 300, 480, 420))
}

type namedAnalyzer string

func (n namedAnalyzer) Name() string                                            { return string(n) }
func (namedAnalyzer) Version() string                                           { return "test" }
func (namedAnalyzer) Close() error                                              { return nil }
func (namedAnalyzer) Analyze(_ context.Context, _ *Frame, _ *Observation) error { return nil }

// TestLooksCarriedOnAnUnchangedEmptyPicture: the face detector's further looks (padded pass,
// tilted look) run on a main-camera frame whose first pass found no face, unless they found
// nothing on the same-looking picture less than LooksEvery ago (QuietEvery when not a cell moved
// by half the scene trigger); then their answer is carried and marked. A changed picture and an
// old answer run them again; the evidence camera never runs them (no rule reads its face count).
func TestLooksCarriedOnAnUnchangedEmptyPicture(t *testing.T) {
	set, err := NewSet(Config{Analyzers: []string{"faces"}})
	RequireInstalled(t, err)
	defer set.Close()
	faces := set.analyzers[0].(*Faces)
	s := NewSchedule(ScheduleConfig{})
	empty, changed := testJPEG(t, 640, 480), handRaised(t)
	faint := withShade(t, changed, image.Rect(0, 0, 40, 40), 12) // four cells by 12 levels: below the trigger
	t0 := time.Unix(1_700_000_000, 0)
	const ran, carried, neither = "ran", "carried", "neither"
	type step struct {
		at     int // seconds
		camera string
		jpg    []byte
		want   string
	}
	steps := []step{
		{0, CameraMain, empty, ran},       // nothing to compare with
		{2, CameraMain, empty, carried},   // the same picture 2 s later: carried from 0 s
		{4, CameraMain, changed, ran},     // a hand came into view
		{6, CameraMain, changed, carried}, // unchanged since 4 s
		{9, CameraMain, changed, carried}, // 5 s since they ran, but not a cell moved: QuietEvery
		{12, CameraMain, faint, ran},      // 8 s, and a few cells moved a little
	}
	for at := 15; at < 42; at += 3 { // quiet since 12 s
		steps = append(steps, step{at, CameraMain, faint, carried})
	}
	steps = append(steps, step{42, CameraMain, faint, ran}, // QuietEvery since they ran
		step{2, CameraEvidence, empty, neither}) // never on the evidence camera
	for _, step := range steps {
		before := faces.SecondPasses
		meta := FrameMeta{Camera: step.camera, Session: "s1", CapturedAt: t0.Add(time.Duration(step.at) * time.Second),
			Plan: s.Plan("s1", step.camera)}
		obs, err := set.AnalyzeFrameJPEG(context.Background(), step.jpg, meta)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		if faces.SecondPasses > before {
			got = append(got, ran)
		}
		if from, ok := obs.Carried[LooksStep]; ok {
			got = append(got, carried)
			if from > meta.CapturedAt.UnixMilli() {
				t.Errorf("carried from %d, after the frame", from)
			}
		}
		if len(got) == 0 {
			got = append(got, neither)
		}
		if len(got) != 1 || got[0] != step.want || len(obs.Faces) != 0 {
			t.Errorf("%s at %d s: looks %v, want %s (faces %d)", step.camera, step.at, got, step.want, len(obs.Faces))
		}
	}
}

// TestFacesCarriedOnAnUnchangedPicture: on a main-camera frame that looks like the one where the
// face detector last found exactly one face, less than FacesEvery ago, that face is carried
// (marked) and the analyzers after it still run on it — up to QuietEvery while not a cell moved by
// half the scene trigger; a changed picture, an old answer, a pause, another face count and the
// evidence camera run the detector.
func TestFacesCarriedOnAnUnchangedPicture(t *testing.T) {
	set := newTestSet(t, Config{Analyzers: []string{"faces", "landmarks"}})
	one := oneFaceFrame(t, set)
	changed := withBlock(t, one, image.Rect(0, 360, 100, 480))
	faint := withShade(t, one, image.Rect(0, 0, 40, 40), 12) // four cells, 12 levels
	group := resizedJPEG(t, 1, 640, 480)
	s := NewSchedule(ScheduleConfig{})
	t0 := time.Unix(1_700_000_000, 0)
	var box [4]float32
	for _, step := range []struct {
		at      int // seconds
		camera  string
		jpg     []byte
		carried bool
	}{
		{0, CameraMain, one, false},     // nothing to compare with
		{2, CameraMain, one, true},      // the same picture: carried from 0 s
		{4, CameraMain, one, true},      // still less than 5 s
		{6, CameraMain, one, true},      // 5 s or more, but not a cell moved: QuietEvery
		{7, CameraMain, faint, false},   // and now one cell moved a little
		{8, CameraMain, changed, false}, // something came into view
		{10, CameraMain, changed, true}, // unchanged since 8 s
		{12, CameraMain, group, false},  // several faces
		{14, CameraMain, group, false},  // only one face is ever carried
		{16, CameraMain, one, false},
		{30, CameraMain, one, false},    // after a pause the schedule starts again
		{2, CameraEvidence, one, false}, // main camera only
		{4, CameraEvidence, one, false},
	} {
		isOne := bytes.Equal(step.jpg, one)
		meta := FrameMeta{Camera: step.camera, Session: "s1", CapturedAt: t0.Add(time.Duration(step.at) * time.Second),
			Plan: s.Plan("s1", step.camera)}
		f, err := DecodeJPEG(step.jpg, set.decodeSide)
		if err != nil {
			t.Fatal(err)
		}
		f.Camera, f.Session, f.CapturedAt, f.Plan = meta.Camera, meta.Session, meta.CapturedAt, meta.Plan
		// Through the still-frame check, as the pipeline does, but never carried whole: every
		// step must reach the analyzers.
		meta.Plan.(*framePlan).carryStill(step.jpg, meta, nil)
		obs, err := set.Analyze(context.Background(), &f)
		f.Image.Close()
		if err != nil {
			t.Fatal(err)
		}
		from, carried := obs.Carried["faces"]
		if carried != step.carried {
			t.Errorf("%s at %d s: faces carried = %v, want %v (%d faces)", step.camera, step.at, carried, step.carried, len(obs.Faces))
		}
		if isOne && step.camera == CameraMain && step.at == 0 {
			box = obs.Faces[0].Box
		}
		if !carried {
			continue
		}
		if from >= meta.CapturedAt.UnixMilli() || len(obs.Faces) != 1 || obs.Faces[0].Landmarks == nil {
			t.Errorf("at %d s: carried from %d, %d faces, landmarks %v: want one earlier face, landmarked",
				step.at, from, len(obs.Faces), obs.Faces[0].Landmarks)
		}
		if isOne && obs.Faces[0].Box != box {
			t.Errorf("at %d s: carried box %v, want %v", step.at, obs.Faces[0].Box, box)
		}
	}
}

// oneFaceFrame is a 640×480 frame around the largest face of demo sample 1, checked to show
// exactly one face.
func oneFaceFrame(t *testing.T, set *Set) []byte {
	t.Helper()
	src := demoJPEG(t, 1)
	obs, err := set.AnalyzeJPEG(context.Background(), src, CameraMain)
	if err != nil || len(obs.Faces) == 0 {
		t.Fatalf("sample1: %v, %d faces", err, len(obs.Faces))
	}
	img, err := gocv.IMDecode(src, gocv.IMReadColor)
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	b := obs.Faces[MainFace(obs.Faces, 0)].Box
	cx, cy, w := b[0]+b[2]/2, b[1]+b[3]/2, b[2]*1.6
	r := image.Rect(int(cx-w), int(cy-w*0.75), int(cx+w), int(cy+w*0.75)).Intersect(image.Rect(0, 0, img.Cols(), img.Rows()))
	crop := img.Region(r)
	defer crop.Close()
	frame := gocv.NewMat()
	defer frame.Close()
	gocv.Resize(crop, &frame, image.Pt(640, 480), 0, 0, gocv.InterpolationArea)
	buf, err := gocv.IMEncode(gocv.JPEGFileExt, frame)
	if err != nil {
		t.Fatal(err)
	}
	defer buf.Close()
	out := bytes.Clone(buf.GetBytes())
	if obs, err := set.AnalyzeJPEG(context.Background(), out, CameraMain); err != nil || len(obs.Faces) != 1 {
		t.Fatalf("the frame around sample1's main face: %v, %d faces, want 1", err, len(obs.Faces))
	}
	return out
}

// withBlock returns jpg with a black block drawn over r.
func withBlock(t *testing.T, jpg []byte, r image.Rectangle) []byte {
	t.Helper()
	rgba := decodeRGBA(t, jpg)
	draw.Draw(rgba, r, image.NewUniform(color.Black), image.Point{}, draw.Src)
	return encodeJPEG(t, rgba)
}

// decodeRGBA decodes jpg into an RGBA image the tests can draw on.
func decodeRGBA(t *testing.T, jpg []byte) *image.RGBA {
	t.Helper()
	img, err := jpeg.Decode(bytes.NewReader(jpg))
	if err != nil {
		t.Fatal(err)
	}
	rgba := image.NewRGBA(img.Bounds())
	draw.Draw(rgba, rgba.Bounds(), img, image.Point{}, draw.Src)
	return rgba
}

// TestPersonsOnTwoFaces: after the person detector saw two people, it runs on every frame —
// except on the main camera while two or more faces are seen there and the picture and the face
// count stay as they were (MULTIPLE_FACES' case). A face going (the second person turns away:
// EXTRA_PERSON's case) runs it at once and then on every frame; the evidence camera measures
// every frame.
func TestPersonsOnTwoFaces(t *testing.T) {
	jpg := testJPEG(t, 640, 480)
	t0 := time.Unix(1_700_000_000, 0)
	for _, camera := range []string{CameraMain, CameraEvidence} {
		s := NewSchedule(ScheduleConfig{})
		var got []bool
		for k, faces := range []int{2, 2, 2, 1, 1} {
			f, err := DecodeJPEG(jpg, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.Camera, f.CapturedAt = camera, t0.Add(time.Duration(k)*time.Second)
			obs := &Observation{}
			for i := range faces {
				obs.Faces = append(obs.Faces, Face{Box: [4]float32{100 + 200*float32(i), 100, 120, 150}, Score: 0.9})
			}
			plan := s.Plan("s1", camera)
			skipped := plan.Skip("persons", &f, obs)
			if !skipped {
				two, none := 2, 0
				obs.Persons, obs.Phones = &two, &none
				plan.Ran("persons", &f, obs)
			}
			f.Image.Close()
			got = append(got, !skipped)
		}
		want := []bool{true, true, true, true, true}
		if camera == CameraMain {
			want = []bool{true, false, false, true, true}
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: detector ran %v, want %v", camera, got, want)
		}
	}
}

// TestPersonsQuietFloor: on a picture that stays as it was at the detector's last run, to within
// camera noise, the detector's floor is QuietEvery (30 s); a change too faint for the
// scene trigger (one cell, a few levels) keeps the 10 s floor.
func TestPersonsQuietFloor(t *testing.T) {
	quiet := testJPEG(t, 640, 480)
	faint := withShade(t, quiet, image.Rect(40, 40, 60, 60), 12) // one 20×20 cell, 12 levels
	t0 := time.Unix(1_700_000_000, 0)
	for _, tc := range []struct {
		name  string
		cfg   ScheduleConfig
		faint int // the faint change is in view from this second on (-1: never)
		want  []int
	}{
		{"quiet", ScheduleConfig{}, -1, []int{0, 30}},
		{"a faint change at 5 s", ScheduleConfig{}, 5, []int{0, 10, 40}},
		{"quiet floor off", ScheduleConfig{QuietEvery: -1}, -1, []int{0, 10, 20, 30, 40}},
	} {
		s := NewSchedule(tc.cfg)
		var ran []int
		for sec := 0; sec <= 45; sec++ {
			jpg := quiet
			if tc.faint >= 0 && sec >= tc.faint {
				jpg = faint
			}
			f, err := DecodeJPEG(jpg, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.Camera, f.CapturedAt = CameraMain, t0.Add(time.Duration(sec)*time.Second)
			obs := &Observation{Faces: []Face{{Box: [4]float32{260, 140, 120, 150}, Score: 0.9}}}
			plan := s.Plan("s1", CameraMain)
			if !plan.Skip("persons", &f, obs) {
				one, none := 1, 0
				obs.Persons, obs.Phones = &one, &none
				plan.Ran("persons", &f, obs)
				ran = append(ran, sec)
			}
			f.Image.Close()
		}
		if !slices.Equal(ran, tc.want) {
			t.Errorf("%s: detector ran at %v s, want %v", tc.name, ran, tc.want)
		}
	}
}

// withShade returns jpg with r lightened by d levels (at most to white).
func withShade(t *testing.T, jpg []byte, r image.Rectangle, d uint8) []byte {
	t.Helper()
	rgba := decodeRGBA(t, jpg)
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			c := rgba.RGBAAt(x, y)
			c.R, c.G, c.B = min(c.R, 255-d)+d, min(c.G, 255-d)+d, min(c.B, 255-d)+d
			rgba.SetRGBA(x, y, c)
		}
	}
	return encodeJPEG(t, rgba)
}
