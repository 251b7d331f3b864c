package analyzers

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
)

// The demo photos (npm @vladmandic/face-api): sample1 is a group. The JSON of `proctor analyze
// image` carries "persons", "phones" and per face "mask" / "occluded" with stable names.
func TestPersonsAndAttire(t *testing.T) {
	requireModels(t)
	set := newTestSet(t, Config{Analyzers: []string{"faces", "landmarks", "attire", "persons"}})
	obs, err := set.AnalyzeJPEG(context.Background(), demoJPEG(t, 1), CameraMain)
	if err != nil {
		t.Fatal(err)
	}
	if obs.Persons == nil || *obs.Persons < 2 || obs.Phones == nil {
		t.Fatalf("group photo: persons %v phones %v, want >= 2 and a count", obs.Persons, obs.Phones)
	}
	n := 0
	for _, o := range obs.Objects {
		if o.Class == ClassPerson {
			n++
		}
		if o.Box[2] <= 0 || o.Box[3] <= 0 || o.Box[0]+o.Box[2] > float32(obs.Width)+0.5 {
			t.Errorf("object box %v outside the %dx%d frame", o.Box, obs.Width, obs.Height)
		}
	}
	if n != *obs.Persons {
		t.Errorf("%d person boxes for persons=%d", n, *obs.Persons)
	}
	for i, f := range obs.Faces {
		if i < 4 && (f.Mask == nil || f.Occluded == nil) { // landmarks' MaxFaces crops
			t.Errorf("face %d has no mask/occluded attributes", i)
		}
		if f.Earphones != nil {
			t.Errorf("face %d: earphones reported without a model that can tell", i)
		}
	}
	data, _ := json.Marshal(obs)
	for _, key := range []string{`"persons":`, `"phones":`, `"mask":{"score":`, `"occluded":{"score":`, `"present":`, `"objects":[{"class":"person"`} {
		if !strings.Contains(string(data), key) {
			t.Errorf("observation JSON lacks %s: %s", key, data)
		}
	}
	// Without the analyzer the keys are absent, not zero: "not measured" is not "nobody".
	plain := newTestSet(t, Config{Analyzers: []string{"faces"}})
	obs, err = plain.AnalyzeJPEG(context.Background(), demoJPEG(t, 1), CameraMain)
	if err != nil {
		t.Fatal(err)
	}
	data, _ = json.Marshal(obs)
	if strings.Contains(string(data), `"persons"`) || strings.Contains(string(data), `"mask"`) {
		t.Errorf("faces-only observation reports persons or mask: %s", data)
	}
}

// Every > 1 runs the detector on one frame in Every per session and camera and carries the counts
// over to the frames in between.
func TestPersonsEvery(t *testing.T) {
	requireModels(t)
	cfg := Config{Analyzers: []string{"persons"}}
	cfg.Persons.Every = 3
	set := newTestSet(t, cfg)
	group := demoJPEG(t, 1)
	ctx := context.Background()
	first, err := set.AnalyzeFrameJPEG(ctx, group, FrameMeta{Camera: CameraMain, Session: "s1"})
	if err != nil {
		t.Fatal(err)
	}
	p := set.Analyzers()[0].(*Persons)
	if p.carried["s1\x00main"] == nil {
		t.Fatal("no carried state for session s1")
	}
	for i := range 2 { // carried: same counts, no detector run (the next two frames)
		obs, err := set.AnalyzeFrameJPEG(ctx, group, FrameMeta{Camera: CameraMain, Session: "s1"})
		if err != nil {
			t.Fatal(err)
		}
		if *obs.Persons != *first.Persons {
			t.Errorf("frame %d: persons %d, carried %d", i+1, *obs.Persons, *first.Persons)
		}
	}
	if c := p.carried["s1\x00main"]; c.seen != 2 {
		t.Errorf("seen %d after two carried frames, want 2", c.seen)
	}
	// Another camera of the same session is its own stream.
	if _, err := set.AnalyzeFrameJPEG(ctx, group, FrameMeta{Camera: CameraEvidence, Session: "s1"}); err != nil {
		t.Fatal(err)
	}
	if len(p.carried) != 2 {
		t.Errorf("%d carried streams, want 2", len(p.carried))
	}
}
