package api

import (
	"bytes"
	"container/list"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"image/jpeg"
	"io"
	"math"
	"net/url"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"gocv.io/x/gocv"

	"proctor/analyzers"
	"proctor/internal/wav"
	"proctor/rules"
	"proctor/store"
)

// The reviewer's media (issue 17): both cameras' frames around a flag with the analyzers'
// overlays (the filmstrip), the stored audio of any time range (answers, audio flags), and the
// playable copy of an uploaded recording. Every route is organisation-scoped through
// sessionOf; what is purged by retention answers 410 with a message, never a failure.

// Limits of the media routes (documented in api/openapi.yaml).
const (
	maxFramePage   = 500              // frames per page of GET …/frames
	maxAudioSpanMs = 15 * 60 * 1000   // one audio request: an answer is minutes, not hours
	maxTimeMs      = int64(1<<53 - 1) // times are ms since epoch, JavaScript-safe
	audioOutRate   = analyzers.AudioRate
	thumbCacheSize = 4096 // thumbnails kept in memory (~6 KB each)
)

// queryMs reads a required time parameter in ms since epoch.
func queryMs(c *fiber.Ctx, name string) (int64, error) {
	v, ok := queryValue(c, name)
	if !ok {
		return 0, bad(fiber.StatusBadRequest, name+" is required: a time in ms since epoch")
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 || n > maxTimeMs {
		return 0, bad(fiber.StatusBadRequest, name+" must be a time in ms since epoch (0 to 2^53 − 1)")
	}
	return n, nil
}

// timeRange reads from and to (ms, from < to); maxSpan 0 means no bound.
func timeRange(c *fiber.Ctx, maxSpan int64) (int64, int64, error) {
	from, err := queryMs(c, "from")
	if err != nil {
		return 0, 0, err
	}
	to, err := queryMs(c, "to")
	if err != nil {
		return 0, 0, err
	}
	if to <= from {
		return 0, 0, bad(fiber.StatusBadRequest, "to must be after from")
	}
	if maxSpan > 0 && to-from > maxSpan {
		return 0, 0, bad(fiber.StatusBadRequest, fmt.Sprintf("from–to spans %d ms; at most %d ms per request", to-from, maxSpan))
	}
	return from, to, nil
}

func cameraParam(v string) (string, error) {
	if v != analyzers.CameraMain && v != analyzers.CameraEvidence {
		return "", bad(fiber.StatusBadRequest, "camera must be main or evidence")
	}
	return v, nil
}

// shownID is the session's id as the platform knows it (what the routes take).
func shownID(sess *store.Session) string {
	if sess.PlatformID != "" {
		return sess.PlatformID
	}
	return sess.ID
}

func sessionPath(sess *store.Session) string { return "/v1/sessions/" + url.PathEscape(shownID(sess)) }

// ---- frames ------------------------------------------------------------------------------

// overlays is what the page draws over a frame, in the frame's pixels.
type overlays struct {
	Width   int           `json:"width"`
	Height  int           `json:"height"`
	Faces   []faceOverlay `json:"faces"`
	Objects []objOverlay  `json:"objects"`
	Sheet   *sheetOverlay `json:"sheet,omitempty"`
}

type faceOverlay struct {
	Box        [4]float32 `json:"box"`
	Score      float32    `json:"score"`
	Similarity *float32   `json:"similarity,omitempty"`
	SamePerson *bool      `json:"same_person,omitempty"`
}

type objOverlay struct {
	Class string     `json:"class"`
	Box   [4]float32 `json:"box"`
	Score float32    `json:"score"`
}

type sheetOverlay struct {
	Quad    [4][2]float32 `json:"quad"`
	Writing bool          `json:"writing"`
	Score   float32       `json:"score"`
}

func overlaysOf(observation string) *overlays {
	var obs analyzers.Observation
	if observation == "" || json.Unmarshal([]byte(observation), &obs) != nil {
		return nil
	}
	o := &overlays{Width: obs.Width, Height: obs.Height, Faces: make([]faceOverlay, 0, len(obs.Faces)),
		Objects: make([]objOverlay, 0, len(obs.Objects))}
	for _, f := range obs.Faces {
		fo := faceOverlay{Box: f.Box, Score: f.Score}
		if f.Match != nil {
			sim, same := f.Match.Similarity, f.Match.SamePerson
			fo.Similarity, fo.SamePerson = &sim, &same
		}
		o.Faces = append(o.Faces, fo)
	}
	for _, ob := range obs.Objects {
		o.Objects = append(o.Objects, objOverlay{Class: ob.Class, Box: ob.Box, Score: ob.Score})
	}
	if obs.Sheet != nil && obs.Sheet.Present {
		o.Sheet = &sheetOverlay{Quad: obs.Sheet.Quad, Writing: obs.Sheet.Writing, Score: obs.Sheet.Score}
	}
	return o
}

type frameOut struct {
	Camera     string `json:"camera"`
	Seq        int64  `json:"seq"`
	CapturedAt int64  `json:"captured_at"`
	ThumbURL   string `json:"thumb_url"`
	ImageURL   string `json:"image_url"`
	// Thumb is the thumbnail inline (data: URI) with thumbs=true: a filmstrip of 40 frames is
	// then two requests, not 42 queued six at a time behind the browser's connection limit.
	Thumb    string    `json:"thumb,omitempty"`
	Overlays *overlays `json:"overlays,omitempty"`
}

// listFrames is GET /v1/sessions/{id}/frames: one camera's analysed frames in [from, to], a
// page at a time (next_from continues), with the overlays unless overlays=false. Audit-logged:
// the listing is what shows whose frames a reviewer looked at.
func (s *Server) listFrames(c *fiber.Ctx) error {
	sess, err := s.sessionOf(c)
	if err != nil {
		return err
	}
	camera, err := cameraParam(c.Query("camera"))
	if err != nil {
		return err
	}
	from, to, err := timeRange(c, 0)
	if err != nil {
		return err
	}
	limit, err := queryInt(c, "limit", 100, 1, maxFramePage)
	if err != nil {
		return err
	}
	withOverlays := true
	if _, sent := queryValue(c, "overlays"); sent {
		if withOverlays, err = queryBool(c, "overlays"); err != nil {
			return err
		}
	}
	withThumbs, err := queryBool(c, "thumbs")
	if err != nil {
		return err
	}
	refs, err := s.store.FramesBetween(c.UserContext(), sess.ID, camera, from, to, limit+1, withOverlays)
	if err != nil {
		return err
	}
	body := fiber.Map{"camera": camera, "from": from, "to": to}
	if len(refs) > limit {
		// Frames of one camera share a capture time only on a client bug; the next page starts
		// after the last whole millisecond listed.
		last := refs[limit-1].CapturedAtMs
		for len(refs) > 0 && refs[len(refs)-1].CapturedAtMs == last && len(refs) > 1 {
			refs = refs[:len(refs)-1]
		}
		body["next_from"] = last + 1
	}
	base := sessionPath(sess) + "/frames/" + camera + "/"
	out := make([]frameOut, len(refs))
	for i, r := range refs {
		seq := strconv.FormatInt(r.Seq, 10)
		out[i] = frameOut{Camera: r.Camera, Seq: r.Seq, CapturedAt: r.CapturedAtMs,
			ThumbURL: base + seq + "?size=thumb", ImageURL: base + seq}
		if withOverlays {
			out[i].Overlays = overlaysOf(r.Observation)
		}
	}
	if withThumbs {
		if err := s.inlineThumbs(c, sess.ID, camera, out); err != nil {
			return err
		}
	}
	body["frames"] = out
	if err := s.audit(c, "frames.view", "session:"+sess.ID,
		map[string]any{"camera": camera, "from": from, "to": to, "frames": len(out)}); err != nil {
		return err
	}
	return c.JSON(body)
}

// getFrameImage is GET /v1/sessions/{id}/frames/{camera}/{seq}: the frame's JPEG, full size or
// a thumbnail (size=thumb, ~1/4 of the side, cached). Full-size views are audit-logged; the
// thumbnails are covered by the listing's entry.
func (s *Server) getFrameImage(c *fiber.Ctx) error {
	sess, err := s.sessionOf(c)
	if err != nil {
		return err
	}
	camera, err := cameraParam(c.Params("camera"))
	if err != nil {
		return err
	}
	seq, err := strconv.ParseInt(c.Params("seq"), 10, 64)
	if err != nil || seq < 0 || seq > maxTimeMs {
		return bad(fiber.StatusBadRequest, "seq must be a whole number from 0 to 2^53 − 1")
	}
	size := c.Query("size", "full")
	if size != "full" && size != "thumb" {
		return bad(fiber.StatusBadRequest, "size must be full or thumb")
	}
	key := sess.ID + "/" + camera + "/" + strconv.FormatInt(seq, 10)
	c.Set(fiber.HeaderCacheControl, "private, max-age=86400")
	c.Set(fiber.HeaderContentType, "image/jpeg")
	if size == "thumb" {
		if b, ok := s.media.thumbs.get(key); ok {
			return c.Send(b)
		}
	}
	im, err := s.store.FrameImageOf(c.UserContext(), sess.ID, camera, seq)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return bad(fiber.StatusNotFound, fmt.Sprintf("no frame %d of camera %s in session %s", seq, camera, shownID(sess)))
	case errors.Is(err, store.ErrPurged):
		return bad(fiber.StatusGone, "this frame's image is no longer kept (deleted after the retention period); its analysis results remain")
	case err != nil:
		return err
	}
	if size == "thumb" {
		b, err := thumbnail(im.JPEG)
		if err != nil {
			return err
		}
		s.media.thumbs.put(key, b)
		return c.Send(b)
	}
	if err := s.audit(c, "frame.view", "session:"+sess.ID, map[string]any{"camera": camera, "seq": seq}); err != nil {
		return err
	}
	return c.Send(im.JPEG)
}

// inlineThumbs fills frames' Thumb from the cache, reading and scaling the missing ones.
func (s *Server) inlineThumbs(c *fiber.Ctx, sessionID, camera string, frames []frameOut) error {
	var missing []int64
	thumbs := make([][]byte, len(frames))
	for i, f := range frames {
		if b, ok := s.media.thumbs.get(sessionID + "/" + camera + "/" + strconv.FormatInt(f.Seq, 10)); ok {
			thumbs[i] = b
		} else {
			missing = append(missing, f.Seq)
		}
	}
	if len(missing) > 0 {
		jpgs, err := s.store.FrameImagesOf(c.UserContext(), sessionID, camera, missing)
		if err != nil {
			return err
		}
		for i, f := range frames {
			jpg, ok := jpgs[f.Seq]
			if thumbs[i] != nil || !ok {
				continue // cached, or purged: the page asks thumb_url, which says why
			}
			b, err := thumbnail(jpg)
			if err != nil {
				return err
			}
			s.media.thumbs.put(sessionID+"/"+camera+"/"+strconv.FormatInt(f.Seq, 10), b)
			thumbs[i] = b
		}
	}
	for i := range frames {
		if thumbs[i] != nil {
			frames[i].Thumb = "data:image/jpeg;base64," + base64.StdEncoding.EncodeToString(thumbs[i])
		}
	}
	return nil
}

// thumbnail decodes a stored frame at 1/2 or 1/4 of its side (libjpeg scales while decoding:
// ~1 ms) to about 160–320 px wide and re-encodes it. The frame was decoded by the analyzers
// before it was stored; its header is checked again so OpenCV never sees a bad buffer.
func thumbnail(jpg []byte) ([]byte, error) {
	cfg, err := jpeg.DecodeConfig(bytes.NewReader(jpg))
	if err != nil || cfg.Width <= 0 || cfg.Height <= 0 {
		return nil, fmt.Errorf("stored frame is not a readable JPEG: %v", err)
	}
	flag := gocv.IMReadReducedColor2
	if cfg.Width > 800 {
		flag = gocv.IMReadReducedColor4
	}
	if cfg.Width <= 400 {
		return jpg, nil
	}
	m, err := gocv.IMDecode(jpg, flag)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	if m.Empty() {
		return nil, errors.New("stored frame decoded to nothing")
	}
	buf, err := gocv.IMEncodeWithParams(gocv.JPEGFileExt, m, []int{gocv.IMWriteJpegQuality, 72})
	if err != nil {
		return nil, err
	}
	defer buf.Close()
	return bytes.Clone(buf.GetBytes()), nil
}

// lru is a small thread-safe least-recently-used cache of encoded thumbnails.
type lru struct {
	mu    sync.Mutex
	max   int
	order *list.List
	items map[string]*list.Element
}

type lruItem struct {
	key string
	val []byte
}

func (l *lru) get(k string) ([]byte, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.items == nil {
		return nil, false
	}
	e, ok := l.items[k]
	if !ok {
		return nil, false
	}
	l.order.MoveToFront(e)
	return e.Value.(*lruItem).val, true
}

func (l *lru) put(k string, v []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.items == nil {
		l.items, l.order = map[string]*list.Element{}, list.New()
	}
	if e, ok := l.items[k]; ok {
		e.Value.(*lruItem).val = v
		l.order.MoveToFront(e)
		return
	}
	l.items[k] = l.order.PushFront(&lruItem{k, v})
	for l.order.Len() > max(l.max, 1) {
		old := l.order.Back()
		l.order.Remove(old)
		delete(l.items, old.Value.(*lruItem).key)
	}
}

// mediaState is the media routes' cache.
type mediaState struct {
	thumbs lru
}

// ---- audio -------------------------------------------------------------------------------

// storedWAV is the session's stored audio of [from, to) as a 16 kHz mono WAV file that is read
// lazily: a range request, or the first bytes a player asks for, reads only the chunks it covers
// from the database, so playback starts without building minutes of audio first. Silence where
// nothing was recorded; a later chunk overwrites an earlier one where they overlap.
type storedWAV struct {
	s        *Server
	ctx      context.Context
	session  string
	from     int64
	size     int64
	header   []byte
	pieces   []store.AudioPiece
	pcm      map[int64][]byte // 16 kHz PCM of recently read pieces, by seq
	fetchErr error
}

const wavHeaderBytes = 44

// openStoredWAV finds the audio of [from, to). store.ErrNotFound: no audio was recorded there
// at all; store.ErrPurged: it was analysed but is no longer kept.
func (s *Server) openStoredWAV(c *fiber.Ctx, sessionID string, from, to int64) (*storedWAV, error) {
	ctx := context.WithoutCancel(c.UserContext()) // read after the handler returns, while the body streams
	pieces, err := s.store.AudioPieces(ctx, sessionID, from, to)
	if err != nil {
		return nil, err
	}
	if len(pieces) == 0 {
		cov, err := s.store.AudioCoverage(ctx, sessionID, from, to)
		if err != nil {
			return nil, err
		}
		if len(cov) > 0 {
			return nil, store.ErrPurged
		}
		return nil, store.ErrNotFound
	}
	n := (to - from) * audioOutRate / 1000 * 2
	return &storedWAV{s: s, ctx: ctx, session: sessionID, from: from, size: wavHeaderBytes + n,
		header: wav.Encode(nil, audioOutRate)[:wavHeaderBytes-8], pieces: pieces, pcm: map[int64][]byte{}}, nil
}

func (w *storedWAV) headerBytes() []byte {
	h := append([]byte(nil), w.header...)
	binary.LittleEndian.PutUint32(h[4:], uint32(w.size-8))
	h = append(h, "data"...)
	return binary.LittleEndian.AppendUint32(h, uint32(w.size-wavHeaderBytes))
}

// piecePCM returns a piece's audio at 16 kHz, reading it (and the next few) when not cached.
func (w *storedWAV) piecePCM(i int) []byte {
	p := w.pieces[i]
	if b, ok := w.pcm[p.Seq]; ok {
		return b
	}
	if len(w.pcm) > 32 {
		clear(w.pcm)
	}
	var seqs []int64
	for j := i; j < len(w.pieces) && j < i+8; j++ {
		if _, ok := w.pcm[w.pieces[j].Seq]; !ok {
			seqs = append(seqs, w.pieces[j].Seq)
		}
	}
	ctx, cancel := context.WithTimeout(w.ctx, 10*time.Second)
	defer cancel()
	got, err := w.s.store.AudioPCM(ctx, w.session, seqs)
	if err != nil {
		w.fetchErr = err
		return nil
	}
	for j := i; j < len(w.pieces) && j < i+8; j++ {
		q := w.pieces[j]
		b := got[q.Seq]
		if q.SampleRate != audioOutRate && len(b) >= 2 {
			b = analyzers.EncodePCM16(analyzers.Resample(decodePCM16(b), q.SampleRate, audioOutRate))
		}
		w.pcm[q.Seq] = b[:len(b)&^1]
	}
	return w.pcm[p.Seq]
}

// ReadAt fills p with the file's bytes from off (io.ReaderAt).
func (w *storedWAV) ReadAt(p []byte, off int64) (int, error) {
	if off >= w.size {
		return 0, io.EOF
	}
	want := len(p)
	if int64(want) > w.size-off {
		p = p[:w.size-off]
	}
	n := 0
	if off < wavHeaderBytes {
		c := copy(p, w.headerBytes()[off:])
		n, off, p = c, off+int64(c), p[c:]
	}
	if len(p) > 0 {
		a, b := off-wavHeaderBytes, off-wavHeaderBytes+int64(len(p))
		clear(p)
		for i, pc := range w.pieces {
			start := (pc.CapturedAtMs - w.from) * audioOutRate / 1000 * 2
			end := start + (pc.EndMs()-pc.CapturedAtMs+1)*audioOutRate/1000*2
			if end <= a || start >= b {
				continue
			}
			pcm := w.piecePCM(i)
			if w.fetchErr != nil {
				return n, w.fetchErr
			}
			lo, hi := max(a, start), min(b, start+int64(len(pcm)))
			if lo < hi {
				copy(p[lo-a:hi-a], pcm[lo-start:hi-start])
			}
		}
		n += len(p)
	}
	if n < want {
		return n, io.EOF
	}
	return n, nil
}

func decodePCM16(b []byte) []float32 {
	out := make([]float32, len(b)/2)
	for i := range out {
		out[i] = float32(int16(binary.LittleEndian.Uint16(b[2*i:]))) / 32768
	}
	return out
}

func (s *Server) audioError(err error, sess *store.Session, from, to int64) error {
	switch {
	case errors.Is(err, store.ErrNotFound):
		return bad(fiber.StatusNotFound, fmt.Sprintf("no audio was recorded in session %s between %d and %d", shownID(sess), from, to))
	case errors.Is(err, store.ErrPurged):
		return bad(fiber.StatusGone, "the audio of this time was analysed but is no longer kept (deleted after the retention period, or the service does not keep audio); its analysis results remain")
	}
	return err
}

// audioSpan reads the session and the from/to span of an audio route.
func (s *Server) audioSpan(c *fiber.Ctx) (sess *store.Session, from, to int64, err error) {
	if sess, err = s.sessionOf(c); err != nil {
		return nil, 0, 0, err
	}
	from, to, err = timeRange(c, maxAudioSpanMs)
	return sess, from, to, err
}

// getAudio is GET /v1/sessions/{id}/audio?from&to: the stored audio of that span as a WAV (16 kHz
// mono), served with range requests and streamed as the database is read. The first request of
// a listen (no Range, or from byte 0) is audit-logged; a player's further range requests are not.
func (s *Server) getAudio(c *fiber.Ctx) error {
	sess, from, to, err := s.audioSpan(c)
	if err != nil {
		return err
	}
	w, err := s.openStoredWAV(c, sess.ID, from, to)
	if err != nil {
		return s.audioError(err, sess, from, to)
	}
	if firstRange(c) {
		if err := s.audit(c, "audio.listen", "session:"+sess.ID, map[string]any{"from": from, "to": to}); err != nil {
			return err
		}
	}
	c.Set(fiber.HeaderCacheControl, "private, max-age=300")
	start, end, _, err := rangeHead(c, "audio/wav", w.size)
	if err != nil {
		return err
	}
	c.Response().SetBodyStream(io.NewSectionReader(w, start, end-start+1), int(end-start+1))
	return nil
}

// getAudioPeaks is GET /v1/sessions/{id}/audio/peaks?from&to&n: the audio's loudness in n
// buckets (peak |sample|, 0–1), for the small waveform beside each answer.
func (s *Server) getAudioPeaks(c *fiber.Ctx) error {
	sess, from, to, err := s.audioSpan(c)
	if err != nil {
		return err
	}
	n, err := queryInt(c, "n", 200, 10, 2000)
	if err != nil {
		return err
	}
	w, err := s.openStoredWAV(c, sess.ID, from, to)
	if err != nil {
		return s.audioError(err, sess, from, to)
	}
	samples := (w.size - wavHeaderBytes) / 2
	peaks := make([]float64, n)
	buf := make([]byte, 1<<16)
	var i int64
	for off := int64(wavHeaderBytes); off < w.size; off += int64(len(buf)) {
		got, err := w.ReadAt(buf, off)
		if err != nil && err != io.EOF {
			return err
		}
		for j := 0; j+1 < got; j += 2 {
			v := int(int16(binary.LittleEndian.Uint16(buf[j:])))
			if v < 0 {
				v = -v
			}
			b := i * int64(n) / samples
			if p := float64(v) / 32768; p > peaks[b] {
				peaks[b] = p
			}
			i++
		}
	}
	for b := range peaks {
		peaks[b] = math.Round(peaks[b]*1000) / 1000
	}
	return c.JSON(fiber.Map{"from": from, "to": to, "n": n, "peaks": peaks})
}

// audioURL is where the stored audio of [from, to) is served (at most maxAudioSpanMs of it).
func audioURL(sess *store.Session, from, to int64) string {
	from = max(from, 0)
	to = min(max(to, from+1), from+maxAudioSpanMs)
	return sessionPath(sess) + "/audio?from=" + strconv.FormatInt(from, 10) + "&to=" + strconv.FormatInt(to, 10)
}

// flagAudio adds audio_url to GET /v1/flags/{id} for a flag decided from audio (its check
// reads the voice activity detector): the flag's span with 5 s either side.
func (s *Server) flagAudio(c *fiber.Ctx, f *store.Flag, out fiber.Map) error {
	check, ok := rules.CheckOf(f.Type)
	if !ok || !slices.Contains(check.Analyzers, "vad") {
		return nil
	}
	_, sess, err := s.store.GetFlag(c.UserContext(), principal(c).OrgID, f.ID)
	if err != nil {
		return err
	}
	out["audio_url"] = audioURL(sess, f.StartMs-5000, max(f.EndMs, f.StartMs)+5000)
	return nil
}

// ---- recordings --------------------------------------------------------------------------

type mediaRecording struct {
	ID         string `json:"id"`
	Camera     string `json:"camera"`
	Status     string `json:"status"`
	StartedAt  int64  `json:"started_at"`
	DurationMs int64  `json:"duration_ms"`
	Playable   bool   `json:"playable"`
	VideoURL   string `json:"video_url,omitempty"`
	Note       string `json:"note,omitempty"`
}

type spanOut struct {
	StartMs int64 `json:"start_ms"`
	EndMs   int64 `json:"end_ms"`
}

// getMedia is GET /v1/sessions/{id}/media: what can be played for a session — its uploaded
// recordings with their playable copies, and the spans of analysed audio.
func (s *Server) getMedia(c *fiber.Ctx) error {
	sess, err := s.sessionOf(c)
	if err != nil {
		return err
	}
	recs, err := s.store.SessionRecordings(c.UserContext(), sess.ID)
	if err != nil {
		return err
	}
	out := make([]mediaRecording, 0, len(recs))
	for _, r := range recs {
		m := mediaRecording{ID: r.ID, Camera: r.Camera, Status: r.Status, StartedAt: r.StartedAtMs, DurationMs: r.DurationMs, Note: r.Note}
		if _, err := os.Stat(store.PlayablePath(s.cfg.Recordings.Dir, r.ID)); err == nil && r.Status == store.RecordingDone {
			m.Playable, m.VideoURL = true, sessionPath(sess)+"/recordings/"+r.ID+"/video"
		}
		out = append(out, m)
	}
	spans, err := s.store.AudioStretches(c.UserContext(), sess.ID)
	if err != nil {
		return err
	}
	audio := make([]spanOut, len(spans))
	for i, sp := range spans {
		audio[i] = spanOut{sp.StartMs, sp.EndMs}
	}
	return c.JSON(fiber.Map{"session_id": shownID(sess), "recordings": out, "audio": audio,
		"max_audio_span_ms": maxAudioSpanMs})
}

// getRecordingVideo is GET /v1/sessions/{id}/recordings/{rid}/video: the recording's
// browser-playable MP4, served with range requests so the player seeks without downloading it.
func (s *Server) getRecordingVideo(c *fiber.Ctx) error {
	sess, err := s.sessionOf(c)
	if err != nil {
		return err
	}
	rec, err := s.store.GetRecording(c.UserContext(), sess.ID, c.Params("rid"))
	if errors.Is(err, store.ErrNotFound) {
		return bad(fiber.StatusNotFound, "no recording "+c.Params("rid")+" in this session")
	}
	if err != nil {
		return err
	}
	if rec.Status != store.RecordingDone {
		return bad(fiber.StatusNotFound, "recording "+rec.ID+" is "+rec.Status+": its playable copy is made when processing is done")
	}
	path := store.PlayablePath(s.cfg.Recordings.Dir, rec.ID)
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		if _, serr := os.Stat(store.RecordingPath(s.cfg.Recordings.Dir, rec.ID)); errors.Is(serr, os.ErrNotExist) {
			return bad(fiber.StatusGone, "recording "+rec.ID+" is no longer kept (deleted after the retention period); its analysis results remain")
		}
		msg := "recording " + rec.ID + " has no playable copy"
		if rec.Note != "" {
			msg += " (" + rec.Note + ")"
		}
		return bad(fiber.StatusNotFound, msg+"; the filmstrip and the stored audio show the same time")
	}
	if err != nil {
		return err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	if firstRange(c) {
		if err := s.audit(c, "recording.view", "recording:"+rec.ID, map[string]any{"session": sess.ID, "camera": rec.Camera}); err != nil {
			f.Close()
			return err
		}
	}
	c.Set(fiber.HeaderCacheControl, "private, max-age=3600")
	c.Set(fiber.HeaderLastModified, st.ModTime().UTC().Format(time.RFC1123))
	return serveFileRange(c, "video/mp4", f, st.Size())
}
