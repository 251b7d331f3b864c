package worker

import (
	"context"
	"encoding/json"
	"fmt"
	"image"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"gocv.io/x/gocv"

	"proctor/analyzers"
	"proctor/internal/composite"
	"proctor/internal/testdb"
	"proctor/pipeline"
	"proctor/rules"
	"proctor/store"
)

// Composites from the dev photos for the two things the rules require to be in view and must
// not flag (docs/evidence-camera.md, "Screens and the required phone"):
//
//   - screen: an evidence-camera frame (1280×720): a real portrait (the candidate, in the room)
//     on the left, and on a desk to the right a laptop — dark bezel, light exam page, and in its
//     live-video box another photo of the same person — warped as seen from 45° behind.
//   - room: the real group photos of faces/multi_person as evidence frames: real second people,
//     who must still count.
//   - phone behind / phone in hand: a main-camera frame (1280×720) of a real portrait, with the
//     real phone of faces/multi_person/vfa_sample2.jpg pasted small beside the head in the
//     background (the evidence phone, 0.25–0.45 of the face's height) or large at the ear or in
//     front of the chin (0.7–1.1: a phone in use, which must still count).
//
// The test prints a table (go test -run TestEvidenceComposites -v ./worker) and then sends a
// few composites through the frame handler as one-second sequences to show the flags.

type compositePhotos struct {
	byPerson map[string][]gocv.Mat // identities/NAME photos
	groups   []gocv.Mat            // multi_person photos
	phone    gocv.Mat              // the phone cut from vfa_sample2.jpg (its detector box)
}

// people returns the identities/ people's names, sorted.
func (p *compositePhotos) people() []string {
	names := make([]string, 0, len(p.byPerson))
	for n := range p.byPerson {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func (p *compositePhotos) close() {
	for _, ms := range p.byPerson {
		for _, m := range ms {
			m.Close()
		}
	}
	for _, m := range p.groups {
		m.Close()
	}
	p.phone.Close()
}

func loadCompositePhotos(t *testing.T) *compositePhotos {
	t.Helper()
	root := filepath.Join(devDataDir(t), "faces")
	p := &compositePhotos{byPerson: map[string][]gocv.Mat{}}
	read := func(path string) (gocv.Mat, bool) {
		b, err := os.ReadFile(path)
		if err != nil {
			return gocv.Mat{}, false
		}
		m, err := gocv.IMDecode(b, gocv.IMReadColor)
		if err != nil || m.Empty() || m.Cols() < 100 || m.Rows() < 100 {
			m.Close()
			return gocv.Mat{}, false
		}
		return m, true
	}
	people, _ := os.ReadDir(filepath.Join(root, "identities"))
	for _, d := range people {
		files, _ := os.ReadDir(filepath.Join(root, "identities", d.Name()))
		for _, f := range files {
			if m, ok := read(filepath.Join(root, "identities", d.Name(), f.Name())); ok {
				p.byPerson[d.Name()] = append(p.byPerson[d.Name()], m)
			}
		}
	}
	groups, _ := os.ReadDir(filepath.Join(root, "multi_person"))
	for _, f := range groups {
		if m, ok := read(filepath.Join(root, "multi_person", f.Name())); ok {
			p.groups = append(p.groups, m)
		}
	}
	src, ok := read(filepath.Join(root, "multi_person", "vfa_sample2.jpg"))
	if !ok || len(p.byPerson) < 4 {
		p.close()
		t.Skip("identities/ or multi_person/vfa_sample2.jpg missing: composites skipped")
	}
	defer src.Close()
	// The phone as the person detector boxes it on the original photo (x 59, y 1251, 238×99).
	r := src.Region(image.Rect(59, 1251, 59+238, 1251+99))
	p.phone = r.Clone()
	r.Close()
	return p
}

// phoneComposite pastes the phone into a main-camera frame of a portrait: behind (small, beside
// the head) or in hand (large, at the ear or under the chin). face is the portrait's face box in
// the 1280×720 frame.
func phoneComposite(rng *rand.Rand, base gocv.Mat, phone gocv.Mat, face [4]float32, behind bool) gocv.Mat {
	frame := base.Clone()
	ph := phone.Clone()
	if rng.IntN(2) == 0 { // standing upright
		r := gocv.NewMat()
		gocv.Rotate(ph, &r, gocv.Rotate90Clockwise)
		ph.Close()
		ph = r
	}
	fx, fy, fw, fh := face[0], face[1], face[2], face[3]
	var size, cx, cy float32
	if behind {
		size = fh * (0.25 + 0.2*rng.Float32())
		side := float32(1)
		if rng.IntN(2) == 0 {
			side = -1
		}
		cx = fx + fw/2 + side*fw*(1.1+0.9*rng.Float32())
		cy = fy + fh*(-0.4+1.1*rng.Float32())
	} else {
		size = fh * (0.7 + 0.4*rng.Float32())
		if rng.IntN(2) == 0 { // at the ear
			cx, cy = fx+fw+size*0.3, fy+fh*0.5
			if rng.IntN(2) == 0 {
				cx = fx - size*0.3
			}
		} else { // held in front, under the chin
			cx, cy = fx+fw*(0.2+0.6*rng.Float32()), fy+fh*1.3
		}
	}
	long := max(ph.Cols(), ph.Rows())
	s := float64(size) / float64(long)
	w, h := max(int(float64(ph.Cols())*s), 4), max(int(float64(ph.Rows())*s), 4)
	x, y := int(cx)-w/2, int(cy)-h/2
	x = min(max(x, 0), frame.Cols()-w)
	y = min(max(y, 0), frame.Rows()-h)
	small := gocv.NewMat()
	gocv.Resize(ph, &small, image.Pt(w, h), 0, 0, gocv.InterpolationArea)
	dst := frame.Region(image.Rect(x, y, x+w, y+h))
	small.CopyTo(&dst)
	dst.Close()
	small.Close()
	ph.Close()
	return frame
}

func encodeJPEG(t *testing.T, m gocv.Mat) []byte {
	t.Helper()
	b, err := gocv.IMEncodeWithParams(gocv.JPEGFileExt, m, []int{gocv.IMWriteJpegQuality, 85})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	return append([]byte(nil), b.GetBytes()...)
}

// signalsOf runs the analyzers and the checks' Observe on one frame.
// compositeSessions numbers the composites' sessions (one goroutine).
var compositeSessions int

func signalsOf(t *testing.T, set *analyzers.Set, eng *rules.Engine, jpg []byte, camera string) (analyzers.Observation, map[string]rules.Signal) {
	t.Helper()
	// Twice in one session, as the second of two frames of a still scene: a phone that stays put
	// is told from one in use by comparing with the previous frame (Object.Still).
	compositeSessions++
	meta := analyzers.FrameMeta{Camera: camera, Session: fmt.Sprintf("composite-%d", compositeSessions)}
	if _, err := set.AnalyzeFrameJPEG(context.Background(), jpg, meta); err != nil {
		t.Fatal(err)
	}
	obs, err := set.AnalyzeFrameJPEG(context.Background(), jpg, meta)
	if err != nil {
		t.Fatal(err)
	}
	js, err := eng.Observe(&obs, camera)
	if err != nil {
		t.Fatal(err)
	}
	var sig map[string]rules.Signal
	if err := json.Unmarshal([]byte(js), &sig); err != nil {
		t.Fatal(err)
	}
	return obs, sig
}

func TestEvidenceComposites(t *testing.T) {
	photos := loadCompositePhotos(t)
	defer photos.close()
	set, err := analyzers.NewSet(analyzers.Config{Analyzers: []string{"faces", "persons"}})
	if err != nil {
		t.Skipf("models not available (scripts/setup.sh): %v", err)
	}
	defer set.Close()
	eng := rules.New(rules.Config{})
	rng := rand.New(rand.NewPCG(15, 3))
	names := photos.people()

	type tally struct{ frames, detected, flagged, flaggedBefore int }
	var screen, room, behind, inHand tally
	// The screen test was tuned by looking at composites of the other people; these three were
	// never looked at while tuning, and are reported apart.
	heldOut := map[string]bool{"biden": true, "stock_b": true, "stock_teen": true}
	var screenHeld tally
	var screenSeq, behindSeq, handSeq [][]byte // one composite of each for the end-to-end part
	for _, name := range names {
		ps := photos.byPerson[name]
		for i, p := range ps {
			video := ps[(i+1)%len(ps)] // the same person's other photo on the screen
			for range 3 {
				fr := composite.Screen(rng, p, video)
				jpg := encodeJPEG(t, fr)
				fr.Close()
				dump(t, "screen", screen.frames, jpg)
				obs, sig := signalsOf(t, set, eng, jpg, analyzers.CameraEvidence)
				screen.frames++
				if heldOut[name] {
					screenHeld.frames++
				}
				if *obs.Persons >= 2 { // the detector found the person on the screen too
					screen.detected++
					screen.flaggedBefore++
					if heldOut[name] {
						screenHeld.detected++
						screenHeld.flaggedBefore++
						if sig["persons"]["n"] >= 2 {
							screenHeld.flagged++
						}
					}
					if sig["persons"]["n"] >= 2 {
						screen.flagged++
						dump(t, "screen-counted", screen.frames, jpg)
					} else if screenSeq == nil {
						screenSeq = [][]byte{jpg}
					}
				}
			}
			// The main camera: the portrait itself, with the phone.
			base := composite.Cover(p, 1280, 720)
			baseJPG := encodeJPEG(t, base)
			obs, _ := signalsOf(t, set, eng, baseJPG, analyzers.CameraMain)
			if len(obs.Faces) == 0 {
				base.Close()
				continue
			}
			face := obs.Faces[0].Box
			for _, b := range []bool{true, false} {
				for range 3 {
					fr := phoneComposite(rng, base, photos.phone, face, b)
					jpg := encodeJPEG(t, fr)
					fr.Close()
					dump(t, map[bool]string{true: "behind", false: "hand"}[b], behind.frames+inHand.frames, jpg)
					obs, sig := signalsOf(t, set, eng, jpg, analyzers.CameraMain)
					tl := &inHand
					if b {
						tl = &behind
					}
					tl.frames++
					if *obs.Phones >= 1 {
						tl.detected++
						tl.flaggedBefore++
						if sig["phone"]["n"] >= 1 {
							tl.flagged++
							if !b && handSeq == nil {
								handSeq = [][]byte{jpg}
							}
						}
					}
					if b && behindSeq == nil {
						behindSeq = [][]byte{jpg} // whether or not the detector sees the phone
					}
				}
			}
			base.Close()
		}
	}
	for _, g := range photos.groups {
		fr := composite.Cover(g, 1280, 720)
		jpg := encodeJPEG(t, fr)
		fr.Close()
		obs, sig := signalsOf(t, set, eng, jpg, analyzers.CameraEvidence)
		room.frames++
		if *obs.Persons >= 2 {
			room.detected++
			room.flaggedBefore++
			if sig["persons"]["n"] >= 2 {
				room.flagged++
			}
		}
	}
	var b strings.Builder
	b.WriteString("\n| composite | frames | target detected | would flag before | flags now |\n|---|---|---|---|---|\n")
	row := func(name string, tl tally) {
		b.WriteString("| " + name + " | " + itoa(tl.frames) + " | " + itoa(tl.detected) + " | " + itoa(tl.flaggedBefore) + " | " + itoa(tl.flagged) + " |\n")
	}
	row("screen: candidate's video on the laptop (evidence, EXTRA_PERSON), all 8 people", screen)
	row("screen: of which the 3 held-out people (biden, stock_b, stock_teen)", screenHeld)
	row("room: real group photos (evidence, EXTRA_PERSON)", room)
	row("phone behind the candidate (main, PHONE_VISIBLE)", behind)
	row("phone in hand (main, PHONE_VISIBLE)", inHand)
	t.Log(b.String())

	// Floors under the measured figures (docs/evidence-camera.md), so a regression shows.
	if screen.detected < 10 || float64(screen.flagged) > 0.07*float64(screen.detected) {
		t.Errorf("screen composites: %d of %d with the screen person detected still count two people", screen.flagged, screen.detected)
	}
	if float64(room.flagged) < 0.9*float64(room.detected) {
		t.Errorf("real group photos: only %d of %d still count two people", room.flagged, room.detected)
	}
	if behind.flagged > 0 {
		t.Errorf("phone behind: %d of %d detected still count", behind.flagged, behind.detected)
	}
	if inHand.detected < 5 || float64(inHand.flagged) < 0.9*float64(inHand.detected) {
		t.Errorf("phone in hand: only %d of %d detected count", inHand.flagged, inHand.detected)
	}

	// End to end: five seconds of each through the frame handler (real analyzers, rules, store).
	for _, db := range testdb.Open(t) {
		h, err := NewFrameHandlers(analyzers.Config{Analyzers: []string{"faces", "persons"}}, 1, db.Store, eng, nil, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name, camera, flag string
			jpg                [][]byte
			want               bool
		}{
			{"candidate's video on the laptop", analyzers.CameraEvidence, rules.ExtraPerson, screenSeq, false},
			{"evidence phone behind the candidate", analyzers.CameraMain, rules.PhoneVisible, behindSeq, false},
			{"phone in hand", analyzers.CameraMain, rules.PhoneVisible, handSeq, true},
		} {
			if tc.jpg == nil {
				t.Errorf("%s: no composite where the detector saw the target", tc.name)
				continue
			}
			ctx := context.Background()
			sess := &store.Session{OrgID: "org", ExamID: "e", CandidateID: "c", ScheduledStart: time.Now()}
			if err := db.Store.CreateSession(ctx, sess); err != nil {
				t.Fatal(err)
			}
			t0 := time.Now().Add(-time.Hour).Truncate(time.Second).UnixMilli()
			for k := range 5 {
				m := pipeline.EncodeFrame(pipeline.FrameMessage{SessionID: sess.ID, Camera: tc.camera, Seq: int64(k),
					CapturedAtMs: t0 + int64(k)*1000, ReceivedAtMs: t0 + int64(k)*1000, JPEG: tc.jpg[0]})
				if err := h.HandleBatch(ctx, []kafka.Message{m}); err != nil {
					t.Fatal(err)
				}
			}
			flags, err := db.Store.SessionFlags(ctx, sess.ID)
			if err != nil {
				t.Fatal(err)
			}
			got := false
			for _, f := range flags {
				got = got || f.Type == tc.flag
			}
			if got != tc.want {
				t.Errorf("%s/%s: %s raised = %v, want %v", db.Name, tc.name, tc.flag, got, tc.want)
			}
		}
		h.Close()
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

// dump writes composites to $PROCTOR_COMPOSITE_DUMP (to look at them), when set.
func dump(t *testing.T, kind string, i int, jpg []byte) {
	if dir := os.Getenv("PROCTOR_COMPOSITE_DUMP"); dir != "" {
		if err := os.WriteFile(filepath.Join(dir, kind+"-"+itoa(i)+".jpg"), jpg, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
