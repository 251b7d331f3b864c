package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// AudioStretch is a run of a session's audio chunks without a gap, analysed as one stream. Its
// State is the analyzers' saved state after the last chunk (recurrent VAD state, half-filled
// frames, embedding history), written in the same transaction as that chunk's results: a worker
// that takes the session over after a crash continues the stretch exactly where the stored
// results end, and a redelivered chunk is recognised by its AudioChunk row and skipped.
//
// A chunk continues the stretch whose NextSeq is its seq (and whose EndMs is close to its
// captured_at); any other chunk (after a gap, or a late chunk from before a reconnect) starts a
// new stretch with fresh model state, so nothing is dropped and the only loss is context at the
// stretch's first ~2 s.
type AudioStretch struct {
	ID         uint   `gorm:"primaryKey"`
	SessionID  string `gorm:"size:64;uniqueIndex:stretch_key,priority:1;index:stretch_next,priority:1"`
	StartSeq   int64  `gorm:"uniqueIndex:stretch_key,priority:2"`
	NextSeq    int64  `gorm:"index:stretch_next,priority:2"`
	StartMs    int64  // captured_at of its first chunk: stretch times are relative to it
	EndMs      int64  // StartMs + audio analysed so far: where the next chunk should begin
	SampleRate int    // input rate; a change of rate starts a new stretch
	Chunks     int
	State      []byte
	Version    string `gorm:"size:300"` // analyzer versions that wrote State
	UpdatedAt  time.Time
}

// SpeechSegment is a stretch of speech the VAD found, in session (client clock) ms. StartMs
// identifies it: while it is still going (Open) each chunk moves its end on.
type SpeechSegment struct {
	ID        uint   `gorm:"primaryKey" json:"-"`
	SessionID string `gorm:"size:64;uniqueIndex:speech_key,priority:1" json:"-"`
	StartMs   int64  `gorm:"uniqueIndex:speech_key,priority:2" json:"start_ms"`
	EndMs     int64  `json:"end_ms"`
	Open      bool   `json:"open"`
	StretchID uint   `json:"-"`
}

// PhraseDetection is one spotted closing phrase ("该题回答完毕" or a same-meaning variant), in
// session ms; OnsetMs identifies it. Score is kept so reviewers can see how sure the spotter was.
type PhraseDetection struct {
	ID        uint    `gorm:"primaryKey" json:"-"`
	SessionID string  `gorm:"size:64;uniqueIndex:phrase_key,priority:1" json:"-"`
	OnsetMs   int64   `gorm:"uniqueIndex:phrase_key,priority:2" json:"-"`
	StartMs   int64   `json:"start_ms"`
	EndMs     int64   `json:"end_ms"`
	Score     float32 `json:"score"`
	Final     bool    `json:"-"`
	StretchID uint    `json:"-"`
}

// AnswerSegment is one answer: from the question (or the previous closing phrase) to the phrase
// that closed it. Rows are recomputed from events, speech and phrases (rules/answers.go) whenever
// one of them changes, so they are always the function of what is stored.
type AnswerSegment struct {
	ID             uint    `gorm:"primaryKey" json:"-"`
	SessionID      string  `gorm:"size:64;uniqueIndex:answer_key,priority:1" json:"-"`
	Question       int     `gorm:"uniqueIndex:answer_key,priority:2" json:"question"`
	StartMs        int64   `json:"start_ms"`
	EndMs          int64   `json:"end_ms"`
	ClosedByPhrase bool    `json:"closed_by_phrase"`
	PhraseScore    float32 `json:"phrase_score,omitempty"`
	SpeechMs       int64   `json:"speech_ms"`
	// Status: "closed" (phrase heard), "not_closed" (next question or the end came without it),
	// "answering" (still open), "awaiting_audio" (the boundary passed but its audio has not
	// been analysed yet).
	Status string `gorm:"size:16" json:"status"`
	// Source: "question_shown" (bounded by the platform's events) or "phrase" (no events: bounded
	// by the phrases alone).
	Source string `gorm:"size:16" json:"source"`
}

// Answer statuses.
const (
	AnswerClosed        = "closed"
	AnswerNotClosed     = "not_closed"
	AnswerAnswering     = "answering"
	AnswerAwaitingAudio = "awaiting_audio"
)

// AudioChunkStored reports whether a chunk was already analysed (redelivery, resend).
func (s *Store) AudioChunkStored(ctx context.Context, sessionID string, seq int64) (bool, error) {
	var n int64
	err := s.DB.WithContext(ctx).Model(&AudioChunk{}).Where("session_id = ? AND seq = ?", sessionID, seq).Count(&n).Error
	return n > 0, err
}

// FindStretch returns the session's stretch that the chunk seq continues, or nil.
func (s *Store) FindStretch(ctx context.Context, sessionID string, seq int64) (*AudioStretch, error) {
	var st AudioStretch
	err := s.DB.WithContext(ctx).Where("session_id = ? AND next_seq = ?", sessionID, seq).
		Order("id DESC").Limit(1).Take(&st).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, nil
	}
	return &st, err
}

// ErrStretchMoved means another worker advanced the stretch first: retry the chunk.
var ErrStretchMoved = errors.New("audio stretch advanced concurrently")

// SaveStretch inserts a new stretch (ID 0) or advances an existing one from fromSeq; the update
// only applies if nobody else advanced it meanwhile.
func SaveStretch(tx *gorm.DB, st *AudioStretch, fromSeq int64) error {
	st.UpdatedAt = time.Now()
	if st.ID == 0 {
		return tx.Create(st).Error
	}
	res := tx.Model(&AudioStretch{}).Where("id = ? AND next_seq = ?", st.ID, fromSeq).Updates(map[string]any{
		"next_seq": st.NextSeq, "end_ms": st.EndMs, "chunks": st.Chunks, "state": st.State,
		"version": st.Version, "updated_at": st.UpdatedAt})
	if res.Error != nil {
		return res.Error
	}
	if res.RowsAffected != 1 {
		return fmt.Errorf("stretch %d from seq %d: %w", st.ID, fromSeq, ErrStretchMoved)
	}
	return nil
}

// UpsertSpeech stores segments; a segment already stored (same start) keeps the later end.
func UpsertSpeech(tx *gorm.DB, segs []SpeechSegment) error {
	// One INSERT … ON CONFLICT may not touch a row twice (PostgreSQL): one row per key.
	segs = lastPerKey(segs, func(s SpeechSegment) int64 { return s.StartMs })
	if len(segs) == 0 {
		return nil
	}
	return tx.Clauses(clause.OnConflict{
		Columns: []clause.Column{{Name: "session_id"}, {Name: "start_ms"}},
		DoUpdates: clause.Assignments(map[string]any{
			"end_ms": gorm.Expr("CASE WHEN excluded.end_ms > speech_segments.end_ms THEN excluded.end_ms ELSE speech_segments.end_ms END"),
			"open":   gorm.Expr("excluded.open"),
		}),
	}).Create(&segs).Error
}

// UpsertPhrases stores detections; one already stored (same onset) takes the newer values.
func UpsertPhrases(tx *gorm.DB, ps []PhraseDetection) error {
	ps = lastPerKey(ps, func(p PhraseDetection) int64 { return p.OnsetMs })
	if len(ps) == 0 {
		return nil
	}
	return tx.Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "session_id"}, {Name: "onset_ms"}},
		DoUpdates: clause.AssignmentColumns([]string{"start_ms", "end_ms", "score", "final"}),
	}).Create(&ps).Error
}

// lastPerKey keeps the last item of each key, in first-seen order.
func lastPerKey[T any](items []T, key func(T) int64) []T {
	at := make(map[int64]int, len(items))
	out := items[:0:0]
	for _, it := range items {
		if i, ok := at[key(it)]; ok {
			out[i] = it
			continue
		}
		at[key(it)] = len(out)
		out = append(out, it)
	}
	return out
}

// SessionAudio is everything answer segmentation reads about a session's audio.
type SessionAudio struct {
	Speech  []SpeechSegment
	Phrases []PhraseDetection
	// Stretches give the audio coverage: a handful of rows per session instead of one per chunk
	// (recomputation runs after every chunk).
	Stretches []AudioStretch
}

// LoadSessionAudio reads a session's speech, phrases and stretch spans in time order.
func LoadSessionAudio(tx *gorm.DB, sessionID string) (*SessionAudio, error) {
	var a SessionAudio
	if err := tx.Where("session_id = ?", sessionID).Order("start_ms").Find(&a.Speech).Error; err != nil {
		return nil, err
	}
	if err := tx.Where("session_id = ?", sessionID).Order("end_ms").Find(&a.Phrases).Error; err != nil {
		return nil, err
	}
	if err := tx.Select("start_ms, end_ms").Where("session_id = ?", sessionID).
		Order("start_ms").Find(&a.Stretches).Error; err != nil {
		return nil, err
	}
	return &a, nil
}

// ReplaceAnswers stores a session's answers, removing rows for questions no longer present.
func ReplaceAnswers(tx *gorm.DB, sessionID string, answers []AnswerSegment) error {
	for i := range answers {
		answers[i].SessionID = sessionID
	}
	if len(answers) > 0 {
		if err := tx.Clauses(clause.OnConflict{
			Columns: []clause.Column{{Name: "session_id"}, {Name: "question"}},
			DoUpdates: clause.AssignmentColumns([]string{"start_ms", "end_ms", "closed_by_phrase", "phrase_score",
				"speech_ms", "status", "source"}),
		}).Create(&answers).Error; err != nil {
			return err
		}
	}
	return tx.Where("session_id = ? AND question > ?", sessionID, len(answers)).Delete(&AnswerSegment{}).Error
}

// SessionAnswers returns a session's answers in question order.
func (s *Store) SessionAnswers(ctx context.Context, sessionID string) ([]AnswerSegment, error) {
	var out []AnswerSegment
	err := s.DB.WithContext(ctx).Where("session_id = ?", sessionID).Order("question").Find(&out).Error
	return out, err
}

// SessionPhrases returns a session's phrase detections in time order.
func (s *Store) SessionPhrases(ctx context.Context, sessionID string) ([]PhraseDetection, error) {
	var out []PhraseDetection
	err := s.DB.WithContext(ctx).Where("session_id = ?", sessionID).Order("end_ms").Find(&out).Error
	return out, err
}

// LockSession serialises answer recomputation per session on PostgreSQL (the audio and the
// events consumers may recompute the same session at once; without the lock the later commit
// could be computed from a snapshot missing the other's rows). SQLite transactions are already
// serial (BEGIN IMMEDIATE).
func LockSession(tx *gorm.DB, postgres bool, sessionID string) error {
	if !postgres {
		return nil
	}
	return tx.Exec("SELECT id FROM sessions WHERE id = ? FOR UPDATE", sessionID).Error
}
