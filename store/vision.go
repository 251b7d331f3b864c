package store

import (
	"context"
	"fmt"
)

// What enrolment found in a registration photo (Session.RegistrationFace).
const (
	RegistrationFaceFound = "found"
	RegistrationFaceNone  = "none"
)

// SetFaceEmbedding stores a session's registration-photo embedding (see Session.FaceEmbedding)
// and what was found (RegistrationFace: none for an empty vector).
// Two workers may compute it at once for the same session: both write the same value.
func (s *Store) SetFaceEmbedding(ctx context.Context, sessionID, model string, vector []byte) error {
	found := RegistrationFaceFound
	if len(vector) == 0 {
		vector, found = []byte{}, RegistrationFaceNone // "tried, no face" is an empty value, not NULL
	}
	vector, err := seal(s.DB, vector, aadEmbedding(sessionID))
	if err != nil {
		return err
	}
	err = s.DB.WithContext(ctx).Model(&Session{}).Where("id = ?", sessionID).
		Updates(map[string]any{"face_embedding": vector, "face_embedding_model": model, "registration_face": found}).Error
	if err != nil {
		return fmt.Errorf("store face embedding of session %s: %w", sessionID, err)
	}
	return nil
}
