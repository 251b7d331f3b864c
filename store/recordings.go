package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// RecordedSeqBase splits the seq space of frames and audio chunks: live posts use seqs below it
// (the API refuses higher ones); frames and audio cut from an uploaded recording use seqs from it
// up, derived from their capture time (RecordedFrameSeq, RecordedAudioSeq). Deriving the seq
// from the time makes reprocessing a recording after a crash hit the same unique keys (analysed
// once), and two recordings of the same camera covering the same moment collapse into one row.
// 2^52 keeps every seq a JavaScript-safe integer (< 2^53) for the reviewer UI, and stays above
// live seqs that are Unix times in ms or even µs (µs reach 2^52 only in 2112).
const RecordedSeqBase int64 = 1 << 52

// RecordedFrameSeq is the seq of a frame from a recording, captured at capturedAtMs.
func RecordedFrameSeq(capturedAtMs int64) int64 { return RecordedSeqBase + capturedAtMs }

// RecordedAudioSeq is the seq of the audio chunk of a recording that starts at capturedAtMs,
// for chunks of chunkMs: the index of its time slot. Consecutive chunks of one recording get
// consecutive seqs, which is how the audio pipeline recognises an uninterrupted stream.
func RecordedAudioSeq(capturedAtMs, chunkMs int64) int64 {
	return RecordedSeqBase + capturedAtMs/max(chunkMs, 1)
}

// Recording statuses. A recording moves uploading → verifying → processing → done, or to failed
// from any of them with Error saying why.
const (
	RecordingUploading  = "uploading"  // chunks arriving; Received bytes are on disk (fsync'd)
	RecordingVerifying  = "verifying"  // all bytes in and the checksum matched; queued for a worker
	RecordingProcessing = "processing" // a worker decodes it and feeds frames/audio to Kafka
	RecordingDone       = "done"       // every sampled frame and audio chunk is queued
	RecordingFailed     = "failed"     // see Error
)

// Recording is one whole video file uploaded after (or instead of) live streaming: the evidence
// phone uploads its recording at the end of the exam, and a main client that lost its network
// uploads what it recorded. (session, camera, sha256) is unique, so a client that restarts and
// re-creates the same upload gets the existing one back and resumes at Received.
type Recording struct {
	ID          string `gorm:"primaryKey;size:32" json:"id"`
	SessionID   string `gorm:"size:64;uniqueIndex:recording_key,priority:1" json:"session_id"`
	Camera      string `gorm:"size:16;uniqueIndex:recording_key,priority:2" json:"camera"`
	SHA256      string `gorm:"size:64;uniqueIndex:recording_key,priority:3" json:"sha256"`
	Size        int64  `json:"size"`
	ContentType string `gorm:"size:64" json:"content_type"`
	// StartedAtMs is the wall-clock time of the video's first frame (client clock, ms since
	// epoch): a frame at position p in the file was captured at StartedAtMs + p.
	StartedAtMs int64  `json:"started_at"`
	Status      string `gorm:"size:16;index" json:"status"`
	Error       string `json:"error,omitempty"`
	// Note says what was left out without failing the recording (no audio track, ...).
	Note string `json:"note,omitempty"`

	// Upload state. Received bytes are fsync'd to the file before the row says so; HashState is
	// the SHA-256 state over them (crypto/sha256 is BinaryMarshaler), so the checksum is ready
	// the moment the last chunk lands, on whichever API process receives it.
	Received  int64  `json:"received"`
	HashState []byte `json:"-"`
	// WriterUntilMs: a chunk is being written until then (one writer at a time per recording,
	// across API processes sharing the directory); 0 when none.
	WriterUntilMs int64 `json:"-"`

	// Processing state, kept in the row so a replacement worker resumes where a crashed one
	// stopped. LeaseUntilMs/ClaimedBy: the worker processing it and until when its claim holds.
	LeaseUntilMs int64  `gorm:"index" json:"-"`
	ClaimedBy    string `gorm:"size:64" json:"-"`
	// Attempts counts claims that made no progress; too many means the file crashes workers.
	Attempts   int   `json:"-"`
	DurationMs int64 `json:"duration_ms"`
	// FramesTotal is the number of frames sampling will yield (an estimate until done).
	FramesTotal int64 `json:"frames_total"`
	// FramesSent were queued for analysis; DuplicatesSkipped were not, because a live frame of
	// the same camera lies within half a sampling interval.
	FramesSent        int64 `json:"frames_sent"`
	DuplicatesSkipped int64 `json:"duplicates_skipped"`
	// FramePosMs: sampling resumes at this position in the video (ms from the first frame).
	FramePosMs int64 `json:"-"`
	// AudioChunksSent were queued; AudioSkippedMs of the track were already covered live.
	AudioChunksSent int64 `json:"audio_chunks_sent"`
	AudioSkippedMs  int64 `json:"audio_skipped_ms"`
	AudioPosMs      int64 `json:"-"`

	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
	UploadedAt  int64     `json:"uploaded_at,omitempty"`  // ms since epoch, when the last byte arrived
	ProcessedAt int64     `json:"processed_at,omitempty"` // ms since epoch, when done or failed
}

// RecordingPath is where the upload of recording id is stored under dir: the API writes it and
// the workers read it.
func RecordingPath(dir, id string) string { return filepath.Join(dir, id+".video") }

// CreateRecording inserts r unless (session, camera, sha256) exists. It returns the row now stored
// and whether it is the new one.
func (s *Store) CreateRecording(ctx context.Context, r *Recording) (*Recording, bool, error) {
	if r.ID == "" {
		r.ID = randomHex(12)
	}
	res := s.DB.WithContext(ctx).Clauses(clause.OnConflict{DoNothing: true}).Create(r)
	if res.Error != nil {
		return nil, false, fmt.Errorf("create recording: %w", res.Error)
	}
	if res.RowsAffected == 1 {
		return r, true, nil
	}
	var existing Recording
	err := s.DB.WithContext(ctx).Where("session_id = ? AND camera = ? AND sha256 = ?", r.SessionID, r.Camera, r.SHA256).
		Take(&existing).Error
	if err != nil {
		return nil, false, fmt.Errorf("load existing recording: %w", err)
	}
	return &existing, false, nil
}

// RestartRecording puts a failed recording back to an empty upload (the client re-created it).
func (s *Store) RestartRecording(ctx context.Context, id string) error {
	return s.DB.WithContext(ctx).Model(&Recording{}).Where("id = ? AND status = ?", id, RecordingFailed).
		Updates(map[string]any{"status": RecordingUploading, "error": "", "note": "", "received": 0,
			"hash_state": nil, "writer_until_ms": 0, "lease_until_ms": 0, "claimed_by": "", "attempts": 0,
			"frames_total": 0, "frames_sent": 0, "duplicates_skipped": 0, "frame_pos_ms": 0,
			"audio_chunks_sent": 0, "audio_skipped_ms": 0, "audio_pos_ms": 0, "duration_ms": 0,
			"uploaded_at": 0, "processed_at": 0}).Error
}

// GetRecording returns a recording of a session, or ErrNotFound.
func (s *Store) GetRecording(ctx context.Context, sessionID, id string) (*Recording, error) {
	var r Recording
	err := s.DB.WithContext(ctx).Where("id = ? AND session_id = ?", id, sessionID).Take(&r).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, ErrNotFound
	}
	return &r, err
}

// SessionRecordings returns a session's recordings, oldest first.
func (s *Store) SessionRecordings(ctx context.Context, sessionID string) ([]Recording, error) {
	var out []Recording
	err := s.DB.WithContext(ctx).Omit("hash_state").Where("session_id = ?", sessionID).
		Order("created_at").Order("id").Find(&out).Error
	return out, err
}

// BeginChunk takes the recording's writer slot for a chunk at offset: it succeeds only while the
// upload is at exactly that offset and no other writer holds the slot (or its hold expired).
func (s *Store) BeginChunk(ctx context.Context, id string, offset int64, now time.Time, hold time.Duration) (bool, error) {
	res := s.DB.WithContext(ctx).Model(&Recording{}).
		Where("id = ? AND status = ? AND received = ? AND writer_until_ms < ?", id, RecordingUploading, offset, now.UnixMilli()).
		Update("writer_until_ms", now.Add(hold).UnixMilli())
	return res.RowsAffected == 1, res.Error
}

// CommitChunk records bytes written at offset (already fsync'd) and releases the writer slot.
// status moves the upload on when it is complete (verifying, or failed with errMsg).
func (s *Store) CommitChunk(ctx context.Context, id string, offset, received int64, hashState []byte,
	status, errMsg string, now time.Time) (bool, error) {
	upd := map[string]any{"received": received, "hash_state": hashState, "writer_until_ms": 0, "status": status}
	if status != RecordingUploading {
		upd["uploaded_at"] = now.UnixMilli()
	}
	if status == RecordingFailed {
		upd["error"], upd["processed_at"] = errMsg, now.UnixMilli()
	}
	res := s.DB.WithContext(ctx).Model(&Recording{}).
		Where("id = ? AND status = ? AND received = ?", id, RecordingUploading, offset).Updates(upd)
	return res.RowsAffected == 1, res.Error
}

// AbortChunk releases the writer slot after a failed write; the upload stays at offset.
func (s *Store) AbortChunk(ctx context.Context, id string, offset int64) error {
	return s.DB.WithContext(ctx).Model(&Recording{}).Where("id = ? AND received = ?", id, offset).
		Update("writer_until_ms", 0).Error
}

// FailUpload marks an upload failed (e.g. the first bytes are not a video container).
func (s *Store) FailUpload(ctx context.Context, id, msg string, now time.Time) error {
	return s.DB.WithContext(ctx).Model(&Recording{}).Where("id = ? AND status = ?", id, RecordingUploading).
		Updates(map[string]any{"status": RecordingFailed, "error": msg, "writer_until_ms": 0,
			"processed_at": now.UnixMilli()}).Error
}

// ClaimRecording hands one recording that is ready for processing (verifying or processing, and
// its previous claim, if any, expired) to worker until now+lease. It increments Attempts; nil
// when there is nothing to do. The conditional update makes it safe for several workers.
func (s *Store) ClaimRecording(ctx context.Context, worker string, now time.Time, lease time.Duration) (*Recording, error) {
	db := s.DB.WithContext(ctx)
	var cands []Recording
	err := db.Select("id, lease_until_ms").
		Where("status IN ? AND lease_until_ms < ?", []string{RecordingVerifying, RecordingProcessing}, now.UnixMilli()).
		Order("uploaded_at").Limit(8).Find(&cands).Error
	if err != nil {
		return nil, err
	}
	for _, c := range cands {
		res := db.Model(&Recording{}).
			Where("id = ? AND lease_until_ms = ? AND status IN ?", c.ID, c.LeaseUntilMs, []string{RecordingVerifying, RecordingProcessing}).
			Updates(map[string]any{"lease_until_ms": now.Add(lease).UnixMilli(), "claimed_by": worker,
				"attempts": gorm.Expr("attempts + 1")})
		if res.Error != nil {
			return nil, res.Error
		}
		if res.RowsAffected == 1 {
			var r Recording
			if err := db.Omit("hash_state").Take(&r, "id = ?", c.ID).Error; err != nil {
				return nil, err
			}
			return &r, nil
		}
	}
	return nil, nil
}

// ErrLeaseLost means another worker claimed the recording (this one was too slow or presumed dead).
var ErrLeaseLost = errors.New("recording claimed by another worker")

// UpdateClaimed applies upd to a recording this worker holds, extending its lease to leaseUntil
// (0 releases it). ErrLeaseLost when the claim moved on.
func (s *Store) UpdateClaimed(ctx context.Context, id, worker string, leaseUntil int64, upd map[string]any) error {
	if upd == nil {
		upd = map[string]any{}
	}
	upd["lease_until_ms"] = leaseUntil
	res := s.DB.WithContext(ctx).Model(&Recording{}).Where("id = ? AND claimed_by = ?", id, worker).Updates(upd)
	if res.Error != nil {
		return res.Error
	}
	if res.RowsAffected == 0 {
		return ErrLeaseLost
	}
	return nil
}

// LiveFrameTimes returns the capture times of a session's live frames (seq below
// RecordedSeqBase) of one camera in [fromMs, toMs], ascending.
func (s *Store) LiveFrameTimes(ctx context.Context, sessionID, camera string, fromMs, toMs int64) ([]int64, error) {
	var out []int64
	err := s.DB.WithContext(ctx).Model(&FrameResult{}).
		Where("session_id = ? AND camera = ? AND seq < ? AND captured_at_ms BETWEEN ? AND ?",
			sessionID, camera, RecordedSeqBase, fromMs, toMs).
		Order("captured_at_ms").Pluck("captured_at_ms", &out).Error
	return out, err
}

// Span is a time interval [StartMs, EndMs) in ms since epoch.
type Span struct{ StartMs, EndMs int64 }

// LiveAudioSpans returns the intervals of a session's live audio chunks (seq below
// RecordedSeqBase) that overlap [fromMs, toMs), ordered by start.
func (s *Store) LiveAudioSpans(ctx context.Context, sessionID string, fromMs, toMs int64) ([]Span, error) {
	return s.chunkSpans(ctx, "session_id = ? AND seq < ? AND captured_at_ms < ? AND captured_at_ms + duration_ms > ?",
		sessionID, RecordedSeqBase, toMs, fromMs)
}
