package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/segmentio/kafka-go"

	"proctor/analyzers"
	"proctor/internal/digest"
	"proctor/pipeline"
	"proctor/store"
)

// Recorded videos: the evidence phone uploads its whole recording at the end of the exam, and a
// main client that lost its network uploads what it recorded meanwhile (api/recordings.go takes
// the upload). A RecordingProcessor, run by every worker process, claims each verified upload,
// decodes it, samples frames (and cuts the audio track into chunks) with their original capture
// times and produces them to the same frames and audio topics as live posts: everything after
// Kafka is unchanged. Frames get seqs from store.RecordedFrameSeq, audio chunks from
// store.RecordedAudioSeq, so redelivery and reprocessing stay idempotent.

// RecordingConfig configures the processing of uploaded recordings. Zero values take the defaults.
type RecordingConfig struct {
	// Dir holds the uploaded files (<recording id>.video). The API writes it and the workers read
	// it, so processes on different machines need a shared volume. Default "data/recordings".
	Dir string
	// FrameRate is how many frames per second of video are analysed. Default 1, the rate live
	// frames are posted at; the face rules' thresholds (seconds) do not depend on it.
	FrameRate float64
	// AudioChunk is the length of the audio messages cut from the track. Default 5 s (160 KB of
	// 16 kHz s16le, well under the 1 MiB message limit).
	AudioChunk time.Duration
	// MaxFrameSide and MaxFrameBytes bound the frames produced (see analyzers.SampleOptions).
	// Defaults 1280 px and 900 KiB.
	MaxFrameSide, MaxFrameBytes int
	// Batch is how many frames are produced per Kafka request and per progress update.
	// Default 16: ~1 MB per request, and progress every 16 s of video.
	Batch int
	// Lease is how long a claim on a recording holds without a progress update; a worker that
	// dies is replaced after this long. Default 1 min.
	Lease time.Duration
	// Poll is how often an idle processor looks for work. Default 1 s.
	Poll time.Duration
	// MaxAttempts: a recording whose processing was claimed this many times in a row without
	// progress (the file keeps crashing workers) fails. Default 3.
	MaxAttempts int
	// Tools names ffprobe and ffmpeg (default: found on PATH). Without ffprobe, files reach
	// OpenCV unchecked; without ffmpeg, audio is skipped with a note.
	Tools analyzers.VideoTools
}

// WithDefaults fills the zero fields.
func (c RecordingConfig) WithDefaults() RecordingConfig {
	if c.Dir == "" {
		c.Dir = filepath.Join("data", "recordings")
	}
	if c.FrameRate <= 0 {
		c.FrameRate = 1
	}
	if c.AudioChunk <= 0 {
		c.AudioChunk = 5 * time.Second
	}
	if c.MaxFrameSide <= 0 {
		c.MaxFrameSide = 1280
	}
	if c.MaxFrameBytes <= 0 {
		c.MaxFrameBytes = 900 << 10
	}
	if c.Batch <= 0 {
		c.Batch = 16
	}
	if c.Lease <= 0 {
		c.Lease = time.Minute
	}
	if c.Poll <= 0 {
		c.Poll = time.Second
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 3
	}
	return c
}

// RecordingProcessor turns uploaded recordings into frame and audio messages.
type RecordingProcessor struct {
	cfg    RecordingConfig
	store  *store.Store
	out    pipeline.Sender
	topics pipeline.Topics
	log    *slog.Logger
	worker string // identifies this processor's claims
	now    func() time.Time
}

// NewRecordingProcessor returns a processor producing to topics through out.
func NewRecordingProcessor(cfg RecordingConfig, st *store.Store, out pipeline.Sender, topics pipeline.Topics, log *slog.Logger) *RecordingProcessor {
	host, _ := os.Hostname()
	if log == nil {
		log = slog.Default()
	}
	return &RecordingProcessor{cfg: cfg.WithDefaults(), store: st, out: out, topics: topics, log: log,
		worker: fmt.Sprintf("%s/%d/%s", host, os.Getpid(), store.NewID()[:6]), now: time.Now}
}

// Run processes recordings until ctx ends.
func (p *RecordingProcessor) Run(ctx context.Context) {
	t := time.NewTicker(p.cfg.Poll)
	defer t.Stop()
	for {
		for {
			did, err := p.RunOnce(ctx)
			if err != nil && ctx.Err() == nil {
				p.log.Warn("recording processing failed; retrying later", "err", err)
			}
			if !did || ctx.Err() != nil {
				break
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// RunOnce claims one recording that is ready and processes it to the end (or until an error).
// It reports whether there was one.
func (p *RecordingProcessor) RunOnce(ctx context.Context) (bool, error) {
	rec, err := p.store.ClaimRecording(ctx, p.worker, p.now(), p.cfg.Lease)
	if err != nil || rec == nil {
		return false, err
	}
	log := p.log.With("session", rec.SessionID, "recording", rec.ID, "camera", rec.Camera)
	if rec.Attempts > p.cfg.MaxAttempts {
		msg := fmt.Sprintf("processing stopped %d times without progress (the file may crash the decoder); "+
			"the file is kept for inspection", rec.Attempts-1)
		log.Error("recording failed", "err", msg)
		return true, p.finish(ctx, rec, store.RecordingFailed, msg)
	}
	start := time.Now()
	err = p.process(ctx, rec, log)
	var bad *badRecording
	switch {
	case err == nil:
		log.Info("recording processed", "frames_sent", rec.FramesSent, "duplicates_skipped", rec.DuplicatesSkipped,
			"audio_chunks", rec.AudioChunksSent, "seconds", time.Since(start).Seconds())
		return true, p.finish(ctx, rec, store.RecordingDone, "")
	case errors.As(err, &bad):
		log.Warn("recording failed", "err", bad.msg)
		return true, p.finish(ctx, rec, store.RecordingFailed, bad.msg)
	case errors.Is(err, store.ErrLeaseLost):
		log.Warn("recording taken over by another worker")
		return true, nil
	default:
		// Transient (Kafka or database down, shutting down): give the claim back so this or
		// another worker resumes from the saved position; this attempt does not count.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		retry := p.now().Add(5 * time.Second).UnixMilli()
		if ctx.Err() != nil {
			retry = 0
		}
		_ = p.store.UpdateClaimed(rctx, rec.ID, p.worker, retry, map[string]any{"attempts": max(rec.Attempts-1, 0)})
		return true, fmt.Errorf("recording %s: %w", rec.ID, err)
	}
}

// badRecording is a problem with the file itself: retrying cannot help.
type badRecording struct{ msg string }

func (b *badRecording) Error() string { return b.msg }

func bad(format string, args ...any) error { return &badRecording{fmt.Sprintf(format, args...)} }

func (p *RecordingProcessor) finish(ctx context.Context, rec *store.Recording, status, msg string) error {
	upd := map[string]any{"status": status, "processed_at": p.now().UnixMilli(), "note": rec.Note}
	if status == store.RecordingFailed {
		upd["error"] = msg
	} else {
		upd["frames_total"] = rec.FramesSent + rec.DuplicatesSkipped
	}
	return p.store.UpdateClaimed(ctx, rec.ID, p.worker, 0, upd)
}

// progress saves how far processing got and extends the claim. Attempts goes back to 1: this
// claim made progress, so only claims after it that make none count towards MaxAttempts.
func (p *RecordingProcessor) progress(ctx context.Context, rec *store.Recording, upd map[string]any) error {
	upd["attempts"] = 1
	rec.Attempts = 1
	return p.store.UpdateClaimed(ctx, rec.ID, p.worker, p.now().Add(p.cfg.Lease).UnixMilli(), upd)
}

func (p *RecordingProcessor) process(ctx context.Context, rec *store.Recording, log *slog.Logger) error {
	path := store.RecordingPath(p.cfg.Dir, rec.ID)
	if rec.Status == store.RecordingVerifying {
		// The API hashed the bytes as they arrived; hashing the file as the worker sees it
		// catches a directory that is not shared, or storage that lost or changed data.
		sum, err := digest.File(path)
		if errors.Is(err, os.ErrNotExist) {
			log.Error("recording file missing", "path", path)
			return bad("the uploaded file is missing on worker %s: API and workers must share the recordings directory (--recordings-dir)", p.worker)
		}
		if err != nil {
			return err
		}
		if sum != rec.SHA256 {
			return bad("the stored file's SHA-256 is %s, not the uploaded %s: storage lost or changed data; upload it again", sum, rec.SHA256)
		}
		rec.Status = store.RecordingProcessing
		if err := p.progress(ctx, rec, map[string]any{"status": rec.Status}); err != nil {
			return err
		}
		log.Debug("recording verified")
	}
	info, err := analyzers.ProbeVideo(ctx, path, p.cfg.Tools)
	if errors.Is(err, analyzers.ErrNotVideo) {
		return bad("%v", err)
	}
	if err != nil {
		return err
	}
	rec.DurationMs = info.DurationMs
	// A recording cannot end in the future: started_at is then not the first frame's wall clock
	// (seconds for ms, a wrong client clock), and every flag would land at the wrong time.
	if end := rec.StartedAtMs + info.DurationMs; end > p.now().Add(maxClockSkew).UnixMilli() {
		return bad("started_at %d plus the video's %.1f s ends %s in the future: started_at must be the wall-clock time (ms) of the first frame",
			rec.StartedAtMs, float64(info.DurationMs)/1000, time.Duration(end-p.now().UnixMilli())*time.Millisecond)
	}
	if rec.FramesTotal == 0 {
		rec.FramesTotal = info.SampledFrames(p.cfg.FrameRate)
		if err := p.progress(ctx, rec, map[string]any{"duration_ms": rec.DurationMs, "frames_total": rec.FramesTotal}); err != nil {
			return err
		}
	}
	if err := p.sendFrames(ctx, rec, path); err != nil {
		return err
	}
	if rec.FramesSent+rec.DuplicatesSkipped == 0 {
		return bad("no frame of the video could be decoded (%s %dx%d, %s): the file is damaged", info.Codec, info.Width, info.Height, info.Container)
	}
	if err := p.sendAudio(ctx, rec, path, info); err != nil {
		return err
	}
	p.makePlayable(ctx, rec, path, info, log)
	return nil
}

// sendFrames samples the video from where the last run stopped, skips frames already received
// live and produces the rest in batches, saving progress after each batch. A crash between
// producing and saving re-produces at most one batch, which the frame handler recognises by seq.
func (p *RecordingProcessor) sendFrames(ctx context.Context, rec *store.Recording, path string) error {
	half := int64(500 / p.cfg.FrameRate)
	var (
		batch  []analyzers.VideoFrame
		nextMs = rec.FramePosMs
	)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		first, last := rec.StartedAtMs+batch[0].OffsetMs, rec.StartedAtMs+batch[len(batch)-1].OffsetMs
		live, err := p.store.LiveFrameTimes(ctx, rec.SessionID, rec.Camera, first-half, last+half)
		if err != nil {
			return err
		}
		msgs := make([]kafka.Message, 0, len(batch))
		now := p.now().UnixMilli()
		var dups int64
		for _, f := range batch {
			at := rec.StartedAtMs + f.OffsetMs
			if nearest(live, at) <= half {
				dups++
				continue
			}
			msgs = append(msgs, pipeline.EncodeFrame(pipeline.FrameMessage{SessionID: rec.SessionID, Camera: rec.Camera,
				Seq: store.RecordedFrameSeq(at), CapturedAtMs: at, ReceivedAtMs: now, JPEG: f.JPEG}))
		}
		if err := p.out.Send(ctx, p.topics.Frames, msgs...); err != nil {
			return err
		}
		rec.FramesSent += int64(len(msgs))
		rec.DuplicatesSkipped += dups
		rec.FramePosMs = nextMs
		batch = batch[:0]
		// The estimate from the container can be short (a truncated file's header says more
		// frames than it has, or fewer); never show more than 100%.
		rec.FramesTotal = max(rec.FramesTotal, rec.FramesSent+rec.DuplicatesSkipped)
		return p.progress(ctx, rec, map[string]any{"frames_sent": rec.FramesSent,
			"duplicates_skipped": rec.DuplicatesSkipped, "frame_pos_ms": rec.FramePosMs, "frames_total": rec.FramesTotal})
	}
	opt := analyzers.SampleOptions{Rate: p.cfg.FrameRate, FromMs: rec.FramePosMs,
		MaxSide: p.cfg.MaxFrameSide, MaxJPEGBytes: p.cfg.MaxFrameBytes}
	err := analyzers.SampleVideo(ctx, path, opt, func(f analyzers.VideoFrame) error {
		if rec.StartedAtMs+f.OffsetMs <= 0 {
			return bad("started_at %d + frame position %d ms is not a valid capture time", rec.StartedAtMs, f.OffsetMs)
		}
		batch = append(batch, f)
		nextMs = f.NextMs
		if len(batch) >= p.cfg.Batch {
			return flush()
		}
		return nil
	})
	if errors.Is(err, analyzers.ErrNotVideo) {
		return bad("%v", err)
	}
	if err != nil {
		return err
	}
	return flush()
}

// nearest is the distance from at to the closest time in sorted, or MaxInt64 when empty.
func nearest(sorted []int64, at int64) int64 {
	i := sort.Search(len(sorted), func(i int) bool { return sorted[i] >= at })
	d := int64(math.MaxInt64)
	if i < len(sorted) {
		d = sorted[i] - at
	}
	if i > 0 {
		d = min(d, at-sorted[i-1])
	}
	return d
}

// maxClockSkew is how far a client clock may run ahead (the API's limit for captured_at).
const maxClockSkew = 5 * time.Minute

// minAudioPartMs: uncovered audio shorter than this next to live audio is not worth a message.
const minAudioPartMs = 500

// sendAudio produces the main camera's audio track in chunks, leaving out what live audio chunks
// already cover. Only the main camera's: the audio pipeline follows one microphone per session,
// and the evidence phone's would be a second, overlapping stream.
func (p *RecordingProcessor) sendAudio(ctx context.Context, rec *store.Recording, path string, info analyzers.VideoInfo) error {
	switch {
	case !info.HasAudio:
		rec.Note = "the video has no audio track"
		return nil
	case rec.Camera != analyzers.CameraMain:
		rec.Note = "audio of the evidence camera is not analysed (the audio pipeline follows the main microphone)"
		return nil
	case !p.cfg.Tools.HasFFmpeg():
		rec.Note = "audio not analysed: ffmpeg is not installed on the worker"
		return nil
	}
	chunkMs := p.cfg.AudioChunk.Milliseconds()
	base := rec.StartedAtMs + info.AudioOffsetMs
	err := analyzers.ExtractAudio(ctx, path, p.cfg.Tools, p.cfg.AudioChunk, rec.AudioPosMs, func(off int64, pcm []byte) error {
		start := base + off
		end := start + int64(len(pcm)/2)*1000/analyzers.AudioRate
		if start <= 0 {
			return bad("started_at %d + audio position %d ms is not a valid capture time", rec.StartedAtMs, off)
		}
		live, err := p.store.LiveAudioSpans(ctx, rec.SessionID, start, end)
		if err != nil {
			return err
		}
		part := largestGap(live, start, end)
		if part.EndMs-part.StartMs < min(minAudioPartMs, end-start) {
			rec.AudioSkippedMs += end - start
		} else {
			from := (part.StartMs - start) * analyzers.AudioRate / 1000 * 2
			to := min((part.EndMs-start)*analyzers.AudioRate/1000*2, int64(len(pcm)))
			msg := pipeline.EncodeAudio(pipeline.AudioMessage{SessionID: rec.SessionID, Seq: store.RecordedAudioSeq(start, chunkMs),
				CapturedAtMs: part.StartMs, ReceivedAtMs: p.now().UnixMilli(), SampleRate: analyzers.AudioRate, PCM: pcm[from:to]})
			if err := p.out.Send(ctx, p.topics.Audio, msg); err != nil {
				return err
			}
			rec.AudioChunksSent++
			rec.AudioSkippedMs += (end - start) - (part.EndMs - part.StartMs)
		}
		rec.AudioPosMs = off + chunkMs
		return p.progress(ctx, rec, map[string]any{"audio_chunks_sent": rec.AudioChunksSent,
			"audio_skipped_ms": rec.AudioSkippedMs, "audio_pos_ms": rec.AudioPosMs})
	})
	if errors.Is(err, analyzers.ErrAudio) {
		// The frames are in; an audio track ffmpeg cannot read is worth a note, not a failure.
		rec.Note = "audio not analysed: " + err.Error()
		return nil
	}
	return err
}

// largestGap is the longest part of [from, to) that no span covers (spans sorted by start).
func largestGap(spans []store.Span, from, to int64) store.Span {
	best := store.Span{StartMs: from, EndMs: from}
	cur := from
	for _, s := range spans {
		if s.StartMs > cur && s.StartMs-cur > best.EndMs-best.StartMs {
			best = store.Span{StartMs: cur, EndMs: min(s.StartMs, to)}
		}
		cur = max(cur, s.EndMs)
		if cur >= to {
			return best
		}
	}
	if to-cur > best.EndMs-best.StartMs {
		best = store.Span{StartMs: cur, EndMs: to}
	}
	return best
}
