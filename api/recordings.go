package api

import (
	"bytes"
	"crypto/sha256"
	"encoding"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gofiber/fiber/v2"

	"proctor/analyzers"
	"proctor/store"
)

// Whole recordings, uploaded in chunks that survive broken connections:
//
//	POST /v1/sessions/{id}/recordings            {camera, size, sha256, started_at, content_type} → 201 {id, upload_url, received: 0}
//	PUT  /v1/sessions/{id}/recordings/{rid}?offset=N   body: the bytes from N on → 200 {received, status}
//	GET  /v1/sessions/{id}/recordings/{rid}      progress
//	GET  /v1/sessions/{id}/recordings            all of the session's
//
// A chunk is written and fsync'd before it is acknowledged, so an acknowledged byte survives a
// crash. Fiber reads a whole request body before the handler runs: a chunk whose connection
// breaks is never half-written, the upload stays at the last acknowledged offset, and the client
// resends only that chunk (a PUT at another offset answers 409 with the offset to resume from).
// When the last byte arrives the SHA-256, kept incrementally in the row, is compared with the
// declared one; a match queues the file for a worker (worker.RecordingProcessor).

// RecordingUploads configures recording uploads. Zero values take the defaults.
type RecordingUploads struct {
	// Dir holds the uploaded files; workers read them from the same place (a shared volume when
	// they run on other machines). Default "data/recordings".
	Dir string
	// MaxBytes caps one recording. Default 2 GiB: an hour of 720p H.264 at 2.5 Mbit/s is 1.1 GB.
	MaxBytes int64
	// MaxChunkBytes caps one PUT body. Default 4 MiB. Fiber holds a whole body in memory, so it is
	// also what one upload request costs in RAM, and the most a broken connection makes a client
	// resend. The server's body limit grows to fit it.
	MaxChunkBytes int
}

func (r RecordingUploads) withDefaults() RecordingUploads {
	if r.Dir == "" {
		r.Dir = filepath.Join("data", "recordings")
	}
	if r.MaxBytes <= 0 {
		r.MaxBytes = 2 << 30
	}
	if r.MaxChunkBytes <= 0 {
		r.MaxChunkBytes = 4 << 20
	}
	return r
}

// videoTypes are the content types accepted for recordings: what phones and browsers record.
var videoTypes = map[string]bool{"video/mp4": true, "video/quicktime": true, "video/x-msvideo": true,
	"video/avi": true, "video/webm": true, "video/x-matroska": true, "video/3gpp": true}

// chunkHold is how long a PUT may hold a recording's writer slot: longer than writing and
// fsyncing MaxChunkBytes on a slow disk; a crashed writer's slot frees itself after it.
const chunkHold = time.Minute

type recordingIn struct {
	Camera      string `json:"camera"`
	Size        *int64 `json:"size"`
	SHA256      string `json:"sha256"`
	StartedAt   *int64 `json:"started_at"`
	ContentType string `json:"content_type"`
}

// recordingView is a recording as the API shows it.
type recordingView struct {
	*store.Recording
	UploadURL string `json:"upload_url"`
	// Progress is 0..1 over upload and processing: what a progress bar shows.
	Progress float64 `json:"progress"`
}

func viewRecording(r *store.Recording) recordingView {
	v := recordingView{Recording: r, UploadURL: "/v1/sessions/" + r.SessionID + "/recordings/" + r.ID}
	switch r.Status {
	case store.RecordingUploading:
		v.Progress = 0.5 * float64(r.Received) / float64(max(r.Size, 1))
	case store.RecordingVerifying:
		v.Progress = 0.5
	case store.RecordingProcessing:
		v.Progress = 0.5 + 0.5*float64(r.FramesSent+r.DuplicatesSkipped)/float64(max(r.FramesTotal, 1))
		v.Progress = min(v.Progress, 0.99)
	case store.RecordingDone:
		v.Progress = 1
	}
	return v
}

// createRecording starts an upload, or returns the existing one with the same session, camera
// and checksum so that a client that restarted resumes at its received offset. A failed upload
// re-created this way starts again from byte 0.
func (s *Server) createRecording(c *fiber.Ctx) error {
	id, err := s.ingestSession(c)
	if err != nil {
		return err
	}
	var in recordingIn
	if err := json.Unmarshal(c.Body(), &in); err != nil {
		return bad(fiber.StatusBadRequest, "body must be JSON {camera, size, sha256, started_at, content_type}: "+err.Error())
	}
	if err := refuseNull(c.Body(), &in); err != nil {
		return err
	}
	cfg := s.cfg.Recordings
	if in.Camera != analyzers.CameraMain && in.Camera != analyzers.CameraEvidence {
		return bad(fiber.StatusBadRequest, "camera must be 'main' or 'evidence'")
	}
	if in.Size == nil || *in.Size <= 0 {
		return bad(fiber.StatusBadRequest, "size (the file's length in bytes, > 0) is required")
	}
	if *in.Size > cfg.MaxBytes {
		return bad(fiber.StatusRequestEntityTooLarge, fmt.Sprintf("the recording is %d bytes; the limit is %d: split it or lower its bitrate", *in.Size, cfg.MaxBytes))
	}
	in.SHA256 = strings.ToLower(in.SHA256)
	if b, err := hex.DecodeString(in.SHA256); err != nil || len(b) != sha256.Size {
		return bad(fiber.StatusBadRequest, "sha256 must be the 64 hex digits of the whole file's SHA-256")
	}
	if in.StartedAt == nil {
		return bad(fiber.StatusBadRequest, "started_at (ms since epoch of the video's first frame) is required")
	}
	if err := s.checkTime(*in.StartedAt, time.Now()); err != nil {
		return bad(fiber.StatusBadRequest, "started_at: "+strings.Replace(err.Error(), "captured_at ", "", 1))
	}
	ct := strings.ToLower(strings.TrimSpace(in.ContentType))
	if !videoTypes[ct] {
		return bad(fiber.StatusUnsupportedMediaType, fmt.Sprintf("content_type %q is not a video type this service decodes (video/mp4, video/quicktime, video/webm, video/x-matroska, video/x-msvideo, video/3gpp)", in.ContentType))
	}
	if free, err := freeBytes(cfg.Dir); err == nil && free < uint64(*in.Size)+minFreeBytes {
		s.log.Error("recordings disk full", "dir", cfg.Dir, "free", free, "wanted", *in.Size)
		// 503 + Retry-After, not 507: the client should keep the file and retry, as after any
		// temporary outage.
		return bad(fiber.StatusServiceUnavailable, "the server has no room for this recording right now; retry later (the exam's files must be kept until results are published)")
	}
	rec := &store.Recording{SessionID: id, Camera: in.Camera, SHA256: in.SHA256, Size: *in.Size,
		ContentType: ct, StartedAtMs: *in.StartedAt, Status: store.RecordingUploading}
	ctx := c.UserContext()
	got, created, err := s.store.CreateRecording(ctx, rec)
	if err != nil {
		return err
	}
	if !created {
		if got.Size != rec.Size || got.StartedAtMs != rec.StartedAtMs {
			return bad(fiber.StatusConflict, fmt.Sprintf("recording %s has this checksum with size %d and started_at %d; the same file cannot have another size or start", got.ID, got.Size, got.StartedAtMs))
		}
		if got.Status == store.RecordingFailed {
			if err := s.store.RestartRecording(ctx, got.ID); err != nil {
				return err
			}
			if err := s.createFile(got.ID); err != nil {
				return err
			}
			if got, err = s.store.GetRecording(ctx, id, got.ID); err != nil {
				return err
			}
			s.log.Info("recording upload restarted", "session", id, "recording", got.ID)
		}
		return c.Status(fiber.StatusOK).JSON(viewRecording(got))
	}
	if err := s.createFile(rec.ID); err != nil {
		return err
	}
	s.log.Info("recording upload started", "session", id, "recording", rec.ID, "camera", rec.Camera, "bytes", rec.Size)
	return c.Status(fiber.StatusCreated).JSON(viewRecording(rec))
}

// minFreeBytes is left free on the recordings volume: the database and Kafka's log may share it.
const minFreeBytes = 1 << 30

// freeBytes is the space available to this process on the volume holding dir.
func freeBytes(dir string) (uint64, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return 0, err
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return st.Bavail * uint64(st.Bsize), nil
}

// createFile creates (or empties) the upload's file and makes its directory entry durable.
func (s *Server) createFile(id string) error {
	dir := s.cfg.Recordings.Dir
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("create recordings dir: %w", err)
	}
	f, err := os.OpenFile(store.RecordingPath(dir, id), os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o640)
	if err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func (s *Server) recordingOf(c *fiber.Ctx) (*store.Recording, error) {
	id, err := s.ingestSession(c)
	if err != nil {
		return nil, err
	}
	rec, err := s.store.GetRecording(c.UserContext(), id, c.Params("rid"))
	if errors.Is(err, store.ErrNotFound) {
		return nil, bad(fiber.StatusNotFound, "no recording "+c.Params("rid")+" in session "+id+": start one with POST /v1/sessions/"+id+"/recordings")
	}
	return rec, err
}

// conflict answers 409 with the offset the client must resume from.
func conflict(c *fiber.Ctx, rec *store.Recording, msg string) error {
	return c.Status(fiber.StatusConflict).JSON(fiber.Map{"error": msg, "offset": rec.Received, "status": rec.Status})
}

// putChunk appends the body at ?offset=N. N must equal the bytes received so far.
func (s *Server) putChunk(c *fiber.Ctx) error {
	rec, err := s.recordingOf(c)
	if err != nil {
		return err
	}
	offset, err := strconv.ParseInt(c.Query("offset"), 10, 64)
	if err != nil || offset < 0 {
		return bad(fiber.StatusBadRequest, fmt.Sprintf("offset (the byte position of this chunk, a non-negative integer) is required; the upload is at %d", rec.Received))
	}
	if rec.Status != store.RecordingUploading {
		return conflict(c, rec, fmt.Sprintf("the upload is complete (status %s); nothing more to send", rec.Status))
	}
	if offset != rec.Received {
		return conflict(c, rec, fmt.Sprintf("offset %d does not match the %d bytes received: resume at offset %d", offset, rec.Received, rec.Received))
	}
	// The raw body: Fiber's Body() would inflate a compressed one before any size check, and a
	// chunk is a byte range of the file, not a representation of it.
	if ce := c.Get(fiber.HeaderContentEncoding); ce != "" && ce != "identity" {
		return bad(fiber.StatusUnsupportedMediaType, "send chunks without Content-Encoding: they are byte ranges of the file (videos do not compress anyway)")
	}
	body := c.Request().Body()
	if len(body) == 0 {
		return bad(fiber.StatusBadRequest, "empty body: send the file's bytes from offset on as the request body")
	}
	if len(body) > s.cfg.Recordings.MaxChunkBytes {
		return bad(fiber.StatusRequestEntityTooLarge, fmt.Sprintf("chunk is %d bytes; the limit is %d", len(body), s.cfg.Recordings.MaxChunkBytes))
	}
	end := offset + int64(len(body))
	if end > rec.Size {
		return bad(fiber.StatusBadRequest, fmt.Sprintf("chunk ends at byte %d, past the declared size %d", end, rec.Size))
	}
	ctx := c.UserContext()
	now := time.Now()
	if offset == 0 {
		if msg := sniffVideo(body, rec.Size); msg != "" {
			if err := s.store.FailUpload(ctx, rec.ID, msg, now); err != nil {
				return err
			}
			_ = os.Remove(store.RecordingPath(s.cfg.Recordings.Dir, rec.ID))
			return bad(fiber.StatusUnprocessableEntity, msg)
		}
	}
	ok, err := s.store.BeginChunk(ctx, rec.ID, offset, now, chunkHold)
	if err != nil {
		return err
	}
	if !ok {
		if cur, err := s.store.GetRecording(ctx, rec.SessionID, rec.ID); err == nil {
			rec = cur
		}
		return conflict(c, rec, fmt.Sprintf("another chunk at offset %d is being written (or the upload moved on): resume at offset %d", offset, rec.Received))
	}
	h, err := restoreHash(rec.HashState)
	if err == nil {
		err = writeChunk(store.RecordingPath(s.cfg.Recordings.Dir, rec.ID), offset, body)
	}
	if err != nil {
		_ = s.store.AbortChunk(ctx, rec.ID, offset)
		return fmt.Errorf("recording %s chunk at %d: %w", rec.ID, offset, err)
	}
	h.Write(body)
	state, err := h.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		return err
	}
	status, msg := store.RecordingUploading, ""
	if end == rec.Size {
		if sum := hex.EncodeToString(h.Sum(nil)); sum != rec.SHA256 {
			status = store.RecordingFailed
			msg = fmt.Sprintf("checksum mismatch: the %d bytes received hash to %s, not the declared %s; the file was removed: "+
				"POST the recording again to restart the upload", rec.Size, sum, rec.SHA256)
		} else {
			status = store.RecordingVerifying
		}
	}
	if ok, err := s.store.CommitChunk(ctx, rec.ID, offset, end, state, status, msg, now); err != nil || !ok {
		_ = s.store.AbortChunk(ctx, rec.ID, offset)
		if err == nil {
			err = errors.New("upload moved while the chunk was written")
		}
		return err
	}
	rec.Received, rec.Status, rec.Error = end, status, msg
	if status == store.RecordingFailed {
		// The bytes are not the file the client meant to send; keeping up to MaxBytes of them
		// per failed try would fill the disk.
		_ = os.Remove(store.RecordingPath(s.cfg.Recordings.Dir, rec.ID))
		s.log.Warn("recording checksum mismatch", "session", rec.SessionID, "recording", rec.ID)
		return c.Status(fiber.StatusUnprocessableEntity).JSON(fiber.Map{"error": msg, "offset": rec.Received, "status": rec.Status})
	}
	if status == store.RecordingVerifying {
		s.log.Info("recording uploaded", "session", rec.SessionID, "recording", rec.ID, "bytes", rec.Size)
	}
	return c.JSON(viewRecording(rec))
}

func restoreHash(state []byte) (hash.Hash, error) {
	h := sha256.New()
	if len(state) == 0 {
		return h, nil
	}
	if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(state); err != nil {
		return nil, fmt.Errorf("restore checksum state: %w", err)
	}
	return h, nil
}

// writeChunk writes b at offset, drops anything after it (bytes of a write that was never
// acknowledged) and fsyncs before the caller acknowledges.
func writeChunk(path string, offset int64, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("upload file %s is missing (recordings directory not shared between API processes?)", filepath.Base(path))
	}
	if err != nil {
		return err
	}
	_, err = f.WriteAt(b, offset)
	if err == nil {
		err = f.Truncate(offset + int64(len(b)))
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// sniffVideo checks the first bytes for a video container (MP4/MOV, AVI, WebM/Matroska, 3GP) so
// a client sending the wrong file learns it at the first chunk, not after the last. "" means ok.
func sniffVideo(b []byte, size int64) string {
	if len(b) < 12 {
		if int64(len(b)) == size {
			return fmt.Sprintf("a %d-byte file is not a video", size)
		}
		return "" // a tiny first chunk: the worker's decoder will judge the file
	}
	switch {
	case bytes.Equal(b[4:8], []byte("ftyp")): // ISO base media: MP4, MOV, 3GP
	case bytes.Equal(b[:4], []byte("RIFF")) && bytes.Equal(b[8:12], []byte("AVI ")):
	case bytes.Equal(b[:4], []byte{0x1A, 0x45, 0xDF, 0xA3}): // EBML: WebM, Matroska
	case bytes.Equal(b[4:8], []byte("moov")), bytes.Equal(b[4:8], []byte("mdat")), bytes.Equal(b[4:8], []byte("wide")),
		bytes.Equal(b[4:8], []byte("free")): // QuickTime files without ftyp
	default:
		return fmt.Sprintf("not a video file: the first bytes (% x) are not an MP4, MOV, WebM, Matroska or AVI header; "+
			"the upload is marked failed", b[:12])
	}
	return ""
}

func (s *Server) getRecording(c *fiber.Ctx) error {
	rec, err := s.recordingOf(c)
	if err != nil {
		return err
	}
	return c.JSON(viewRecording(rec))
}

func (s *Server) listRecordings(c *fiber.Ctx) error {
	id, err := s.ingestSession(c)
	if err != nil {
		return err
	}
	recs, err := s.store.SessionRecordings(c.UserContext(), id)
	if err != nil {
		return err
	}
	out := make([]recordingView, len(recs))
	for i := range recs {
		out[i] = viewRecording(&recs[i])
	}
	return c.JSON(fiber.Map{"recordings": out})
}

// recordingsTimeline adds the session's recordings (camera, time span, status, progress) to the
// timeline.
func (s *Server) recordingsTimeline(c *fiber.Ctx, sess *store.Session, body fiber.Map) error {
	recs, err := s.store.SessionRecordings(c.UserContext(), sess.ID)
	if err != nil {
		return err
	}
	out := make([]fiber.Map, 0, len(recs))
	for i := range recs {
		r := &recs[i]
		v := viewRecording(r)
		m := fiber.Map{"id": r.ID, "camera": r.Camera, "status": r.Status, "progress": v.Progress,
			"start_ms": r.StartedAtMs, "size": r.Size, "received": r.Received,
			"frames_total": r.FramesTotal, "frames_sent": r.FramesSent, "duplicates_skipped": r.DuplicatesSkipped,
			"audio_chunks_sent": r.AudioChunksSent}
		if r.DurationMs > 0 {
			m["end_ms"] = r.StartedAtMs + r.DurationMs
		}
		if r.Error != "" {
			m["error"] = r.Error
		}
		if r.Note != "" {
			m["note"] = r.Note
		}
		out = append(out, m)
	}
	body["recordings"] = out
	return nil
}
