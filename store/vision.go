package store

import (
	"context"
	"fmt"
)

// SetFaceEmbedding stores a session's registration-photo embedding (see Session.FaceEmbedding).
// Two workers may compute it at once for the same session: both write the same value.
func (s *Store) SetFaceEmbedding(ctx context.Context, sessionID, model string, vector []byte) error {
	if vector == nil {
		vector = []byte{} // "tried, no face" is an empty value, not NULL
	}
	vector, err := seal(s.DB, vector, aadEmbedding(sessionID))
	if err != nil {
		return err
	}
	err = s.DB.WithContext(ctx).Model(&Session{}).Where("id = ?", sessionID).
		Updates(map[string]any{"face_embedding": vector, "face_embedding_model": model}).Error
	if err != nil {
		return fmt.Errorf("store face embedding of session %s: %w", sessionID, err)
	}
	return nil
}
