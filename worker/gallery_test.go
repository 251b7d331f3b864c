package worker

import (
	"context"
	"log/slog"
	"math"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"gorm.io/gorm"

	"proctor/analyzers"
	"proctor/internal/scenario"
	"proctor/internal/testdb"
	"proctor/models"
	"proctor/pipeline"
	"proctor/rules"
	"proctor/store"
)

// unit returns a unit vector of the embedding's size at cosine c with e0, the rest along axis k.
func unit(c float64, k int) []float32 {
	v := make([]float32, 128)
	v[0], v[k] = float32(c), float32(math.Sqrt(1-c*c))
	return v
}

// TestGalleryLearnsWhileAnswering: from the answering phase on, a face that matches the
// registration photo or a login frame by the learn margin joins the gallery as "learned"; one
// nearly equal to a kept face, one that matches only a learned face (the gallery must not drift
// towards someone else), and any beyond the cap do not. The enrollment read back lists the
// learned faces last and counts them.
func TestGalleryLearnsWhileAnswering(t *testing.T) {
	for _, b := range testdb.Open(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			eng := rules.New(rules.Config{Settings: rules.Params{rules.SettingIdentityLearnedFaces: 2}})
			h, err := NewFrameHandlers(analyzers.Config{Analyzers: fakeNames, Catalog: newFakeCatalog().catalog()}, 1, b.Store,
				eng, nil, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			defer h.Close()
			const model, thr = "facenet-keras@1", 0.61
			photo := unit(1, 1)
			sess := &store.Session{OrgID: "org-learn", ExamID: "e", CandidateID: "c", ScheduledStart: time.Now(),
				FaceEmbeddingModel: model, FaceEmbedding: analyzers.EncodeVector(photo), Phase: rules.PhaseAnswering}
			if err := b.Store.CreateSession(ctx, sess); err != nil {
				t.Fatal(err)
			}
			login := unit(0.8, 2)
			if err := store.AddGalleryFace(b.Store.DB, &store.GalleryFace{SessionID: sess.ID, Seq: 1, Model: model,
				Vector: analyzers.EncodeVector(login), Source: store.GalleryFromPhoto, JPEG: []byte{0xff, 0xd8}, CreatedAt: time.Now()}); err != nil {
				t.Fatal(err)
			}
			learnAt := thr + float32(eng.Params().Value(rules.SettingIdentityLearnMargin))
			seq := int64(10)
			// offer runs one answering frame whose main face has embedding v through the gallery
			// update, with the enrollment the worker would have compared it with.
			offer := func(v []float32) {
				t.Helper()
				g, err := h.galleries.get(ctx, b.Store, sess.ID, model)
				if err != nil {
					t.Fatal(err)
				}
				enr := &analyzers.Enrollment{Model: model, Vector: photo, Gallery: g.vectors, Learned: g.learned}
				best, ph := enr.Similarity(v)
				obs := analyzers.Observation{Width: 640, Height: 480, Faces: []analyzers.Face{{Box: [4]float32{200, 100, 160, 200}, Score: 0.99,
					Match: &analyzers.Match{Similarity: best, Photo: ph, Threshold: thr, Measured: true, Embedding: v}}}}
				seq++
				fr := &store.FrameResult{SessionID: sess.ID, Camera: analyzers.CameraMain, Seq: seq, CapturedAtMs: seq * 1000}
				if err := b.Store.DB.Transaction(func(tx *gorm.DB) error {
					return h.updateGallery(tx, sess, fr, []byte{0xff, 0xd8}, &obs, eng, enr)
				}); err != nil {
					t.Fatal(err)
				}
			}
			learned := func() []int64 {
				var rows []store.GalleryFace
				b.Store.DB.Where("session_id = ? AND source = ?", sess.ID, store.GalleryLearned).Order("seq").Find(&rows)
				var seqs []int64
				for _, r := range rows {
					seqs = append(seqs, r.Seq)
				}
				return seqs
			}
			// 11: above the margin with the photo, far from the login frame → learned.
			a := unit(float64(learnAt)+0.02, 3)
			offer(a)
			// 12: the same face again: nearly equal to a kept one → not learned.
			offer(a)
			// 13: close to the learned face only (0.86 with it, below the margin with the photo
			// and the login frame) → not learned: learned faces vouch for none.
			c := make([]float32, 128)
			for i := range c {
				c[i] = 0.86*a[i] + float32(math.Sqrt(1-0.86*0.86))*unit(0, 4)[i]
			}
			if an := (&analyzers.Enrollment{Vector: photo, Gallery: [][]float32{login}}).Anchor(c); an >= learnAt {
				t.Fatalf("test vector: anchor %.3f, want below %.3f", an, learnAt)
			}
			if s := models.Cosine(c, a); s < float32(learnAt) || s > analyzers.GalleryRedundant {
				t.Fatalf("test vector: %.3f with the learned face", s)
			}
			offer(c)
			// 14: someone else entirely → not learned.
			offer(unit(0, 5))
			// 15: above the margin with the login frame (not the photo) → learned, the second.
			d := make([]float32, 128)
			for i := range d {
				d[i] = float32(float64(learnAt)+0.05)*login[i] + float32(math.Sqrt(1-math.Pow(float64(learnAt)+0.05, 2)))*unit(0, 6)[i]
			}
			offer(d)
			// 16: another good face, but the cap (2) is reached.
			offer(unit(float64(learnAt)+0.1, 7))
			if got := learned(); len(got) != 2 || got[0] != 11 || got[1] != 15 {
				t.Fatalf("learned faces at frames %v, want [11 15]", got)
			}
			g, err := h.galleries.get(ctx, b.Store, sess.ID, model)
			if err != nil {
				t.Fatal(err)
			}
			if len(g.vectors) != 3 || g.learned != 2 || models.Cosine(g.vectors[0], login) < 0.999 {
				t.Errorf("gallery read back: %d vectors, %d learned; want the login frame first, then 2 learned", len(g.vectors), g.learned)
			}
		})
	}
}

// TestLoginFirstLookOnceGalleryFull: a login frame gets the full identity model while the
// session's gallery has room (its vector may be kept), and the cheaper first look once the
// gallery is full, as answering frames do; a still login track gets the full model every 15 s
// (IdentityConfig.GatherEvery) and the first look between. The login check counts every
// measured frame either way. Real models on the demo's candidate frames.
func TestLoginFirstLookOnceGalleryFull(t *testing.T) {
	dir, err := scenario.DemoDir()
	if err != nil {
		t.Skip(err)
	}
	// Every frame measured (no schedule, no track carry), so that only the gallery decides.
	everyFrame := analyzers.Config{Analyzers: []string{"faces", "landmarks", "identity"},
		Identity: analyzers.IdentityConfig{Every: 1}, Schedule: analyzers.ScheduleConfig{StillMax: -1}}
	probe, err := analyzers.NewSet(everyFrame)
	if err != nil {
		t.Fatal(err)
	}
	f, err := scenario.Build(context.Background(), probe, dir)
	probe.Close()
	if err != nil {
		t.Fatal(err)
	}
	frames := f.Candidate[:min(8, len(f.Candidate))]
	still := make([][]byte, 20) // one picture for 20 s: a still track
	for k := range still {
		still[k] = frames[0]
	}
	for _, b := range testdb.Open(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			// looks runs login frames, 1 s apart, through a session whose exam keeps gallerySize
			// login faces, and returns the identity analyzer's counts and the login frames counted.
			looks := func(cfg analyzers.Config, frames [][]byte, gallerySize int) (first, full, counted int) {
				eng := rules.New(rules.Config{Settings: rules.Params{rules.SettingIdentityGallerySize: float64(gallerySize)}})
				h, err := NewFrameHandlers(cfg, 1, b.Store, eng, nil, slog.New(slog.DiscardHandler))
				if err != nil {
					t.Fatal(err)
				}
				defer h.Close()
				sess := &store.Session{OrgID: "org-first-look", ExamID: "e", CandidateID: "c", ScheduledStart: time.Now().Add(time.Hour),
					RegistrationPhoto: f.Photo}
				if err := b.Store.CreateSession(ctx, sess); err != nil {
					t.Fatal(err)
				}
				if err := h.enrollAhead(ctx, []string{sess.ID}); err != nil {
					t.Fatal(err)
				}
				t0 := time.Now().Add(-time.Hour).Truncate(time.Second).UnixMilli()
				for k, jpg := range frames {
					m := pipeline.EncodeFrame(pipeline.FrameMessage{SessionID: sess.ID, Camera: analyzers.CameraMain, Seq: int64(k),
						CapturedAtMs: t0 + int64(k)*1000, ReceivedAtMs: t0 + int64(k)*1000, JPEG: jpg})
					if err := h.HandleBatch(ctx, []kafka.Message{m}); err != nil {
						t.Fatal(err)
					}
				}
				set, release, err := h.pool.load().acquire(sess.ID)
				if err != nil {
					t.Fatal(err)
				}
				defer release()
				for _, a := range set.Analyzers() {
					if id, ok := a.(*analyzers.Identity); ok {
						first, _, full = id.Looks()
					}
				}
				got, err := b.Store.GetSession(ctx, "", sess.ID)
				if err != nil {
					t.Fatal(err)
				}
				return first, full, got.LoginFaceFrames
			}
			roomFirst, roomFull, roomCounted := looks(everyFrame, frames, 20) // never full: every frame may be kept
			fullFirst, fullFull, fullCounted := looks(everyFrame, frames, 1)  // full after the first matching frame
			if roomFirst != 0 || roomFull != len(frames) {
				t.Errorf("gallery with room: first look %d, full model %d of %d frames; want the full model on all", roomFirst, roomFull, len(frames))
			}
			if fullFirst == 0 || fullFull >= roomFull {
				t.Errorf("gallery full after one face: first look %d, full model %d (with room %d); want the first look on most", fullFirst, fullFull, roomFull)
			}
			if roomCounted < 3 || fullCounted != roomCounted {
				t.Errorf("login frames counted: %d with the first look, %d with the full model; want the same, at least 3", fullCounted, roomCounted)
			}
			// A still track with room in the gallery, the pipeline's identity cadence (every 5th
			// frame measured: 0, 5, 10, 15 s): the full model at 0 and 15 s, the first look at 5
			// and 10, all four counted.
			cadence := analyzers.Config{Analyzers: everyFrame.Analyzers, Schedule: everyFrame.Schedule}
			first, full, counted := looks(cadence, still, 20)
			if first != 2 || full != 2 || counted != 4 {
				t.Errorf("still login track: first look %d, full model %d, counted %d; want 2, 2, 4", first, full, counted)
			}
		})
	}
}
