package api

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/segmentio/kafka-go"

	"proctor/analyzers"
	"proctor/pipeline"
	"proctor/store"
)

// createSession registers a candidate's exam. Multipart form: exam_id, candidate_id,
// scheduled_start (RFC 3339 or ms since epoch), duration_sec, questions, photo (JPEG file), and an
// optional id (the platform's own session id: re-posting the same id is answered with the
// existing session, so a retried request is harmless).
func (s *Server) createSession(c *fiber.Ctx) error {
	key := caller(c)
	// Spaces, tabs and line breaks around a value are dropped (api/openapi.yaml: a value that is
	// only those is missing).
	form := func(name string) string { return strings.Trim(c.FormValue(name), " \t\r\n") }
	sess := &store.Session{OrgID: key.OrgID, ID: form("id"), ExamID: form("exam_id"), CandidateID: form("candidate_id")}
	if err := checkFields(field{"id", sess.ID, 64}, field{"exam_id", sess.ExamID, 128},
		field{"candidate_id", sess.CandidateID, 128}); err != nil {
		return err
	}
	if sess.ID != "" && !validID(sess.ID) {
		return bad(fiber.StatusBadRequest, "id must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit")
	}
	if sess.ExamID == "" || len(sess.ExamID) > 128 {
		return bad(fiber.StatusBadRequest, "exam_id is required (at most 128 characters)")
	}
	if sess.CandidateID == "" || len(sess.CandidateID) > 128 {
		return bad(fiber.StatusBadRequest, "candidate_id is required (at most 128 characters)")
	}
	start, err := parseTime(form("scheduled_start"))
	if err != nil {
		return bad(fiber.StatusBadRequest, "scheduled_start: "+err.Error())
	}
	sess.ScheduledStart = start
	if sess.DurationSec, err = intField(form("duration_sec"), 60, 24*3600); err != nil {
		return bad(fiber.StatusBadRequest, "duration_sec: "+err.Error())
	}
	if sess.Questions, err = intField(form("questions"), 1, 200); err != nil {
		return bad(fiber.StatusBadRequest, "questions: "+err.Error())
	}
	if v := form("attachments"); v != "" {
		if sess.Attachments, err = intField(v, 0, 100); err != nil {
			return bad(fiber.StatusBadRequest, "attachments: "+err.Error())
		}
	}
	// The timing rules first run shortly after creation; they then schedule their own deadlines.
	sess.NextCheckAtMs = time.Now().Add(2 * time.Second).UnixMilli()
	fh, err := c.FormFile("photo")
	if err != nil {
		return bad(fiber.StatusBadRequest, "photo is required: the registration photo as a JPEG file field (multipart/form-data)")
	}
	if fh.Size > int64(s.cfg.MaxPhotoBytes) {
		return bad(fiber.StatusRequestEntityTooLarge, fmt.Sprintf("photo is %d bytes; the limit is %d", fh.Size, s.cfg.MaxPhotoBytes))
	}
	f, err := fh.Open()
	if err != nil {
		return bad(fiber.StatusBadRequest, "photo: "+err.Error())
	}
	defer f.Close()
	photo, err := io.ReadAll(f)
	if err != nil {
		return bad(fiber.StatusBadRequest, "photo: "+err.Error())
	}
	if _, _, err := analyzers.ValidateJPEG(photo); err != nil {
		return bad(jpegStatus(err), "photo: "+err.Error())
	}
	sess.RegistrationPhoto = photo

	// Ids are scoped per organisation (store.CreatePlatformSession): an id that another
	// organisation holds is created all the same, so a 409 cannot tell that it exists.
	platformID := sess.ID
	got, created, err := s.store.CreatePlatformSession(c.UserContext(), sess)
	if err != nil {
		return err
	}
	if !created {
		return c.Status(fiber.StatusOK).JSON(got)
	}
	s.sessionKeys.Store(key.OrgID+"\x00"+cmp.Or(platformID, sess.ID), sess.ID)
	s.log.Info("session created", "session", sess.ID, "exam", sess.ExamID, "org", sess.OrgID)
	// The workers enrol the photo now rather than at the first frame. Without the request (Kafka
	// down) the first frame enrols it: the session is created either way.
	enrol := pipeline.EncodeEnroll(pipeline.EnrollMessage{SessionID: sess.ID, ReceivedAtMs: time.Now().UnixMilli()})
	if err := s.pub.Send(c.UserContext(), s.cfg.Topics.Frames, enrol); err != nil {
		s.log.Warn("enrol request not queued: the first frame enrols the photo", "session", sess.ID, "err", err)
	}
	return c.Status(fiber.StatusCreated).JSON(sess)
}

// ingestSession resolves the :id of an ingest route to the key of the caller's organisation's
// session (the platform's id, or its scoped key when another organisation holds that id).
func (s *Server) ingestSession(c *fiber.Ctx) (string, error) {
	id := c.Params("id")
	org := caller(c).OrgID
	if v, ok := s.sessionKeys.Load(org + "\x00" + id); ok {
		return v.(string), nil
	}
	sess, err := s.store.GetSession(c.UserContext(), org, id)
	if errors.Is(err, store.ErrNotFound) {
		return "", bad(fiber.StatusNotFound, "unknown session "+id+": create it with POST /v1/sessions first")
	}
	if err != nil {
		return "", err
	}
	s.sessionKeys.Store(org+"\x00"+id, sess.ID)
	return sess.ID, nil
}

// postFrame accepts one JPEG (raw body, Content-Type image/jpeg) with query parameters camera,
// captured_at (ms since epoch) and seq. It answers 202 only after Kafka acknowledged the frame.
func (s *Server) postFrame(c *fiber.Ctx) error {
	id, err := s.ingestSession(c)
	if err != nil {
		return err
	}
	if err := s.throttle(c, s.cfg.Topics.Frames); err != nil {
		return err
	}
	camera := c.Query("camera")
	if camera != analyzers.CameraMain && camera != analyzers.CameraEvidence {
		return bad(fiber.StatusBadRequest, "camera must be 'main' or 'evidence'")
	}
	seq, capturedAt, err := s.seqAndTime(c)
	if err != nil {
		return err
	}
	body := c.Body()
	if len(body) == 0 {
		return bad(fiber.StatusBadRequest, "empty body: send the JPEG bytes as the request body")
	}
	if len(body) > s.cfg.MaxFrameBytes {
		return bad(fiber.StatusRequestEntityTooLarge, fmt.Sprintf("frame is %d bytes; the limit is %d", len(body), s.cfg.MaxFrameBytes))
	}
	if _, _, err := analyzers.ValidateJPEG(body); err != nil {
		return bad(jpegStatus(err), "frame: "+err.Error())
	}
	if done, err := s.store.FrameStored(c.UserContext(), id, camera, seq); err != nil {
		return err
	} else if done {
		return c.Status(fiber.StatusOK).JSON(fiber.Map{"status": "duplicate", "seq": seq})
	}
	msg := pipeline.FrameMessage{SessionID: id, Camera: camera, Seq: seq, CapturedAtMs: capturedAt,
		ReceivedAtMs: time.Now().UnixMilli(), JPEG: append([]byte(nil), body...)}
	if err := s.pub.Send(c.UserContext(), s.cfg.Topics.Frames, pipeline.EncodeFrame(msg)); err != nil {
		s.log.Error("produce frame", "session", id, "seq", seq, "err", err)
		return bad(fiber.StatusServiceUnavailable, "could not queue the frame; retry with the same seq")
	}
	s.accepted(s.cfg.Topics.Frames)
	return c.Status(fiber.StatusAccepted).JSON(fiber.Map{"status": "accepted", "seq": seq})
}

// postAudio accepts an audio chunk: a WAV file (16-bit PCM mono, 8–48 kHz) or raw PCM s16le mono
// at 16 kHz (Content-Type audio/L16 or application/octet-stream), with captured_at and seq.
func (s *Server) postAudio(c *fiber.Ctx) error {
	id, err := s.ingestSession(c)
	if err != nil {
		return err
	}
	if err := s.throttle(c, s.cfg.Topics.Audio); err != nil {
		return err
	}
	seq, capturedAt, err := s.seqAndTime(c)
	if err != nil {
		return err
	}
	body := c.Body()
	if len(body) == 0 {
		return bad(fiber.StatusBadRequest, "empty body: send WAV or PCM s16le bytes as the request body")
	}
	if len(body) > s.cfg.MaxAudioBytes {
		return bad(fiber.StatusRequestEntityTooLarge, fmt.Sprintf("audio chunk is %d bytes; the limit is %d", len(body), s.cfg.MaxAudioBytes))
	}
	pcm, rate, err := parseAudio(body)
	if err != nil {
		return bad(fiber.StatusUnprocessableEntity, "audio: "+err.Error())
	}
	msg := pipeline.AudioMessage{SessionID: id, Seq: seq, CapturedAtMs: capturedAt,
		ReceivedAtMs: time.Now().UnixMilli(), SampleRate: rate, PCM: append([]byte(nil), pcm...)}
	if err := s.pub.Send(c.UserContext(), s.cfg.Topics.Audio, pipeline.EncodeAudio(msg)); err != nil {
		s.log.Error("produce audio", "session", id, "seq", seq, "err", err)
		return bad(fiber.StatusServiceUnavailable, "could not queue the audio; retry with the same seq")
	}
	s.accepted(s.cfg.Topics.Audio)
	return c.Status(fiber.StatusAccepted).JSON(fiber.Map{"status": "accepted", "seq": seq,
		"duration_ms": int64(len(pcm)/2) * 1000 / int64(rate)})
}

// eventIn is one exam-flow or client event as the platform posts it.
type eventIn struct {
	Seq        *int64          `json:"seq"`
	Type       string          `json:"type"`
	CapturedAt *int64          `json:"captured_at"`
	Data       json.RawMessage `json:"data,omitempty"`
}

// postEvents accepts one event object or an array of them (JSON). All are validated before any
// is queued, so a batch is accepted or rejected whole.
func (s *Server) postEvents(c *fiber.Ctx) error {
	id, err := s.ingestSession(c)
	if err != nil {
		return err
	}
	if !strings.HasPrefix(c.Get(fiber.HeaderContentType), fiber.MIMEApplicationJSON) {
		return bad(fiber.StatusUnsupportedMediaType, "events must be JSON (Content-Type: application/json)")
	}
	body := c.Body()
	var events []eventIn
	trimmed := strings.TrimSpace(string(body))
	if strings.HasPrefix(trimmed, "[") {
		err = json.Unmarshal(body, &events)
	} else {
		var one eventIn
		err = json.Unmarshal(body, &one)
		events = []eventIn{one}
	}
	if err != nil {
		return bad(fiber.StatusBadRequest, "events: invalid JSON: "+err.Error())
	}
	if len(events) == 0 || len(events) > 500 {
		return bad(fiber.StatusBadRequest, "send 1 to 500 events per request")
	}
	now := time.Now()
	msgs := make([]kafka.Message, 0, len(events))
	for i, e := range events {
		where := fmt.Sprintf("event %d", i)
		if e.Seq == nil || *e.Seq < 0 {
			return bad(fiber.StatusBadRequest, where+": seq (a non-negative integer, unique per session) is required")
		}
		if !KnownEventType(e.Type) {
			return bad(fiber.StatusBadRequest, fmt.Sprintf("%s: unknown type %q; see the event vocabulary in /openapi.yaml", where, e.Type))
		}
		if e.CapturedAt == nil {
			return bad(fiber.StatusBadRequest, where+": captured_at (ms since epoch) is required")
		}
		if err := s.checkTime(*e.CapturedAt, now); err != nil {
			return bad(fiber.StatusBadRequest, where+": "+err.Error())
		}
		if len(e.Data) > 0 && !json.Valid(e.Data) {
			return bad(fiber.StatusBadRequest, where+": data must be a JSON value")
		}
		if err := store.CheckJSONText("data", e.Data, 0); err != nil {
			return bad(fiber.StatusBadRequest, where+": "+err.Error())
		}
		if err := validatePayload(e.Type, e.Data); err != nil {
			return bad(fiber.StatusBadRequest, where+": "+err.Error())
		}
		if len(e.Data) > 16<<10 {
			return bad(fiber.StatusRequestEntityTooLarge, where+": data is larger than 16 KiB")
		}
		m := pipeline.EventMessage{SessionID: id, Seq: *e.Seq, Type: e.Type, CapturedAtMs: *e.CapturedAt,
			ReceivedAtMs: now.UnixMilli(), Payload: e.Data}
		msgs = append(msgs, pipeline.EncodeEvent(m))
	}
	if err := s.pub.Send(c.UserContext(), s.cfg.Topics.Events, msgs...); err != nil {
		s.log.Error("produce events", "session", id, "err", err)
		return bad(fiber.StatusServiceUnavailable, "could not queue the events; retry the same request")
	}
	return c.Status(fiber.StatusAccepted).JSON(fiber.Map{"status": "accepted", "events": len(msgs)})
}

// seqAndTime reads and checks the seq and captured_at query parameters.
func (s *Server) seqAndTime(c *fiber.Ctx) (int64, int64, error) {
	seq, err := strconv.ParseInt(c.Query("seq"), 10, 64)
	if err != nil || seq < 0 {
		return 0, 0, bad(fiber.StatusBadRequest, "seq must be a non-negative integer (unique per session and camera)")
	}
	if seq >= store.RecordedSeqBase {
		return 0, 0, bad(fiber.StatusBadRequest, fmt.Sprintf("seq %d is reserved: seqs from %d up are given to frames and audio cut from uploaded recordings", seq, store.RecordedSeqBase))
	}
	at, err := strconv.ParseInt(c.Query("captured_at"), 10, 64)
	if err != nil {
		return 0, 0, bad(fiber.StatusBadRequest, "captured_at must be milliseconds since the Unix epoch")
	}
	if err := s.checkTime(at, time.Now()); err != nil {
		return 0, 0, bad(fiber.StatusBadRequest, err.Error())
	}
	return seq, at, nil
}

func (s *Server) checkTime(ms int64, now time.Time) error {
	t := time.UnixMilli(ms)
	if t.After(now.Add(s.cfg.MaxFutureSkew)) {
		return fmt.Errorf("captured_at %d is in the future (server time %d); check the client clock", ms, now.UnixMilli())
	}
	if t.Before(now.Add(-s.cfg.MaxAge)) {
		return fmt.Errorf("captured_at %d is older than %s; is it in seconds instead of milliseconds?", ms, s.cfg.MaxAge)
	}
	return nil
}

func parseTime(v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, errors.New("required (RFC 3339 or ms since epoch)")
	}
	if ms, err := strconv.ParseInt(v, 10, 64); err == nil {
		if ms < 1e12 {
			return time.Time{}, errors.New("looks like seconds; send milliseconds since epoch")
		}
		return time.UnixMilli(ms).UTC(), nil
	}
	t, err := time.Parse(time.RFC3339, strings.ToUpper(v)) // RFC 3339 allows "t" and "z"
	if err != nil {
		return time.Time{}, errors.New("not RFC 3339 (2026-11-26T09:00:00+08:00) nor ms since epoch")
	}
	return t.UTC(), nil
}

func intField(v string, lo, hi int) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, fmt.Errorf("required integer between %d and %d", lo, hi)
	}
	if n < lo || n > hi {
		return 0, fmt.Errorf("%d is outside %d..%d", n, lo, hi)
	}
	return n, nil
}

// jpegStatus is the status for a JPEG that ValidateJPEG refused: 400 for sides outside the
// documented 32..8192 px (the request breaks a stated limit), 422 for a damaged or unsupported
// file.
func jpegStatus(err error) int {
	if errors.Is(err, analyzers.ErrTooLarge) || errors.Is(err, analyzers.ErrTooSmall) {
		return fiber.StatusBadRequest
	}
	return fiber.StatusUnprocessableEntity
}

// validID reports whether id matches sessionIDPattern.
func validID(id string) bool { return sessionIDPattern.MatchString(id) }
