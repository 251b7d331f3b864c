package rules

import (
	"testing"

	"proctor/analyzers"
	"proctor/store"
)

// The people and phones the rules require in view are not counted: a person on a screen
// (analyzers marks it OnScreen) raises no EXTRA_PERSON, and the evidence phone behind the
// candidate raises no PHONE_VISIBLE on the main camera.
func TestObjectsTheRulesRequire(t *testing.T) {
	face := analyzers.Face{Box: [4]float32{560, 200, 160, 200}, Score: 0.9} // the candidate, 200 px tall
	phone := func(x, y, w, h float32) analyzers.Object {                    // seen at the same place before
		return analyzers.Object{Class: analyzers.ClassPhone, Box: [4]float32{x, y, w, h}, Score: 0.6, Still: true}
	}
	moving := func(o analyzers.Object) analyzers.Object { o.Still = false; return o }
	person := func(onScreen bool) analyzers.Object {
		return analyzers.Object{Class: analyzers.ClassPerson, Box: [4]float32{900, 300, 120, 100}, Score: 0.7, OnScreen: onScreen}
	}
	candidate := analyzers.Object{Class: analyzers.ClassPerson, Box: [4]float32{400, 100, 500, 620}, Score: 0.9}
	cases := []struct {
		name         string
		camera       string
		objects      []analyzers.Object
		faces        []analyzers.Face
		phone, extra bool // PHONE_VISIBLE, EXTRA_PERSON hold on the frame
	}{
		{"evidence phone behind, beside the head", analyzers.CameraMain, []analyzers.Object{candidate, phone(300, 180, 30, 60)}, []analyzers.Face{face}, false, false},
		{"a phone behind that moves (held up, not on a stand)", analyzers.CameraMain, []analyzers.Object{candidate, moving(phone(300, 180, 30, 60))}, []analyzers.Face{face}, true, false},
		{"same phone on the evidence camera's own view", analyzers.CameraEvidence, []analyzers.Object{candidate, phone(300, 180, 30, 60)}, nil, true, false},
		{"phone at the ear", analyzers.CameraMain, []analyzers.Object{candidate, phone(730, 230, 60, 120)}, []analyzers.Face{face}, true, false},
		{"small phone held right by the face", analyzers.CameraMain, []analyzers.Object{candidate, phone(725, 260, 30, 60)}, []analyzers.Face{face}, true, false},
		{"phone on the desk in front", analyzers.CameraMain, []analyzers.Object{candidate, phone(500, 620, 80, 40)}, []analyzers.Face{face}, true, false},
		{"phone behind but no face to judge by", analyzers.CameraMain, []analyzers.Object{candidate, phone(300, 180, 30, 60)}, nil, true, false},
		{"candidate's own video on the laptop (evidence)", analyzers.CameraEvidence, []analyzers.Object{candidate, person(true)}, nil, false, false},
		{"a second person in the room (evidence)", analyzers.CameraEvidence, []analyzers.Object{candidate, person(false)}, nil, false, true},
	}
	eng := New(Config{})
	rule := func(typ, camera string) FrameRule {
		for _, r := range eng.frameRules() {
			if r.Type == typ && (r.Camera == "" || r.Camera == camera) {
				return r
			}
		}
		t.Fatalf("no rule %s for %s", typ, camera)
		return FrameRule{}
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var persons, phones int
			for _, o := range tc.objects {
				if o.Class == analyzers.ClassPerson {
					persons++
				} else {
					phones++
				}
			}
			obs := &analyzers.Observation{Faces: tc.faces, Persons: &persons, Phones: &phones, Objects: tc.objects}
			f, err := parseFrame(store.FrameSignals{Seq: 1, CapturedAtMs: 1, Signals: observe(t, obs, tc.camera)})
			if err != nil {
				t.Fatal(err)
			}
			if got := rule(PhoneVisible, tc.camera).Holds(&f); got != tc.phone {
				t.Errorf("PHONE_VISIBLE holds = %v, want %v (signal %v)", got, tc.phone, f.Signal("phone"))
			}
			if got := rule(ExtraPerson, tc.camera).Holds(&f); got != tc.extra {
				t.Errorf("EXTRA_PERSON holds = %v, want %v (signal %v)", got, tc.extra, f.Signal("persons"))
			}
		})
	}
}
