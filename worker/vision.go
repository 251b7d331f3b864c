package worker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"gorm.io/gorm"

	"proctor/analyzers"
	"proctor/pipeline"
	"proctor/rules"
	"proctor/store"
)

// enrollment returns the session's registration-photo embedding for the set's identity model,
// computing and storing it on the session the first time a worker needs it (or when the model
// changed). nil, nil when the set has no identity analyzer or the photo shows no usable face
// (then nothing is compared: better no identity check than a false IDENTITY_MISMATCH on every
// frame; the decision is stored so it is not retried per frame).
func (h *FrameHandlers) enrollment(ctx context.Context, set *analyzers.Set, sess *store.Session) (*analyzers.Enrollment, error) {
	model := set.EnrollModel()
	if model == "" {
		return nil, nil
	}
	if sess.FaceEmbeddingModel == model {
		v := analyzers.DecodeVector(sess.FaceEmbedding)
		if v == nil {
			return nil, nil
		}
		enr := &analyzers.Enrollment{Model: model, Vector: v}
		// From the answering phase on, frames are compared with the gallery too.
		if !rules.BeforeAnswering(sess.Phase) {
			g, err := h.galleries.get(ctx, h.store, sess.ID, model)
			if err != nil {
				return nil, err
			}
			enr.Gallery, enr.Learned = g.vectors, g.learned
		}
		return enr, nil
	}
	photo, err := h.store.GetRegistrationPhoto(ctx, sess.OrgID, sess.ID)
	if err != nil {
		return nil, fmt.Errorf("registration photo of session %s: %w", sess.ID, err)
	}
	enr, err := set.Enroll(ctx, photo)
	var vec []byte
	switch {
	case err == nil:
		vec = analyzers.EncodeVector(enr.Vector)
	case errors.Is(err, analyzers.ErrNoFaceInPhoto) || invalidImage(err):
		h.log.Warn("registration photo unusable: identity not checked for this session",
			"session", sess.ID, "err", err)
	default:
		return nil, fmt.Errorf("enroll session %s: %w", sess.ID, err)
	}
	if err := h.store.SetFaceEmbedding(ctx, sess.ID, model, vec); err != nil {
		return nil, err
	}
	sess.FaceEmbedding, sess.FaceEmbeddingModel = vec, model
	if vec == nil {
		// The identity-login check raises IDENTITY_NOT_VERIFIED for a photo without a usable
		// face: its timing check runs again now, not at the next deadline.
		sess.RegistrationFace = store.RegistrationFaceNone
		return nil, rules.MarkDirty(h.store.DB.WithContext(ctx), sess.ID, time.Now())
	}
	sess.RegistrationFace = store.RegistrationFaceFound
	return &enr, nil
}

// enrollAhead enrols the registration photos of new sessions (their enrol requests, sent by the
// API at creation), so that the candidate's first frame does not wait for it and an exam room
// whose candidates start together does not pay every enrolment in the same second. A session
// already enrolled with the current model is skipped, so a redelivered request costs a read.
// A session deleted since is skipped; a failure is the consumer's to retry, and the first frame
// enrols the photo anyway when a request never arrived.
func (h *FrameHandlers) enrollAhead(ctx context.Context, ids []string) error {
	sessions := map[string]*store.Session{}
	var order []string
	for _, id := range ids {
		if _, seen := sessions[id]; seen {
			continue
		}
		sess, err := h.store.GetSession(ctx, "", id)
		if errors.Is(err, store.ErrNotFound) {
			if gone, err := store.SessionDeleted(h.store.DB.WithContext(ctx), id); err != nil {
				return err
			} else if gone {
				h.deleted.WithLabelValues("enrollments").Inc()
				sessions[id] = nil
				continue
			}
			return pipeline.Permanent(fmt.Errorf("enrol request for unknown session %s", id))
		} else if err != nil {
			return err
		}
		sessions[id] = sess
		order = append(order, id)
	}
	if len(order) == 0 {
		return nil
	}
	return h.withSets(order, func(set *analyzers.Set, id string) error {
		_, err := h.enrollment(ctx, set, sessions[id])
		return err
	})
}

// updateGallery runs in a main-camera frame's transaction before the answering phase: a face that
// passes the identity quality gate is counted for the login check (IDENTITY_NOT_VERIFIED), and,
// when it matched the registration photo or followed the platform's own face login, joins the
// session's gallery while the gallery has room and the face adds something new.
//
// From the answering phase on, a face that matches the photo or a login frame by a wide margin is
// learned (rules.LearnsFace): enr is the enrollment the frame was compared with.
func (h *FrameHandlers) updateGallery(tx *gorm.DB, sess *store.Session, fr *store.FrameResult, jpeg []byte,
	obs *analyzers.Observation, eng *rules.Engine, enr *analyzers.Enrollment) error {
	if fr.Camera != analyzers.CameraMain {
		return nil
	}
	i, ok := rules.IdentityQuality(obs, eng.Params())
	if i < 0 || !ok || !obs.Faces[i].Match.Measured {
		return nil
	}
	if enr == nil {
		return nil // nothing was compared with
	}
	m := obs.Faces[i].Match
	threshold := m.Threshold
	if t := eng.Params().Value(rules.SettingIdentityThreshold); t != 0 {
		threshold = float32(t)
	}
	if !rules.BeforeAnswering(sess.Phase) {
		if m.Embedding == nil {
			return nil // settled by the first look: no vector to learn
		}
		return h.learnFace(tx, sess, fr, jpeg, m, threshold, eng.Params(), enr)
	}
	// A login frame the first look measured (the gallery was full, or its track had the full
	// model lately) is counted, not kept.
	source := ""
	counts, matched := rules.LoginFace(m.Photo, threshold, eng.Params())
	if matched {
		source = store.GalleryFromPhoto
	} else if loggedIn, err := store.HasEvent(tx, sess.ID, "face_login"); err != nil {
		return err
	} else if loggedIn {
		source = store.GalleryFromPlatformLogin
	} else if !counts {
		return nil // in the mismatch band: abstains from the login check too
	}
	if err := store.CountLoginFace(tx, sess.ID, source != ""); err != nil {
		return err
	}
	// The batch's later frames see this one counted, as they would frame by frame.
	sess.LoginFaceFrames++
	if source != "" {
		sess.LoginFaceMatches++
	}
	if source == "" || m.Embedding == nil {
		return nil
	}
	have, learned, err := galleryOf(tx, sess)
	if err != nil || len(have)-learned >= int(eng.Params().Value(rules.SettingIdentityGallerySize)) ||
		analyzers.Redundant(have, m.Embedding) { // the candidate sat still: adds nothing
		return err
	}
	return h.addGalleryFace(tx, sess, fr, jpeg, m, source)
}

// galleryHasRoom says whether a login frame of the session may still join its gallery (fewer login
// faces than the exam's gallery size). Until then the full model measures login frames, whose
// vectors the gallery keeps; once it is full they change neither the gallery nor the login check
// (it has matches), and the cheaper first look measures them as it does answering frames.
func (h *FrameHandlers) galleryHasRoom(ctx context.Context, sess *store.Session, model string, eng *rules.Engine) (bool, error) {
	g, err := h.galleries.get(ctx, h.store, sess.ID, model)
	if err != nil {
		return false, err
	}
	return len(g.vectors)-g.learned < int(eng.Params().Value(rules.SettingIdentityGallerySize)), nil
}

// learnFace adds an answering-phase face to the gallery when rules.LearnsFace says so and it is
// not nearly the same as a face kept. The cached enrollment answers first (most frames stop
// there); the transaction's own view decides, as the batch may have learned a face already.
func (h *FrameHandlers) learnFace(tx *gorm.DB, sess *store.Session, fr *store.FrameResult, jpeg []byte,
	m *analyzers.Match, threshold float32, p rules.Params, enr *analyzers.Enrollment) error {
	if enr == nil {
		return nil
	}
	anchor := enr.Anchor(m.Embedding)
	if !rules.LearnsFace(anchor, threshold, enr.Learned, p) || analyzers.Redundant(enr.Gallery, m.Embedding) {
		return nil
	}
	have, learned, err := galleryOf(tx, sess)
	if err != nil || !rules.LearnsFace(anchor, threshold, learned, p) || analyzers.Redundant(have, m.Embedding) {
		return err
	}
	return h.addGalleryFace(tx, sess, fr, jpeg, m, store.GalleryLearned)
}

// galleryOf reads the session's gallery in the transaction: its vectors, the learned ones last,
// and how many were learned.
func galleryOf(tx *gorm.DB, sess *store.Session) ([][]float32, int, error) {
	rows, err := store.GalleryVectors(tx, sess.ID, sess.FaceEmbeddingModel)
	if err != nil {
		return nil, 0, err
	}
	var have [][]float32
	learned := 0
	for _, r := range rows {
		if v := analyzers.DecodeVector(r.Vector); v != nil {
			have = append(have, v)
			if r.Learned {
				learned++
			}
		}
	}
	return have, learned, nil
}

func (h *FrameHandlers) addGalleryFace(tx *gorm.DB, sess *store.Session, fr *store.FrameResult, jpeg []byte,
	m *analyzers.Match, source string) error {
	h.galleries.forget(sess.ID)
	return store.AddGalleryFace(tx, &store.GalleryFace{SessionID: sess.ID, Seq: fr.Seq, CapturedAtMs: fr.CapturedAtMs,
		Model: sess.FaceEmbeddingModel, Vector: analyzers.EncodeVector(m.Embedding), PhotoSimilarity: m.Photo,
		Source: source, JPEG: jpeg, CreatedAt: time.Now().UTC()})
}

// galleryCache keeps each session's gallery embeddings for a few seconds: every main-camera
// frame of the answering phase reads them, and they change rarely then (a learned face; its
// worker forgets the entry).
type galleryCache struct{ m sync.Map } // session id → *cachedGallery

type cachedGallery struct {
	model   string
	vectors [][]float32 // the login frames, then the learned faces
	learned int
	expires time.Time
}

func (c *galleryCache) get(ctx context.Context, st *store.Store, sessionID, model string) (*cachedGallery, error) {
	if v, ok := c.m.Load(sessionID); ok {
		if g := v.(*cachedGallery); g.model == model && time.Now().Before(g.expires) {
			return g, nil
		}
	}
	rows, err := store.GalleryVectors(st.DB.WithContext(ctx), sessionID, model)
	if err != nil {
		return nil, err
	}
	g := &cachedGallery{model: model, expires: time.Now().Add(30 * time.Second)}
	for _, r := range rows {
		if v := analyzers.DecodeVector(r.Vector); v != nil {
			g.vectors = append(g.vectors, v)
			if r.Learned {
				g.learned++
			}
		}
	}
	c.m.Store(sessionID, g)
	return g, nil
}

func (c *galleryCache) forget(sessionID string) { c.m.Delete(sessionID) }
