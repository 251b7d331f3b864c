package store

import (
	"context"
	"errors"
	"path/filepath"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// FrameImage keeps the JPEG of one analysed frame, so a reviewer can step through both cameras
// around a flag (the filmstrip). It is apart from FrameResult so listing frames and the rules'
// queries never read image bytes, and so retention can delete images while keeping the results
// (the page then says the images were purged). CreatedAt drives retention.
type FrameImage struct {
	SessionID    string `gorm:"primaryKey;size:64;index:frame_image_time,priority:1"`
	Camera       string `gorm:"primaryKey;size:16;index:frame_image_time,priority:2"`
	Seq          int64  `gorm:"primaryKey"`
	CapturedAtMs int64  `gorm:"index:frame_image_time,priority:3"`
	JPEG         []byte
	CreatedAt    time.Time `gorm:"index"`
}

// InsertFrameImages stores frames' JPEGs; a redelivered frame is a no-op.
func InsertFrameImages(tx *gorm.DB, imgs []*FrameImage) error {
	if len(imgs) == 0 {
		return nil
	}
	now := time.Now().UTC()
	for _, im := range imgs {
		im.CreatedAt = now
	}
	return tx.Clauses(clause.OnConflict{DoNothing: true}).CreateInBatches(imgs, 50).Error
}

// FrameRef is one analysed frame as the review page lists it: when, which camera, and the
// analyzers' observation (for the overlays).
type FrameRef struct {
	Camera       string
	Seq          int64
	CapturedAtMs int64
	Observation  string
}

// FramesBetween lists a session's analysed frames of one camera captured in [fromMs, toMs], in
// time order, at most limit (a page: the caller asks again from the last one's time + 1).
// withObservation leaves the observation out when false (it is the bulk of a row).
func (s *Store) FramesBetween(ctx context.Context, sessionID, camera string, fromMs, toMs int64, limit int,
	withObservation bool) ([]FrameRef, error) {
	cols := "camera, seq, captured_at_ms"
	if withObservation {
		cols += ", observation"
	}
	var out []FrameRef
	err := s.DB.WithContext(ctx).Model(&FrameResult{}).Select(cols).
		Where("session_id = ? AND camera = ? AND captured_at_ms BETWEEN ? AND ?", sessionID, camera, fromMs, toMs).
		Order("captured_at_ms").Order("seq").Limit(limit).Scan(&out).Error
	return out, err
}

// FrameImageOf returns the stored JPEG of a frame. ErrNotFound: no such frame was analysed;
// ErrPurged: the frame was analysed but its image is gone (retention, or not kept).
func (s *Store) FrameImageOf(ctx context.Context, sessionID, camera string, seq int64) (*FrameImage, error) {
	var im FrameImage
	err := s.DB.WithContext(ctx).Where("session_id = ? AND camera = ? AND seq = ?", sessionID, camera, seq).Take(&im).Error
	if err == nil {
		return &im, nil
	}
	if !errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, err
	}
	var n int64
	if err := s.DB.WithContext(ctx).Model(&FrameResult{}).
		Where("session_id = ? AND camera = ? AND seq = ?", sessionID, camera, seq).Count(&n).Error; err != nil {
		return nil, err
	}
	if n > 0 {
		return nil, ErrPurged
	}
	// The frames retention class removes the frame results with the images.
	var marks int64
	if err := s.DB.WithContext(ctx).Model(&RetentionMark{}).Where("session_id = ? AND class = ?", sessionID, "frames").
		Count(&marks).Error; err != nil {
		return nil, err
	}
	if marks > 0 {
		return nil, ErrPurged
	}
	return nil, ErrNotFound
}

// ErrPurged: the thing asked for existed, but its media (frame image, audio, recording) is no
// longer kept: retention deleted it, or the service was configured not to keep it.
var ErrPurged = errors.New("purged")

// AudioCoverage returns the spans of a session's analysed audio chunks overlapping [fromMs,
// toMs), by start; it tells "no audio was recorded here" (none) from "the audio was purged"
// (chunks, but no stored samples).
func (s *Store) AudioCoverage(ctx context.Context, sessionID string, fromMs, toMs int64) ([]Span, error) {
	return s.chunkSpans(ctx, "session_id = ? AND captured_at_ms >= ? AND captured_at_ms < ? AND captured_at_ms + duration_ms > ?",
		sessionID, fromMs-60_000, toMs, fromMs)
}

// chunkSpans is the time span of each audio chunk matching the condition, ordered by start.
func (s *Store) chunkSpans(ctx context.Context, cond string, args ...any) ([]Span, error) {
	var rows []AudioChunk
	err := s.DB.WithContext(ctx).Select("captured_at_ms, duration_ms").Where(cond, args...).
		Order("captured_at_ms").Find(&rows).Error
	if err != nil {
		return nil, err
	}
	out := make([]Span, len(rows))
	for i, r := range rows {
		out[i] = Span{r.CapturedAtMs, r.CapturedAtMs + r.DurationMs}
	}
	return out, nil
}

// AudioStretches returns a session's stretches of uninterrupted audio (start and end only).
func (s *Store) AudioStretches(ctx context.Context, sessionID string) ([]Span, error) {
	var rows []AudioStretch
	err := s.DB.WithContext(ctx).Select("start_ms, end_ms").Where("session_id = ?", sessionID).
		Order("start_ms").Find(&rows).Error
	if err != nil {
		return nil, err
	}
	out := make([]Span, len(rows))
	for i, r := range rows {
		out[i] = Span{r.StartMs, r.EndMs}
	}
	return out, nil
}

// PlayablePath is where the browser-playable copy (MP4, H.264/AAC, moov first) of recording id
// is kept under dir, next to the upload (RecordingPath): workers make it, the API serves it.
func PlayablePath(dir, id string) string { return filepath.Join(dir, id+".mp4") }

// AudioPiece is a stored audio chunk without its PCM: where it lies and how long it is.
type AudioPiece struct {
	Seq          int64
	CapturedAtMs int64
	SampleRate   int
	Bytes        int64
}

// EndMs is where the piece's audio ends.
func (p AudioPiece) EndMs() int64 {
	return p.CapturedAtMs + p.Bytes/2*1000/int64(max(p.SampleRate, 1))
}

// AudioPieces lists the session's stored audio chunks that overlap [fromMs, toMs), by capture
// time, without reading their PCM (the reviewer's player reads only the part it plays).
// Chunks are at most ~28 s (the API's 900 KiB limit at 16 kHz), hence the 30 s look-back.
func (s *Store) AudioPieces(ctx context.Context, sessionID string, fromMs, toMs int64) ([]AudioPiece, error) {
	var rows []AudioPiece
	err := s.DB.WithContext(ctx).Model(&AudioSample{}).
		Select("seq, captured_at_ms, sample_rate, length(pcm) AS bytes").
		Where("session_id = ? AND captured_at_ms >= ? AND captured_at_ms < ?", sessionID, fromMs-30_000, toMs).
		Order("captured_at_ms, seq").Scan(&rows).Error
	if err != nil {
		return nil, err
	}
	out := rows[:0]
	for _, r := range rows {
		if r.EndMs() > fromMs && r.SampleRate > 0 {
			out = append(out, r)
		}
	}
	return out, nil
}

// AudioPCM returns the PCM of the given chunks of a session, by seq.
func (s *Store) AudioPCM(ctx context.Context, sessionID string, seqs []int64) (map[int64][]byte, error) {
	var rows []AudioSample
	err := s.DB.WithContext(ctx).Select("seq, pcm").Where("session_id = ? AND seq IN ?", sessionID, seqs).Find(&rows).Error
	if err != nil {
		return nil, err
	}
	out := make(map[int64][]byte, len(rows))
	for _, r := range rows {
		out[r.Seq] = r.PCM
	}
	return out, nil
}

// FrameImagesOf returns the stored JPEGs of some frames of one camera, by seq (purged ones are
// absent).
func (s *Store) FrameImagesOf(ctx context.Context, sessionID, camera string, seqs []int64) (map[int64][]byte, error) {
	var rows []FrameImage
	err := s.DB.WithContext(ctx).Select("seq, jpeg").
		Where("session_id = ? AND camera = ? AND seq IN ?", sessionID, camera, seqs).Find(&rows).Error
	if err != nil {
		return nil, err
	}
	out := make(map[int64][]byte, len(rows))
	for _, r := range rows {
		out[r.Seq] = r.JPEG
	}
	return out, nil
}
