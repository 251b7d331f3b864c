package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// GalleryFace is one of the candidate's own frames kept as a reference face of the session: from
// face login and preparation, it matched the registration photo (or followed the platform's own
// face login); while answering, it matched those by a wide margin (GalleryLearned). Each passed
// the identity quality gate.
type GalleryFace struct {
	ID           uint   `gorm:"primaryKey" json:"id"`
	SessionID    string `gorm:"size:64;uniqueIndex:gallery_key,priority:1" json:"session_id"`
	Seq          int64  `gorm:"uniqueIndex:gallery_key,priority:2" json:"seq"`
	CapturedAtMs int64  `json:"captured_at"`
	// Model is the embedding model (name@version) of Vector: another model's does not compare.
	Model  string `gorm:"size:128" json:"model"`
	Vector []byte `json:"-"` // little-endian float32, unit length
	// PhotoSimilarity is the frame's similarity with the registration photo.
	PhotoSimilarity float32 `json:"photo_similarity"`
	// Source says why the frame was trusted: "photo" (it matched the photo) or "platform_login"
	// (it followed the platform's own face login).
	Source    string    `gorm:"size:16" json:"source"`
	JPEG      []byte    `json:"-"` // the frame, for the reviewer
	CreatedAt time.Time `json:"created_at"`
}

// Gallery sources.
const (
	GalleryFromPhoto         = "photo"
	GalleryFromPlatformLogin = "platform_login"
	// GalleryLearned: a face of the answering phase that matched the photo or a login frame by
	// a wide margin (rules.LearnsFace).
	GalleryLearned = "learned"
)

// GalleryVector is one gallery embedding, and whether it was learned while answering.
type GalleryVector struct {
	Vector  []byte
	Learned bool
}

// GalleryVectors returns the session's gallery embeddings of one model: the login frames first,
// then the learned ones, each oldest first.
func GalleryVectors(db *gorm.DB, sessionID, model string) ([]GalleryVector, error) {
	var rows []GalleryFace
	err := db.Select("seq, vector, source").Where("session_id = ? AND model = ?", sessionID, model).
		Order("id").Find(&rows).Error
	if err != nil {
		return nil, err
	}
	slices.SortStableFunc(rows, func(a, b GalleryFace) int {
		return cmp.Compare(boolInt(a.Source == GalleryLearned), boolInt(b.Source == GalleryLearned))
	})
	out := make([]GalleryVector, len(rows))
	for i, r := range rows {
		out[i].Learned = r.Source == GalleryLearned
		if out[i].Vector, err = open(db, r.Vector, aadGallery("vector", sessionID, r.Seq)); err != nil {
			return nil, fmt.Errorf("gallery of session %s: %w", sessionID, err)
		}
	}
	return out, nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// AddGalleryFace stores a gallery frame inside the frame's transaction; a redelivered frame adds
// nothing.
func AddGalleryFace(tx *gorm.DB, g *GalleryFace) error {
	row := *g
	var err error
	if row.Vector, err = seal(tx, g.Vector, aadGallery("vector", g.SessionID, g.Seq)); err != nil {
		return err
	}
	if row.JPEG, err = seal(tx, g.JPEG, aadGallery("jpeg", g.SessionID, g.Seq)); err != nil {
		return err
	}
	err = tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&row).Error
	g.ID, g.CreatedAt = row.ID, row.CreatedAt
	return err
}

// CountLoginFace counts a quality frame before answering, matched or not (Session.LoginFace*).
func CountLoginFace(tx *gorm.DB, sessionID string, matched bool) error {
	upd := map[string]any{"login_face_frames": gorm.Expr("login_face_frames + 1")}
	if matched {
		upd["login_face_matches"] = gorm.Expr("login_face_matches + 1")
	}
	return tx.Model(&Session{}).Where("id = ?", sessionID).Updates(upd).Error
}

// HasEvent reports whether the session received an event of the type.
func HasEvent(tx *gorm.DB, sessionID, eventType string) (bool, error) {
	var n int64
	err := tx.Model(&Event{}).Where("session_id = ? AND type = ?", sessionID, eventType).Limit(1).Count(&n).Error
	return n > 0, err
}

// ListGallery returns a session's gallery (without vectors and photos) for the reviewer.
func (s *Store) ListGallery(ctx context.Context, orgID, sessionID string) ([]GalleryFace, error) {
	if _, err := s.GetSession(ctx, orgID, sessionID); err != nil {
		return nil, err
	}
	var rows []GalleryFace
	err := s.DB.WithContext(ctx).Omit("vector", "jpeg").Where("session_id = ?", sessionID).Order("id").Find(&rows).Error
	return rows, err
}

// GalleryPhoto returns one gallery frame's JPEG (ErrNotFound for another organisation's).
func (s *Store) GalleryPhoto(ctx context.Context, orgID, sessionID string, id uint) ([]byte, error) {
	if _, err := s.GetSession(ctx, orgID, sessionID); err != nil {
		return nil, err
	}
	var g GalleryFace
	err := s.DB.WithContext(ctx).Select("session_id, seq, jpeg").Where("id = ? AND session_id = ?", id, sessionID).Take(&g).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return open(s.DB, g.JPEG, aadGallery("jpeg", g.SessionID, g.Seq))
}
