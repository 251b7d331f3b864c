package worker

import (
	"context"
	"errors"
	"fmt"

	"proctor/analyzers"
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
		if v := analyzers.DecodeVector(sess.FaceEmbedding); v != nil {
			return &analyzers.Enrollment{Model: model, Vector: v}, nil
		}
		return nil, nil
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
		return nil, nil
	}
	return &enr, nil
}
