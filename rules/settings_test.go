package rules

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"gorm.io/gorm"

	"proctor/internal/testdb"
	"proctor/store"
)

func TestForExam(t *testing.T) {
	base := New(Config{})
	eng := base.ForExam(ExamSettings{Values: Params{SettingFaceAbsentAfter: 8, SettingUploadWithin: 45, SettingScanMinDegrees: 270},
		Disabled: []string{MultipleFaces}, Weights: map[string]float64{FaceAbsent: 0.9}})
	c := eng.Params()
	if c.Duration(SettingFaceAbsentAfter) != 8*time.Second || c.Duration(SettingUploadWithin) != 45*time.Minute || c.Value(SettingScanMinDegrees) != 270 {
		t.Errorf("overrides not applied: %+v", c)
	}
	if c.Duration(SettingMultipleFacesAfter) != 2*time.Second || c.Duration(SettingEvidenceMaxGap) != 30*time.Second {
		t.Errorf("unset values must keep the defaults: %+v", c)
	}
	if w := eng.Weights(); w[FaceAbsent] != 0.9 || w[MultipleFaces] != DefaultWeights()[MultipleFaces] || DefaultWeights()[FaceAbsent] == 0.9 ||
		base.Weights()[FaceAbsent] == 0.9 {
		t.Errorf("weights: %v (defaults must not change: %v)", w, DefaultWeights()[FaceAbsent])
	}
	if eng.Enabled(MultipleFaces) || !eng.Enabled(FaceAbsent) || !base.Enabled(MultipleFaces) {
		t.Error("disabled checks")
	}
	for _, r := range eng.frameRules() {
		if r.Type == MultipleFaces {
			t.Error("a disabled frame rule still runs")
		}
	}
}

func TestExamSettingsValidate(t *testing.T) {
	for _, bad := range []ExamSettings{
		{Disabled: []string{"NOPE"}}, {Weights: map[string]float64{FaceAbsent: 1.5}}, {Weights: map[string]float64{"NOPE": 0.1}},
		{Values: Params{SettingFaceAbsentAfter: 0.1}}, {Values: Params{SettingUploadWithin: -1}}, {Values: Params{SettingScanMinDegrees: 400}},
		{Values: Params{"nope_sec": 3}},
	} {
		if bad.Validate() == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
	if err := (ExamSettings{Values: Params{SettingFaceAbsentAfter: 3}, Weights: map[string]float64{FaceAbsent: 0}}).Validate(); err != nil {
		t.Error(err)
	}
}

// Disabled checks raise no flags, through the stored settings and the cached lookup, in the
// frame rules and in the timing rules.
func TestStoredSettingsDisableChecks(t *testing.T) {
	for _, b := range testdb.Open(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			org := "org-" + store.NewID()[:6]
			eng := New(Config{}).WithSettings(StoreSettings, time.Hour)
			js, _ := json.Marshal(ExamSettings{Disabled: []string{FaceAbsent, WindowSwitch}})
			if err := b.Store.PutExamSetting(ctx, &store.ExamSetting{OrgID: org, ExamID: "quiet", Settings: string(js)},
				store.AuditEntry{OrgID: org, Actor: "test", Action: "settings.update"}, nil); err != nil {
				t.Fatal(err)
			}
			start := time.Now().Add(-time.Hour)
			flagsOf := func(exam string) map[string]int {
				sess := &store.Session{OrgID: org, ExamID: exam, CandidateID: "c", ScheduledStart: start, DurationSec: 3600}
				if err := b.Store.CreateSession(ctx, sess); err != nil {
					t.Fatal(err)
				}
				e, err := eng.Effective(b.Store.DB, org, exam)
				if err != nil {
					t.Fatal(err)
				}
				for i := range 8 { // 7 s without a face
					if err := b.Store.DB.Transaction(func(tx *gorm.DB) error {
						fr := &store.FrameResult{SessionID: sess.ID, Camera: "main", Seq: int64(i), CapturedAtMs: start.UnixMilli() + int64(i)*1000,
							Signals: signals(t, map[string]Signal{"faces": {"n": 0, "top": 0}})}
						if _, err := store.InsertFrameResult(tx, fr); err != nil {
							return err
						}
						_, err := e.ApplyFrame(tx, FrameInput{Result: fr, JPEG: []byte{0xff, 0xd8}, ModelVersion: "t"})
						return err
					}); err != nil {
						t.Fatal(err)
					}
				}
				if _, err := store.InsertEvent(b.Store.DB, &store.Event{SessionID: sess.ID, Seq: 1, Type: "focus_lost",
					CapturedAtMs: start.Add(time.Minute).UnixMilli()}); err != nil {
					t.Fatal(err)
				}
				if err := b.Store.DB.Transaction(func(tx *gorm.DB) error { return eng.ApplyTiming(tx, sess.ID, time.Now()) }); err != nil {
					t.Fatal(err)
				}
				flags, _ := b.Store.SessionFlags(ctx, sess.ID)
				got := map[string]int{}
				for _, f := range flags {
					got[f.Type]++
				}
				return got
			}
			if got := flagsOf("loud"); got[FaceAbsent] != 1 || got[WindowSwitch] != 1 {
				t.Fatalf("exam without settings: %v, want FACE_ABSENT and WINDOW_SWITCH", got)
			}
			if got := flagsOf("quiet"); got[FaceAbsent] != 0 || got[WindowSwitch] != 0 || got[SheetNotShown] != 1 {
				t.Fatalf("exam with both checks off: %v, want neither (and the checks still on, like A4_NOT_SHOWN)", got)
			}
		})
	}
}

func TestModelOfFlag(t *testing.T) {
	mv := "attire=attire-cnn@2 mask=0.61 occluded=0.78,faces=ultraface-rfb-320@1 score=0.7,landmarks=x@1"
	for typ, want := range map[string]string{"MASK": "attire-cnn@2", "FACE_ABSENT": "ultraface-rfb-320@1",
		"PHONE_VISIBLE": "rules", "WINDOW_SWITCH": "rules"} {
		if got := ModelOfFlag(typ, mv); got != want {
			t.Errorf("%s: %q, want %q", typ, got, want)
		}
	}
	if got := ModelOfFlag("ANSWER_NOT_CLOSED", "phrase=phrase-gaiti@1+oww-melspectrogram@1+oww-embedding@1 thr=0.93,vad=silero-vad-v5@1 thr=0.5"); got != "phrase-gaiti@1" {
		t.Errorf("audio flag: %q", got)
	}
}
