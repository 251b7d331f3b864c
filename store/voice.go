package store

import (
	"fmt"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// VoiceWindow is one speaker embedding of a stretch of speech (analyzer "voice"), in session ms;
// StartMs identifies it. Embedding is the 256-d L2-normalised vector quantised to one byte per
// component (the encoder's outputs are ≥ 0 after its ReLU; round(x·255), as the analyzer
// already rounds them, so stored and computed windows score alike): 256 bytes per 1.6 s of
// speech. The rules re-derive enrolment and SECOND_VOICE from these rows on every
// recomputation (rules/check_voice.go).
type VoiceWindow struct {
	ID        uint   `gorm:"primaryKey"`
	SessionID string `gorm:"size:64;uniqueIndex:voice_key,priority:1"`
	StartMs   int64  `gorm:"uniqueIndex:voice_key,priority:2"`
	EndMs     int64
	Embedding []byte
	StretchID uint
}

// EncodeVoiceEmbedding quantises an embedding (components in 0..1) to bytes.
func EncodeVoiceEmbedding(e []float32) []byte {
	out := make([]byte, len(e))
	for i, x := range e {
		out[i] = byte(min(255, max(0, x*255+0.5)))
	}
	return out
}

// DecodeVoiceEmbedding is the inverse of EncodeVoiceEmbedding.
func DecodeVoiceEmbedding(b []byte) []float32 {
	out := make([]float32, len(b))
	for i, q := range b {
		out[i] = float32(q) / 255
	}
	return out
}

// InsertVoiceWindows stores windows; one already stored (same start: a redelivery, or two
// stretches hearing the same moment) is kept.
func InsertVoiceWindows(tx *gorm.DB, ws []VoiceWindow) error {
	ws = lastPerKey(ws, func(w VoiceWindow) int64 { return w.StartMs })
	if len(ws) == 0 {
		return nil
	}
	// Speaker embeddings are biometric: sealed like face embeddings (crypto.go).
	for i := range ws {
		var err error
		if ws[i].Embedding, err = seal(tx, ws[i].Embedding, aadVoice(ws[i].SessionID, ws[i].StartMs)); err != nil {
			return err
		}
	}
	return tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&ws).Error
}

// SessionVoiceWindows returns a session's speaker embeddings in time order.
func SessionVoiceWindows(tx *gorm.DB, sessionID string) ([]VoiceWindow, error) {
	var out []VoiceWindow
	if err := tx.Where("session_id = ?", sessionID).Order("start_ms").Find(&out).Error; err != nil {
		return nil, err
	}
	for i := range out {
		var err error
		if out[i].Embedding, err = open(tx, out[i].Embedding, aadVoice(sessionID, out[i].StartMs)); err != nil {
			return nil, fmt.Errorf("voice windows of session %s: %w", sessionID, err)
		}
	}
	return out, nil
}
