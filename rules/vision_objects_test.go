package rules

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"gorm.io/gorm"

	"proctor/analyzers"
	"proctor/internal/testdb"
	"proctor/models"
	"proctor/store"
)

// objFrame is one frame of the object/attire rules: what the analyzers measured (nil = not).
type objFrame struct {
	camera   string
	sec      int
	faces    int
	persons  *int
	phones   *int
	mask     *float32
	occluded *float32
}

func ip(n int) *int         { return &n }
func fp(v float32) *float32 { return &v }
func repeat(n int, f objFrame) []objFrame {
	out := make([]objFrame, n)
	for i := range out {
		out[i] = f
	}
	return out
}

// timeline numbers the frames of each camera one second apart, in order.
func timeline(parts ...[]objFrame) []objFrame {
	var out []objFrame
	next := map[string]int{}
	for _, p := range parts {
		for _, f := range p {
			if f.camera == "" {
				f.camera = "main"
			}
			f.sec = next[f.camera]
			next[f.camera]++
			out = append(out, f)
		}
	}
	return out
}

// observation is what the analyzers would report for the frame: the second face scores 0.8,
// the second person 0.7, a phone 0.6; mask and occlusion are the main face's.
func (f objFrame) observation() *analyzers.Observation {
	obs := &analyzers.Observation{TopFaceScore: 0.9, Persons: f.persons, Phones: f.phones}
	for i := range f.faces {
		face := analyzers.Face{Score: 0.9 - 0.1*float32(i), Box: [4]float32{0, 0, 100 - 10*float32(i), 100}}
		if i == 0 && f.mask != nil {
			face.Mask = &analyzers.Attribute{Score: *f.mask}
		}
		if i == 0 && f.occluded != nil {
			face.Occluded = &analyzers.Attribute{Score: *f.occluded}
		}
		obs.Faces = append(obs.Faces, face)
	}
	if f.persons != nil {
		for i := range *f.persons {
			obs.Objects = append(obs.Objects, analyzers.Object{Class: analyzers.ClassPerson, Score: 0.9 - 0.2*float32(i)})
		}
	}
	if f.phones != nil {
		for range *f.phones {
			obs.Objects = append(obs.Objects, analyzers.Object{Class: analyzers.ClassPhone, Score: 0.6})
		}
	}
	return obs
}

func TestObjectRules(t *testing.T) {
	alone := objFrame{faces: 1, persons: ip(1), phones: ip(0), mask: fp(0.1), occluded: fp(0.1)}
	two := objFrame{faces: 2, persons: ip(2), phones: ip(0), mask: fp(0.1), occluded: fp(0.1)}
	backTurned := objFrame{faces: 1, persons: ip(2), phones: ip(0), mask: fp(0.1), occluded: fp(0.1)}
	phone := objFrame{faces: 1, persons: ip(1), phones: ip(1), mask: fp(0.1), occluded: fp(0.1)}
	masked := objFrame{faces: 1, persons: ip(1), phones: ip(0), mask: fp(0.97), occluded: fp(0.9)}
	covered := objFrame{faces: 1, persons: ip(1), phones: ip(0), mask: fp(0.2), occluded: fp(0.95)}
	unmeasured := objFrame{faces: 1}
	evAlone := objFrame{camera: "evidence", persons: ip(1), phones: ip(0)}
	evTwo := objFrame{camera: "evidence", persons: ip(3), phones: ip(0)}
	cases := []struct {
		name   string
		frames []objFrame
		want   map[string]int // type/camera -> flags
	}{
		{"candidate alone raises nothing", timeline(repeat(10, alone)), nil},
		{"a second body for 2s raises EXTRA_PERSON (no second face: no MULTIPLE_FACES)",
			timeline(repeat(2, alone), repeat(3, backTurned), repeat(2, alone)),
			map[string]int{ExtraPerson + "/main": 1}},
		{"two faces and two bodies are one situation: MULTIPLE_FACES only",
			timeline(repeat(3, two), repeat(1, alone)),
			map[string]int{MultipleFaces + "/main": 1}},
		{"a second face with one body (body out of frame) is MULTIPLE_FACES",
			timeline(repeat(3, objFrame{faces: 2, persons: ip(1), phones: ip(0)})),
			map[string]int{MultipleFaces + "/main": 1}},
		{"without the person detector two faces are MULTIPLE_FACES only",
			timeline(repeat(3, objFrame{faces: 2})),
			map[string]int{MultipleFaces + "/main": 1}},
		{"one frame of two people raises nothing", timeline(repeat(2, alone), repeat(1, backTurned), repeat(2, alone)), nil},
		{"more than one person behind the candidate raises EXTRA_PERSON on the evidence camera",
			timeline(repeat(2, evAlone), repeat(4, evTwo), repeat(1, evAlone)),
			map[string]int{ExtraPerson + "/evidence": 1}},
		{"a phone for 2s raises PHONE_VISIBLE", timeline(repeat(3, phone), repeat(1, alone)),
			map[string]int{PhoneVisible + "/main": 1}},
		{"a mask for 3s raises MASK only (not FACE_OCCLUDED as well)", timeline(repeat(1, alone), repeat(4, masked), repeat(1, alone)),
			map[string]int{Mask + "/main": 1}},
		{"a mask for 2s raises nothing", timeline(repeat(3, masked), repeat(1, alone)), nil},
		{"a covered face for 5s raises FACE_OCCLUDED", timeline(repeat(6, covered), repeat(1, alone)),
			map[string]int{FaceOccluded + "/main": 1}},
		{"unmeasured frames never continue a run",
			timeline(repeat(2, masked), repeat(1, unmeasured), repeat(2, masked), repeat(1, unmeasured), repeat(2, backTurned)), nil},
	}
	for _, b := range testdb.Open(t) {
		for _, tc := range cases {
			t.Run(b.Name+"/"+tc.name, func(t *testing.T) {
				ctx := context.Background()
				eng := New(Config{})
				sess := &store.Session{OrgID: "org", ExamID: "e", CandidateID: "c", ScheduledStart: time.Now()}
				if err := b.Store.CreateSession(ctx, sess); err != nil {
					t.Fatal(err)
				}
				post := func(i int, f objFrame) {
					err := b.Store.DB.Transaction(func(tx *gorm.DB) error {
						fr := &store.FrameResult{SessionID: sess.ID, Camera: f.camera, Seq: int64(i),
							CapturedAtMs: int64(f.sec) * 1000, Signals: observe(t, f.observation(), f.camera)}
						isNew, err := store.InsertFrameResult(tx, fr)
						if err != nil || !isNew {
							return err
						}
						_, err = eng.ApplyFrame(tx, FrameInput{Result: fr, JPEG: []byte{0xff, 0xd8}, ModelVersion: "test"})
						return err
					})
					if err != nil {
						t.Fatal(err)
					}
				}
				for i, f := range tc.frames {
					post(i, f)
				}
				for i, f := range tc.frames { // redelivery changes nothing
					post(i, f)
				}
				flags, err := b.Store.SessionFlags(ctx, sess.ID)
				if err != nil {
					t.Fatal(err)
				}
				got := map[string]int{}
				for _, f := range flags {
					got[f.Type+"/"+f.Camera]++
					if f.Confidence <= 0 || f.Confidence > 1 {
						t.Errorf("flag %s confidence %v outside (0,1]", f.Type, f.Confidence)
					}
				}
				if fmt.Sprint(got) != fmt.Sprint(nonNil(tc.want)) {
					t.Fatalf("flags %v, want %v", got, tc.want)
				}
			})
		}
	}
}

func nonNil(m map[string]int) map[string]int {
	if m == nil {
		return map[string]int{}
	}
	return m
}

// The rules' default score thresholds are the attire model's own, so a flag agrees with the
// "present" that `proctor analyze image` and the stored observation show.
func TestObjectThresholdsMatchModel(t *testing.T) {
	m, err := models.Lookup("attire-cnn")
	if err != nil {
		t.Fatal(err)
	}
	c := New(Config{}).Params()
	for label, got := range map[string]float64{"mask": c.Value(SettingMaskScore), "occluded": c.Value(SettingOccludedScore)} {
		if want := float64(m.Vision.Scores[label]); math.Abs(got-want) > 1e-6 {
			t.Errorf("rules default %s threshold %g, model attire-cnn says %g: update rules/vision_objects.go", label, got, want)
		}
	}
}
